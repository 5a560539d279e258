import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings
import Simulation

/// The dose-floor and strong-distortion presets reproduce the regimes they are named for,
/// and the simulator's vibration, flyback, contamination and stack output behave as modelled.
@Suite struct EdgeRegimePresetTests {
    /// Least-squares slope of the truth shifts against the frame index (px per frame).
    func driftPerFrame(_ sim: HeatingRunSimulator) -> Double {
        let n = Double(sim.frameCount)
        let ts = (0..<sim.frameCount).map(Double.init), mt = ts.reduce(0, +) / n
        var slope = SIMD2<Double>(0, 0), stt = 0.0
        for i in 0..<sim.frameCount {
            let f = sim.frameTruth(i)
            slope += (ts[i] - mt) * SIMD2(f.shiftXPx, f.shiftYPx); stt += (ts[i] - mt) * (ts[i] - mt)
        }
        return ((slope / stt) * (slope / stt)).sum().squareRoot()
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func doseFloorRegime(seed: UInt64) throws {
        let o = SimulationOptions(preset: .doseFloor, seed: seed, size: SimulationPreset.doseFloor.defaultSize)
        try o.validate()
        #expect(o.size == 1024 && o.framesPerStep == 40)
        #expect(o.countsAtColumnPeak >= 3 && o.countsAtColumnPeak <= 5)
        #expect(o.contaminationBlobs >= 2 && o.contaminationBlobs <= 4)
        let sim = HeatingRunSimulator(o)
        #expect(abs(sim.scan.jitterPx - 0.8) < 1e-9)
        #expect(sim.vibration.modes.isEmpty)
        // 1.4–1.9 px per frame steady, the random walk on top: ≈ 55–80 px in all.
        let interval = sim.frameTruth(1).timeS - sim.frameTruth(0).timeS
        let steady = o.driftNmPerS * interval / o.pixelSizeNm
        #expect(steady >= 1.4 && steady <= 1.9)
        let v = driftPerFrame(sim)
        #expect(abs(v - steady) < 0.6, "seed \(seed): \(v) px per frame fitted, \(steady) steady")
        let last = sim.frameTruth(sim.frameCount - 1)
        let total = (last.shiftXPx * last.shiftXPx + last.shiftYPx * last.shiftYPx).squareRoot()
        #expect(total > 40 && total < 95, "seed \(seed): \(total) px in all")
        // One multi-page file; no front.
        #expect(Set((0..<sim.frameCount).map { sim.frameTruth($0).file }).count == 1)
        #expect(sim.truth.frontWidthNm == nil && sim.truth.registrationTargetPx == 0.15)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func strongDistortionRegime(seed: UInt64) throws {
        let o = SimulationOptions(preset: .strongDistortion, seed: seed)
        try o.validate()
        #expect(o.size == 512 && o.framesPerStep == 30 && o.holds.map(\.temperatureC) == [25])
        #expect(o.flybackAmplitudePx >= 4 && o.flybackAmplitudePx <= 6)
        #expect(o.flybackDecayPx >= 12 && o.flybackDecayPx <= 14)
        #expect(o.vibrationSlowPx >= 0.3 && o.vibrationSlowPx <= 0.5)
        let sim = HeatingRunSimulator(o)
        // Drift speed 1.0–1.6 px/s (a weak random walk on top).
        let t0 = sim.frameTruth(0), t1 = sim.frameTruth(sim.frameCount - 1)
        let speed = ((SIMD2(t1.shiftXPx, t1.shiftYPx) * SIMD2(t1.shiftXPx, t1.shiftYPx)).sum()).squareRoot() / (t1.timeS - t0.timeS)
        #expect(speed > 0.8 && speed < 1.8, "seed \(seed): \(speed) px/s")
        #expect(sim.truth.columnPrecisionTargetPm == 2)
        // Flyback: A at the line start, A/e one decay length later.
        let a = sim.scan.flybackOffset(0), l = sim.scan.flybackDecayPx
        #expect(abs(sim.scan.flybackOffset(Int(l.rounded())) / a - exp(-l.rounded() / l)) < 1e-9)
    }

    /// Vibration: the RMS asked for along each axis, a spectrum inside 2–12 Hz, and frames
    /// that see unrelated stretches of it (its mean over 30 frames' lines is far below one
    /// frame's), whatever the frame rate.
    @Test func vibrationHasItsAmplitudeBandAndDecorrelatesBetweenFrames() throws {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .strongDistortion, seed: 7))
        let o = sim.options, p = o.pixelSizeNm
        let start = sim.frameStartS(0), end = sim.frameStartS(sim.frameCount - 1) + sim.scan.frameDurationS
        let dt = 0.002
        let samples = stride(from: start, to: end, by: dt).map { sim.vibration.displacement(at: $0) / p }
        func rms(_ v: [Double]) -> Double { (v.map { $0 * $0 }.reduce(0, +) / Double(v.count)).squareRoot() }
        let rx = rms(samples.map(\.x)), ry = rms(samples.map(\.y))
        #expect(abs(rx / o.vibrationFastPx - 1) < 0.25, "fast-scan RMS \(rx) px for \(o.vibrationFastPx)")
        #expect(abs(ry / o.vibrationSlowPx - 1) < 0.25, "slow-scan RMS \(ry) px for \(o.vibrationSlowPx)")
        // Power inside 1.5–13 Hz (a discrete Fourier sum at 0.25 Hz steps) against 0.25–40 Hz.
        var inside = 0.0, all = 0.0
        for f in stride(from: 0.25, through: 40, by: 0.25) {
            var c = SIMD2<Double>(0, 0)
            for (k, v) in samples.enumerated() { let a = 2 * Double.pi * f * Double(k) * dt; c += v.x * SIMD2(cos(a), sin(a)) }
            let power = (c * c).sum()
            all += power
            if f >= 1.5 && f <= 13 { inside += power }
        }
        #expect(inside / all > 0.9, "share of the power in the band: \(inside / all)")
        // Mean over the frames of the vibration each frame line saw (frames in place).
        let lines = o.size
        var mean = [Double](repeating: 0, count: lines)
        for i in 0..<sim.frameCount {
            for y in 0..<lines { mean[y] += sim.vibration.displacement(at: sim.frameStartS(i) + sim.scan.pixelTime(lines / 2, y)).x / p }
        }
        let meanRMS = rms(mean.map { $0 / Double(sim.frameCount) })
        #expect(meanRMS < 0.45 * rx, "mean over frames \(meanRMS) px against \(rx) px per frame")
    }

    /// Contamination adds smooth, diffuse intensity where the blobs are and nowhere else.
    @Test func contaminationBlobsAddDiffuseIntensity() throws {
        var o = physicsOptions(.doseFloor, size: 128, pixel: 0.05)
        o.driftNmPerS = 0; o.driftRandomWalkNmPerRootS = 0; o.jitterPx = 0
        o.contaminationBlobs = 0
        let clean = modelIntensity(HeatingRunSimulator(o).renderNoiseless(frame: 0, distortions: false), HeatingRunSimulator(o))
        o.contaminationBlobs = 3
        o.contaminationHeight = 0.5...0.5; o.contaminationSigmaNm = 1...1
        let sim = HeatingRunSimulator(o)
        let blobs = modelIntensity(sim.renderNoiseless(frame: 0, distortions: false), sim)
        let diff = zip(blobs.pixels, clean.pixels).map { Double($0 - $1) }
        #expect(diff.allSatisfy { $0 >= -1e-4 && $0 <= 1.5 + 1e-4 })
        #expect(diff.max()! > 0.2)
        // Diffuse: neighbouring pixels differ by little (σ = 20 px here).
        var step = 0.0
        for y in 0..<128 { for x in 0..<127 { step = max(step, abs(diff[y * 128 + x + 1] - diff[y * 128 + x])) } }
        #expect(step < 0.05)
    }

    /// A stack preset writes one multi-page TIFF whose pages the run folder reads back in time
    /// order with their own acquisition times.
    @Test func stackIsOneMultiPageTIFF() throws {
        var o = SimulationOptions(preset: .doseFloor, seed: 3, size: 64)
        o.framesPerStep = 6
        try o.validate()
        let sim = HeatingRunSimulator(o)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hf-stack-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try sim.write(to: dir)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tif") }
        #expect(files == ["dose_floor_300C.tif"])
        let table = try RunFolder.scan(dir, config: RunConfig())
        #expect(table.records.count == 6)
        #expect(table.records.map(\.page) == Array(0..<6))
        for i in 0..<6 {
            #expect(abs(table.records[i].timeS - sim.frameTruth(i).timeS) < 2e-3)
        }
        #expect(abs((table.pixelSizeNm ?? 0) - o.pixelSizeNm) < 1e-9)
        // The pages are the frames.
        let reader = try FrameFiles.open(dir.appendingPathComponent(files[0]))
        let page4 = try reader.frame(signal: reader.primarySignal, frame: 4).image
        #expect(page4 == sim.render(frame: 4))
    }

    /// `validate` counts the frames a lattice vector off: a slipped block whole, plain
    /// misregistration (under half a lattice vector) not at all, whatever the gauge.
    @Test func framesALatticeVectorOffAreCounted() throws {
        let json = #"{"origin_px": [0, 0], "along_basis_px": [9.6, -1.2], "across_basis_px": [3.1, 18.4], "li_offset_px": [0, 9]}"#
        let lattice = try JSONDecoder().decode(ColumnLatticeTruth.self, from: Data(json.utf8))
        var errors = (0..<30).map { k in SIMD2(0.05 * sin(Double(k)), 0.04 * cos(Double(k))) + SIMD2(12.3, -4.5) }
        #expect(RunValidation.latticeVectorOff(errors, lattice: lattice).isEmpty)
        for k in 20..<30 { errors[k] += SIMD2(9.6, -1.2) }
        errors[3] += SIMD2(2.0, 1.5)   // misregistered, not aliased
        errors[7] -= SIMD2(3.1, 18.4)
        #expect(RunValidation.latticeVectorOff(errors, lattice: lattice) == [7] + Array(20..<30))
    }
}
