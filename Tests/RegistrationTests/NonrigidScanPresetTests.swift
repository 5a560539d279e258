import Foundation
import FrameCore
import Registration
import Simulation
import Testing

/// Non-rigid correction on the simulator's scan-distortion preset (flyback 2.5 px decaying
/// over 18 px, per-line jitter 0.35 px plus 0.5 px of 50 Hz hum, continuous drift), at the
/// preset's pixel size (0.025 nm) on a 256² field. Truth: the same frames rendered without
/// scan distortions, at their mid-acquisition drift, aligned by the true shifts.
@Suite("Non-rigid correction on the scan-distortion preset")
struct NonrigidScanPresetTests {
    static let size = 256

    static func simulator(pixelSizeNm: Double = 0.025) -> HeatingRunSimulator {
        var o = SimulationOptions(preset: .scanDistortion, size: size)
        o.pixelSizeNm = pixelSizeNm
        return HeatingRunSimulator(o)
    }

    /// Per-line x offset of `image`'s content relative to `truth` (Lucas–Kanade along each
    /// line over `valid`), and per-column x offset likewise; affine trends removed (they do
    /// not move columns off the best-fit lattice).
    static func residualOffsets(_ image: Image, truth: Image, valid: Mask) -> (rows: [Double], columns: [Double]) {
        let w = image.width, h = image.height
        var rn = [Double](repeating: 0, count: h), rd = rn, cn = [Double](repeating: 0, count: w), cd = cn
        for y in 0..<h {
            for x in 1..<(w - 1) where valid[x, y] {
                let g = Double(truth[x + 1, y] - truth[x - 1, y]) / 2
                let d = Double(image[x, y] - truth[x, y])
                rn[y] -= d * g; rd[y] += g * g; cn[x] -= d * g; cd[x] += g * g
            }
        }
        func detrended(_ n: [Double], _ d: [Double]) -> [Double] {
            let typical = d.sorted()[d.count / 2]
            var v = zip(n, d).map { $1 > 0.2 * typical && $1 > 0 ? $0 / $1 : Double.nan }
            let idx = v.indices.filter { !v[$0].isNaN }
            guard idx.count > 2 else { return [] }
            let t: [Double] = idx.map(Double.init), y: [Double] = idx.map { v[$0] }
            let mt = t.reduce(0, +) / Double(t.count), my = y.reduce(0, +) / Double(y.count)
            var stt = 0.0, sty = 0.0
            for (a, b) in zip(t, y) { stt += (a - mt) * (a - mt); sty += (a - mt) * (b - my) }
            let slope = sty / stt
            for i in idx { v[i] -= my + slope * (Double(i) - mt) }
            return idx.map { v[$0] }
        }
        return (detrended(rn, rd), detrended(cn, cd))
    }

    /// `v` minus its Gaussian-smoothed copy: what a line-smoothness estimate can see.
    static func highPassed(_ v: [Double], sigma: Double) -> [Double] {
        let r = Int(3 * sigma + 1), n = v.count
        let k = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }, s = k.reduce(0, +)
        return (0..<n).map { i in v[i] - (-r...r).map { k[$0 + r] * v[min(n - 1, max(0, i + $0))] }.reduce(0, +) / s }
    }

    static func rms(_ v: [Double]) -> Double { (v.map { $0 * $0 }.reduce(0, +) / Double(max(1, v.count))).squareRoot() }

    /// A truth image with known per-line offsets: the estimator must find them from the image
    /// alone (layers at 31°, a second grain, a front), to within a fifth of their size.
    @Test("Single image: per-line offsets recovered from line-to-line smoothness", arguments: [0.025, 0.0125])
    func lineOffsetsFromOneImage(pixelSizeNm: Double) throws {
        let sim = Self.simulator(pixelSizeNm: pixelSizeNm)
        let truth = sim.renderNoiseless(frame: 0, distortions: false)
        var state: UInt64 = 11
        let offsets = (0..<Self.size).map { _ -> Double in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return 0.3 * (Double(state >> 11) / Double(1 << 53) * 2 - 1) * 1.7
        }
        // Content of line r moved right by offsets[r].
        let distorted = ScanLineCorrection.shiftedRows(truth, by: offsets.map { -$0 })
        let valid = Mask(width: Self.size, height: Self.size, fill: true)
        let found = ScanLineCorrection.rowOffsets(in: distorted, valid: valid)
        let expected = Self.highPassed(offsets, sigma: ScanLineCorrection.Options().highPassLines)
        let inner = 8..<(Self.size - 8)
        let err = Self.rms(inner.map { found[$0] - expected[$0] }), size = Self.rms(inner.map { expected[$0] })
        #expect(size > 0.2, "\(pixelSizeNm) nm px")
        #expect(err < size / 5, "\(pixelSizeNm) nm px")
    }

    /// Eight frames of step 0, noise-free, with the preset's scan distortions: the corrected
    /// average's lines and columns must sit where the undistorted average's are.
    @Test("Series: common per-line jitter and flyback removed from the average")
    func seriesAverageMatchesUndistorted() throws {
        let sim = Self.simulator()
        let members = (0..<sim.frameCount).filter { sim.frameTruth($0).stepIndex == 0 }.prefix(8)
        let frames = ImageArray(members.map { sim.renderNoiseless(frame: $0, distortions: true) })
        let clean = ImageArray(members.map { sim.renderNoiseless(frame: $0, distortions: false) })
        let shifts = members.map { FrameShift(dx: sim.frameTruth($0).shiftXPx, dy: sim.frameTruth($0).shiftYPx, score: 1) }
        let n = members.count
        let truth = try StackAverage.average(clean, indices: Array(0..<n), shifts: shifts, interpolation: .bicubic)
        let rigid = try StackAverage.average(frames, indices: Array(0..<n), shifts: shifts, interpolation: .bicubic)
        let result = try NonrigidRegistration.correct(frames, indices: Array(0..<n), shifts: shifts, reference: rigid)
        // Pixels every frame covers, away from the border.
        var valid = Mask(width: Self.size, height: Self.size, fill: false)
        for y in 12..<(Self.size - 12) { for x in 4..<(Self.size - 12) where rigid.weight[x, y] >= Float(n) { valid[x, y] = true } }
        let before = Self.residualOffsets(rigid.image, truth: truth.image, valid: valid)
        let after = Self.residualOffsets(result.average.image, truth: truth.image, valid: valid)
        #expect(Self.rms(after.rows) < Self.rms(before.rows) / 3)
        #expect(Self.rms(after.columns) < Self.rms(before.columns) / 2.5)
        #expect(Self.rms(after.rows) < 0.05)
    }

    /// The same frames without scan distortions: the correction must leave the average's
    /// lines and columns where they are.
    @Test("Undistorted series: average not moved")
    func undistortedSeriesNotMoved() throws {
        let sim = Self.simulator()
        let members = (0..<sim.frameCount).filter { sim.frameTruth($0).stepIndex == 0 }.prefix(8)
        let clean = ImageArray(members.map { sim.renderNoiseless(frame: $0, distortions: false) })
        let shifts = members.map { FrameShift(dx: sim.frameTruth($0).shiftXPx, dy: sim.frameTruth($0).shiftYPx, score: 1) }
        let n = members.count
        let truth = try StackAverage.average(clean, indices: Array(0..<n), shifts: shifts, interpolation: .bicubic)
        let result = try NonrigidRegistration.correct(clean, indices: Array(0..<n), shifts: shifts, reference: truth)
        var valid = Mask(width: Self.size, height: Self.size, fill: false)
        for y in 12..<(Self.size - 12) { for x in 4..<(Self.size - 12) where truth.weight[x, y] >= Float(n) { valid[x, y] = true } }
        let after = Self.residualOffsets(result.average.image, truth: truth.image, valid: valid)
        // What the estimators' bias leaves (0.007 px in the lines, 0.041 px = 1.0 pm in the
        // columns at this pixel size), against the 0.17 px they remove from a distorted series.
        #expect(Self.rms(after.rows) < 0.04)
        #expect(Self.rms(after.columns) < 0.045)
    }
}
