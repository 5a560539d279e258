import Foundation
import FrameCore
import Pipeline

/// One task of a submission, run inside its SLURM job (`heatfront slurm-task PLAN KIND …`):
/// a whole run, a part of a split run, or the batch outputs. It writes how it ended into
/// `OUT/slurm/status/`, and after a run's last task the run's finished record, then exits
/// with `heatfront run`'s exit code for the same outcome. Everything it prints goes to the
/// job's log.
public enum BatchTask {
    /// Runs the task `kind` (`run`, `register`, `steps`, `assemble`, `collect`) with its
    /// numbers (array index; run and array index; run); returns the exit code.
    public static func execute(planURL: URL, kind: String, numbers: [Int]) -> Int32 {
        let plan: BatchPlan
        do {
            plan = try BatchPlan.load(planURL)
        } catch {
            Console.err("heatfront: \(planURL.path): cannot read the submission's plan: \(error)")
            return 1
        }
        guard let task = taskID(kind, numbers, plan: plan) else {
            Console.err("heatfront: slurm-task \(kind) \(numbers.map(String.init).joined(separator: " ")): no such task in \(planURL.path)")
            return 64
        }
        if RunningBuild.digest != plan.build {
            Console.err("heatfront: warning: \(plan.heatfront) was rebuilt after the submission; results of the earlier build in the stage cache are not reused")
        }
        let status = perform(task, plan: plan)
        if let message = status.message { Console.err("heatfront: \(message)") }
        do {
            try plan.record(status, for: task)
        } catch {
            Console.err("heatfront: cannot record the task's status in \(plan.statusDir.path): \(error)")
            return status.exitCode == 0 ? 74 : status.exitCode
        }
        return status.exitCode
    }

    static func taskID(_ kind: String, _ n: [Int], plan: BatchPlan) -> TaskID? {
        func isSplit(_ r: Int) -> [[Int]]? {
            guard plan.runs.indices.contains(r), case .split(let groups) = plan.runs[r].disposition else { return nil }
            return groups
        }
        switch (kind, n.count) {
        case ("run", 1): return plan.wholeRuns.indices.contains(n[0]) ? .run(plan.wholeRuns[n[0]]) : nil
        case ("register", 1): return isSplit(n[0]) != nil ? .registration(n[0]) : nil
        case ("steps", 2): return isSplit(n[0])?.indices.contains(n[1]) == true ? .steps(run: n[0], group: n[1]) : nil
        case ("assemble", 1): return isSplit(n[0]) != nil ? .assembly(n[0]) : nil
        case ("collect", 0): return plan.hasBatchOutputs ? .collect : nil
        default: return nil
        }
    }

    static func perform(_ task: TaskID, plan: BatchPlan) -> TaskStatus {
        let cancel = Cancellation()
        cancel.installSignalHandlers()
        switch task {
        case .collect:
            // Every run's task succeeded (afterok), but on shared storage a file another node
            // wrote a moment ago may take a while to show here.
            let deadline = Date().addingTimeInterval(90)
            while plan.runs.indices.contains(where: { BatchOutcome.result(of: $0, plan: plan).error != nil && !plan.runs[$0].disposition.isFailure }),
                  Date() < deadline {
                Thread.sleep(forTimeInterval: 5)
            }
            do {
                try BatchOutputs.write(BatchOutcome.entries(plan), outDir: URL(fileURLWithPath: plan.outDir))
                Console.err("batch outputs: \(plan.outDir)/runs.csv, \(plan.outDir)/report.html")
                return TaskStatus(exitCode: 0, message: nil)
            } catch {
                return TaskStatus(exitCode: 74, message: "\(plan.outDir): the batch outputs could not be written: \(error)")
            }
        case .run(let r), .assembly(let r):
            let started = Date()
            let status = runPart(.whole, of: plan.runs[r], force: plan.options.force && task == .run(r), plan: plan, cancel: cancel)
            if status.exitCode == 0 { recordFinished(plan.runs[r], plan: plan, startedAt: started) }
            return status
        case .registration(let r):
            return runPart(.registration, of: plan.runs[r], force: plan.options.force, plan: plan, cancel: cancel)
        case .steps(let r, let g):
            guard case .split(let groups) = plan.runs[r].disposition else { return TaskStatus(exitCode: 64, message: "not a split run") }
            return runPart(.steps(groups[g]), of: plan.runs[r], force: false, plan: plan, cancel: cancel)
        }
    }

    /// One part of a run, with `heatfront run`'s exit code and message for its failure.
    static func runPart(_ part: RunPart, of run: PlannedRun, force: Bool, plan: BatchPlan, cancel: Cancellation) -> TaskStatus {
        Console.err("heatfront \(HeatFrontVersion.string): \(run.runDir) → \(run.outDir) (\(part.label))")
        let progress = ProgressReporter(style: .lines)
        defer { progress.printWarnings(progress.warnings) }
        do {
            switch try BatchRun.runOne(URL(fileURLWithPath: run.runDir), outDir: URL(fileURLWithPath: run.outDir),
                                       options: plan.options.runOptions(part: part, force: force), progress: progress, cancel: cancel) {
            case .finished: return TaskStatus(exitCode: 0, message: nil)
            case .failed(let code, let message): return TaskStatus(exitCode: code, message: message)
            }
        } catch is CancellationError {
            return TaskStatus(exitCode: 130, message: "\(run.runDir): interrupted (SLURM sends SIGTERM at the time limit and on scancel); finished stages are kept: resubmit to resume")
        } catch {
            return TaskStatus(exitCode: 1, message: "\(run.runDir): \(error)")
        }
    }

    /// The finished record of a run whose outputs are complete: its inputs' sizes and
    /// modification times as `summary.json` lists them. Not written when an input changed
    /// while the run read it: the run is then analysed again when resubmitted.
    static func recordFinished(_ run: PlannedRun, plan: BatchPlan, startedAt: Date) {
        struct Summary: Decodable {
            struct Input: Decodable { var path: String; var size: Int64 }
            var inputs: [Input]
        }
        let summaryURL = URL(fileURLWithPath: run.outDir).appendingPathComponent("summary.json")
        guard let data = try? Data(contentsOf: summaryURL), let summary = try? JSONDecoder().decode(Summary.self, from: data),
              let stamps = InputStamp.stamps(summary.inputs.map(\.path), runDir: URL(fileURLWithPath: run.runDir)) else { return }
        let sizes = Dictionary(summary.inputs.map { ($0.path, $0.size) }, uniquingKeysWith: { a, _ in a })
        let startNs = Int64(startedAt.timeIntervalSince1970 * 1e9)
        guard stamps.allSatisfy({ sizes[$0.path] == $0.size && $0.modifiedNs < startNs }) else {
            Console.err("heatfront: warning: \(run.runDir): inputs changed while the run read them; it will be analysed again when resubmitted")
            return
        }
        let record = FinishedRecord(build: plan.build, options: plan.options.resultOptions, inputs: stamps)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try? AtomicFile.write(try encoder.encode(record), to: FinishedRecord.url(plan, run: run))
    }
}

extension RunPart {
    var label: String {
        switch self {
        case .whole: "whole run"
        case .registration: "registration"
        case .steps(let s): "frame measurement of steps \(s.map(String.init).joined(separator: ", "))"
        }
    }
}

/// Terminal output of the cluster commands: lines on standard error (the job's log).
enum Console {
    static func err(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    static func out(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
}
