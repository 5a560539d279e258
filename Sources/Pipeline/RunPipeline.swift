import Foundation
import FrameCore
import FrameIO
import Registration
import ColumnIntensities
import FrontTracking
import RunSettings

/// How `heatfront run` / `heatfront register` were asked to run.
public struct RunOptions: Sendable {
    public var mode: RegistrationMode?
    public var configURL: URL?
    public var heatingLog: URL?
    public var force = false
    /// Frames processed at once (decode, resample, measure).
    public var jobs = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// `heatfront register`: decoding and registration only.
    public var registrationOnly = false
    /// Non-rigid mode: also write each frame's displacement (`fields/frame_<index>_ux.tif`, `_uy.tif`).
    public var exportFields = false
    /// The part of the run to do: a cluster job splits a very large run into parts that
    /// share the stage cache (`RunPart`).
    public var part = RunPart.whole

    public init() {}
}

/// A part of a run. `.registration` and `.steps` fill the stage cache and write no outputs;
/// a `.whole` run afterwards finds their work there and finishes the run. The cache key
/// does not depend on the part, so the parts' results are exactly those of one whole run.
public enum RunPart: Sendable, Equatable, Codable {
    case whole
    /// Scan, checksums and registration (one sequence: it cannot be split).
    case registration
    /// The frame measurement of these temperature steps.
    case steps([Int])
}

extension RunPart {
    func measures(step k: Int) -> Bool {
        switch self {
        case .whole: true
        case .registration: false
        case .steps(let steps): steps.contains(k)
        }
    }
}

/// Why a run could not be analysed at all (one clear line, non-zero exit).
/// The exit codes are documented in docs/user-guide.md and `heatfront run --help`.
public enum PipelineError: Error, CustomStringConvertible {
    /// The config (or a command-line override) is invalid: exit code 2.
    case invalidConfig(String)
    /// Nothing could be analysed (no such folder, no frame file, no readable frame, every
    /// frame rejected): exit code 1.
    case nothingToAnalyse(String)
    /// The command line asks for something impossible (`--out` is the run folder): exit code 64.
    case usage(String)
    /// OUT_DIR cannot be written (full disk, read-only, no permission): exit code 74.
    case cannotWrite(String)
    /// Another run is writing OUT_DIR: exit code 75 (try again later).
    case outputInUse(String)

    public var description: String {
        switch self {
        case .invalidConfig(let s), .nothingToAnalyse(let s), .usage(let s), .cannotWrite(let s), .outputInUse(let s): s
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .invalidConfig: 2
        case .nothingToAnalyse: 1
        case .usage: 64
        case .cannotWrite: 74
        case .outputInUse: 75
        }
    }
}

/// The run: every stage chained, from a run folder to the outputs docs/outputs.md lists.
///
/// Frames are decoded on demand (`RunFrames`) and measured in batches of `2 × jobs` frames
/// (each frame's front profiles, a few kB, are kept for the step's moving-front fit); per
/// step only the aligned average and its maps are kept. Registration keeps one band-limited spectrum per frame (≈ 0.6 MB
/// per 1024² frame), the one part that grows with frame count. See docs/user-guide.md, "Memory".
public enum RunPipeline {
    public static func run(runDir: URL, outDir: URL, options: RunOptions,
                           progress: ProgressReporter, cancel: Cancellation) throws -> RunSummary {
        let started = Date()
        var clock = StageClock()
        // A batch shares one reporter: this run's warnings are those after this point.
        let earlierWarnings = progress.warnings.count
        try checkOutDir(outDir, runDir: runDir)
        // The build digest (part of the cache key) is read meanwhile, off the critical path.
        DispatchQueue.global().async { _ = StageCache.build }

        // 1. Config and frame table (contract §1).
        let (config, table) = try scan(runDir: runDir, outDir: outDir, options: options)
        clock.lap("scan")
        for w in table.warnings { progress.warn(w) }
        let folder = try claimOutput(outDir, part: options.part)

        // 2. Inputs and the cache key.
        let inputs = InputFile.checksums(inputPaths(table, runDir: table.runDir, options: options), in: table.runDir)
        let cache = try openCache(outDir: outDir, config: config, inputs: inputs, options: options)
        clock.lap("checksums")
        try cancel.throwIfCancelled()

        // 3. Registration: frames within each step to each other, steps to one run reference.
        let ok = table.records.filter { $0.status == .ok }.map(\.frameIndex)
        let frames = RunFrames(table: table, indices: ok)
        let registered = try RegistrationStage.run(frames, groups: stepGroups(table, ok: ok), table: table, config: config,
                                                   cache: cache, progress: progress)
        clock.lap("registration")
        try cancel.throwIfCancelled()
        let run = RunContext(table: table, config: config, frames: frames, ok: ok, registered: registered,
                             options: options, cache: cache, progress: progress, cancel: cancel)
        var results = run.registeredResults()
        var summary = run.startSummary(runDir: runDir, inputs: inputs, started: started, results: results)
        if options.part == .registration { return summary }

        var analysed = AnalysedSteps()
        if !options.registrationOnly {
            // 4. Per step: lattice, crystal region, column sites, phase map of the aligned average.
            analysed.analyses = try run.analyseSteps(summary: &summary)
            clock.lap("step analysis")
            analysed.boundary = try run.locateFronts(&analysed.analyses)
            // 5. Per frame, streamed step by step: aligned frame → intensities → front.
            let fronts = try run.measureSteps(analysed, results: &results)
            if case .steps = options.part { return summary }
            try run.measureRamp(analysed, results: &results)
            clock.lap("frame measurement")
            // 6. Kinetics per step and over the run.
            analysed.steps = run.kinetics(analysed, fronts: fronts, results: results, summary: &summary)
            clock.lap("kinetics")
        }

        // 7. Outputs, each written atomically; summary.json last, so its presence marks a finished run.
        run.completeSummary(&summary, earlierWarnings: earlierWarnings)
        guard let folder else { return summary }
        try run.writeOutputs(to: folder, results: results, analysed: analysed, summary: &summary, clock: &clock)
        return summary
    }

    /// - Throws: `PipelineError.usage` when OUT_DIR is the run folder itself.
    static func checkOutDir(_ outDir: URL, runDir: URL) throws {
        if OutputFolder.isRunFolder(outDir, runDir: runDir) {
            throw PipelineError.usage("--out \(outDir.path) is the run folder itself: its outputs would be read as frames by the next run; choose another folder (a sub-folder is fine)")
        }
    }

    /// OUT_DIR claimed for a whole run. A part of a split run (a cluster's step tasks run side
    /// by side) only adds cache entries: it takes no lock and clears nothing; the whole run
    /// after it claims OUT_DIR.
    static func claimOutput(_ outDir: URL, part: RunPart) throws -> OutputFolder? {
        let folder = part == .whole ? try OutputFolder(claiming: outDir) : nil
        if folder == nil { try AtomicFile.createDirectory(outDir) }
        return folder
    }

    /// The stage cache of OUT_DIR, keyed by version, effective config and input checksums.
    static func openCache(outDir: URL, config: RunConfig, inputs: [InputFile], options: RunOptions) throws -> StageCache {
        try StageCache(outDir: outDir, key: StageCache.key(
            version: HeatFrontVersion.string, config: try config.canonicalJSON() + "\(options.registrationOnly)",
            inputs: inputs), force: options.force)
    }

    /// The run's effective config and frame table, as the run itself reads them (docs/user-guide.md,
    /// "The run folder"), with its errors: `heatfront submit` sizes runs and rejects bad ones with this too.
    /// - Throws: `PipelineError` naming the file: an invalid config, nothing to analyse.
    public static func scan(runDir: URL, outDir: URL, options: RunOptions) throws -> (RunConfig, FrameTable) {
        let table: FrameTable
        var config: RunConfig
        do {
            config = try RunFolder.loadConfig(runDir: runDir, configURL: options.configURL)
            if let mode = options.mode { config.registrationMode = mode }
            table = try RunFolder.scan(runDir, config: config, heatingLog: options.heatingLog, exclude: [outDir])
        } catch let e as RunConfigError {
            throw PipelineError.invalidConfig(e.description)
        } catch let e as HeatingLogError {
            throw PipelineError.invalidConfig(e.description)
        } catch let e as FrameIOError {
            throw PipelineError.nothingToAnalyse(e.description)
        }
        guard table.records.contains(where: { $0.status == .ok }) else {
            let why = table.records.isEmpty ? "no frame files" : "no readable frame (\(table.records.count) unreadable or rejected)"
            throw PipelineError.nothingToAnalyse("\(runDir.path): \(why)")
        }
        return (config, table)
    }

    /// Every file the run's results come from: frame files with a frame of the run's size,
    /// the config and the heating log. Unreadable and size-rejected files are not hashed:
    /// they add nothing to the results, and one may be a sparse file that only claims
    /// terabytes (frames.csv lists them).
    public static func inputPaths(_ table: FrameTable, runDir: URL, options: RunOptions) -> [String] {
        var paths = Set(table.records.filter { $0.status.isOK }.map(\.file))
        let root = runDir.standardizedFileURL.path + "/"
        for absolute in [table.heatingLog, options.configURL?.standardizedFileURL.path].compactMap({ $0 }) {
            paths.insert(absolute.hasPrefix(root) ? String(absolute.dropFirst(root.count)) : absolute)
        }
        if options.configURL == nil, FileManager.default.fileExists(atPath: runDir.appendingPathComponent("heatfront.yaml").path) {
            paths.insert("heatfront.yaml")
        }
        return paths.sorted()
    }

    /// Positions (in the sequence of ok frames) of each step's frames.
    static func stepGroups(_ table: FrameTable, ok: [Int]) -> [[Int]] {
        let position = Dictionary(uniqueKeysWithValues: ok.enumerated().map { ($1, $0) })
        return table.steps.map { $0.frameIndices.compactMap { position[$0] } }
    }

    /// The step nearest in time to a frame; nil when the run has no step at all.
    static func nearestStep(to frame: Int, table: FrameTable) -> Int? {
        let t = table.records[frame].timeS
        return table.steps.indices.min { a, b in
            stepDistance(table.steps[a], t, table) < stepDistance(table.steps[b], t, table)
        }
    }

    private static func stepDistance(_ s: TemperatureStep, _ t: Double, _ table: FrameTable) -> Double {
        s.frameIndices.map { abs(table.records[$0].timeS - t) }.min() ?? .infinity
    }
}

/// What the stages after registration read: the run's table and config, its frames
/// (`ok`: the indices of the decodable ones, in sequence order) and their registration.
struct RunContext {
    let table: FrameTable
    let config: RunConfig
    let frames: RunFrames
    let ok: [Int]
    let registered: RegistrationStage.Result
    let options: RunOptions
    let cache: StageCache
    let progress: ProgressReporter
    let cancel: Cancellation
}

/// What the per-step stages found: each step's analysis of its average (nil where skipped),
/// the front's one boundary, and each step's row of steps.csv.
struct AnalysedSteps {
    var analyses: [StepAnalysis?] = []
    var boundary: LineSegment? = nil
    var steps: [StepResult] = []
}

extension RunContext {
    /// One result per frame with its registration: shift and score, or the reason it was rejected.
    func registeredResults() -> [FrameResult] {
        var results = table.records.map { FrameResult(frameIndex: $0.frameIndex, status: $0.status) }
        var rejected = 0
        for (p, f) in ok.enumerated() {
            let s = registered.shifts[p]
            // A rejected frame's shift was not measured: its cells stay empty.
            results[f].shiftX = s.rejection == nil ? s.dx : nil
            results[f].shiftY = s.rejection == nil ? s.dy : nil
            results[f].score = s.score
            if let why = s.rejection {
                results[f].status = .rejected(why)
                rejected += 1
                // Each rejected frame named, ten at most (frames.csv lists them all).
                if rejected <= 10 { progress.warn("frame \(f) (\(table.records[f].file)): rejected, \(why)") }
            }
        }
        if rejected > 10 { progress.warn("… and \(rejected - 10) more frames rejected by registration, listed in frames.csv") }
        return results
    }

    /// The run's summary as registration leaves it: inputs, start time, frames used.
    func startSummary(runDir: URL, inputs: [InputFile], started: Date, results: [FrameResult]) -> RunSummary {
        var summary = RunSummary(table: table, runDir: runDir, config: config, inputs: inputs)
        summary.startedAt = ISO8601DateFormatter().string(from: started)
        summary.nUsed = results.filter { $0.status.isOK }.count
        return summary
    }

    /// The registration facts and this run's warnings (those after `earlierWarnings`: a batch
    /// shares one reporter) into the summary.
    func completeSummary(_ summary: inout RunSummary, earlierWarnings: Int) {
        summary.registration = registered.summary
        if summary.registration.columnPrecisionRigidPm == nil, config.registrationMode == .nonrigid {
            progress.warn("non-rigid registration: column precision could not be compared (no lattice found)")
        }
        summary.warnings = table.warnings + progress.warnings.dropFirst(earlierWarnings).filter { !table.warnings.contains($0) }
    }

    /// Each step's average analysed (`StepAnalysis`), steps in parallel; a step without a
    /// lattice of its own (fully rock salt) then borrows the previous step's, in order.
    func analyseSteps(summary: inout RunSummary) throws -> [StepAnalysis?] {
        let averages = registered.averages, pixelSize = table.pixelSizeNm, stepConfig = config
        var outcomes = ResultSlots<Result<StepAnalysis, StepSkipped>>.map(table.steps.count) { k in
            Result { () throws(StepSkipped) in
                try StepAnalysis.analyse(average: averages[k], config: stepConfig, pixelSizeNm: pixelSize, previous: nil)
            }
        }
        for k in outcomes.indices {
            guard case .failure(let skipped) = outcomes[k], skipped.lattice == nil,
                  let previous = outcomes[..<k].lazy.compactMap({ try? $0.get() }).last?.lattice else { continue }
            outcomes[k] = Result { () throws(StepSkipped) in
                try StepAnalysis.analyse(average: averages[k], config: config, pixelSizeNm: pixelSize, previous: previous)
            }
        }
        for (k, outcome) in outcomes.enumerated() {
            if case .failure(let skipped) = outcome {
                progress.warn("step \(k): \(skipped.reason); intensities and front not measured")
            }
        }
        summary.lattice = LatticeSummary(outcomes, pixelSizeNm: pixelSize, contrast: config.contrast)
        return outcomes.map { try? $0.get() }
    }

    /// The front's boundary: from the config, else detected once, on the last step with rock
    /// salt, and kept for the whole run so every position has one origin. Each step's front and
    /// rock-salt area (boundary to fitted front midpoint) are then located from that one boundary.
    func locateFronts(_ analyses: inout [StepAnalysis?]) throws -> LineSegment? {
        let boundary = config.frontBoundary ?? analyses.reversed().lazy.compactMap { $0?.detectedBoundary }.first
        guard let boundary else { return nil }
        let located = analyses   // the steps' fronts fitted in parallel
        let fronts = ResultSlots<FrontMeasurement?>.map(located.count) { k in
            located[k].map { FrontLocator.locate($0.orderParameter, phase: $0.phase, boundary: boundary) }
        }
        for k in analyses.indices {
            guard analyses[k] != nil, let front = fronts[k] else { continue }
            analyses[k]!.front = front
            if front.positionPx != nil { analyses[k]!.phase.rocksaltFraction = front.rocksaltFraction }
        }
        return boundary
    }

    /// Each step's frames measured (`FrameMeasurement`), streamed step by step and cached per
    /// step: only the steps this part of the run measures. Returns each step's moving front.
    func measureSteps(_ analysed: AnalysedSteps, results: inout [FrameResult]) throws -> [StoredFront?] {
        progress.begin("measure", total: ok.count)
        var fronts = [StoredFront?](repeating: nil, count: table.steps.count)
        for k in table.steps.indices where options.part.measures(step: k) {
            try cancel.throwIfCancelled()
            let members = table.steps[k].frameIndices.filter { results[$0].status.isOK }
            let measured: StepFrames
            if let cached = cache.load(StepFrames.self, "step_\(k)_frames") {
                measured = cached
            } else {
                measured = try FrameMeasurement.measure(members, times: members.map { table.records[$0].timeS },
                                                        frames: frames, okIndices: ok,
                                                        shifts: registered.shifts, fields: registered.fields,
                                                        analysis: analysed.analyses[k],
                                                        boundary: analysed.boundary, jobs: options.jobs, cancel: cancel)
                try cache.store(measured, "step_\(k)_frames")
            }
            for m in measured.frames { results[m.frameIndex].merge(m) }
            fronts[k] = measured.front
            progress.advance(by: members.count)
        }
        return fronts
    }

    /// Ramp frames (step -1): measured with the sites of the nearest step in time.
    func measureRamp(_ analysed: AnalysedSteps, results: inout [FrameResult]) throws {
        let ramp = table.records.filter { $0.stepIndex < 0 && results[$0.frameIndex].status.isOK }.map(\.frameIndex)
        guard !ramp.isEmpty else { return }
        let rampFrames = try cache.load(StepFrames.self, "ramp_frames") ?? {
            var all = StepFrames(frames: [])
            for f in ramp {
                // Without any step (no hold in the log) there are no sites to measure at.
                let analysis = RunPipeline.nearestStep(to: f, table: table).flatMap { analysed.analyses[$0] }
                let m = try FrameMeasurement.measure([f], times: [table.records[f].timeS], frames: frames,
                                                     okIndices: ok, shifts: registered.shifts,
                                                     fields: registered.fields, analysis: analysis, boundary: analysed.boundary,
                                                     jobs: 1, cancel: cancel)
                all.frames += m.frames
            }
            try cache.store(all, "ramp_frames")
            return all
        }()
        for m in rampFrames.frames { results[m.frameIndex].merge(m) }
        progress.advance(by: ramp.count)
    }

    /// Kinetics per step (`StepKinetics`) and over the run (`RunSummary.addKinetics`).
    func kinetics(_ analysed: AnalysedSteps, fronts: [StoredFront?], results: [FrameResult],
                  summary: inout RunSummary) -> [StepResult] {
        let analyses = analysed.analyses
        let steps = StepKinetics.pooled(table.steps.indices.map { k in
            StepKinetics.assemble(k, table: table, results: results, analysis: analyses[k], front: fronts[k])
        })
        let ratios = table.steps.map { st in st.frameIndices.filter { results[$0].status.isOK }.compactMap { results[$0].liTmRatio } }
        for w in summary.addKinetics(steps: steps, ratios: ratios, hasFront: analyses.map { $0?.front?.positionPx != nil }) {
            progress.warn(w)
        }
        if let boundary = analysed.boundary, analyses.contains(where: { $0?.front?.positionPx != nil }) {
            summary.frontBoundary = boundary
            summary.frontDirection = analyses.lazy.compactMap { $0?.front }.first { $0.positionPx != nil }?.direction
        }
        return steps
    }

    /// Every output: averages, stacks, fields, tables, step details, figures and report, then
    /// stale files removed and summary.json written last, with the timings.
    func writeOutputs(to folder: OutputFolder, results: [FrameResult], analysed: AnalysedSteps,
                      summary: inout RunSummary, clock: inout StageClock) throws {
        let outputs = RunOutputs(folder: folder, table: table)
        try writeResults(outputs, results: results, analysed: analysed, summary: &summary)
        clock.lap("outputs")
        folder.removeStale()
        summary.timings = clock.laps
        summary.peakMemoryMB = ResourceUsage.peakMemoryMB()
        try outputs.writeSummary(summary)
    }

    /// Every output but summary.json. Figure warnings are added to `summary`.
    func writeResults(_ outputs: RunOutputs, results: [FrameResult], analysed: AnalysedSteps,
                      summary: inout RunSummary) throws {
        try outputs.writeAverages(registered.averages, pixelSizeNm: table.pixelSizeNm)
        if !options.registrationOnly {   // `register` writes frames.csv and aligned/ only (docs/outputs.md)
            try outputs.writeStacks(frames, ok: ok, results: results, shifts: registered.shifts, fields: registered.fields,
                                    jobs: options.jobs, cancel: cancel)
        }
        if options.exportFields {
            try outputs.writeFields(registered.fields, shifts: registered.shifts, frameIndices: ok)
        }
        try outputs.writeFrames(results, registrationOnly: options.registrationOnly)
        guard !options.registrationOnly else { return }
        try outputs.writeSteps(analysed.steps)
        try outputs.writeStepDetails(analysed.analyses, averages: registered.averages, pixelSizeNm: table.pixelSizeNm,
                                     config: config, boundary: analysed.boundary)
        let figureWarnings = try outputs.writePlotsAndReport(results: results, steps: analysed.steps,
                                                            averages: registered.averages, summary: summary)
        for w in figureWarnings { progress.warn(w) }
        summary.warnings += figureWarnings.filter { !summary.warnings.contains($0) }
    }
}

extension RunConfig {
    /// The effective config as sorted-key JSON: part of the cache key.
    func canonicalJSON() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}

/// Wall-clock time per stage, for `summary.json`'s `timings_s`.
struct StageClock {
    private var last = Date()
    private(set) var laps: [String: Double] = [:]
    mutating func lap(_ stage: String) {
        let now = Date()
        laps[stage, default: 0] += now.timeIntervalSince(last)
        last = now
        StageCPU.shared.lap(stage)
    }
}
