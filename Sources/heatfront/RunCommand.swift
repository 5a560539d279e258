import ArgumentParser
import Foundation
import FrameIO
import RunSettings
import Pipeline
import FrameCore

/// Options `run` and `register` share.
struct RunArguments: ParsableArguments {
    @Argument(help: "Run folder(s), or single stack files: the frames of one in-situ heating experiment each.")
    var runDirs: [String]

    @Option(name: .long, help: "Output folder (one sub-folder per run when several are given).")
    var out: String

    @OptionGroup var settings: SettingsOptions

    @Flag(name: .long, help: "Recompute everything instead of reusing finished work in OUT_DIR.")
    var force = false

    @Option(name: .long, help: "Frames processed in parallel (default: number of cores).")
    var jobs: Int?

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    @Flag(name: .customLong("export-fields"),
          help: "Non-rigid mode: also write each frame's displacement (rigid shift + scan-distortion field, px) as float32 TIFFs fields/frame_<index>_ux.tif and _uy.tif.")
    var exportFields = false

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func options(registrationOnly: Bool) -> RunOptions {
        var o = RunOptions()
        o.mode = settings.mode
        o.configURL = settings.configURL
        o.heatingLog = settings.heatingLogURL
        o.force = force
        if let jobs { o.jobs = jobs }
        o.registrationOnly = registrationOnly
        o.exportFields = exportFields
        return o
    }

    /// Runs the pipeline and reports: warnings, one line per finished run (its report, onset
    /// and activation energy) on standard output, every failure named at the end. Exit codes
    /// are `RunArguments.exitCodes`.
    func execute(registrationOnly: Bool) throws {
        let progress = ProgressReporter.automatic(quiet: quiet)
        let cancel = Cancellation()
        cancel.installSignalHandlers()
        let dirs = runDirs.map { URL(fileURLWithPath: $0) }
        if dirs.count > 1 { for m in BatchRun.missing(dirs) { Terminal.err("heatfront: \(m)\n") } }
        do {
            let outcome = try BatchRun.run(dirs, outDir: URL(fileURLWithPath: out),
                                           options: options(registrationOnly: registrationOnly),
                                           progress: progress, cancel: cancel)
            progress.printWarnings(progress.warnings)
            for f in outcome.finished { Terminal.out(Self.finalLine(f, registrationOnly: registrationOnly) + "\n") }
            if dirs.count > 1, !outcome.errors.isEmpty {
                Terminal.err("heatfront: \(outcome.errors.count) of \(dirs.count) runs failed:\n")
                for e in outcome.errors { Terminal.err("  - \(e)\n") }
            } else {
                for e in outcome.errors { Terminal.err("heatfront: \(e)\n") }
            }
            if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
        } catch is CancellationError {
            Terminal.err("\nheatfront: interrupted; finished steps are kept, rerun to resume\n")
            throw ExitCode(130)
        }
    }

    /// `report: OUT/report.html · onset 500 °C · Ea 1.21 ± 0.08 eV · 39 of 40 frames used`.
    static func finalLine(_ f: BatchRun.Finished, registrationOnly: Bool) -> String {
        finalLine(outDir: f.outDir, summary: f.summary, registrationOnly: registrationOnly)
    }

    static func finalLine(outDir: URL, summary s: RunSummary, registrationOnly: Bool) -> String {
        let used = "\(s.nUsed) of \(s.nFrames) frames used"
        if registrationOnly { return "registered: \(outDir.appendingPathComponent("frames.csv").path) · \(used)" }
        let onset = s.onsetTemperatureC.map { String(format: "onset %.0f °C", $0) } ?? "no onset"
        let ea = s.activationEnergyEV.map { String(format: "Ea %.2f ± %.2f eV", $0, s.activationEnergySEMEV ?? .nan) } ?? "no Ea"
        return "report: \(outDir.appendingPathComponent("report.html").path) · \(onset) · \(ea) · \(used)"
    }

    static let exitCodes = """
        Exit codes: 0 every run analysed; 1 nothing analysed (no such folder, no frame file, no readable frame, every \
        frame rejected); 2 invalid config or heating log; 64 command-line error (e.g. --out is the run folder); \
        74 an output could not be written (full disk, read-only folder, no permission); 75 another run is writing \
        OUT_DIR; 130 interrupted (Ctrl-C, SIGTERM). With several runs: the first failure's code, every failure named at the end.
        """
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Analyse heating run(s): registration, column intensities, front tracking, reports.",
        discussion: RunArguments.exitCodes)

    @OptionGroup var arguments: RunArguments

    func run() throws { try arguments.execute(registrationOnly: false) }
}
