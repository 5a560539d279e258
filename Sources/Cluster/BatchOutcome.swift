import Foundation
import Pipeline

/// How each run of a submission ended, from the status files its tasks wrote: what the
/// batch outputs list and what `--wait` reports.
public enum BatchOutcome {
    public struct RunResult: Sendable, Equatable {
        public var run: Int
        /// The task that failed or ended without a status; nil when the run finished or
        /// failed at submission.
        public var failedTask: TaskID?
        /// One line; nil when the run finished.
        public var error: String?
        /// `heatfront run`'s exit code for the failure (1 when the task could not say).
        public var exitCode: Int32
    }

    /// The run's outcome: the first of its tasks, in order, that failed or left no status.
    public static func result(of r: Int, plan: BatchPlan) -> RunResult {
        let run = plan.runs[r]
        if case .failed(let message, let code) = run.disposition {
            return RunResult(run: r, failedTask: nil, error: message, exitCode: code)
        }
        for task in plan.tasks(ofRun: r) {
            guard let status = plan.status(task) else {
                return RunResult(run: r, failedTask: task, error: "\(run.runDir): its \(task) task ended without a result", exitCode: 1)
            }
            if status.exitCode != 0 {
                return RunResult(run: r, failedTask: task, error: status.message ?? "\(run.runDir): failed", exitCode: status.exitCode)
            }
        }
        return RunResult(run: r, failedTask: nil, error: nil, exitCode: 0)
    }

    /// The batch outputs' entries, one per run in plan order.
    public static func entries(_ plan: BatchPlan, results: [RunResult]? = nil) -> [BatchOutputs.Entry] {
        let results = results ?? plan.runs.indices.map { result(of: $0, plan: plan) }
        return results.map { r in BatchOutputs.Entry(runDir: plan.runs[r.run].runDir, name: plan.runs[r.run].name, error: r.error) }
    }
}
