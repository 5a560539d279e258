import Foundation
import FrameCore

/// Several run folders in one call: each gets its own sub-folder of OUT_DIR (named after the
/// run folder), and `runs.csv` and `report.html` sum them up one row per run (`BatchOutputs`).
/// Runs go one after another, each using every core, so memory stays that of one run.
public enum BatchRun {
    public struct Outcome: Sendable {
        public var exitCode: Int32
        public var errors: [String]
    }

    public static func run(_ runDirs: [URL], outDir: URL, options: RunOptions,
                           progress: ProgressReporter, cancel: Cancellation) throws -> Outcome {
        if runDirs.count == 1 {
            do {
                _ = try RunPipeline.run(runDir: runDirs[0], outDir: outDir, options: options, progress: progress, cancel: cancel)
                return Outcome(exitCode: 0, errors: [])
            } catch let e as PipelineError {
                return Outcome(exitCode: e.exitCode, errors: [e.description])
            }
        }
        var entries: [BatchOutputs.Entry] = [], errors: [String] = [], firstFailure: Int32? = nil, anyOK = false
        for (dir, name) in zip(runDirs, outputNames(runDirs)) {
            try cancel.throwIfCancelled()
            progress.log("run \(dir.path) → \(name)/")
            do {
                _ = try RunPipeline.run(runDir: dir, outDir: outDir.appendingPathComponent(name), options: options,
                                        progress: progress, cancel: cancel)
                anyOK = true
                entries.append(BatchOutputs.Entry(runDir: dir.path, name: name, error: nil))
            } catch let e as PipelineError {
                firstFailure = firstFailure ?? e.exitCode
                errors.append(e.description)
                entries.append(BatchOutputs.Entry(runDir: dir.path, name: name, error: e.description))
            }
        }
        try BatchOutputs.write(entries, outDir: outDir)
        return Outcome(exitCode: anyOK ? 0 : (firstFailure ?? 1), errors: errors)
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
