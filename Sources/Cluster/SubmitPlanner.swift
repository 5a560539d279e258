import Foundation
import FrameIO
import RunSettings
import Pipeline

/// What the user asked `heatfront submit` for.
public struct SubmitRequest: Sendable {
    public var runDirs: [String]
    public var out: String
    public var partition: String?
    /// Every task's time request (`--time`), seconds; nil: from each run's estimate.
    public var timeS: Int?
    /// Every task's memory request (`--mem`), MB; nil: from each run's estimate.
    public var memoryMB: Int?
    /// Split every run into tasks of this many steps (`--steps-per-task`).
    public var stepsPerTask: Int?
    public var options: TaskOptions
    /// The `heatfront` executable the tasks run (absolute).
    public var heatfront: String
    public var build: String

    public init(runDirs: [String], out: String, options: TaskOptions, heatfront: String, build: String) {
        self.runDirs = runDirs
        self.out = out
        self.options = options
        self.heatfront = heatfront
        self.build = build
    }
}

/// Turns a request into a plan: each run scanned (file headers only), sized, checked against
/// its finished record, and given whole, split or not at all; then the jobs that do it.
public enum SubmitPlanner {
    /// The plan and one line per run for the terminal. `timeLimitS`: the longest a task may
    /// run (`--time`, else the partition's limit); runs whose request exceeds it are split.
    public static func plan(_ request: SubmitRequest, timeLimitS: Int?) -> (plan: BatchPlan, notes: [String]) {
        let out = URL(fileURLWithPath: request.out).standardizedFileURL
        let dirs = request.runDirs.map { URL(fileURLWithPath: $0) }
        let names = BatchRun.outputNames(dirs)
        var plan = BatchPlan(heatfront: request.heatfront, build: request.build, outDir: out.path,
                             options: request.options, runs: [])
        var notes: [String] = []
        for (i, key) in BatchPlan.keys(names).enumerated() {
            let runOut = dirs.count == 1 ? out : out.appendingPathComponent(names[i])
            var run = PlannedRun(runDir: dirs[i].path, name: names[i], outDir: runOut.path, key: key,
                                 size: nil, disposition: .whole)
            notes.append(decide(&run, plan: plan, request: request, timeLimitS: timeLimitS))
            plan.runs.append(run)
        }
        return (plan, notes)
    }

    /// Scans and sizes one run and sets its disposition; returns its line for the terminal.
    static func decide(_ run: inout PlannedRun, plan: BatchPlan, request: SubmitRequest, timeLimitS: Int?) -> String {
        let options = request.options.runOptions(part: .whole, force: false)
        let runDir = URL(fileURLWithPath: run.runDir)
        let config: RunConfig, table: FrameTable
        do {
            (config, table) = try RunPipeline.scan(runDir: runDir, outDir: URL(fileURLWithPath: run.outDir), options: options)
        } catch let e as PipelineError {
            run.disposition = .failed(message: e.description, exitCode: e.exitCode)
            return "\(run.name): failed: \(e.description)"
        } catch {
            run.disposition = .failed(message: "\(run.runDir): \(error)", exitCode: 1)
            return "\(run.name): failed: \(run.runDir): \(error)"
        }
        let stamps = InputStamp.stamps(RunPipeline.inputPaths(table, runDir: runDir, options: options), runDir: runDir)
        let size = RunSize(table: table, config: config, inputBytes: stamps?.reduce(0) { $0 + $1.size } ?? 0)
        run.size = size
        let cpus = request.options.cpus
        let line = "\(run.name): \(describe(size)); " + estimateNote(size, .whole, cpus)
        if !request.options.force, let stamps, isFinished(run, stamps: stamps, plan: plan) {
            run.disposition = .finished
            return "\(run.name): finished earlier with the same inputs, options and build: not submitted again"
        }
        let (disposition, why) = split(size, limitS: timeLimitS, stepsPerTask: request.stepsPerTask, cpus: cpus)
        run.disposition = disposition
        return line + (why.map { "; \($0)" } ?? "")
    }

    /// `63 frames of 1024 × 1024 px, 12 steps, 52.7 MB`.
    static func describe(_ s: RunSize) -> String {
        String(format: "%d frames of %d × %d px, %d steps, %.1f MB", s.frames, s.width, s.height, s.stepFrames.count,
               Double(s.inputBytes) / 1e6)
    }

    /// Whether the run finished earlier with these inputs (sizes and modification times),
    /// the same result options and this build, and its `summary.json` is still there.
    static func isFinished(_ run: PlannedRun, stamps: [InputStamp], plan: BatchPlan) -> Bool {
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: run.outDir).appendingPathComponent("summary.json").path),
              let data = try? Data(contentsOf: FinishedRecord.url(plan, run: run)),
              let record = try? JSONDecoder().decode(FinishedRecord.self, from: data) else { return false }
        return record == FinishedRecord(build: plan.build, options: plan.options.resultOptions, inputs: stamps)
    }

    /// Whole, or split by temperature step when `--steps-per-task` asks or when the whole
    /// run's time request exceeds the limit; the reason, when split.
    public static func split(_ size: RunSize, limitS: Int?, stepsPerTask: Int?, cpus: Int) -> (Disposition, String?) {
        let steps = Array(size.stepFrames.indices)
        if let n = stepsPerTask, n > 0 {
            let groups = stride(from: 0, to: steps.count, by: n).map { Array(steps[$0..<min($0 + n, steps.count)]) }
            return (.split(stepGroups: groups), "split by --steps-per-task into registration, \(groups.count) step task(s) and assembly")
        }
        guard let limitS, steps.count > 1,
              ResourceModel.timeRequest(seconds: ResourceModel.seconds(size, .whole, cpus: cpus)) > limitS else { return (.whole, nil) }
        var groups: [[Int]] = [], current: [Int] = []
        for k in steps {
            let trial = current + [k]
            if !current.isEmpty,
               ResourceModel.timeRequest(seconds: ResourceModel.seconds(size, .steps(trial), cpus: cpus)) > limitS {
                groups.append(current)
                current = [k]
            } else {
                current = trial
            }
        }
        groups.append(current)
        var why = "longer than the time limit \(SlurmTime.format(limitS)): split into registration, \(groups.count) step tasks and assembly"
        let registration = ResourceModel.timeRequest(seconds: ResourceModel.seconds(size, .registration, cpus: cpus))
        if registration > limitS {
            why += "; registration alone needs \(SlurmTime.format(registration)) and cannot be split (it aligns the whole run as one sequence): ask for a longer --time or a partition that allows it"
        }
        return (.split(stepGroups: groups), why)
    }
}

extension SubmitPlanner {
    /// The jobs that carry out a plan, in submission order: the whole runs' array, each split
    /// run's registration → step tasks → assembly, and the batch outputs after all of them.
    /// Each job requests the largest estimate among its tasks, unless `--time`/`--mem` say.
    public static func jobs(_ plan: BatchPlan, timeS: Int?, memoryMB: Int?) -> [JobSpec] {
        let cpus = plan.options.cpus
        func job(_ kind: JobSpec.Kind, _ script: String, _ name: String, array: Int?, work: [(RunSize, TaskWork)],
                 after: [Int], log: String, notes: [String], arguments: [String]) -> JobSpec {
            let seconds = work.map { ResourceModel.seconds($0.0, $0.1, cpus: cpus) }.max() ?? 0
            let memory = work.map { ResourceModel.memoryMB($0.0, cpus: cpus) }.max() ?? 0
            let requests = (timeS == nil ? "time: largest estimate × \(ResourceModel.timeSafety) + \(ResourceModel.timeMarginS / 60) min"
                                         : "time: --time")
                + (memoryMB == nil ? "; memory: largest estimate × \(ResourceModel.memorySafety) + \(ResourceModel.memoryMarginMB) MB"
                                   : "; memory: --mem")
            return JobSpec(kind: kind, script: script, jobName: name, arrayCount: array,
                           timeS: timeS ?? ResourceModel.timeRequest(seconds: seconds),
                           memoryMB: memoryMB ?? ResourceModel.memoryRequest(mb: memory), cpus: work.isEmpty ? 1 : cpus,
                           after: after, logPattern: log, notes: notes + ["Requests (\(requests))."], taskArguments: arguments)
        }
        var jobs: [JobSpec] = [], finals: [Int] = []
        let whole = plan.wholeRuns
        if !whole.isEmpty {
            let notes = ["One array task per run:"] + whole.enumerated().map { i, r in "  task \(i): " + taskNote(plan.runs[r], .whole, cpus) }
            jobs.append(job(.runs, "runs.sbatch", "heatfront-runs", array: whole.count,
                            work: whole.map { (plan.runs[$0].size!, .whole) }, after: [], log: "runs_%A_%a.log",
                            notes: notes, arguments: ["run"]))
            finals.append(0)
        }
        for (r, run) in plan.runs.enumerated() {
            guard case .split(let groups) = run.disposition, let size = run.size else { continue }
            let k = run.key, first = jobs.count
            jobs.append(job(.registration(run: r), "\(k).register.sbatch", "heatfront-\(k)-register", array: nil,
                            work: [(size, .registration)], after: [], log: "\(k).register_%j.log",
                            notes: ["Registration of \(taskNote(run, .registration, cpus))",
                                    "It aligns the whole run as one sequence, so it is one task."],
                            arguments: ["register", String(r)]))
            jobs.append(job(.steps(run: r), "\(k).steps.sbatch", "heatfront-\(k)-steps", array: groups.count,
                            work: groups.map { (size, .steps($0)) }, after: [first], log: "\(k).steps_%A_%a.log",
                            notes: ["Frame measurement of \(run.runDir), one array task per group of temperature steps:"]
                                + groups.enumerated().map { g, steps in
                                    "  task \(g): steps \(steps.map(String.init).joined(separator: ", ")): "
                                        + estimateNote(size, .steps(steps), cpus) },
                            arguments: ["steps", String(r)]))
            jobs.append(job(.assembly(run: r), "\(k).assemble.sbatch", "heatfront-\(k)-assemble", array: nil,
                            work: [(size, .assembly)], after: [first + 1], log: "\(k).assemble_%j.log",
                            notes: ["Assembly of \(taskNote(run, .assembly, cpus))",
                                    "Registration and step measurements come from the stage cache; ramp frames, kinetics and outputs."],
                            arguments: ["assemble", String(r)]))
            finals.append(first + 2)
        }
        if plan.hasBatchOutputs, !finals.isEmpty {
            jobs.append(job(.collect, "collect.sbatch", "heatfront-collect", array: nil, work: [], after: finals,
                            log: "collect_%j.log", notes: ["The batch outputs, runs.csv and report.html, after every run has finished."],
                            arguments: ["collect"]))
        }
        return jobs
    }

    /// `/data/A → /out/A: 63 frames of …; estimated 00:04:10, 640 MB`.
    static func taskNote(_ run: PlannedRun, _ work: TaskWork, _ cpus: Int) -> String {
        "\(run.runDir) → \(run.outDir): \(describe(run.size!)); " + estimateNote(run.size!, work, cpus)
    }

    public static func estimateNote(_ size: RunSize, _ work: TaskWork, _ cpus: Int) -> String {
        "estimated \(SlurmTime.format(Int(ResourceModel.seconds(size, work, cpus: cpus).rounded(.up)))), "
            + "\(Int(ResourceModel.memoryMB(size, cpus: cpus).rounded(.up))) MB"
    }
}
