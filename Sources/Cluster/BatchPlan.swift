import Foundation
import FrameIO
import RunSettings
import Pipeline

/// What `heatfront submit` decided, written to `OUT/slurm/plan.json` before any job is
/// submitted: every run with its output folder, size and what is done with it, and the
/// options every task runs with. The jobs' tasks read it (`BatchTask`), so a job script
/// only names the plan, its task and its index.
public struct BatchPlan: Codable, Sendable, Equatable {
    /// The `heatfront` executable every task runs (absolute path, on shared storage).
    public var heatfront: String
    /// Its build digest: results of another build are never reused (as in the stage cache).
    public var build: String
    /// OUT (absolute).
    public var outDir: String
    public var options: TaskOptions
    public var runs: [PlannedRun]

    public init(heatfront: String, build: String, outDir: String, options: TaskOptions, runs: [PlannedRun]) {
        self.heatfront = heatfront
        self.build = build
        self.outDir = outDir
        self.options = options
        self.runs = runs
    }

    public var slurmDir: URL { URL(fileURLWithPath: outDir).appendingPathComponent("slurm") }
    public var planURL: URL { slurmDir.appendingPathComponent("plan.json") }

    /// Runs given one array task each, in array order.
    public var wholeRuns: [Int] { runs.indices.filter { runs[$0].disposition == .whole } }
    /// Several runs: the batch outputs (`runs.csv`, `report.html`) are written at the end.
    public var hasBatchOutputs: Bool { runs.count > 1 }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public static func load(_ url: URL) throws -> BatchPlan {
        try JSONDecoder().decode(BatchPlan.self, from: Data(contentsOf: url))
    }
}

/// The options of `heatfront run` that a submission passes to every task.
public struct TaskOptions: Codable, Sendable, Equatable {
    public var mode: String?
    public var config: String?
    public var heatingLog: String?
    public var exportFields = false
    /// Recompute instead of reusing finished work: given to each run's first task only.
    public var force = false
    /// CPUs per task; also the run's `--jobs`.
    public var cpus = 4

    public init() {}

    /// The run's options for one part of it.
    public func runOptions(part: RunPart, force: Bool) -> RunOptions {
        var o = RunOptions()
        o.mode = mode.flatMap(RegistrationMode.init(rawValue:))
        o.configURL = config.map { URL(fileURLWithPath: $0) }
        o.heatingLog = heatingLog.map { URL(fileURLWithPath: $0) }
        o.exportFields = exportFields
        o.force = force
        o.jobs = cpus
        o.part = part
        return o
    }

    /// What decides a run's results (not `force` or `cpus`): a finished run is reused only
    /// when this is unchanged.
    var resultOptions: String {
        [mode ?? "-", config ?? "-", heatingLog ?? "-", exportFields ? "fields" : "-"].joined(separator: "\u{1F}")
    }
}

/// One run of a submission.
public struct PlannedRun: Codable, Sendable, Equatable {
    /// The run folder (absolute), as `heatfront run` records it.
    public var runDir: String
    /// Its sub-folder of OUT (`BatchRun.outputNames`).
    public var name: String
    /// Its output folder (absolute): OUT/name, or OUT itself for a single run.
    public var outDir: String
    /// A file-name-safe label, unique in the plan, for job scripts, logs and status files.
    public var key: String
    /// Frames, frame size, steps and bytes; nil when the run could not be scanned.
    public var size: RunSize?
    public var disposition: Disposition

    public init(runDir: String, name: String, outDir: String, key: String, size: RunSize?, disposition: Disposition) {
        self.runDir = runDir
        self.name = name
        self.outDir = outDir
        self.key = key
        self.size = size
        self.disposition = disposition
    }
}

/// What a submission does with a run.
public enum Disposition: Codable, Sendable, Equatable {
    /// One array task for the whole run.
    case whole
    /// Registration, then one array task per group of steps, then the assembly.
    case split(stepGroups: [[Int]])
    /// Finished earlier with the same inputs, options and build: not submitted again.
    case finished
    /// Cannot be analysed (found when it was scanned at submission): the message and exit
    /// code `heatfront run` gives it.
    case failed(message: String, exitCode: Int32)
}

extension Disposition {
    var isFailure: Bool { if case .failed = self { true } else { false } }
}

extension BatchPlan {
    /// A file-name-safe label for each output name: letters, digits, `.`, `_` and `-` kept,
    /// anything else `_`; a clash gets `-2`, `-3`, ….
    public static func keys(_ names: [String]) -> [String] {
        var used = Set<String>()
        return names.map { name in
            let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
            let base = safe.isEmpty || safe.hasPrefix(".") ? "run\(safe)" : safe
            var key = base, n = 2
            while used.contains(key) { key = "\(base)-\(n)"; n += 1 }
            used.insert(key)
            return key
        }
    }
}
