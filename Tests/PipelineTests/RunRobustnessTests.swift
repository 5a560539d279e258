import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings
import Pipeline
import Simulation

/// The `heatfront` executable built beside the test bundle.
let heatfrontBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("heatfront")
let hasBinary = FileManager.default.isExecutableFile(atPath: heatfrontBinary.path)

/// What one run of the executable did.
struct Execution {
    var status: Int32
    var signalled: Bool
    var stdout: String
    var stderr: String
}

/// Runs `heatfront` with `arguments` to the end.
func execute(_ arguments: [String]) throws -> Execution {
    let p = Process()
    p.executableURL = heatfrontBinary
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Execution(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
                     stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// Outputs that must be one run's, bad inputs that must end in one clear line, and the exit
/// codes that tell them apart.
@Suite(.serialized) struct RunRobustnessTests {
    static func scratch(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-robust-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        return url
    }

    /// A 128 px boundary-front run with 3 frames per hold (12 frames, 4 holds).
    static let small: URL = {
        let dir = scratch("small")
        var o = SimulationOptions(preset: .boundaryFront, seed: 5, size: 128)
        o.framesPerStep = 3
        try! HeatingRunSimulator(o).write(to: dir)
        return dir
    }()

    static func copy(_ run: URL, _ name: String) throws -> URL {
        let dir = scratch(name)
        try FileManager.default.copyItem(at: run, to: dir)
        return dir
    }

    static func run(_ runDir: URL, out: URL, cancel: Cancellation = Cancellation()) throws -> RunSummary {
        try RunPipeline.run(runDir: runDir, outDir: out, options: RunOptions(), progress: ProgressReporter(style: .quiet), cancel: cancel)
    }

    static func files(_ dir: URL) -> [String] {
        (FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []).sorted()
    }

    // MARK: No hold at all

    @Test("no temperature hold (min_hold_s longer than the run, a log that only ramps, duplicated times) is no crash",
          .enabled(if: hasBinary))
    func noHoldIsNoCrash() throws {
        let logs: [(String, String)] = [
            ("long-hold", ""),
            ("ramp-only", "time_s,temperature_C\n" + (0...400).map { "\($0),\(25 + Double($0))" }.joined(separator: "\n") + "\n"),
            ("duplicated", "time_s,temperature_C\n" + (0...400).map { "\($0 / 100 * 100),\(475 + Double($0 / 100) * 25)" }.joined(separator: "\n") + "\n"),
        ]
        for (name, log) in logs {
            let dir = try Self.copy(Self.small, "nohold-\(name)")
            if log.isEmpty {
                try "heating_log: heating_log.csv\nmin_hold_s: 100000\n".write(to: dir.appendingPathComponent("heatfront.yaml"), atomically: true, encoding: .utf8)
            } else {
                try log.write(to: dir.appendingPathComponent("heating_log.csv"), atomically: true, encoding: .utf8)
            }
            let out = Self.scratch("nohold-\(name)-out")
            let r = try execute(["run", dir.path, "--out", out.path, "--quiet"])
            #expect(!r.signalled && r.status == 0, "\(name): \(r.stderr)")
            let summary = try String(contentsOf: out.appendingPathComponent("summary.json"), encoding: .utf8)
            #expect(summary.contains("has no hold of"), "\(name)")
            let steps = try String(contentsOf: out.appendingPathComponent("steps.csv"), encoding: .utf8)
            #expect(steps.split(separator: "\n").count == 1, "\(name)")
        }
    }

    // MARK: Outputs that are one run's

    @Test("a rerun with fewer steps removes the old step files and temporaries; summary.json never stands beside another run's tables")
    func outputsAreOneRuns() throws {
        let out = Self.scratch("onerun")
        _ = try Self.run(Self.small, out: out)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("aligned/step_3_average.tif").path))
        // What killed runs of earlier builds left: temporaries, one nested in another's name.
        for name in ["maps/.step_3_phase.png.tmp-20731", "maps/..step_3_phase.png.tmp-20731.tmp-20731", "plots/.drift.svg.tmp-77",
                     ".summary.json.heatfront-tmp-5-1", ".heatfront-cache/.x.json.tmp-12"] {
            _ = FileManager.default.createFile(atPath: out.appendingPathComponent(name).path, contents: Data("partial".utf8))
        }
        _ = FileManager.default.createFile(atPath: out.appendingPathComponent("plots/notes.txt").path, contents: Data())
        // A different run into the same folder, interrupted at once: the old summary goes first.
        let three = try Self.copy(Self.small, "onerun-three")
        try "steps:\n  - {glob: '475C/*', temperature_C: 475}\n  - {glob: '500C/*', temperature_C: 500}\n  - {glob: '5[25]*/*', temperature_C: 525}\n"
            .write(to: three.appendingPathComponent("heatfront.yaml"), atomically: true, encoding: .utf8)
        let stop = Cancellation()
        stop.cancel()
        #expect(throws: CancellationError.self) { _ = try Self.run(three, out: out, cancel: stop) }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("summary.json").path))
        #expect(!Self.files(out).contains { AtomicFile.isTemporary(URL(fileURLWithPath: $0).lastPathComponent) })
        // Finished, it has three steps and nothing of the four-step run.
        let s = try Self.run(three, out: out)
        #expect(s.nSteps == 3)
        let names = Self.files(out)
        #expect(!names.contains { $0.contains("step_3") })
        #expect(names.contains("plots/notes.txt"))   // not HeatFront's: kept
        #expect(names.contains("summary.json") && names.contains("aligned/step_2_average.tif"))
    }

    @Test("a second run into an output folder another run holds stops with exit code 75")
    func lockedOutput() throws {
        let out = Self.scratch("locked")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let fd = open(out.appendingPathComponent(".heatfront-output").path, O_RDWR | O_CREAT, 0o644)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        do {
            _ = try Self.run(Self.small, out: out)
            Issue.record("a run wrote into a locked output folder")
        } catch let e as PipelineError {
            #expect(e.exitCode == 75 && e.description.contains("another heatfront run") && e.description.contains(out.path))
        }
        flock(fd, LOCK_UN)
        #expect(try Self.run(Self.small, out: out).nUsed > 0)
    }

    @Test("--out equal to the run folder is refused; an output folder inside a run is never read as frames")
    func outputsAreNeverInputs() throws {
        let dir = try Self.copy(Self.small, "inside")
        do {
            _ = try Self.run(dir, out: dir)
            Issue.record("--out equal to the run folder was accepted")
        } catch let e as PipelineError {
            #expect(e.exitCode == 64 && e.description.contains("is the run folder"))
        }
        _ = try Self.run(dir, out: dir.appendingPathComponent("analysis"))
        let t = try RunFolder.scan(dir, config: try RunFolder.loadConfig(runDir: dir, configURL: nil))
        #expect(t.records.count == 12)
        #expect(t.skipped.contains { $0.path == "analysis" && $0.reason.contains("HeatFront output folder") })
    }

    // MARK: Batches and exit codes

    @Test("a batch with a missing folder runs the others and fails with every failure named")
    func batchWithMissingFolder() throws {
        let missing = Self.scratch("no-such-run")
        let out = Self.scratch("batch-missing")
        #expect(BatchRun.missing([Self.small, missing]).count == 1)
        let outcome = try BatchRun.run([missing, Self.small], outDir: out, options: RunOptions(),
                                       progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        #expect(outcome.exitCode == 1)
        #expect(outcome.errors.count == 1 && outcome.errors[0].contains(missing.path))
        #expect(outcome.finished.count == 1)
    }

    @Test("every frame rejected: outputs written, cells of rejected frames empty, exit code 1")
    func nothingAnalysed() throws {
        let dir = Self.scratch("all-noise")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<5 {
            let img = Image(width: 64, height: 64, pixels: (0..<4096).map { _ in Float(UInt8.random(in: 0...3, using: &rng)) })
            try TIFFWriter.write([Frame(image: img)], as: .uint16, to: dir.appendingPathComponent("f_\(i).tif"))
        }
        let out = Self.scratch("all-noise-out")
        let outcome = try BatchRun.run([dir], outDir: out, options: RunOptions(), progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        #expect(outcome.exitCode == 1 && outcome.errors.first?.contains("nothing analysed") == true)
        let rows = try String(contentsOf: out.appendingPathComponent("frames.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.count == 5)
        for row in rows {
            let cells = row.split(separator: ",", omittingEmptySubsequences: false)
            #expect(cells[9].hasPrefix("rejected:") && cells[6].isEmpty && cells[7].isEmpty, "\(row)")
        }
    }

    @Test("a single stack file is a run", .enabled(if: hasBinary))
    func stackFileRun() throws {
        let dir = Self.scratch("stack")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let t = try RunFolder.scan(Self.small, config: RunConfig())
        let frames = try t.records.map { r in try FrameFiles.open(r.url).frame(signal: 0, frame: 0) }
        try TIFFWriter.write(frames, as: .uint16, to: dir.appendingPathComponent("run.tif"))
        for name in ["heating_log.csv", "heatfront.yaml"] {
            try FileManager.default.copyItem(at: Self.small.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        let out = Self.scratch("stack-out")
        let r = try execute(["run", dir.appendingPathComponent("run.tif").path, "--out", out.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("report: \(out.path)/report.html · ") && r.stdout.contains("frames used"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
        #expect(json["n_frames"] as? Int == 12 && json["n_steps"] as? Int == 4)
    }

    // MARK: Messages and signals

    @Test("a full or read-only output file system: exit code 74 and one line naming the path and the cause",
          .enabled(if: hasBinary && geteuid() == 0))
    func fullAndReadOnlyDisk() throws {
        let mount = Self.scratch("tmpfs")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        guard Self.sh("mount -t tmpfs -o size=256k tmpfs '\(mount.path)'") == 0 else { return }   // not allowed here
        defer { _ = Self.sh("umount '\(mount.path)'") }
        let full = try execute(["run", Self.small.path, "--out", mount.appendingPathComponent("out").path, "--quiet"])
        #expect(full.status == 74)
        #expect(full.stderr.contains("heatfront: cannot write \(mount.path)/out") && full.stderr.contains("no space left on the device"))
        #expect(full.stderr.split(separator: "\n").count == 1, "\(full.stderr)")
        guard Self.sh("mount -o remount,ro '\(mount.path)'") == 0 else { return }
        let ro = try execute(["run", Self.small.path, "--out", mount.appendingPathComponent("out2").path, "--quiet"])
        #expect(ro.status == 74 && ro.stderr.contains("read-only file system"), "\(ro.stderr)")
    }

    static func sh(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " 2>/dev/null"]
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test("output piped to a reader that stops early ends quietly with exit code 0", .enabled(if: hasBinary))
    func brokenPipe() throws {
        let p = Process()
        p.executableURL = heatfrontBinary
        p.arguments = ["inspect", Self.small.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        try out.fileHandleForReading.close()       // the reader is gone before the first write
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        #expect(e.isEmpty, "\(String(decoding: e, as: UTF8.self))")
    }

    @Test("a second signal, or a run that does not stop within the grace period, ends the process")
    func hardStop() throws {
        let stopped = DispatchSemaphore(value: 0)
        let c = Cancellation()
        c.interrupt(graceSeconds: 600, hardStop: { stopped.signal() })
        #expect(c.isCancelled)
        #expect(stopped.wait(timeout: .now() + 0.3) == .timedOut)
        c.interrupt(graceSeconds: 600, hardStop: { stopped.signal() })
        #expect(stopped.wait(timeout: .now() + 10) == .success)
        let expired = DispatchSemaphore(value: 0)
        Cancellation().interrupt(graceSeconds: 0.1, hardStop: { expired.signal() })
        #expect(expired.wait(timeout: .now() + 10) == .success)
    }

    @Test("SIGTERM stops a run with exit code 130 and leaves no temporary file", .enabled(if: hasBinary))
    func terminate() throws {
        let out = Self.scratch("sigterm")
        let p = Process()
        p.executableURL = heatfrontBinary
        p.arguments = ["run", Self.small.path, "--out", out.path, "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 1)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && [0, 130].contains(p.terminationStatus))
        #expect(!Self.files(out).contains { AtomicFile.isTemporary(URL(fileURLWithPath: $0).lastPathComponent) })
    }

    @Test("runs killed at random points resume to the uninterrupted run's bytes, with no temporary file left",
          .enabled(if: hasBinary))
    func killAndResume() throws {
        let reference = Self.scratch("kill-ref"), out = Self.scratch("kill-out")
        #expect(try execute(["run", Self.small.path, "--out", reference.path, "--quiet"]).status == 0)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<4 {
            let p = Process()
            p.executableURL = heatfrontBinary
            p.arguments = ["run", Self.small.path, "--out", out.path, "--quiet"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...2.5, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let resumed = try execute(["run", Self.small.path, "--out", out.path, "--quiet"])
        #expect(resumed.status == 0)
        #expect(resumed.stdout.hasPrefix("report: \(out.path)/report.html · "))
        try RunPipelineTests.expectSameOutputs(reference, out)
        #expect(!Self.files(out).contains { AtomicFile.isTemporary(URL(fileURLWithPath: $0).lastPathComponent) })
    }
}
