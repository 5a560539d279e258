import Foundation
import FrameIO
import RunSettings
import Pipeline

/// How much work a run is: what the time and memory of its tasks grow with.
public struct RunSize: Codable, Sendable, Equatable {
    /// Frames that will be registered and measured (readable, of the run's frame size).
    public var frames: Int
    public var width: Int
    public var height: Int
    /// Such frames per temperature step, in step order.
    public var stepFrames: [Int]
    /// Such frames taken during ramps (measured by the run's last task).
    public var rampFrames: Int
    /// Bytes of every input file: each task hashes them all (the stage cache's key).
    public var inputBytes: Int64
    public var nonrigid: Bool

    public init(frames: Int, width: Int, height: Int, stepFrames: [Int], rampFrames: Int, inputBytes: Int64, nonrigid: Bool) {
        self.frames = frames
        self.width = width
        self.height = height
        self.stepFrames = stepFrames
        self.rampFrames = rampFrames
        self.inputBytes = inputBytes
        self.nonrigid = nonrigid
    }

    /// The size of a scanned run; `inputBytes` from the files `RunPipeline.inputPaths` lists.
    public init(table: FrameTable, config: RunConfig, inputBytes: Int64) {
        let ok = table.records.filter { $0.status.isOK }
        self.init(frames: ok.count, width: table.frameWidth, height: table.frameHeight,
                  stepFrames: table.steps.indices.map { k in ok.filter { $0.stepIndex == k }.count },
                  rampFrames: ok.filter { $0.stepIndex < 0 }.count, inputBytes: inputBytes,
                  nonrigid: config.registrationMode == .nonrigid)
    }

    /// Frame size in units of a 1024 × 1024 frame, what the per-frame costs are measured on.
    public var megapixels: Double { Double(width * height) / 1_048_576 }
}

/// The work of one task of a run.
public enum TaskWork: Sendable, Equatable {
    case whole
    case registration
    case steps([Int])
    /// The last task of a split run: ramp frames, kinetics and every output.
    case assembly
}

/// Time and memory requests for a run's tasks, from its size and from costs measured with
/// `scripts/bench-cluster-model.sh` (the numbers are in docs/user-guide.md, "Running on a
/// cluster"). Every constant is a measurement rounded up, or an assumption named as such.
///
/// Time: CPU time (core-seconds) per frame and per temperature step, growing with frame
/// area; spread over the task's CPUs by Amdahl's law with `serialFraction`; plus reading the
/// inputs `reads` times at `readMBps` (shared storage is often slower than the CPUs). The
/// request is `timeSafety` × estimate + `timeMarginS`, rounded up to 5 minutes: a task over
/// its limit is killed and its unfinished stage lost, while a generous limit only costs some
/// queue priority. Cluster cores may be slower than the measuring machine's; the safety
/// factor covers that.
///
/// Memory: the peak resident size grows with frame area, with the number of steps (each
/// step's average and maps are kept) and with the frames held at once (`2 × jobs` in
/// measurement), not with frame count: registration keeps at most 64 MB of spectra in memory (docs/user-guide.md,
/// "Memory"). The request is `memorySafety` × the model + `memoryMarginMB`, rounded up to
/// 256 MB.
public enum ResourceModel {
    /// Process start, plan, build digest, FFTW plans: core-seconds per task.
    static let startCoreS = 2.0
    /// Per frame, whatever its size (opening, decoding set-up, the coarse search), half in
    /// registration, half in measurement: 512² and 1024² frames cost 0.047 and 0.087 s each.
    static let frameCoreS = 0.03
    /// Rigid registration (decode, correlate, average), core-seconds per frame per 1024².
    /// Measured 0.037 (1024² and 2048²).
    static let rigidRegistrationCoreS = 0.04
    /// What non-rigid mode adds: each step's scan-distortion correction. Measured 0.34.
    static let nonrigidExtraCoreS = 0.35
    /// Frame measurement (decode, resample, intensities, front), per frame per 1024².
    /// Measured 0.045–0.047.
    static let measurementCoreS = 0.05
    /// Step analysis (lattice, sites, order parameter and phase map of each step average),
    /// per step per 1024², growing like an FFT's n log n: measured 0.67 at 1024², 0.94 at
    /// 2048². Every task after registration analyses every step (the front's boundary needs
    /// them all).
    static let stepAnalysisCoreS = 0.67
    static let stepAnalysisGrowthPerDoubling = 0.2
    /// Outputs (tables, averages, maps, plots, report) per step per 1024². Measured 0.19–0.20.
    static let outputsCoreS = 0.2
    /// Assumed share of the work that does not run in parallel (registration's chain, the
    /// order of steps): 8 CPUs then give 3.3×, 16 give 4×.
    static let serialFraction = 0.2
    /// Assumed read rate of shared storage, MB/s, and how often a whole run's task reads its
    /// inputs (checksums, registration, averages, measurement).
    static let readMBps = 200.0
    static let timeSafety = 2.0
    static let timeMarginS = 600
    /// Peak resident memory: fixed, per 1024² of frame area, per 1024² per temperature step
    /// (every step's average, weight map and maps stay in memory) and per 1024² per job.
    /// Measured with 2 jobs: 200 MB at 512² (12 steps), 434 and 600–630 MB at 1024² (4 and
    /// 12 steps), 2054 MB at 2048² (12 steps); 1, 2 and 4 jobs within the ±60 MB noise at
    /// 1024², so the per-job term is the code's own count: two frames (float and decoded)
    /// per job in flight.
    public static let memoryBaseMB = 120.0
    static let memoryPerMpxMB = 200.0
    static let memoryPerMpxStepMB = 22.0
    static let memoryPerMpxJobMB = 20.0
    static let memorySafety = 1.5
    static let memoryMarginMB = 256
    /// Smallest requests: a task's start-up and a busy node's noise.
    static let minimumTimeS = 900
    static let minimumMemoryMB = 1024

    /// Estimated wall time of a task, seconds, on `cpus` CPUs.
    public static func seconds(_ size: RunSize, _ work: TaskWork, cpus: Int) -> Double {
        let mpx = size.megapixels, steps = Double(size.stepFrames.count)
        let growth = 1 + stepAnalysisGrowthPerDoubling * max(0, log2(mpx))
        let registration = Double(size.frames) * (frameCoreS / 2 + mpx * (rigidRegistrationCoreS + (size.nonrigid ? nonrigidExtraCoreS : 0)))
        func measured(_ frames: Int) -> Double { Double(frames) * (frameCoreS / 2 + mpx * measurementCoreS) }
        let analysis = steps * mpx * stepAnalysisCoreS * growth
        let outputs = steps * mpx * outputsCoreS
        let core: Double, reads: Double
        switch work {
        case .whole:
            (core, reads) = (registration + measured(size.frames) + analysis + outputs, 4)
        case .registration:
            (core, reads) = (registration, 3)
        case .steps(let group):
            let frames = group.reduce(0) { $0 + (size.stepFrames.indices.contains($1) ? size.stepFrames[$1] : 0) }
            (core, reads) = (analysis + measured(frames), 1 + Double(frames) / Double(max(1, size.frames)))
        case .assembly:
            (core, reads) = (analysis + measured(size.rampFrames) + outputs, 1 + Double(size.rampFrames) / Double(max(1, size.frames)))
        }
        let speedup = 1 / (serialFraction + (1 - serialFraction) / Double(max(1, cpus)))
        return (startCoreS + core) / speedup + reads * Double(size.inputBytes) / (readMBps * 1_000_000)
    }

    /// Estimated peak resident memory of any task of the run, MB.
    public static func memoryMB(_ size: RunSize, cpus: Int) -> Double {
        memoryBaseMB + size.megapixels * (memoryPerMpxMB + memoryPerMpxStepMB * Double(size.stepFrames.count)
                                          + memoryPerMpxJobMB * Double(cpus))
    }

    /// The `--time` request for an estimate, seconds.
    public static func timeRequest(seconds: Double) -> Int {
        let padded = Int((timeSafety * seconds).rounded(.up)) + timeMarginS
        return max(minimumTimeS, (padded + 299) / 300 * 300)
    }

    /// The `--mem` request for an estimate, MB.
    public static func memoryRequest(mb: Double) -> Int {
        let padded = Int((memorySafety * mb).rounded(.up)) + memoryMarginMB
        return max(minimumMemoryMB, (padded + 255) / 256 * 256)
    }
}
