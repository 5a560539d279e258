import ArgumentParser
import Foundation
import FrameIO
import Pipeline

/// Options `run` and `register` share.
struct RunArguments: ParsableArguments {
    @Argument(help: "Run folder(s): the frames of one in-situ heating experiment each.")
    var runDirs: [String]

    @Option(name: .long, help: "Output folder (one sub-folder per run when several are given).")
    var out: String

    @Option(name: .long, help: "Registration mode: rigid or nonrigid (overrides registration.mode).")
    var mode: RegistrationMode?

    @Option(name: .long, help: "Config file (overrides RUN_DIR/heatfront.yaml).")
    var config: String?

    @Option(name: .customLong("heating-log"), help: "Heating log CSV (overrides RUN_DIR/heating_log.csv and the config).")
    var heatingLog: String?

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
        o.mode = mode
        o.configURL = config.map { URL(fileURLWithPath: $0) }
        o.heatingLog = heatingLog.map { URL(fileURLWithPath: $0) }
        o.force = force
        if let jobs { o.jobs = jobs }
        o.registrationOnly = registrationOnly
        o.exportFields = exportFields
        return o
    }

    /// Runs the pipeline; exit codes: 0 when anything could be analysed, 1 when nothing could
    /// (empty folder, no readable frame), 2 for an invalid config, 130 when interrupted.
    func execute(registrationOnly: Bool) throws {
        let progress = ProgressReporter.automatic(quiet: quiet)
        let cancel = Cancellation()
        cancel.installSignalHandlers()
        do {
            let outcome = try BatchRun.run(runDirs.map { URL(fileURLWithPath: $0) }, outDir: URL(fileURLWithPath: out),
                                           options: options(registrationOnly: registrationOnly),
                                           progress: progress, cancel: cancel)
            progress.printWarnings(progress.warnings)
            for e in outcome.errors { FileHandle.standardError.write(Data("heatfront: \(e)\n".utf8)) }
            if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
        } catch is CancellationError {
            FileHandle.standardError.write(Data("\nheatfront: interrupted; finished steps are kept, rerun to resume\n".utf8))
            throw ExitCode(130)
        }
    }
}

extension RegistrationMode: ExpressibleByArgument {}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Analyse heating run(s): registration, column intensities, front tracking, reports.",
        discussion: "Exit codes: 0 when anything could be analysed, 1 when nothing could, 2 for an invalid config, 130 when interrupted.")

    @OptionGroup var arguments: RunArguments

    func run() throws { try arguments.execute(registrationOnly: false) }
}
