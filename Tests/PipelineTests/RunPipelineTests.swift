import Foundation
import Testing
import FrameCore
import FrameIO
import Pipeline
import Simulation

/// `heatfront run` end to end on small simulated runs: every contract output, its columns,
/// truth-checked numbers, byte-identical reruns and resumption, and bad input.
@Suite(.serialized) struct RunPipelineTests {
    static func scratch(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-pipeline-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        return url
    }

    /// A 256 px boundary-front run (the bundled sample's size) with 5 frames per hold, written once for the suite.
    static let sample: URL = {
        let dir = scratch("sample")
        var o = SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)
        o.framesPerStep = 5
        try! HeatingRunSimulator(o).write(to: dir)
        return dir
    }()

    /// The preset with its own 10 frames per step, for the targets: with 5, one step's
    /// velocity rests on too few frames for the 10 % target (measured 13.8 %).
    static let fullSample: URL = {
        let dir = scratch("full-sample")
        try! HeatingRunSimulator(SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)).write(to: dir)
        return dir
    }()

    static func run(_ runDir: URL, out: URL, force: Bool = false) throws -> RunSummary {
        var options = RunOptions()
        options.force = force
        return try RunPipeline.run(runDir: runDir, outDir: out, options: options,
                                   progress: ProgressReporter(style: .quiet), cancel: Cancellation())
    }

    static func header(_ url: URL) throws -> String {
        String(try String(contentsOf: url, encoding: .utf8).split(separator: "\n").first ?? "")
    }

    @Test func writesEveryContractOutputWithItsColumns() throws {
        let out = Self.scratch("outputs")
        let summary = try Self.run(Self.sample, out: out)
        #expect(summary.nFrames == 20)
        let frames = try Self.header(out.appendingPathComponent("frames.csv"))
        #expect(frames.hasPrefix("frame_index,file,page,step_index,temperature_C,time_s,shift_x_px,shift_y_px,registration_score,status,tm_intensity,li_intensity,li_tm_ratio,rocksalt_fraction,front_position_nm"))
        let steps = try Self.header(out.appendingPathComponent("steps.csv"))
        #expect(steps.hasPrefix("step_index,temperature_C,t_start_s,t_end_s,n_frames,n_used,li_tm_ratio_mean,li_tm_ratio_sem,rocksalt_fraction,front_position_start_nm,front_position_end_nm,front_velocity_nm_per_s,front_velocity_sem_nm_per_s,front_width_nm"))
        for k in 0..<4 {
            for path in ["aligned/step_\(k)_average.tif", "maps/step_\(k)_phase.png", "profiles/step_\(k).csv", "columns/step_\(k).csv"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(path).path), "\(path) missing")
            }
        }
        #expect(try Self.header(out.appendingPathComponent("profiles/step_0.csv")).hasPrefix("distance_nm,intensity,site"))
        #expect(try Self.header(out.appendingPathComponent("columns/step_0.csv")) == "x_px,y_px,x_nm,y_nm,sublattice,intensity")
        // The aligned average is a calibrated float32 TIFF of the frames' size.
        let avg = try FrameFiles.open(out.appendingPathComponent("aligned/step_0_average.tif"))
        #expect(avg.signals[0].sampleType == .float32 && avg.signals[0].width == 256)
        #expect(abs((avg.signals[0].pixelSizeXNm ?? 0) - 12.8 / 256) < 1e-6)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
        for key in ["contract_version", "heatfront_version", "run_dir", "n_frames", "n_used", "pixel_size_nm",
                    "onset_temperature_C", "activation_energy_eV", "activation_energy_sem_eV", "warnings", "ignored",
                    "inputs", "timings_s", "peak_memory_mb", "started_at", "config"] {
            #expect(json[key] != nil, "summary.json lacks \(key)")
        }
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        // One self-contained page: every figure embedded, nothing fetched.
        #expect(html.contains("data:image/svg+xml;base64,") && !html.contains("src=\"http") && !html.contains("<link"))
        // No NaN text, ever.
        for table in ["frames.csv", "steps.csv"] {
            #expect(!(try String(contentsOf: out.appendingPathComponent(table), encoding: .utf8)).lowercased().contains("nan"))
        }
    }

    /// Measured against the simulator's truth: every registration, intensity and kinetics
    /// target `heatfront validate` scores, on this small run.
    @Test func meetsRegistrationIntensityAndKineticsTargets() throws {
        let out = Self.scratch("validate")
        _ = try Self.run(Self.fullSample, out: out)
        let report = RunValidation.validate(outDir: out, truthDir: Self.fullSample)
        for name in ["registration_rms_error", "wrongly_rejected_frames", "li_tm_ratio_step_error",
                     "front_position_rms_error", "front_width_error", "rocksalt_fraction_step_error",
                     "front_velocity_rel_error", "onset_temperature_error", "activation_energy_error"] {
            let m = try #require(report.metric(name), "\(name) not reported")
            #expect(m.passed == true, "\(name) = \(m.value ?? .nan) misses \(m.target)")
        }
        // The holds' velocity SEMs carry one per-frame position noise, pooled over the run:
        // SEM·√Σ(t − t̄)² is the same in every hold, with the pooled degrees of freedom.
        let frames = try #require(CSVTable.load(out.appendingPathComponent("frames.csv")))
        let steps = try #require(CSVTable.load(out.appendingPathComponent("steps.csv")))
        var noise = [Double](), dofs = Set<Int?>()
        for step in steps.rows {
            guard let sem = steps.double(step, "front_velocity_sem_nm_per_s") else { continue }
            let t = frames.rows.filter {
                frames.string($0, "step_index") == steps.string(step, "step_index") && frames.double($0, "front_position_nm") != nil
            }.compactMap { frames.double($0, "time_s") }
            let mean = t.reduce(0, +) / Double(t.count)
            noise.append(sem * t.map { ($0 - mean) * ($0 - mean) }.reduce(0, +).squareRoot())
            dofs.insert(steps.int(step, "front_velocity_dof"))
        }
        #expect(noise.count >= 3 && dofs.count == 1, "\(noise.count) holds with a velocity, degrees of freedom \(dofs)")
        #expect(noise.allSatisfy { abs($0 / noise[0] - 1) < 1e-3 }, "per-frame noise by hold: \(noise)")
    }

    /// At 192 px (0.067 nm/px) the columns along the layers sit 3.6 px apart, at 0.27
    /// cycles/px: beyond the registration's default band (0.25), so only the layers and
    /// the surface fixed the shift and frames slid along the layers (0.88 px RMS on the
    /// bundled gradual-onset sample). The band now reaches past the column reflections.
    @Test func coarselySampledFramesRegisterAlongTheLayers() throws {
        let m = try Self.rigidRegistration(.gradualOnset, size: 192, framesPerStep: 2)
        #expect(m.passed == true, "registration \(m.value ?? .nan) px RMS")
    }

    /// Scan-distortion at 256 px: the first frames drift 8 px apart (columns 4.9 px apart),
    /// while the low-passed image, with a front moving against the drift, stays near zero
    /// shift. The chain once searched aliases only near that coarse estimate: 9.06 px RMS.
    @Test func fastDriftWithAStillLowPassedImageRegisters() throws {
        let m = try Self.rigidRegistration(.scanDistortion, size: 256, framesPerStep: 4)
        #expect(m.passed == true, "registration \(m.value ?? .nan) px RMS")
    }

    /// `heatfront register` (rigid) on a simulated run, scored by `validate`.
    static func rigidRegistration(_ preset: SimulationPreset, size: Int, framesPerStep: Int) throws -> Metric {
        let dir = scratch("\(preset.cliName)-\(size)"), out = scratch("\(preset.cliName)-\(size)-out")
        var o = SimulationOptions(preset: preset, size: size)
        o.framesPerStep = framesPerStep
        try HeatingRunSimulator(o).write(to: dir)
        var options = RunOptions()
        options.registrationOnly = true
        options.mode = .rigid
        _ = try RunPipeline.run(runDir: dir, outDir: out, options: options,
                                progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        return try #require(RunValidation.validate(outDir: out, truthDir: dir).metric("registration_rms_error"))
    }

    /// Reruns, resumed runs and forced runs write the same bytes (run contract §2), apart from
    /// the wall-clock fields of summary.json.
    @Test func resumedAndForcedRunsAreByteIdentical() throws {
        let a = Self.scratch("resume-a"), b = Self.scratch("resume-b")
        _ = try Self.run(Self.sample, out: a)
        // An interrupted run: the registration and the first step are cached, nothing else written.
        try FileManager.default.copyItem(at: a, to: b)
        let fm = FileManager.default
        for item in try fm.contentsOfDirectory(atPath: b.path) where item != ".heatfront-cache" {
            try fm.removeItem(at: b.appendingPathComponent(item))
        }
        let cacheRoot = b.appendingPathComponent(".heatfront-cache")
        let key = try #require(try fm.contentsOfDirectory(atPath: cacheRoot.path).first)
        for k in 1..<4 { try? fm.removeItem(at: cacheRoot.appendingPathComponent("\(key)/step_\(k)_frames.json")) }
        _ = try Self.run(Self.sample, out: b)
        try Self.expectSameOutputs(a, b)
        let c = Self.scratch("resume-c")
        _ = try Self.run(Self.sample, out: c, force: true)
        try Self.expectSameOutputs(a, c)
    }

    static func expectSameOutputs(_ a: URL, _ b: URL) throws {
        let files = FileManager.default.enumerator(atPath: a.path)!.compactMap { $0 as? String }
            .filter { !$0.hasPrefix(".heatfront-") && !$0.hasSuffix("/") }
        #expect(files.count > 20)
        for f in files {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: a.appendingPathComponent(f).path, isDirectory: &isDir)
            if isDir.boolValue { continue }
            var x = try Data(contentsOf: a.appendingPathComponent(f)), y = try Data(contentsOf: b.appendingPathComponent(f))
            if f == "summary.json" { x = wallClockFree(x); y = wallClockFree(y) }
            #expect(x == y, "\(f) differs")
        }
    }

    /// summary.json without `timings_s`, `peak_memory_mb`, `started_at`.
    static func wallClockFree(_ data: Data) -> Data {
        var json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        for key in ["timings_s", "peak_memory_mb", "started_at"] { json[key] = nil }
        return try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    }

    @Test func emptyFolderAndBrokenConfigStopWithOneClearError() throws {
        let empty = Self.scratch("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(throws: PipelineError.self) { _ = try Self.run(empty, out: Self.scratch("empty-out")) }
        do { _ = try Self.run(empty, out: Self.scratch("empty-out")) } catch let e as PipelineError {
            #expect(e.exitCode == 1 && e.description.contains(empty.lastPathComponent))
        }
        let broken = Self.scratch("broken")
        try FileManager.default.copyItem(at: Self.sample, to: broken)
        try "registration:\n  mode: fast\n".write(to: broken.appendingPathComponent("heatfront.yaml"), atomically: true, encoding: .utf8)
        do {
            _ = try Self.run(broken, out: Self.scratch("broken-out"))
            Issue.record("an invalid config was accepted")
        } catch let e as PipelineError {
            #expect(e.exitCode == 2 && e.description.contains("registration.mode") && e.description.contains("heatfront.yaml"))
        }
    }

    @Test func severalRunsGetSubFoldersAndASummaryRow() throws {
        let empty = Self.scratch("batch-empty"), out = Self.scratch("batch-out")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let outcome = try BatchRun.run([Self.sample, empty], outDir: out, options: RunOptions(),
                                       progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        #expect(outcome.exitCode == 1 && outcome.errors.count == 1 && outcome.finished.count == 1)
        let rows = try String(contentsOf: out.appendingPathComponent("runs.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 3)
        #expect(rows[1].contains(",ok,20,") && rows[2].contains(",failed,"))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("\(Self.sample.lastPathComponent)/summary.json").path))
        // The combined report: one row per run, the finished one linked to its own report.
        let report = try Data(contentsOf: out.appendingPathComponent("report.html"))
        let html = String(decoding: report, as: UTF8.self)
        #expect(html.contains("<a href=\"\(Self.sample.lastPathComponent)/report.html\">") && html.contains("<tr class=\"failed\">"))
        #expect(html.contains(outcome.errors[0]) && !html.contains("peak") && !html.contains("started"))
        // Both batch outputs come from the runs' files on disk: written again, the same bytes.
        let csv = try Data(contentsOf: out.appendingPathComponent("runs.csv"))
        try BatchOutputs.write([BatchOutputs.Entry(runDir: Self.sample.path, name: Self.sample.lastPathComponent, error: nil),
                                BatchOutputs.Entry(runDir: empty.path, name: empty.lastPathComponent, error: outcome.errors[0])],
                               outDir: out)
        #expect(try Data(contentsOf: out.appendingPathComponent("runs.csv")) == csv)
        #expect(try Data(contentsOf: out.appendingPathComponent("report.html")) == report)
        let onlyEmpty = try BatchRun.run([empty], outDir: Self.scratch("batch-none"), options: RunOptions(),
                                         progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        #expect(onlyEmpty.exitCode == 1)
    }

    /// A run done in parts through the stage cache (registration, the steps in two groups,
    /// then the rest), as a cluster job splits a very large run, writes the same bytes as the
    /// run done at once. The parts write no outputs, only cache entries.
    @Test func aRunDoneInPartsEqualsTheWholeRun() throws {
        let whole = Self.scratch("parts-whole"), parts = Self.scratch("parts")
        _ = try Self.run(Self.sample, out: whole)
        for part in [RunPart.registration, .steps([0, 1]), .steps([2, 3])] {
            var options = RunOptions()
            options.part = part
            _ = try RunPipeline.run(runDir: Self.sample, outDir: parts, options: options,
                                    progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        }
        let written = FileManager.default.enumerator(atPath: parts.path)!.compactMap { $0 as? String }
        #expect(written.filter { $0.hasSuffix("_frames.json") }.count == 4 && written.contains { $0.hasSuffix("registration.json") })
        #expect(!written.contains { $0 == "summary.json" || $0 == "frames.csv" || $0.hasPrefix("aligned/") })
        _ = try Self.run(Self.sample, out: parts)
        for path in ["frames.csv", "steps.csv", "report.html", "plots/drift_vs_time.svg", "plots/arrhenius.svg", "plots/arrhenius.png", "aligned/step_2_average.tif",
                     "maps/step_3_phase.png", "columns/step_1.csv", "profiles/step_0.csv"] {
            #expect(try Data(contentsOf: parts.appendingPathComponent(path)) == Data(contentsOf: whole.appendingPathComponent(path)), "\(path)")
        }
    }

    @Test func unreadableAndMismatchedFramesAreMarkedAndTheRunGoesOn() throws {
        let dir = Self.scratch("damaged")
        try FileManager.default.copyItem(at: Self.sample, to: dir)
        let files = FileManager.default.enumerator(atPath: dir.path)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".tif") }.sorted()
        // Truncate one frame file; replace another with a frame of another size.
        let victim = dir.appendingPathComponent(files[3])
        let bytes = try Data(contentsOf: victim)
        try bytes.prefix(bytes.count / 3).write(to: victim)
        try TIFFWriter.write([Frame(image: Image(width: 64, height: 64, fill: 5))], as: .uint16,
                             to: dir.appendingPathComponent(files[7]))
        let out = Self.scratch("damaged-out")
        let summary = try Self.run(dir, out: out)
        #expect(summary.nUsed <= 18)
        let csv = try String(contentsOf: out.appendingPathComponent("frames.csv"), encoding: .utf8)
        #expect(csv.contains("\(files[3]),0,") && csv.contains("unreadable:"))
        #expect(csv.contains("rejected:size"))
    }
}
