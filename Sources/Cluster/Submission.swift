import Foundation
import FrameCore
import Pipeline

/// `heatfront submit`: plan the runs, write the job scripts into `OUT/slurm/`, submit them
/// with `sbatch` (each after the jobs it needs), and with `--wait` follow them to the end.
public enum Submission {
    public struct Settings: Sendable {
        public var request: SubmitRequest
        public var wait = false
        public var dryRun = false
        /// Seconds between two looks at the queue while waiting.
        public var pollS = 30.0

        public init(request: SubmitRequest) { self.request = request }
    }

    /// A submitted job: its id and what it is.
    struct SubmittedJob: Codable {
        var id: String
        var spec: JobSpec
    }

    /// Runs the submission; the exit code: 0 when every run finished (or, without `--wait`,
    /// was submitted), else the first failed run's `heatfront run` exit code (1 when its
    /// task could not say); 64 for a path SLURM cannot take, 75 while an earlier
    /// submission's jobs are still queued or running, 69 when a SLURM command failed (its
    /// message says why: no SLURM, an unknown partition, a request over a limit).
    public static func run(_ settings: Settings) -> Int32 {
        let request = settings.request
        if let bad = unsafePath(request) { Console.err("heatfront: \(bad)"); return 64 }
        var limit = request.timeS
        if limit == nil, request.stepsPerTask == nil {
            if let partitionLimit = Slurm.partitionTimeLimit(request.partition) {
                limit = partitionLimit
            } else {
                Console.err("the partition's time limit could not be read (scontrol): no run is split; give --time to split runs longer than it")
            }
        }
        let (plan, notes) = SubmitPlanner.plan(request, timeLimitS: limit)
        for n in notes { Console.err(n) }
        let jobs = SubmitPlanner.jobs(plan, timeS: request.timeS, memoryMB: request.memoryMB)
        do {
            if let active = try earlierJobsActive(plan) {
                Console.err("heatfront: \(plan.outDir): jobs of an earlier submission are still queued or running (\(active)); wait for them (squeue) or cancel them (scancel) before submitting again")
                return 75
            }
        } catch {
            Console.err("heatfront: \(error)")
            return 69
        }
        do {
            try write(plan, jobs: jobs, partition: request.partition, clear: !settings.dryRun)
        } catch {
            Console.err("heatfront: \(error)")
            return 74
        }
        let failedAtSubmission = plan.runs.indices.lazy.filter { plan.runs[$0].disposition.isFailure }
            .map { BatchOutcome.result(of: $0, plan: plan) }.first
        if settings.dryRun {
            Console.out("dry run: job scripts in \(plan.slurmDir.path)/ (\(jobs.map(\.script).joined(separator: ", "))); submit them with bash \(plan.slurmDir.path)/submit.sh or heatfront submit without --dry-run")
            return failedAtSubmission?.exitCode ?? 0
        }
        if jobs.isEmpty { return finishWithoutJobs(plan) }
        var submitted: [SubmittedJob] = []
        do {
            try submit(jobs, plan: plan, into: &submitted)
        } catch {
            Console.err("heatfront: \(error)")
            if !submitted.isEmpty {
                Console.err("heatfront: already submitted: \(submitted.map { "\($0.spec.script) \($0.id)" }.joined(separator: ", ")); they stay queued (scancel \(submitted.map(\.id).joined(separator: " ")) removes them)")
            }
            return 69
        }
        Console.out("submitted: " + submitted.map { "\($0.spec.script) \($0.id)" }.joined(separator: ", ")
                    + "; logs in \(plan.slurmDir.path)/logs/")
        guard settings.wait else { return failedAtSubmission?.exitCode ?? 0 }
        do {
            try waitForJobs(submitted.map(\.id), pollS: settings.pollS)
        } catch {
            Console.err("heatfront: \(error)")
            return 69
        }
        return report(plan, submitted: submitted)
    }

    /// Paths and names that cannot go into `#SBATCH` lines, as one message; nil when fine.
    static func unsafePath(_ request: SubmitRequest) -> String? {
        let out = URL(fileURLWithPath: request.out).standardizedFileURL.path
        if out.contains(where: { $0.isWhitespace || "%\"'\\".contains($0) }) {
            return "--out \(out): a path with spaces, quotes or % cannot be given to SLURM's #SBATCH --output; choose another output folder"
        }
        if let p = request.partition, p.isEmpty || p.contains(where: { $0.isWhitespace || "%\"'\\#".contains($0) }) {
            return "--partition '\(p)' is not a partition name"
        }
        return nil
    }

    /// The ids of an earlier submission's jobs that are still queued or running, or nil.
    static func earlierJobsActive(_ plan: BatchPlan) throws -> String? {
        let url = plan.slurmDir.appendingPathComponent("jobs.json")
        guard let data = try? Data(contentsOf: url), let earlier = try? JSONDecoder().decode([SubmittedJob].self, from: data),
              !earlier.isEmpty, Slurm.find("squeue") != nil else { return nil }
        let active = Set(try Slurm.activeTasks(earlier.map(\.id)).map { String($0.id.split(separator: "_")[0]) })
        return active.isEmpty ? nil : active.sorted().joined(separator: ", ")
    }

    /// `plan.json`, the job scripts and `submit.sh`, replacing an earlier submission's
    /// scripts. A real submission also clears the earlier submission's task statuses and the
    /// finished records of the runs it analyses again, so nothing of theirs can be read as
    /// this submission's.
    static func write(_ plan: BatchPlan, jobs: [JobSpec], partition: String?, clear: Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: plan.slurmDir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        if clear {
            try? fm.removeItem(at: plan.statusDir)
            try? fm.removeItem(at: plan.slurmDir.appendingPathComponent("jobs.json"))
            for run in plan.runs where run.disposition != .finished { try? fm.removeItem(at: FinishedRecord.url(plan, run: run)) }
        }
        for name in (try? fm.contentsOfDirectory(atPath: plan.slurmDir.path)) ?? [] where name.hasSuffix(".sbatch") {
            try? fm.removeItem(at: plan.slurmDir.appendingPathComponent(name))
        }
        try fm.createDirectory(at: plan.statusDir, withIntermediateDirectories: true)
        try fm.createDirectory(at: plan.finishedDir, withIntermediateDirectories: true)
        try AtomicFile.write(try plan.json(), to: plan.planURL)
        for job in jobs {
            try AtomicFile.write(JobScripts.script(job, plan: plan, partition: partition),
                                 to: plan.slurmDir.appendingPathComponent(job.script))
        }
        let submitScript = plan.slurmDir.appendingPathComponent("submit.sh")
        try AtomicFile.write(JobScripts.submitScript(jobs, plan: plan), to: submitScript)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: submitScript.path)
    }

    /// Submits the jobs in order, each after those it needs; records their ids in `jobs.json`
    /// as they go, so an interrupted submission still knows what it submitted.
    static func submit(_ jobs: [JobSpec], plan: BatchPlan, into submitted: inout [SubmittedJob]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        for job in jobs {
            let id = try Slurm.submit(plan.slurmDir.appendingPathComponent(job.script), after: job.after.map { submitted[$0].id })
            submitted.append(SubmittedJob(id: id, spec: job))
            try AtomicFile.write(try encoder.encode(submitted), to: plan.slurmDir.appendingPathComponent("jobs.json"))
        }
    }

    /// Nothing to run (every run finished earlier or failed at submission): the batch
    /// outputs are written here, at once.
    static func finishWithoutJobs(_ plan: BatchPlan) -> Int32 {
        let results = plan.runs.indices.map { BatchOutcome.result(of: $0, plan: plan) }
        if plan.hasBatchOutputs {
            do {
                try BatchOutputs.write(BatchOutcome.entries(plan, results: results), outDir: URL(fileURLWithPath: plan.outDir))
            } catch {
                Console.err("heatfront: \(plan.outDir): the batch outputs could not be written: \(error)")
                return 74
            }
        }
        Console.out("nothing to submit: every run finished earlier or cannot be analysed")
        return summarize(plan, results: results, logs: [:])
    }
}
