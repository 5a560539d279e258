import Foundation
import Pipeline

/// `heatfront submit --wait`: following the jobs to their end and saying how each run ended.
extension Submission {
    /// Returns when none of the jobs' tasks is queued or running any more; a line on each
    /// change of the counts. A queue that cannot be read five times in a row is an error.
    static func waitForJobs(_ ids: [String], pollS: Double) throws {
        var last = "", failures = 0
        while true {
            let active: [(id: String, state: String)]
            do {
                active = try Slurm.activeTasks(ids)
                failures = 0
            } catch {
                failures += 1
                if failures >= 5 { throw error }
                Thread.sleep(forTimeInterval: pollS)
                continue
            }
            if active.isEmpty { return }
            let counts = Dictionary(grouping: active, by: \.state).sorted { $0.key > $1.key }
                .map { "\($0.value.count) \($0.key.lowercased())" }.joined(separator: ", ")
            if counts != last { Console.err("waiting: \(counts) task(s)"); last = counts }
            Thread.sleep(forTimeInterval: pollS)
        }
    }

    /// How every run ended, from the tasks' status files; SLURM's end state added for a task
    /// that left none (time limit, memory, cancelled). When the batch-outputs job did not
    /// run (a run failed: it waits for all with `afterok`), the batch outputs are written
    /// here, so `runs.csv` names the failures as `heatfront run` would.
    static func report(_ plan: BatchPlan, submitted: [SubmittedJob]) -> Int32 {
        var results = plan.runs.indices.map { BatchOutcome.result(of: $0, plan: plan) }
        // A status written on a compute node may take a moment to show on shared storage.
        let deadline = Date().addingTimeInterval(30)
        while undecided(results, plan: plan), Date() < deadline {
            Thread.sleep(forTimeInterval: 2)
            results = plan.runs.indices.map { BatchOutcome.result(of: $0, plan: plan) }
        }
        var logs: [Int: String] = [:]
        for i in results.indices {
            guard let task = results[i].failedTask, let (job, index) = locate(task, plan: plan, submitted: submitted) else { continue }
            logs[results[i].run] = plan.slurmDir.appendingPathComponent("logs/" + job.spec.logFile(jobID: job.id, arrayIndex: index)).path
            if plan.status(task) == nil, let state = Slurm.endState(index.map { "\(job.id)_\($0)" } ?? job.id) {
                results[i].error! += " (SLURM: \(state))"
            }
        }
        if plan.hasBatchOutputs, plan.status(.collect)?.exitCode != 0 {
            if results.allSatisfy({ $0.error == nil }), let (job, _) = locate(.collect, plan: plan, submitted: submitted) {
                Console.err("heatfront: the batch-outputs job \(job.id) ended without writing them (log: \(plan.slurmDir.path)/logs/\(job.spec.logFile(jobID: job.id, arrayIndex: nil))); writing them here")
            }
            do {
                try BatchOutputs.write(BatchOutcome.entries(plan, results: results), outDir: URL(fileURLWithPath: plan.outDir))
            } catch {
                Console.err("heatfront: \(plan.outDir): the batch outputs could not be written: \(error)")
                return 74
            }
        }
        return summarize(plan, results: results, logs: logs)
    }

    /// Whether some task's status may still be on its way: a task without one, or the batch
    /// outputs' job after every run finished.
    static func undecided(_ results: [BatchOutcome.RunResult], plan: BatchPlan) -> Bool {
        if results.contains(where: { r in r.failedTask.map { plan.status($0) == nil } ?? false }) { return true }
        return plan.hasBatchOutputs && results.allSatisfy { $0.error == nil } && plan.status(.collect) == nil
    }

    /// The submitted job that ran a task, and the task's array index.
    static func locate(_ task: TaskID, plan: BatchPlan, submitted: [SubmittedJob]) -> (SubmittedJob, Int?)? {
        func job(_ kind: JobSpec.Kind) -> SubmittedJob? { submitted.first { $0.spec.kind == kind } }
        switch task {
        case .run(let r): return job(.runs).flatMap { j in plan.wholeRuns.firstIndex(of: r).map { (j, $0) } }
        case .registration(let r): return job(.registration(run: r)).map { ($0, nil) }
        case .steps(let r, let g): return job(.steps(run: r)).map { ($0, g) }
        case .assembly(let r): return job(.assembly(run: r)).map { ($0, nil) }
        case .collect: return job(.collect).map { ($0, nil) }
        }
    }

    /// Prints the outcome: where the outputs are, or every failed run with its log. The exit
    /// code is the first failed run's (`heatfront run`'s code for it; 1 when its task could
    /// not say).
    static func summarize(_ plan: BatchPlan, results: [BatchOutcome.RunResult], logs: [Int: String]) -> Int32 {
        let failed = results.filter { $0.error != nil }
        guard let first = failed.first else {
            let skipped = plan.runs.filter { $0.disposition == .finished }.count
            Console.out("finished: \(results.count) run(s)" + (skipped > 0 ? " (\(skipped) finished earlier, not run again)" : "")
                        + "; outputs in \(plan.outDir)" + (plan.hasBatchOutputs ? ", batch report \(plan.outDir)/report.html" : ""))
            return 0
        }
        Console.err("heatfront: \(failed.count) of \(results.count) run(s) failed:")
        for f in failed {
            let run = plan.runs[f.run]
            Console.err("  - \(run.name) (\(run.runDir)): \(f.error!)" + (logs[f.run].map { "; log: \($0)" } ?? ""))
        }
        return first.exitCode == 0 ? 1 : first.exitCode
    }
}
