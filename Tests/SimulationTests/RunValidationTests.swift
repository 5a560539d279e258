import Foundation
import Testing
import FrameCore
import Simulation

/// Writes what a perfect `heatfront run` would output for a simulated run, with optional
/// perturbations, so that `RunValidation` can be checked against known errors.
struct FakePipelineOutput {
    var shiftDelta: (Int) -> SIMD2<Double> = { _ in SIMD2(0, 0) }
    var frontDeltaNm = 0.0
    var statusOverride: [Int: String] = [:]
    var reportFrontWithoutTruth = false
    var columnNoisePx = 0.0
    var onsetOverride: Double?? = .none
    var eaDelta = 0.0
    /// Number the steps from this value and put an extra room-temperature step first.
    var extraLeadingStep = false
    /// Report each step's rock-salt fraction as the truth file's mean over the frames' own
    /// views instead of the one in the step average (what a correct pipeline reports).
    var ownViewRocksalt = false
    /// Velocities reported × (1 + this), with SEMs of `velocitySEMFraction` × the true velocity.
    var velocityDelta = 0.0
    var velocitySEMFraction: Double? = nil
    var eaSEM: Double? = nil
    /// The reported boundary: the true one moved along the propagation direction by this (px).
    var boundaryOffsetPx: Double? = nil

    func write(_ sim: HeatingRunSimulator, to out: URL) throws {
        try FileManager.default.createDirectory(at: out.appendingPathComponent("columns"), withIntermediateDirectories: true)
        let t = sim.truth
        func f(_ x: Double?) -> String { x.map { String(format: "%.10g", $0) } ?? "" }
        var frames = "frame_index,file,page,step_index,temperature_C,time_s,shift_x_px,shift_y_px,registration_score,status,tm_intensity,li_intensity,li_tm_ratio,rocksalt_fraction,front_position_nm\n"
        for i in 0..<sim.frameCount {
            let ft = sim.frameTruth(i)
            let status = statusOverride[i] ?? ft.expectedStatus
            let ok = status == "ok"
            let d = shiftDelta(i)
            var front = ft.frontPositionNm.map { $0 + frontDeltaNm }
            if reportFrontWithoutTruth { front = 1.0 }
            frames += "\(i),\"\(ft.file)\",0,\(ft.stepIndex),\(f(ft.temperatureC)),\(f(ft.timeS)),"
            frames += ok ? "\(f(ft.shiftXPx + d.x)),\(f(ft.shiftYPx + d.y)),0.9,\(status),1,\(f(ft.liTmRatio)),\(f(ft.liTmRatio)),\(f(ft.rocksaltFraction)),\(f(front))\n"
                         : ",,,\(status),,,,,\n"
        }
        try frames.write(to: out.appendingPathComponent("frames.csv"), atomically: true, encoding: .utf8)
        var steps = "step_index,temperature_C,t_start_s,t_end_s,n_frames,n_used,li_tm_ratio_mean,li_tm_ratio_sem,rocksalt_fraction,front_position_start_nm,front_position_end_nm,front_velocity_nm_per_s,front_velocity_sem_nm_per_s,front_width_nm,front_motion_detected,front_velocity_upper_nm_per_s\n"
        if extraLeadingStep { steps += "0,25,0,1,2,2,0.02,0.001,0,,,,,\n" }
        // Where the reported shifts put the run's reference on frame 0 (their mean offset).
        let used = (0..<sim.frameCount).filter { (statusOverride[$0] ?? sim.frameTruth($0).expectedStatus) == "ok" }
        let offset = used.map(shiftDelta).reduce(SIMD2<Double>(0, 0), +) / Double(max(1, used.count))
        for s in t.steps {
            let members = used.map { sim.frameTruth($0) }.filter { $0.stepIndex == s.stepIndex }
            let rocksalt = ownViewRocksalt ? s.rocksaltFraction
                : RunValidation.rocksaltInAverage(truth: t, frames: members, offset: offset) ?? s.rocksaltFraction
            let width = s.frontPositionStartNm != nil ? t.frontWidthNm : (reportFrontWithoutTruth ? 3.0 : nil)
            steps += "\(s.stepIndex + (extraLeadingStep ? 1 : 0)),\(f(s.temperatureC)),\(f(s.tStartS)),\(f(s.tEndS)),\(s.nFrames),\(s.nUsed),\(f(s.liTmRatioMean)),0.001,\(f(rocksalt)),"
            let v = s.frontVelocityNmPerS.map { $0 * (1 + velocityDelta) }
            let sem = velocitySEMFraction.flatMap { q in s.frontVelocityNmPerS.map { $0 * q } }
            let upper = v.flatMap { v in sem.map { v + 2 * $0 } }
            steps += "\(f(s.frontPositionStartNm.map { $0 + frontDeltaNm })),\(f(s.frontPositionEndNm.map { $0 + frontDeltaNm })),\(f(v)),\(f(sem)),\(f(width)),"
            steps += "\(v == nil ? "" : "true"),\(f(upper))\n"
        }
        try steps.write(to: out.appendingPathComponent("steps.csv"), atomically: true, encoding: .utf8)
        let onset: Double? = onsetOverride ?? t.onsetTemperatureC
        let ea = t.activationEnergyEV.map { $0 + eaDelta }
        var extra = eaSEM.map { ", \"activation_energy_sem_eV\": \($0)" } ?? ""
        if let d = boundaryOffsetPx {
            let b = t.boundary, n = SIMD2(t.propagationDirection[0], t.propagationDirection[1]) * d
            // On the run's reference frame: frame 0's pixels minus the registration offset.
            let p = [b.x0 + n.x - offset.x, b.y0 + n.y - offset.y, b.x1 + n.x - offset.x, b.y1 + n.y - offset.y]
            extra += ", \"front_boundary_px\": [\(p.map { "\($0)" }.joined(separator: ", "))]"
        }
        let summary = "{\"contract_version\": 1, \"onset_temperature_C\": \(onset.map { String(format: "%g", $0) } ?? "null"), \"activation_energy_eV\": \(ea.map { "\($0)" } ?? "null")\(extra)}\n"
        try summary.write(to: out.appendingPathComponent("summary.json"), atomically: true, encoding: .utf8)
        var rng = SeededRandom(seed: 5)
        for s in t.steps {
            var c = "x,y,sublattice,intensity\n"
            for p in t.tmLattice.tmPositions(width: t.width, height: t.height, margin: 4) {
                let q = p + SIMD2(rng.gaussian(), rng.gaussian()) * columnNoisePx
                c += "\(f(q.x)),\(f(q.y)),tm,1.0\n"
            }
            for p in t.tmLattice.liPositions(width: t.width, height: t.height, margin: 4) { c += "\(f(p.x)),\(f(p.y)),li,0.1\n" }
            try c.write(to: out.appendingPathComponent("columns/step_\(s.stepIndex).csv"), atomically: true, encoding: .utf8)
        }
    }
}

func tempDir(_ name: String) throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-sim-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

@Suite struct RunValidationTests {
    func truthRun(_ preset: SimulationPreset, size: Int = 256) throws -> (HeatingRunSimulator, URL) {
        let sim = HeatingRunSimulator(SimulationOptions(preset: preset, size: size))
        let dir = try tempDir("truth")
        try sim.writeTruthFiles(to: dir)
        return (sim, dir)
    }

    @Test func truthItselfPassesWithZeroError() throws {
        let (sim, truthDir) = try truthRun(.boundaryFront)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        // A constant offset (another registration reference) is not an error.
        try FakePipelineOutput(shiftDelta: { _ in SIMD2(5, -3) }).write(sim, to: out)
        let r = RunValidation.validate(outDir: out, truthDir: truthDir)
        #expect(r.allPassed, "\(r.text())")
        #expect(r.missing.isEmpty)
        for name in ["registration_rms_error", "front_position_rms_error", "front_velocity_rel_error", "front_width_error",
                     "li_tm_ratio_step_error", "rocksalt_fraction_step_error", "activation_energy_error", "onset_temperature_error",
                     "column_position_precision", "wrongly_rejected_frames", "missed_noise_frames"] {
            let m = try #require(r.metric(name), "\(name) missing")
            #expect(abs(m.value ?? 99) < 1e-4, "\(name) = \(String(describing: m.value))")
        }
        #expect(sim.truth.movingStepCount >= 4)
        #expect(r.metric("activation_energy_error")?.passed == true)
    }

    /// The uncertainty checks: SEM coverage of the velocities and of Eₐ, true velocities
    /// above the reported upper bound, and the origin's offset along the propagation direction.
    @Test func uncertaintyCoverageAndOriginAreReported() throws {
        let (sim, truthDir) = try truthRun(.boundaryFront)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        // Velocities 3 % high: within an SEM of 5 %, outside one of 1 %; true values above
        // v + 2 SEM only when that is below them.
        try FakePipelineOutput(shiftDelta: { _ in SIMD2(4, 2) }, eaDelta: 0.02, velocityDelta: 0.03, velocitySEMFraction: 0.05,
                               eaSEM: 0.03, boundaryOffsetPx: 8).write(sim, to: out)
        var r = RunValidation.validate(outDir: out, truthDir: truthDir)
        #expect(r.metric("front_velocity_sem_coverage")?.value == 1)
        #expect(r.metric("front_velocity_sem_coverage")?.detail.hasPrefix("4 of 4 holds within one SEM") == true)
        #expect(r.metric("front_velocity_above_upper_bound")?.value == 0)
        #expect(r.metric("activation_energy_sem_coverage")?.value == 1)
        let origin = try #require(r.metric("front_origin_error")?.value)
        #expect(abs(origin - 8 * sim.truth.pixelSizeNm) < 1e-4, "origin \(origin)")   // truth boundary rounded to 1e-4 px
        try FakePipelineOutput(shiftDelta: { _ in SIMD2(4, 2) }, eaDelta: 0.05, velocityDelta: -0.03, velocitySEMFraction: 0.01,
                               eaSEM: 0.03, boundaryOffsetPx: -40).write(sim, to: out)
        r = RunValidation.validate(outDir: out, truthDir: truthDir)
        #expect(r.metric("front_velocity_sem_coverage")?.value == 0)
        #expect(r.metric("front_velocity_above_upper_bound")?.value == 4)
        #expect(r.metric("activation_energy_sem_coverage")?.value == 0)
        #expect(r.metric("front_origin_error")?.passed == false)   // 1 nm off
    }

    /// A step's rock-salt fraction is the one in its aligned average (contract §4), whose area
    /// is the step's common view inside the run's reference frame. With a lot of drift that is
    /// not the mean over the frames' own views, and reporting that mean is an error.
    @Test func stepRocksaltIsScoredOverTheStepAverageArea() throws {
        let (sim, truthDir) = try truthRun(.registrationStress)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        try FakePipelineOutput().write(sim, to: out)
        let right = try #require(RunValidation.validate(outDir: out, truthDir: truthDir).metric("rocksalt_fraction_step_error")?.value)
        try FakePipelineOutput(ownViewRocksalt: true).write(sim, to: out)
        let ownViews = try #require(RunValidation.validate(outDir: out, truthDir: truthDir).metric("rocksalt_fraction_step_error")?.value)
        let detail: Comment = "rock-salt step error: step-average area \(right), frames' own views \(ownViews)"
        #expect(right < 1e-3, detail)   // the truth file rounds shifts to 1e-4 px, fronts to 1e-4 nm
        #expect(ownViews > 0.01, detail)
    }

    @Test func stepsAreMatchedByTemperatureWhenNumberedDifferently() throws {
        let (sim, truthDir) = try truthRun(.boundaryFront)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        try FakePipelineOutput(extraLeadingStep: true).write(sim, to: out)
        let r = RunValidation.validate(outDir: out, truthDir: truthDir)
        #expect(abs(r.metric("li_tm_ratio_step_error")?.value ?? 1) < 1e-4)
        #expect(abs(r.metric("front_velocity_rel_error")?.value ?? 1) < 1e-4)
        #expect(r.allPassed)
    }

    @Test func perturbedShiftsAndFrontsAreReported() throws {
        let (sim, truthDir) = try truthRun(.boundaryFront)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        // +0.3 px in x on every third frame; +1 nm on every front position.
        try FakePipelineOutput(shiftDelta: { $0 % 3 == 0 ? SIMD2(0.3, 0) : SIMD2(0, 0) }, frontDeltaNm: 1, eaDelta: 0.25).write(sim, to: out)
        let r = RunValidation.validate(outDir: out, truthDir: truthDir)
        let n = Double(sim.frameCount), k = Double((0..<sim.frameCount).filter { $0 % 3 == 0 }.count)
        let frac = k / n
        let expected = 0.3 * (frac * (1 - frac)).squareRoot()
        let reg = try #require(r.metric("registration_rms_error"))
        #expect(abs((reg.value ?? 0) - expected) < 1e-4, "\(r.text())")
        #expect(reg.passed == false)
        let front = try #require(r.metric("front_position_rms_error"))
        #expect(abs((front.value ?? 0) - 1) < 1e-4)
        #expect(front.passed == false)
        #expect(abs((r.metric("activation_energy_error")?.value ?? 0) - 0.25) < 1e-9)
        #expect(r.metric("activation_energy_error")?.passed == false)
        #expect(r.metric("front_velocity_rel_error")?.passed == true)
        #expect(!r.allPassed)
    }

    @Test func noiseFramesAndRejections() throws {
        let (sim, truthDir) = try truthRun(.registrationStress)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        #expect(sim.truth.noiseFrames.count == 3)
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        var overrides: [Int: String] = [:]
        for i in sim.truth.noiseFrames { overrides[i] = "ok" }
        overrides[0] = "rejected:outlier"
        try FakePipelineOutput(statusOverride: overrides).write(sim, to: out)
        let r = RunValidation.validate(outDir: out, truthDir: truthDir)
        #expect(r.metric("missed_noise_frames")?.value == 3)
        #expect(r.metric("wrongly_rejected_frames")?.value == 1)
        #expect(!r.allPassed)
        // The stress preset's registration target is looser.
        #expect(r.metric("registration_rms_error")?.target == "≤ 0.15")
    }

    @Test func runWithoutFrontChecksNoFrontIsReported() throws {
        let (sim, truthDir) = try truthRun(.gradualOnset)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        #expect(sim.truth.frontWidthNm == nil)
        #expect(sim.truth.onsetTemperatureC == 175)
        let good = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: good) }
        try FakePipelineOutput(onsetOverride: .some(175.4)).write(sim, to: good)    // the right hold
        let r = RunValidation.validate(outDir: good, truthDir: truthDir)
        #expect(r.allPassed, "\(r.text())")
        // One step late is wrong: the onset must be the right hold.
        let late = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: late) }
        try FakePipelineOutput(onsetOverride: .some(200)).write(sim, to: late)
        #expect(RunValidation.validate(outDir: late, truthDir: truthDir).metric("onset_temperature_error")?.passed == false)
        #expect(r.metric("front_reported_without_truth")?.value == 0)
        let bad = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: bad) }
        try FakePipelineOutput(reportFrontWithoutTruth: true, onsetOverride: .some(225)).write(sim, to: bad)
        let r2 = RunValidation.validate(outDir: bad, truthDir: truthDir)
        #expect(r2.metric("front_reported_without_truth")?.passed == false)
        #expect(r2.metric("front_steps_reported_without_truth")?.passed == false)
        #expect(r2.metric("onset_temperature_error")?.value == 50)
        #expect(r2.metric("onset_temperature_error")?.passed == false)
    }

    @Test func columnPrecisionOfNoisySites() throws {
        let (sim, truthDir) = try truthRun(.scanDistortion)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let out = try tempDir("out")
        defer { try? FileManager.default.removeItem(at: out) }
        try FakePipelineOutput(columnNoisePx: 0.1).write(sim, to: out)
        let r = RunValidation.validate(outDir: out, truthDir: truthDir)
        let m = try #require(r.metric("column_position_precision"))
        // 2-D RMS of σ = 0.1 px per axis, at 0.05 nm pixels: √2 · 0.1 · 50 pm ≈ 7.1 pm.
        let expected = 2.0.squareRoot() * 0.1 * sim.truth.pixelSizeNm * 1000
        #expect(abs((m.value ?? 0) / expected - 1) < 0.15, "column precision \(m.value ?? -1) pm, expected ≈ \(expected)")
        #expect(m.passed == false)
    }

    @Test func missingOrGarbageOutputsAreReportedNotFatal() throws {
        let (_, truthDir) = try truthRun(.boundaryFront, size: 64)
        defer { try? FileManager.default.removeItem(at: truthDir) }
        let empty = try tempDir("empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        let r = RunValidation.validate(outDir: empty, truthDir: truthDir)
        #expect(!r.allPassed)
        #expect(r.missing.contains("frames.csv") && r.missing.contains("steps.csv") && r.missing.contains("summary.json"))
        let junk = try tempDir("junk")
        defer { try? FileManager.default.removeItem(at: junk) }
        try Data([0xFF, 0x00, 0x2C, 0x0A, 0x22]).write(to: junk.appendingPathComponent("frames.csv"))
        try "step_index\nnot-a-number\n".write(to: junk.appendingPathComponent("steps.csv"), atomically: true, encoding: .utf8)
        try "[1,2".write(to: junk.appendingPathComponent("summary.json"), atomically: true, encoding: .utf8)
        let r2 = RunValidation.validate(outDir: junk, truthDir: truthDir)
        #expect(!r2.allPassed)
        let noTruth = RunValidation.validate(outDir: empty, truthDir: empty)
        #expect(!noTruth.allPassed && !noTruth.missing.isEmpty)
    }
}
