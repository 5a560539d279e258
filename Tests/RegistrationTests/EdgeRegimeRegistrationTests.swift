import Foundation
import FrameCore
import Registration
import Simulation
import Testing

/// Registration at the edges: the drift wandering within frames at the dose floor, strong
/// scan distortion with vibration, and lattice-alias slips found by the drift's continuity.
@Suite("Registration at the dose floor and under strong distortion")
struct EdgeRegimeRegistrationTests {
    /// Dose-floor preset (3–5 counts per column, 0.6–1.4 px of random walk per frame, an
    /// amorphous region): a whole-frame correlation weights the lines by their content and
    /// misses the mean over the lines the truth is; measured in bands and averaged over the
    /// lines, the shifts come within a few hundredths of a pixel.
    @Test("Dose floor: shifts refined to the mean over the scan lines")
    func driftPathRefinement() throws {
        var o = SimulationOptions(preset: .doseFloor, seed: 3, size: 1024)
        o.framesPerStep = 16
        let sim = HeatingRunSimulator(o)
        let indices = Array(0..<sim.frameCount)
        let frames = ImageArray(ResultSlots<Image>.map(indices.count) { sim.render(frame: $0) })
        let truth = indices.map { SIMD2(sim.frameTruth($0).shiftXPx, sim.frameTruth($0).shiftYPx) }
        let rigid = try RigidRegistration.align(frames, options: RigidOptions())
        #expect(rigid.allSatisfy { $0.isUsed })
        let refined = try DriftPathRefinement.refine(frames, shifts: rigid)
        let before = gaugeFreeRMS(measured: rigid.map { SIMD2($0.dx, $0.dy) }, truth: truth).rms
        let after = gaugeFreeRMS(measured: refined.map { SIMD2($0.dx, $0.dy) }, truth: truth).rms
        let times = indices.map { sim.frameTruth($0).timeS }
        let wander = try #require(DriftPathRefinement.expectedWanderPx(positions: rigid.map { SIMD2($0.dx, $0.dy) }, times: times,
                                                                       frameDurationS: times[1] - times[0]))
        let average = try StackAverage.average(frames, indices: indices, shifts: rigid, interpolation: .bicubic)
        let bias = DriftPathRefinement.expectedBiasPx(wander: wander, average: average, shifts: rigid)
        #expect(bias >= DriftPathRefinement.biasThresholdPx, "expected wander \(wander) px")
        #expect(after < 0.6 * before)
        #expect(after < 0.06)
    }

    /// Strong distortion (flyback, 0.5 px line jitter, 2–12 Hz vibration, fast drift), frames
    /// noise-free at their true shifts: after the joint line fit and the lattice-model
    /// correction the average's lines sit where the undistorted average's do.
    @Test("Strong distortion: per-line fit and lattice model restore the average's lines")
    func strongDistortionSeries() throws {
        let size = 256
        var o = SimulationOptions(preset: .strongDistortion, seed: 2, size: size)
        o.framesPerStep = 12
        let sim = HeatingRunSimulator(o)
        let n = sim.frameCount
        let frames = ImageArray(ResultSlots<Image>.map(n) { sim.renderNoiseless(frame: $0, distortions: true) })
        let clean = ImageArray(ResultSlots<Image>.map(n) { sim.renderNoiseless(frame: $0, distortions: false) })
        let shifts = (0..<n).map { FrameShift(dx: sim.frameTruth($0).shiftXPx, dy: sim.frameTruth($0).shiftYPx, score: 1) }
        let ideal = (0..<n).map { k -> FrameShift in let s = sim.idealShiftPx(frame: k); return FrameShift(dx: s.x, dy: s.y, score: 1) }
        let truth = try StackAverage.average(clean, indices: Array(0..<n), shifts: ideal, interpolation: .bicubic)
        let rigid = try StackAverage.average(frames, indices: Array(0..<n), shifts: shifts, interpolation: .bicubic)
        let result = try NonrigidRegistration.correct(frames, indices: Array(0..<n), shifts: shifts, reference: rigid)
        var phaseOnly = NonrigidOptions()
        phaseOnly.lineFit = nil; phaseOnly.latticeModel = nil
        let previous = try NonrigidRegistration.correct(frames, indices: Array(0..<n), shifts: shifts, reference: rigid,
                                                        options: phaseOnly)
        var valid = Mask(width: size, height: size, fill: false)
        for y in 12..<(size - 12) { for x in 24..<(size - 12) where rigid.weight[x, y] >= Float(n) { valid[x, y] = true } }
        typealias T = NonrigidScanPresetTests
        let before = T.residualOffsets(rigid.image, truth: truth.image, valid: valid)
        let old = T.residualOffsets(previous.average.image, truth: truth.image, valid: valid)
        let after = T.residualOffsets(result.average.image, truth: truth.image, valid: valid)
        #expect(T.rms(after.rows) < T.rms(before.rows) / 3)
        #expect(T.rms(after.rows) < T.rms(old.rows))
        #expect(T.rms(after.rows) < 0.05)
        #expect(T.rms(after.columns) < 0.06)
    }

    /// Known per-line offsets on a clean lattice image (layers at an angle, amorphous edge):
    /// measured against the image's own Bragg-filtered lattice, line by line.
    @Test("Lattice model: per-line offsets at every scale, from one image")
    func latticeModelRecoversLineOffsets() throws {
        var o = SimulationOptions(preset: .strongDistortion, seed: 1, size: 384)
        o.pixelSizeNm = 0.025
        let sim = HeatingRunSimulator(o)
        let clean = sim.renderNoiseless(frame: 0, distortions: false)
        var state: UInt64 = 5
        // Smooth (a 30-line period, as 5–10 Hz vibration leaves) plus white (line jitter).
        let offsets = (0..<clean.height).map { y -> Double in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return 0.25 * sin(2 * Double.pi * Double(y) / 30) + 0.15 * (Double(state >> 11) / Double(1 << 53) * 2 - 1)
        }
        // Content of line r moved right by offsets[r].
        let moved = ScanLineCorrection.shiftedRows(clean, by: offsets.map { -$0 })
        let valid = Mask(width: clean.width, height: clean.height, fill: true)
        var options = ScanLatticeCorrection.Options()
        options.reflections = LatticeModelCorrection.Options().reflections
        let found = LatticeModelCorrection.offsets(in: moved, valid: valid,
                                                   reflections: ScanLatticeCorrection.reflections(in: moved, valid: valid, options: options))
        let expected = ScanLatticeCorrection.affineRemoved(offsets)
        let measured = found.rowX.indices.filter { found.rowX[$0] != 0 && $0 > 8 && $0 < clean.height - 8 }
        let err = T.rms(measured.map { found.rowX[$0] - expected[$0] }), size = T.rms(measured.map { expected[$0] })
        #expect(measured.count > clean.height / 2)
        #expect(err < size / 6)
    }
    typealias T = NonrigidScanPresetTests

    /// A steady drift with a random walk: a block of frames one lattice vector off is found
    /// at the link where it starts (and where it ends), a single frame off at both its links,
    /// and nothing in a clean trajectory or a genuine jump that is no lattice vector.
    @Test("Alias continuity: slips found at their links, nothing else")
    func aliasContinuity() {
        let a = SIMD2(9.6, -1.2), b = SIMD2(3.1, 18.4)
        var state: UInt64 = 17
        func gaussian() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u1 = Double(state >> 11) / Double(1 << 53) + 1e-12
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u2 = Double(state >> 11) / Double(1 << 53)
            return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        }
        var p = SIMD2<Double>(0, 0)
        let clean: [SIMD2<Double>?] = (0..<40).map { _ in p += SIMD2(1.5, -0.7) + 0.6 * SIMD2(gaussian(), gaussian()); return p }
        let times = (0..<40).map(Double.init)
        #expect(AliasContinuity.slips(positions: clean, times: times, latticeVectors: [a, b]).isEmpty)
        var block = clean
        for k in 22..<40 { block[k] = block[k]! + b }
        var single = clean
        single[9] = single[9]! - a
        var jump = clean
        for k in 30..<40 { jump[k] = jump[k]! + SIMD2(4, 4) }   // a stage jump, no lattice vector
        let slips = AliasContinuity.slips(positions: block, times: times, latticeVectors: [a, b])
        #expect(slips.map(\.after) == [22])
        #expect(slips.first.map { (($0.vector - b) * ($0.vector - b)).sum() < 1e-9 } ?? false)
        #expect(AliasContinuity.slips(positions: single, times: times, latticeVectors: [a, b]).map(\.after) == [9, 10])
        #expect(AliasContinuity.slips(positions: jump, times: times, latticeVectors: [a, b]).isEmpty)
        // A block several cells off is a slip too; a large jump between lattice points is not.
        let cells: SIMD2<Double> = 5 * a - 2 * b
        var far = clean
        for k in 15..<40 { far[k] = far[k]! + cells }
        let farSlips = AliasContinuity.slips(positions: far, times: times, latticeVectors: [a, b])
        #expect(farSlips.map(\.after) == [15])
        let farError = farSlips.first.map { (($0.vector - cells) * ($0.vector - cells)).sum() } ?? .infinity
        #expect(farError < 1e-9)
        let between: SIMD2<Double> = 2.5 * a + 0.5 * b   // a large stage jump between lattice points
        var bigJump = clean
        for k in 30..<40 { bigJump[k] = bigJump[k]! + between }
        #expect(AliasContinuity.slips(positions: bigJump, times: times, latticeVectors: [a, b]).isEmpty)
        // Rejected frames are skipped, not read as a jump.
        var gaps = block
        gaps[5] = nil; gaps[6] = nil
        #expect(AliasContinuity.slips(positions: gaps, times: times, latticeVectors: [a, b]).map(\.after) == [22])
    }

    /// Several blocks off by different lattice points, on a jerky drift (a random walk of
    /// 1 px per frame): the slip at frame 6 stands only 4.7σ out while the later slips distort
    /// the local drift and the links' σ; with those taken out first it stands 7.3σ out.
    @Test("Alias continuity: a slip hidden by the other slips is found once they are taken out")
    func aliasContinuityHiddenSlip() {
        let a = SIMD2(11.0, 0), b = SIMD2(3.0, 10)
        let track: [SIMD2<Double>] = [
            [3.29, 2.3], [4.75, 4.34], [8.22, 4.8], [8.84, 5.44], [13.64, 6.67], [14.42, 7.42], [7.43, 18.02],
            [9.52, 16.46], [11.88, 18.87], [13.69, 19.49], [16.78, 19.22], [17.53, 18.83], [0.38, 30.23],
            [2.29, 31.78], [5.12, 33.27], [42.31, 44.01], [20.56, 33.96], [22.3, 34.54], [24.12, 34.47],
            [24.77, 38.02], [27.72, 38.31], [29.66, 39.99], [31.32, 41.6], [32.7, 42.24], [34.62, 42.79],
            [34.16, 43.81], [36.42, 45.28], [37.43, 46.63], [39.65, 45.86], [78.44, 67.34], [79.49, 69.34],
            [83.63, 69.76],
        ].map { SIMD2($0[0], $0[1]) }
        let slips = AliasContinuity.slips(positions: track, times: (0..<32).map(Double.init), latticeVectors: [a, b])
        #expect(slips.map(\.after) == [6, 12, 15, 16, 29])
        let expected: [SIMD2<Double>] = [-a + b, -2 * a + b, 3 * a + b, -2 * a - b, 3 * a + 2 * b]
        #expect(zip(slips.map(\.vector), expected).allSatisfy { (($0 - $1) * ($0 - $1)).sum() < 1e-9 })
    }
}
