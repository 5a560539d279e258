import Foundation
import Testing
import Simulation

private let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("heatfront")

/// Two processes analysing the same run write the same bytes, whatever the number of
/// threads. Swift seeds its hash tables per process, so a sum taken in a dictionary's order
/// shows here and not within one test process.
@Suite("Reproducible outputs")
struct ReproducibilityTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path)))
    func twoProcessesWriteTheSameBytes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-repro-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        // A run whose drift wanders within frames, so the drift-path refinement runs too.
        var o = SimulationOptions(preset: .gradualOnset, seed: 12, size: 128)
        o.framesPerStep = 2
        let run = root.appendingPathComponent("run")
        try HeatingRunSimulator(o).write(to: run)
        var outputs: [[String: Data]] = []
        for jobs in ["1", "2", "2"] {
            let out = root.appendingPathComponent("out-\(outputs.count)")
            let p = Process()
            p.executableURL = heatfront
            p.arguments = ["run", run.path, "--out", out.path, "--jobs", jobs, "--quiet"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            outputs.append(try Self.files(out))
        }
        #expect(!outputs[0].isEmpty)
        for k in 1..<outputs.count {
            let differing = Set(outputs[0].keys).union(outputs[k].keys).filter { outputs[0][$0] != outputs[k][$0] }.sorted()
            #expect(differing.isEmpty, "\(differing)")
        }
    }

    /// Every output file's bytes by relative path, the stage cache included; summary.json
    /// (wall-clock fields) and the folder's marker (it names the process) left out.
    static func files(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let base = dir.standardizedFileURL.path + "/"
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return out }
        for case let url as URL in e where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            let path = String(url.standardizedFileURL.path.dropFirst(base.count))
            if path == "summary.json" || path == ".heatfront-output" { continue }
            out[path] = try Data(contentsOf: url)
        }
        return out
    }
}
