import Foundation
import FrameCore
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// How a task ended, written by the task itself into `OUT/slurm/status/` (SLURM without
/// accounting keeps no record of finished jobs, and `sacct` may be unavailable).
public struct TaskStatus: Codable, Sendable, Equatable {
    /// `heatfront run`'s exit code for the same failure; 0 when the task succeeded.
    public var exitCode: Int32
    /// The failure, one line; nil on success.
    public var message: String?

    public init(exitCode: Int32, message: String?) {
        self.exitCode = exitCode
        self.message = message
    }
}

/// One task of a plan: what it does and where its status goes.
public enum TaskID: Sendable, Equatable, CustomStringConvertible {
    case run(Int)
    case registration(Int)
    case steps(run: Int, group: Int)
    case assembly(Int)
    case collect

    /// The status file's name under `OUT/slurm/status/`.
    func statusFile(_ plan: BatchPlan) -> String {
        switch self {
        case .run(let r): "\(plan.runs[r].key).run.json"
        case .registration(let r): "\(plan.runs[r].key).register.json"
        case .steps(let r, let g): "\(plan.runs[r].key).steps-\(g).json"
        case .assembly(let r): "\(plan.runs[r].key).assemble.json"
        case .collect: "collect.json"
        }
    }

    public var description: String {
        switch self {
        case .run: "run"
        case .registration: "registration"
        case .steps(_, let g): "steps task \(g)"
        case .assembly: "assembly"
        case .collect: "batch outputs"
        }
    }
}

extension BatchPlan {
    var statusDir: URL { slurmDir.appendingPathComponent("status") }
    var finishedDir: URL { slurmDir.appendingPathComponent("finished") }

    func statusURL(_ task: TaskID) -> URL { statusDir.appendingPathComponent(task.statusFile(self)) }

    public func status(_ task: TaskID) -> TaskStatus? {
        guard let data = try? Data(contentsOf: statusURL(task)) else { return nil }
        return try? JSONDecoder().decode(TaskStatus.self, from: data)
    }

    func record(_ status: TaskStatus, for task: TaskID) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(status), to: statusURL(task))
    }

    /// The tasks of a run, in the order they run.
    func tasks(ofRun r: Int) -> [TaskID] {
        switch runs[r].disposition {
        case .whole: [.run(r)]
        case .split(let groups): [.registration(r)] + groups.indices.map { .steps(run: r, group: $0) } + [.assembly(r)]
        case .finished, .failed: []
        }
    }
}

/// A finished run's inputs as they were when it finished: size and modification time of
/// every file it read, with the build and the options that decide its results. A later
/// submission skips the run when all of these are unchanged and its `summary.json` is there,
/// without hashing tens of gigabytes again on a login node.
struct FinishedRecord: Codable, Equatable {
    var build: String
    var options: String
    var inputs: [InputStamp]

    static func url(_ plan: BatchPlan, run: PlannedRun) -> URL {
        plan.finishedDir.appendingPathComponent(run.name + ".json")
    }
}

/// A file's size and modification time (ns since the epoch), as `stat` reports them.
struct InputStamp: Codable, Equatable {
    var path: String
    var size: Int64
    var modifiedNs: Int64

    /// The stamps of `paths` (relative to `runDir` unless absolute); nil when one is missing.
    static func stamps(_ paths: [String], runDir: URL) -> [InputStamp]? {
        var out: [InputStamp] = []
        for path in paths.sorted() {
            let full = path.hasPrefix("/") ? path : runDir.appendingPathComponent(path).path
            var st = stat()
            guard stat(full, &st) == 0 else { return nil }
            out.append(InputStamp(path: path, size: Int64(st.st_size),
                                  modifiedNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)))
        }
        return out
    }
}
