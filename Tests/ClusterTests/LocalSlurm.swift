import Foundation

/// A single-node SLURM on this machine for one test: started with `scripts/local-slurm.sh`
/// (munge, a generated slurm.conf, slurmctld and slurmd, state in a temporary folder) and
/// stopped by the pids of exactly the daemons it started.
final class LocalSlurm {
    /// Why SLURM cannot run here: the test skips with it.
    struct Unavailable: Error { var reason: String }

    let dir: URL
    let environment: [String: String]
    private let pids: [pid_t]

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private init(dir: URL, environment: [String: String], pids: [pid_t]) {
        self.dir = dir
        self.environment = environment
        self.pids = pids
    }

    static func start(in dir: URL) throws -> LocalSlurm {
        guard getuid() == 0 else { throw Unavailable(reason: "SLURM's daemons run as root here and this test does not") }
        for tool in ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            throw Unavailable(reason: "\(tool) missing: install slurm-wlm and munge with scripts/install-slurm.sh (scripts/test.sh does)")
        }
        let started = run("/bin/bash", [packageRoot.appendingPathComponent("scripts/local-slurm.sh").path, "start", dir.path], environment: nil)
        // The daemons that did start are stopped even when the cluster did not come up.
        let pids = ["munged", "slurmctld", "slurmd"].compactMap { name in
            (try? String(contentsOf: dir.appendingPathComponent("\(name).pid"), encoding: .utf8))
                .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var environment = ProcessInfo.processInfo.environment
        environment["SLURM_CONF"] = dir.appendingPathComponent("slurm.conf").path
        let slurm = LocalSlurm(dir: dir, environment: environment, pids: pids)
        guard started.status == 0 else {
            slurm.stop()
            throw Unavailable(reason: "scripts/local-slurm.sh could not start SLURM: \(started.err.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return slurm
    }

    /// SIGTERM to each daemon this test started, SIGKILL to any still there after 10 s.
    func stop() {
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while pids.contains(where: { kill($0, 0) == 0 }), Date() < deadline { usleep(100_000) }
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    /// A command with SLURM_CONF set: exit status, standard output and error.
    func run(_ executable: String, _ arguments: [String]) -> (status: Int32, out: String, err: String) {
        Self.run(executable, arguments, environment: environment)
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]?) -> (status: Int32, out: String, err: String) {
        do {
            let child = try Child(executable, arguments, environment: environment)
            return child.wait()
        } catch {
            return (-1, "", "\(executable): \(error)")
        }
    }

    /// A command started in the background, its output going to files that can be read
    /// while it runs.
    final class Child {
        let process = Process()
        let out: URL, err: URL

        init(_ executable: String, _ arguments: [String], environment: [String: String]?) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let environment { process.environment = environment }
            out = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-cluster-\(UUID()).out")
            err = out.appendingPathExtension("err")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            _ = FileManager.default.createFile(atPath: err.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
        }

        var outputSoFar: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }

        func wait() -> (status: Int32, out: String, err: String) {
            process.waitUntilExit()
            defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
            return (process.terminationStatus, outputSoFar, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        }
    }
}
