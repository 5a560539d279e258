import Foundation
import FrameCore

/// Several run folders in one call: each gets its own sub-folder of OUT_DIR (named after the
/// run folder), and `runs.csv` sums them up one row per run. Runs go one after another, each
/// using every core, so memory stays that of one run. A run that fails is named and the
/// others still run; the exit code is then that of the first failure.
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
        var csv = CSVTable(header: ["run", "out_dir", "status", "n_frames", "n_used", "pixel_size_nm",
                                    "onset_temperature_C", "activation_energy_eV", "activation_energy_sem_eV",
                                    "n_warnings", "error"])
        var used = Set<String>(), outcome = Outcome(exitCode: 0, errors: [])
        for dir in runDirs {
            try cancel.throwIfCancelled()
            let base = dir.standardizedFileURL.lastPathComponent
            var name = base, n = 2
            while used.contains(name) { name = "\(base)_\(n)"; n += 1 }
            used.insert(name)
            progress.log("run \(dir.path) → \(name)/")
            let out = outDir.appendingPathComponent(name)
            switch try runOne(dir, outDir: out, options: options, progress: progress, cancel: cancel) {
            case .finished(let s):
                outcome.finished.append(Finished(outDir: out, summary: s))
                csv.append([dir.path, name, "ok", String(s.nFrames), String(s.nUsed), Cell.fixed(s.pixelSizeNm, 6),
                            Cell.fixed(s.onsetTemperatureC, 1), Cell.fixed(s.activationEnergyEV, 4),
                            Cell.fixed(s.activationEnergySEMEV, 4), String(s.warnings.count), ""])
            case .failed(let code, let message):
                if outcome.exitCode == 0 { outcome.exitCode = code }
                outcome.errors.append(message)
                csv.append([dir.path, name, "failed", "", "", "", "", "", "", "", message])
            }
        }
        do {
            try AtomicFile.write(csv.text, to: outDir.appendingPathComponent("runs.csv"))
        } catch let e as WriteError {
            if outcome.exitCode == 0 { outcome.exitCode = PipelineError.cannotWrite("").exitCode }
            outcome.errors.append(e.description)
        }
        return outcome
    }

    enum RunResult {
        case finished(RunSummary)
        case failed(code: Int32, message: String)
    }

    /// One run, its failure (if any) as an exit code and one line. A run whose every frame was
    /// rejected or unreadable wrote its outputs but analysed nothing: exit code 1.
    static func runOne(_ dir: URL, outDir: URL, options: RunOptions, progress: ProgressReporter,
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
        }
    }
}
