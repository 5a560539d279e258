import ArgumentParser
import Cluster
import Foundation
import FrameIO
import RunSettings
import Pipeline

/// `heatfront submit`: the runs of `heatfront run RUN_DIR… --out OUT` as SLURM jobs.
struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Analyse heating runs as SLURM jobs: one array task per run, then runs.csv and the batch report.",
        discussion: """
            OUT ends as `heatfront run RUN_DIR… --out OUT` would leave it, plus OUT/slurm/ (job scripts, plan, \
            logs, task statuses). Time and memory requests come from each run's size (docs/user-guide.md, \
            "Running on a cluster"). Runs that finished earlier with the same inputs, options and build are \
            not submitted again. Exit codes: 0 every run submitted (with --wait: finished); otherwise the \
            first failed run's `heatfront run` exit code (1 when its task was killed); 64 bad path or option; \
            69 a SLURM command failed (no SLURM, unknown partition, request over a limit); 74 OUT not writable; 75 an earlier submission's jobs still queued or running.
            """)

    @Argument(help: "Run folder(s): the frames of one in-situ heating experiment each.")
    var runDirs: [String]

    @Option(name: .long, help: "Output folder, on storage the compute nodes share (one sub-folder per run when several are given).")
    var out: String

    @Option(name: .long, help: "SLURM partition (default: the cluster's default partition).")
    var partition: String?

    @Option(name: .long, help: "Time limit of every task, SLURM syntax (e.g. 2:00:00); default: from each run's size.")
    var time: String?

    @Option(name: .long, help: "Memory of every task, SLURM syntax (e.g. 8G); default: from the frame size and step count.")
    var mem: String?

    @Option(name: .long, help: "CPUs per task (also the run's --jobs).")
    var cpus: Int = 4

    @Option(name: .customLong("steps-per-task"),
            help: "Split every run by temperature step, this many steps per task (default: only runs longer than the time limit).")
    var stepsPerTask: Int?

    @Flag(name: .long, help: "Wait until every task has ended; exit non-zero naming each failed run and its log.")
    var wait = false

    @Option(name: .long, help: "Seconds between two looks at the queue with --wait.")
    var poll: Double = 30

    @Flag(name: .customLong("dry-run"), help: "Write the plan and job scripts into OUT/slurm/ without submitting them.")
    var dryRun = false

    @OptionGroup var settings: SettingsOptions

    @Flag(name: .customLong("export-fields"), help: "Non-rigid mode: also write each frame's displacement fields (as `run`).")
    var exportFields = false

    @Flag(name: .long, help: "Recompute every run instead of reusing finished work.")
    var force = false

    func validate() throws {
        if cpus < 1 { throw ValidationError("--cpus must be at least 1") }
        if let n = stepsPerTask, n < 1 { throw ValidationError("--steps-per-task must be at least 1") }
        if !(poll > 0) { throw ValidationError("--poll must be positive") }
        if let time { _ = try slurmTime(time) }
        if let mem { do { _ = try SlurmMemory.parse(mem) } catch { throw ValidationError("--mem: \(error)") } }
    }

    func run() throws {
        var options = TaskOptions()
        options.mode = settings.mode?.rawValue
        options.config = settings.configURL?.standardizedFileURL.path
        options.heatingLog = settings.heatingLogURL?.standardizedFileURL.path
        options.exportFields = exportFields
        options.force = force
        options.cpus = cpus
        let executable = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]))
            .resolvingSymlinksInPath().standardizedFileURL.path
        var request = SubmitRequest(runDirs: runDirs, out: out, options: options, heatfront: executable,
                                    build: RunningBuild.digest)
        request.partition = partition
        request.timeS = try time.flatMap { try slurmTime($0) }
        request.memoryMB = try mem.map { try SlurmMemory.parse($0) }
        request.stepsPerTask = stepsPerTask
        var settings = Submission.Settings(request: request)
        settings.wait = wait
        settings.dryRun = dryRun
        settings.pollS = poll
        let code = Submission.run(settings)
        if code != 0 { throw ExitCode(code) }
    }

    /// `--time` in seconds; an unlimited time is not a request a task can make.
    private func slurmTime(_ text: String) throws -> Int {
        do {
            guard let s = try SlurmTime.parse(text), s > 0 else { throw ValidationError("--time must be a finite time") }
            return s
        } catch let e as SlurmSyntaxError {
            throw ValidationError("--time: \(e)")
        }
    }
}

/// `heatfront slurm-task PLAN KIND [N…]`: one task of a submission, run by its job script.
struct SlurmTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm-task",
        abstract: "Run one task of a heatfront submit plan (called by the job scripts in OUT/slurm/).",
        shouldDisplay: false)

    @Argument(help: "OUT/slurm/plan.json")
    var plan: String

    @Argument(help: "run, register, steps, assemble or collect")
    var kind: String

    @Argument(help: "The run's index in the plan and/or the array task's index.")
    var numbers: [Int] = []

    func run() throws {
        let code = BatchTask.execute(planURL: URL(fileURLWithPath: plan), kind: kind, numbers: numbers)
        if code != 0 { throw ExitCode(code) }
    }
}
