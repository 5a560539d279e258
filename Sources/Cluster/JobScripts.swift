import Foundation

/// One `sbatch` job of a submission: a single task or an array of them.
public struct JobSpec: Sendable, Equatable, Codable {
    public enum Kind: Sendable, Equatable, Codable {
        /// One array task per whole run (`BatchPlan.wholeRuns`, in order).
        case runs
        case registration(run: Int)
        /// One array task per step group of the run.
        case steps(run: Int)
        case assembly(run: Int)
        case collect
    }

    public var kind: Kind
    /// The script's file name in `OUT/slurm/`.
    public var script: String
    public var jobName: String
    /// Number of array tasks; nil for a single task.
    public var arrayCount: Int?
    public var timeS: Int
    public var memoryMB: Int
    public var cpus: Int
    /// Earlier jobs (indices in the job list) that must all succeed first (`afterok`).
    public var after: [Int]
    /// The log's file name under `OUT/slurm/logs/`, with SLURM's `%A`/`%a` (array) or `%j`.
    public var logPattern: String
    /// Comment lines naming the tasks, their runs and estimates.
    public var notes: [String]
    /// The task's `heatfront slurm-task` arguments after the plan.
    public var taskArguments: [String]

    /// The log of one of its tasks, once SLURM gave the job its id.
    public func logFile(jobID: String, arrayIndex: Int?) -> String {
        logPattern.replacingOccurrences(of: "%A", with: jobID).replacingOccurrences(of: "%j", with: jobID)
            .replacingOccurrences(of: "%a", with: arrayIndex.map(String.init) ?? "")
    }
}

/// The text of the job scripts `heatfront submit` writes into `OUT/slurm/`. Everything a job
/// needs is in its script except its dependencies, which only exist once the jobs it waits
/// for have ids: `submit.sh` (and `heatfront submit` itself) passes them to `sbatch`.
public enum JobScripts {
    /// The batch script of one job.
    public static func script(_ job: JobSpec, plan: BatchPlan, partition: String?) -> String {
        let logs = plan.slurmDir.appendingPathComponent("logs").path
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(job.jobName)"]
        if let n = job.arrayCount { lines.append("#SBATCH --array=0-\(n - 1)") }
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        lines += [
            "#SBATCH --time=\(SlurmTime.format(job.timeS))",
            "#SBATCH --mem=\(SlurmMemory.format(job.memoryMB))",
            "#SBATCH --cpus-per-task=\(job.cpus)",
            "#SBATCH --ntasks=1",
            "#SBATCH --output=\(logs)/\(job.logPattern)",
            "#",
            "# Written by heatfront submit (docs/user-guide.md, \"Running on a cluster\").",
        ]
        lines += job.notes.map { "# \($0)" }
        let index = job.arrayCount != nil ? " \"$SLURM_ARRAY_TASK_ID\"" : ""
        let arguments = ([plan.heatfront, "slurm-task", plan.planURL.path] + job.taskArguments).map(shellQuoted)
        lines.append("exec " + arguments.joined(separator: " ") + index)
        return lines.joined(separator: "\n") + "\n"
    }

    /// A shell script that submits the jobs in order, each after the ones it waits for:
    /// what `heatfront submit` does, for submitting the scripts of a `--dry-run` by hand.
    public static func submitScript(_ jobs: [JobSpec], plan: BatchPlan) -> String {
        var lines = [
            "#!/bin/bash",
            "# Submits the jobs of OUT/slurm/ in order, each after the jobs it needs (afterok), as",
            "# heatfront submit does. Written by heatfront submit.",
            "set -euo pipefail",
        ]
        for (i, job) in jobs.enumerated() {
            var arguments = ["sbatch", "--parsable"]
            if !job.after.isEmpty {
                arguments.append("--dependency=afterok:" + job.after.map { "${job\($0)}" }.joined(separator: ":"))
                arguments.append("--kill-on-invalid-dep=yes")
            }
            let script = shellQuoted(plan.slurmDir.appendingPathComponent(job.script).path)
            lines.append("job\(i)=$(\(arguments.joined(separator: " ")) \(script)); job\(i)=${job\(i)%%;*}")
            lines.append("echo \"\(job.script): job $job\(i)\"")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` as one word for a POSIX shell: as it is when it holds only safe characters,
    /// else in single quotes, inner quotes escaped.
    static func shellQuoted(_ s: String) -> String {
        let safe = !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,@".contains($0)) }
        return safe ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
