import Foundation
import FrameCore

/// Several run folders in one call: each gets its own sub-folder of OUT_DIR (named after the
/// run folder), and `runs.csv` sums them up one row per run. Runs go one after another, each
/// using every core, so memory stays that of one run.
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
        var csv = CSVTable(header: ["run", "out_dir", "status", "n_frames", "n_used", "pixel_size_nm",
                                    "onset_temperature_C", "activation_energy_eV", "activation_energy_sem_eV",
                                    "n_warnings", "error"])
        var used = Set<String>(), errors: [String] = [], firstFailure: Int32? = nil, anyOK = false
        for dir in runDirs {
            try cancel.throwIfCancelled()
            var name = dir.standardizedFileURL.lastPathComponent, n = 2
            while used.contains(name) { name = "\(dir.standardizedFileURL.lastPathComponent)_\(n)"; n += 1 }
            used.insert(name)
            progress.log("run \(dir.path) → \(name)/")
            do {
                let s = try RunPipeline.run(runDir: dir, outDir: outDir.appendingPathComponent(name), options: options,
                                            progress: progress, cancel: cancel)
                anyOK = true
                csv.append([dir.path, name, "ok", String(s.nFrames), String(s.nUsed), Cell.fixed(s.pixelSizeNm, 6),
                            Cell.fixed(s.onsetTemperatureC, 1), Cell.fixed(s.activationEnergyEV, 4),
                            Cell.fixed(s.activationEnergySEMEV, 4), String(s.warnings.count), ""])
            } catch let e as PipelineError {
                firstFailure = firstFailure ?? e.exitCode
                errors.append(e.description)
                csv.append([dir.path, name, "failed", "", "", "", "", "", "", "", e.description])
            }
        }
        try AtomicFile.write(csv.text, to: outDir.appendingPathComponent("runs.csv"))
        return Outcome(exitCode: anyOK ? 0 : (firstFailure ?? 1), errors: errors)
    }
}
