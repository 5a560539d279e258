import ArgumentParser
import Foundation
import FrameCore
import FrameIO
import RunSettings
import Pipeline

/// `heatfront watch RUN_DIR --out OUT`: live analysis while the run is acquired.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a run folder while frames are acquired: frames.csv, steps.csv, plots and report.html updated frame by frame.",
        discussion: """
            Frames count once their file is closed after writing or renamed into place (or, where the file system \
            reports no events, once their size holds still for two polls); partial files are never read. Each frame \
            is registered against its step's running average and measured at once; a status line gives the \
            temperature, step, frames, drift rate, Li/TM ratio and the front's position and velocity. The live \
            numbers are provisional: with --idle-exit S, once no frame has come for S seconds, a final pass \
            (exactly `heatfront run RUN_DIR --out OUT`, reusing its stage cache) replaces every output, and the \
            exit code is that run's. Ctrl-C stops after the frame in hand, leaving each live file whole and no summary.json; \
            `heatfront run` or `watch` later finishes the run. Exit codes: those of `heatfront run` (see its \
            --help), 130 when interrupted.
            """)

    @Argument(help: "The run folder the acquisition software writes into.")
    var runDir: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .customLong("idle-exit"), help: "Seconds without a new frame after which the final pass runs and watch exits.")
    var idleExit: Double?

    /// `--mode` applies to the final pass.
    @OptionGroup var settings: SettingsOptions

    @Option(name: .long, help: "Seconds between two looks at files no file-system event reported.")
    var poll: Double = 0.5

    @Flag(name: .customLong("poll-only"), help: "Find new files by polling only (a file system whose events do not reach this machine).")
    var pollOnly = false

    @Option(name: .customLong("report-interval"), help: "Seconds between two rewrites of the plots and report.html.")
    var reportInterval: Double = 5

    @Option(name: .long, help: "Frames processed in parallel in the final pass (default: number of cores).")
    var jobs: Int?

    @Flag(name: .long, help: "No status line or progress output.")
    var quiet = false

    func validate() throws {
        if let idleExit, !(idleExit > 0) { throw ValidationError("--idle-exit must be a positive number of seconds") }
        if !(poll > 0) { throw ValidationError("--poll must be a positive number of seconds") }
        if !(reportInterval >= 0) { throw ValidationError("--report-interval must be zero or more seconds") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        var options = WatchOptions()
        options.run.mode = settings.mode
        options.run.configURL = settings.configURL
        options.run.heatingLog = settings.heatingLogURL
        if let jobs { options.run.jobs = jobs }
        options.idleExitS = idleExit
        options.pollIntervalS = poll
        options.reportIntervalS = reportInterval
        options.inotify = !pollOnly
        let status = WatchStatus.automatic(quiet: quiet)
        let progress = ProgressReporter.automatic(quiet: quiet)
        let cancel = Cancellation()
        cancel.installSignalHandlers()
        let outDir = URL(fileURLWithPath: out)
        do {
            switch try WatchSession.run(runDir: URL(fileURLWithPath: runDir), outDir: outDir, options: options,
                                        status: status, progress: progress, cancel: cancel) {
            case .finished(let summary):
                progress.printWarnings(progress.warnings)
                Terminal.out(RunArguments.finalLine(outDir: outDir, summary: summary, registrationOnly: false) + "\n")
            case .failed(let code, let message):
                Terminal.err("heatfront: \(message)\n")
                throw ExitCode(code)
            }
        } catch is CancellationError {
            status.finish()
            Terminal.err("\nheatfront: interrupted; \(out) holds the live outputs of the last frame (no summary.json); "
                         + "heatfront run or heatfront watch on the same folders finishes the run, reusing finished work\n")
            throw ExitCode(130)
        } catch let e as PipelineError {
            status.finish()
            Terminal.err("heatfront: \(e.description)\n")
            throw ExitCode(e.exitCode)
        }
    }
}
