import Foundation
import Testing
import Cluster

/// Job scripts, resource requests and the split of large runs, on plans built by hand.
@Suite struct JobScriptTests {
    /// A beam-time run: 600 frames of 2048², 12 steps of 50, 5 GB.
    static let large = RunSize(frames: 600, width: 2048, height: 2048, stepFrames: Array(repeating: 50, count: 12),
                               rampFrames: 0, inputBytes: 5_033_164_800, nonrigid: false)
    static let small = RunSize(frames: 40, width: 1024, height: 1024, stepFrames: [10, 10, 10, 10],
                               rampFrames: 0, inputBytes: 83_886_080, nonrigid: false)

    static func plan(_ runs: [(String, RunSize, Disposition)]) -> BatchPlan {
        var options = TaskOptions()
        options.cpus = 8
        let keys = BatchPlan.keys(runs.map(\.0))
        return BatchPlan(heatfront: "/opt/heatfront/bin/heatfront", build: "b", outDir: "/scratch/beamtime/out", options: options,
                         runs: runs.enumerated().map { i, r in
                             PlannedRun(runDir: "/data/beamtime/\(r.0)", name: r.0, outDir: "/scratch/beamtime/out/\(r.0)",
                                        key: keys[i], size: r.1, disposition: r.2)
                         })
    }

    @Test func wholeRunsArrayScript() {
        let plan = Self.plan([("NCM811_run1", Self.small, .whole), ("NCM811_run2", Self.large, .whole),
                              ("NCM811_run3", Self.small, .finished)])
        let jobs = SubmitPlanner.jobs(plan, timeS: nil, memoryMB: nil)
        #expect(jobs.map(\.script) == ["runs.sbatch", "collect.sbatch"])
        #expect(jobs[1].after == [0])
        let expected = """
            #!/bin/bash
            #SBATCH --job-name=heatfront-runs
            #SBATCH --array=0-1
            #SBATCH --partition=short
            #SBATCH --time=\(SlurmTime.format(jobs[0].timeS))
            #SBATCH --mem=\(SlurmMemory.format(jobs[0].memoryMB))
            #SBATCH --cpus-per-task=8
            #SBATCH --ntasks=1
            #SBATCH --output=/scratch/beamtime/out/slurm/logs/runs_%A_%a.log
            #
            # Written by heatfront submit (docs/user-guide.md, "Running on a cluster").
            # One array task per run:
            #   task 0: /data/beamtime/NCM811_run1 → /scratch/beamtime/out/NCM811_run1: 40 frames of 1024 × 1024 px, 4 steps, 83.9 MB; \(SubmitPlanner.estimateNote(Self.small, .whole, 8))
            #   task 1: /data/beamtime/NCM811_run2 → /scratch/beamtime/out/NCM811_run2: 600 frames of 2048 × 2048 px, 12 steps, 5033.2 MB; \(SubmitPlanner.estimateNote(Self.large, .whole, 8))
            # Requests (time: largest estimate × 2.0 + 10 min; memory: largest estimate × 1.5 + 256 MB).
            exec /opt/heatfront/bin/heatfront slurm-task /scratch/beamtime/out/slurm/plan.json run "$SLURM_ARRAY_TASK_ID"

            """
        #expect(JobScripts.script(jobs[0], plan: plan, partition: "short") == expected)
        // The array asks for its largest run.
        #expect(jobs[0].timeS == ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.large, .whole, cpus: 8)))
        #expect(jobs[0].memoryMB == ResourceModel.memoryRequest(mb: ResourceModel.memoryMB(Self.large, cpus: 8)))
    }

    @Test func splitRunJobsWaitForEachOther() {
        let plan = Self.plan([("a run", Self.small, .whole), ("big", Self.large, .split(stepGroups: [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))])
        let jobs = SubmitPlanner.jobs(plan, timeS: 3600, memoryMB: 8192)
        #expect(jobs.map(\.script) == ["runs.sbatch", "big.register.sbatch", "big.steps.sbatch", "big.assemble.sbatch", "collect.sbatch"])
        #expect(jobs.map(\.after) == [[], [], [1], [2], [0, 3]])
        #expect(jobs[2].arrayCount == 2 && jobs[0].arrayCount == 1)
        #expect(jobs.allSatisfy { $0.timeS == 3600 && $0.memoryMB == 8192 })
        let steps = JobScripts.script(jobs[2], plan: plan, partition: nil)
        #expect(steps.contains("#SBATCH --output=/scratch/beamtime/out/slurm/logs/big.steps_%A_%a.log\n"))
        #expect(steps.contains("#   task 1: steps 6, 7, 8, 9, 10, 11: estimated "))
        #expect(steps.hasSuffix("exec /opt/heatfront/bin/heatfront slurm-task /scratch/beamtime/out/slurm/plan.json steps 1 \"$SLURM_ARRAY_TASK_ID\"\n"))
        #expect(!steps.contains("--partition"))
        #expect(plan.runs[0].key == "a_run")
        let submit = JobScripts.submitScript(jobs, plan: plan)
        #expect(submit.contains("job4=$(sbatch --parsable --dependency=afterok:${job0}:${job3} --kill-on-invalid-dep=yes /scratch/beamtime/out/slurm/collect.sbatch)"))
    }

    /// The worked example of docs/user-guide.md, "Running on a cluster".
    @Test func theDocumentedExample() {
        #expect(ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.large, .whole, cpus: 8)) == 1200)
        #expect(ResourceModel.memoryRequest(mb: ResourceModel.memoryMB(Self.large, cpus: 8)) == 4352)
    }

    @Test func requestsGrowWithTheRunAndKeepTheirMargins() {
        let seconds = ResourceModel.seconds(Self.large, .whole, cpus: 8)
        let request = ResourceModel.timeRequest(seconds: seconds)
        #expect(Double(request) >= 2 * seconds + 600 && request % 300 == 0)
        #expect(ResourceModel.timeRequest(seconds: 1) == 900)
        #expect(ResourceModel.seconds(Self.large, .whole, cpus: 8) > ResourceModel.seconds(Self.small, .whole, cpus: 8))
        #expect(ResourceModel.seconds(Self.large, .whole, cpus: 16) < ResourceModel.seconds(Self.large, .whole, cpus: 4))
        var nonrigid = Self.large
        nonrigid.nonrigid = true
        #expect(ResourceModel.seconds(nonrigid, .registration, cpus: 8) > 3 * ResourceModel.seconds(Self.large, .registration, cpus: 8))
        // Memory follows frame area, not frame count.
        var longer = Self.large
        longer.frames *= 10
        #expect(ResourceModel.memoryMB(longer, cpus: 8) == ResourceModel.memoryMB(Self.large, cpus: 8))
        #expect(ResourceModel.memoryMB(Self.large, cpus: 8) > 3 * ResourceModel.memoryMB(Self.small, cpus: 8) - 3 * ResourceModel.memoryBaseMB)
        let mem = ResourceModel.memoryRequest(mb: ResourceModel.memoryMB(Self.large, cpus: 8))
        #expect(Double(mem) >= 1.5 * ResourceModel.memoryMB(Self.large, cpus: 8) + 256 && mem % 256 == 0)
    }

    /// 3000 frames of 4096², 30 steps, 100 GB.
    static let huge = RunSize(frames: 3000, width: 4096, height: 4096, stepFrames: Array(repeating: 100, count: 30),
                              rampFrames: 0, inputBytes: 100_000_000_000, nonrigid: false)

    @Test func aRunLongerThanTheLimitIsSplitIntoStepGroupsThatFit() {
        // On 2 CPUs the work outweighs the reading, and a limit that just fits registration
        // needs the steps in several tasks.
        let cpus = 2
        let whole = ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.huge, .whole, cpus: cpus))
        let limit = ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.huge, .registration, cpus: cpus))
        #expect(whole > limit)
        let (disposition, why) = SubmitPlanner.split(Self.huge, limitS: limit, stepsPerTask: nil, cpus: cpus)
        guard case .split(let groups) = disposition else { Issue.record("not split"); return }
        #expect(groups.flatMap { $0 } == Array(0..<30))
        #expect(groups.count >= 2)
        for g in groups {
            #expect(ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.huge, .steps(g), cpus: cpus)) <= limit)
        }
        #expect(ResourceModel.timeRequest(seconds: ResourceModel.seconds(Self.huge, .registration, cpus: cpus)) <= limit)
        #expect(why?.contains("split into registration, \(groups.count) step tasks and assembly") == true)
        #expect(why?.contains("cannot be split") == false)
        // Within the limit: whole. Forced: fixed groups.
        #expect(SubmitPlanner.split(Self.huge, limitS: whole, stepsPerTask: nil, cpus: cpus).0 == .whole)
        #expect(SubmitPlanner.split(Self.large, limitS: nil, stepsPerTask: 5, cpus: cpus).0
                == .split(stepGroups: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]))
    }

    @Test func aRegistrationLongerThanTheLimitIsSaidToBeUnsplittable() {
        var huge = Self.large
        huge.nonrigid = true
        huge.frames = 20_000
        huge.stepFrames = Array(repeating: 2000, count: 10)
        let (_, why) = SubmitPlanner.split(huge, limitS: 4 * 3600, stepsPerTask: nil, cpus: 8)
        #expect(why?.contains("registration alone needs") == true && why?.contains("cannot be split") == true)
    }

    @Test func keysAreSafeAndUnique() {
        #expect(BatchPlan.keys(["A", "a b", "a_b", ".hidden", "Ü"]) == ["A", "a_b", "a_b-2", "run.hidden", "_"])
    }
}
