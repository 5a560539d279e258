import Foundation
import FrameCore
import Registration

/// Several run folders in one call: each gets its own sub-folder of OUT_DIR (named after the
/// run folder), and `runs.csv` and `report.html` sum them up one row per run (`BatchOutputs`).
/// Runs go one after another, each using every core, so memory stays that of one run. A run
/// that fails is named and the others still run; the exit code is then that of the first failure.
public enum BatchRun {
    public struct Outcome: Sendable {
        /// 0 when every run analysed something, else the first failure's `PipelineError.exitCode`.
        public var exitCode: Int32
        /// One line per failed run, in run order.
        public var errors: [String]
        /// The runs that finished, with their output folders.
        public var finished: [Finished] = []
    }

    public struct Finished: Sendable {
        public var outDir: URL
        public var summary: RunSummary
    }

    /// Run paths that do not exist, one message each: the command line names them before
    /// the other runs start.
    public static func missing(_ runDirs: [URL]) -> [String] {
        runDirs.filter { !FileManager.default.fileExists(atPath: $0.path) }
            .map { "\($0.path): no such folder or file (the other runs go on)" }
    }

    public static func run(_ runDirs: [URL], outDir: URL, options: RunOptions,
                           progress: ProgressReporter, cancel: Cancellation) throws -> Outcome {
        if runDirs.count == 1 {
            switch try runOne(runDirs[0], outDir: outDir, options: options, progress: progress, cancel: cancel) {
            case .finished(let s): return Outcome(exitCode: 0, errors: [], finished: [Finished(outDir: outDir, summary: s)])
            case .failed(let code, let message): return Outcome(exitCode: code, errors: [message])
            }
        }
        var entries: [BatchOutputs.Entry] = [], outcome = Outcome(exitCode: 0, errors: [])
        for (dir, name) in zip(runDirs, outputNames(runDirs)) {
            try cancel.throwIfCancelled()
            progress.log("run \(dir.path) → \(name)/")
            let out = outDir.appendingPathComponent(name)
            switch try runOne(dir, outDir: out, options: options, progress: progress, cancel: cancel) {
            case .finished(let s):
                outcome.finished.append(Finished(outDir: out, summary: s))
                entries.append(BatchOutputs.Entry(runDir: dir.path, name: name, error: nil))
            case .failed(let code, let message):
                if outcome.exitCode == 0 { outcome.exitCode = code }
                outcome.errors.append(message)
                entries.append(BatchOutputs.Entry(runDir: dir.path, name: name, error: message))
            }
        }
        do {
            try BatchOutputs.write(entries, outDir: outDir)
        } catch let e as WriteError {
            if outcome.exitCode == 0 { outcome.exitCode = PipelineError.cannotWrite("").exitCode }
            outcome.errors.append(e.description)
        }
        return outcome
    }

    public enum RunResult: Sendable {
        case finished(RunSummary)
        case failed(code: Int32, message: String)
    }

    /// One run (or part of one), its failure (if any) as an exit code and one line, as
    /// `heatfront run` and a cluster task report it. A run whose every frame was rejected or
    /// unreadable wrote its outputs but analysed nothing: exit code 1.
    public static func runOne(_ dir: URL, outDir: URL, options: RunOptions, progress: ProgressReporter,
                       cancel: Cancellation) throws -> RunResult {
        do {
            let s = try RunPipeline.run(runDir: dir, outDir: outDir, options: options, progress: progress, cancel: cancel)
            guard s.nUsed > 0 else {
                let e = PipelineError.nothingToAnalyse("\(dir.path): nothing analysed: none of the \(s.nFrames) frame(s) passed registration (frames.csv in \(outDir.path) gives each one's status)")
                return .failed(code: e.exitCode, message: e.description)
            }
            return .finished(s)
        } catch let e as PipelineError {
            return .failed(code: e.exitCode, message: e.description)
        } catch let e as WriteError {
            return .failed(code: PipelineError.cannotWrite("").exitCode, message: e.description)
        } catch let e as RegistrationError {
            // Frames too small to register: nothing can be analysed, said of this run.
            return .failed(code: PipelineError.nothingToAnalyse("").exitCode, message: "\(dir.path): \(e)")
        }
    }

    /// Each run's sub-folder of OUT_DIR: the run folder's name, `_2`, `_3`, … appended when
    /// two runs share one. `heatfront submit` names them the same way.
    public static func outputNames(_ runDirs: [URL]) -> [String] {
        var used = Set<String>()
        return runDirs.map { dir in
            let base = dir.standardizedFileURL.lastPathComponent
            var name = base, n = 2
            while used.contains(name) { name = "\(base)_\(n)"; n += 1 }
            used.insert(name)
            return name
        }
    }
}
