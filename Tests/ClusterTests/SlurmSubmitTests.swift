import Foundation
import Testing
import Simulation

/// The `heatfront` executable built beside the test bundle (`swift test` builds every product).
private let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("heatfront").path

/// `heatfront submit` against a real single-node SLURM started on this machine: OUT must
/// equal a local `heatfront run` file by file (but `slurm/` and summary.json's wall-clock
/// fields), whole runs and runs split by step alike; a resubmission skips finished runs; a
/// run that fails in its task makes `--wait` exit non-zero naming it and its log.
@Suite(.serialized) struct SlurmSubmitTests {
    @Test func submittedRunsEqualLocalRunsAndFailuresAreNamed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-slurm-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        defer { try? FileManager.default.removeItem(at: root) }
        let slurm: LocalSlurm
        do {
            slurm = try LocalSlurm.start(in: root.appendingPathComponent("slurm"))
        } catch let e as LocalSlurm.Unavailable {
            try skip("SLURM test skipped: \(e.reason)")
            return
        }
        defer { slurm.stop() }

        let runs = try Self.simulateRuns(in: root)
        let local = root.appendingPathComponent("local")
        #expect(LocalSlurm.run(heatfront, ["run"] + runs.map(\.path) + ["--out", local.path, "--quiet"], environment: nil).status == 0)

        // Whole runs: one array task each, then the batch outputs.
        let whole = root.appendingPathComponent("whole")
        let first = slurm.run(heatfront, ["submit"] + runs.map(\.path) + ["--out", whole.path, "--cpus", "1", "--wait", "--poll", "0.5"])
        #expect(first.status == 0, "\(first.err)")
        let d1 = try Self.differences(whole, local)
        #expect(d1.isEmpty, "\(d1)")
        // Submitted again: every run finished, nothing is submitted, nothing changes.
        let again = slurm.run(heatfront, ["submit"] + runs.map(\.path) + ["--out", whole.path, "--cpus", "1", "--wait", "--poll", "0.5"])
        #expect(again.status == 0 && again.out.contains("nothing to submit"), "\(again.out)\(again.err)")
        let d2 = try Self.differences(whole, local)
        #expect(d2.isEmpty, "\(d2)")

        // Split by step: registration, tasks of three steps, assembly, through the stage cache.
        let split = root.appendingPathComponent("split")
        let s = slurm.run(heatfront, ["submit"] + runs.map(\.path)
                          + ["--out", split.path, "--cpus", "1", "--steps-per-task", "3", "--wait", "--poll", "0.5"])
        #expect(s.status == 0, "\(s.err)")
        let d3 = try Self.differences(split, local)
        #expect(d3.isEmpty, "\(d3)")

        try failingRunIsNamed(slurm: slurm, good: runs[0], root: root)
    }

    /// A run whose frames are cut short after it was submitted (a transfer still running):
    /// its task fails, `--wait` exits 1 naming the run and its log, and `runs.csv` and the
    /// report list it as `heatfront run` does.
    func failingRunIsNamed(slurm: LocalSlurm, good: URL, root: URL) throws {
        let bad = root.appendingPathComponent("runs/cut")
        try FileManager.default.copyItem(at: good, to: bad)
        let out = root.appendingPathComponent("failing")
        let node = slurm.run("/usr/bin/sinfo", ["--noheader", "--format=%N"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        // Jobs wait on a drained node while the frames are cut.
        #expect(slurm.run("/usr/bin/scontrol", ["update", "NodeName=\(node)", "State=DRAIN", "Reason=test"]).status == 0)
        let child = try LocalSlurm.Child(heatfront, ["submit", good.path, bad.path, "--out", out.path, "--cpus", "1", "--wait", "--poll", "0.5"],
                                         environment: slurm.environment)
        let deadline = Date().addingTimeInterval(60)
        while !child.outputSoFar.contains("submitted:"), child.process.isRunning, Date() < deadline { usleep(100_000) }
        for frame in try Self.files(in: bad) where frame.hasSuffix(".tif") {
            try Data(count: 400).write(to: bad.appendingPathComponent(frame))
        }
        #expect(slurm.run("/usr/bin/scontrol", ["update", "NodeName=\(node)", "State=RESUME"]).status == 0)
        let result = child.wait()
        #expect(result.status == 1)
        let failure = result.err.split(separator: "\n").first { $0.contains("- cut (\(bad.path))") }.map(String.init) ?? ""
        #expect(failure.contains("no readable frame"), "\(result.err)")
        let log = failure.components(separatedBy: "; log: ").last ?? ""
        #expect(log.contains("/slurm/logs/runs_") && FileManager.default.fileExists(atPath: log), "\(failure)")

        let local = root.appendingPathComponent("failing-local")
        #expect(LocalSlurm.run(heatfront, ["run", good.path, bad.path, "--out", local.path, "--quiet"], environment: nil).status == 1)
        let d4 = try Self.differences(out, local)
        #expect(d4.isEmpty, "\(d4)")
    }

    /// Three small runs: two presets, two sizes, TIFF and PNG.
    static func simulateRuns(in root: URL) throws -> [URL] {
        let specs: [(String, SimulationPreset, Int, SimulatedFormat?)] = [
            ("front", .boundaryFront, 128, nil), ("onset", .gradualOnset, 128, nil), ("wide", .boundaryFront, 256, .png),
        ]
        return try specs.enumerated().map { i, spec in
            var o = SimulationOptions(preset: spec.1, seed: UInt64(11 + i), size: spec.2)
            o.framesPerStep = 2
            if let f = spec.3 { o.format = f }
            let dir = root.appendingPathComponent("runs/\(spec.0)")
            try HeatingRunSimulator(o).write(to: dir)
            return dir
        }
    }

    /// Paths that differ between two output folders, `slurm/` left out; summary.json is
    /// compared without its wall-clock fields, the output-folder marker (which names the
    /// process that wrote it) by presence only.
    static func differences(_ a: URL, _ b: URL) throws -> [String] {
        let left = Set(try files(in: a).filter { !$0.hasPrefix("slurm/") })
        let right = Set(try files(in: b))
        var diff = left.symmetricDifference(right).sorted().map { "only in one: \($0)" }
        for path in left.intersection(right).sorted() {
            let x = try Data(contentsOf: a.appendingPathComponent(path)), y = try Data(contentsOf: b.appendingPathComponent(path))
            if path.hasSuffix(".heatfront-output") { continue }
            if path.hasSuffix("summary.json") {
                let keys = summaryDifferences(x, y)
                if !keys.isEmpty { diff.append("\(path) (\(keys.joined(separator: ", ")))") }
            } else if x != y { diff.append(path) }
        }
        return diff
    }

    /// The top-level keys of two summary.json files that differ, wall-clock fields left out.
    static func summaryDifferences(_ x: Data, _ y: Data) -> [String] {
        guard let cx = try? JSONSerialization.jsonObject(with: x) as? [String: Any],
              let cy = try? JSONSerialization.jsonObject(with: y) as? [String: Any] else { return ["unreadable"] }
        let wallClock: Set = ["timings_s", "peak_memory_mb", "started_at"]
        return Set(cx.keys).union(cy.keys).subtracting(wallClock).sorted().filter { key in
            guard let a = cx[key], let b = cy[key] else { return true }
            return !(([key: a] as NSDictionary).isEqual(to: [key: b]))
        }.map { key in "\(key): \(cx[key].map { "\($0)" }?.prefix(300) ?? "absent") vs \(cy[key].map { "\($0)" }?.prefix(300) ?? "absent")" }
    }

    /// Every regular file below `dir`, hidden ones too, as relative paths.
    static func files(in dir: URL) throws -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        return walk.compactMap { $0 as? String }.filter { path in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path, isDirectory: &isDir) && !isDir.boolValue
        }
    }
}

/// Ends the current test as skipped, saying why (where the toolchain can), else returns
/// after printing the reason.
func skip(_ reason: String) throws {
    #if compiler(>=6.3)
    try Test.cancel(Comment(rawValue: reason))
    #else
    FileHandle.standardError.write(Data((reason + "\n").utf8))
    #endif
}
