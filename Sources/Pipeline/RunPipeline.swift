import Foundation
import FrameCore
import FrameIO
import Registration
import ColumnIntensities
import FrontTracking

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

/// Why a run could not be analysed at all (run contract: one clear line, non-zero exit).
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

/// The run: every stage chained, from a run folder to the outputs of run contract §2.
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
        if OutputFolder.isRunFolder(outDir, runDir: runDir) {
            throw PipelineError.usage("--out \(outDir.path) is the run folder itself: its outputs would be read as frames by the next run; choose another folder (a sub-folder is fine)")
        }
        // The build digest (part of the cache key) is read meanwhile, off the critical path.
        DispatchQueue.global().async { _ = StageCache.build }

        // 1. Config and frame table (contract §1).
        let (config, table) = try scan(runDir: runDir, outDir: outDir, options: options)
        clock.lap("scan")
        let ok = table.records.filter { $0.status == .ok }.map(\.frameIndex)
        for w in table.warnings { progress.warn(w) }
        // A part of a split run (a cluster's step tasks run side by side) only adds cache
        // entries: it takes no lock and clears nothing; the whole run after it claims OUT_DIR.
        let folder = options.part == .whole ? try OutputFolder(claiming: outDir) : nil
        if folder == nil { try AtomicFile.createDirectory(outDir) }

        // 2. Inputs and the cache key.
        let inputs = InputFile.checksums(inputPaths(table, runDir: table.runDir, options: options), in: table.runDir)
        let cache = try StageCache(outDir: outDir, key: StageCache.key(
            version: HeatFrontVersion.string, config: try config.canonicalJSON() + "\(options.registrationOnly)",
            inputs: inputs), force: options.force)
        clock.lap("checksums")
        try cancel.throwIfCancelled()

        // 3. Registration: frames within each step to each other, steps to one run reference.
        let frames = RunFrames(table: table, indices: ok)
        let groups = stepGroups(table, ok: ok)
        let registered = try register(frames, groups: groups, table: table, config: config,
                                      cache: cache, progress: progress)
        clock.lap("registration")
        try cancel.throwIfCancelled()

        var results = table.records.map { FrameResult(frameIndex: $0.frameIndex, status: $0.status.text) }
        var rejected = 0
        for (p, f) in ok.enumerated() {
            let s = registered.shifts[p]
            // A rejected frame's shift was not measured: its cells stay empty.
            results[f].shiftX = s.rejection == nil ? s.dx : nil
            results[f].shiftY = s.rejection == nil ? s.dy : nil
            results[f].score = s.score
            if let why = s.rejection {
                results[f].status = "rejected:\(why)"
                rejected += 1
                // Each rejected frame named, ten at most (frames.csv lists them all).
                if rejected <= 10 { progress.warn("frame \(f) (\(table.records[f].file)): rejected, \(why)") }
            }
        }
        if rejected > 10 { progress.warn("… and \(rejected - 10) more frames rejected by registration, listed in frames.csv") }

        var summary = RunSummary(table: table, runDir: runDir, config: config, inputs: inputs)
        summary.startedAt = ISO8601DateFormatter().string(from: started)
        summary.nUsed = results.filter { $0.status == "ok" }.count
        if options.part == .registration { return summary }

        // 4. Per step: lattice, crystal region, column sites, phase map of the aligned average.
        var steps: [StepResult] = []
        var analyses: [StepAnalysis?] = []
        var boundary: LineSegment? = nil
        if !options.registrationOnly {
            // Steps in parallel; a step without a lattice of its own (fully rock salt) then
            // borrows the previous step's, in order.
            let averages = registered.averages, pixelSize = table.pixelSizeNm, stepConfig = config
            var outcomes = try ResultSlots<Result<StepAnalysis, StepSkipped>>.map(table.steps.count) { k in
                Result { () throws(StepSkipped) in
                    try StepAnalysis.analyse(average: averages[k], config: stepConfig, pixelSizeNm: pixelSize, previous: nil)
                }
            }
            // A step without a lattice of its own (fully rock salt) borrows the previous step's, in order.
            for k in outcomes.indices {
                guard case .failure(let skipped) = outcomes[k], skipped.lattice == nil,
                      let previous = outcomes[..<k].lazy.compactMap({ try? $0.get() }).last?.lattice else { continue }
                outcomes[k] = Result { () throws(StepSkipped) in
                    try StepAnalysis.analyse(average: averages[k], config: config, pixelSizeNm: pixelSize, previous: previous)
                }
            }
            analyses = outcomes.map { try? $0.get() }
            for (k, outcome) in outcomes.enumerated() {
                if case .failure(let skipped) = outcome {
                    progress.warn("step \(k): \(skipped.reason); intensities and front not measured")
                }
            }
            summary.lattice = LatticeSummary(outcomes, pixelSizeNm: pixelSize, contrast: config.contrast)
            clock.lap("step analysis")

            // The front's boundary: from the config, else detected once, on the last step with
            // rock salt, and kept for the whole run so every position has one origin.
            boundary = config.frontBoundary ?? analyses.reversed().lazy.compactMap { $0?.detectedBoundary }.first
            // Each step's rock-salt area, boundary to fitted front midpoint, from that one boundary.
            if let boundary {
                for k in analyses.indices {
                    guard let a = analyses[k] else { continue }
                    let front = FrontLocator.locate(a.orderParameter, phase: a.phase, boundary: boundary)
                    analyses[k]!.front = front
                    if front.positionPx != nil { analyses[k]!.phase.rocksaltFraction = front.rocksaltFraction }
                }
            }

            // 5. Per frame, streamed step by step: aligned frame → intensities → front.
            progress.begin("measure", total: ok.count)
            var fronts = [StoredFront?](repeating: nil, count: table.steps.count)
            for k in table.steps.indices where options.part.measures(step: k) {
                try cancel.throwIfCancelled()
                let members = table.steps[k].frameIndices.filter { results[$0].status == "ok" }
                let measured: StepFrames
                if let cached = cache.load(StepFrames.self, "step_\(k)_frames") {
                    measured = cached
                } else {
                    measured = try FrameMeasurement.measure(members, times: members.map { table.records[$0].timeS },
                                                            frames: frames, okIndices: ok,
                                                            shifts: registered.shifts, fields: registered.fields,
                                                            analysis: analyses[k],
                                                            boundary: boundary, jobs: options.jobs, cancel: cancel)
                    try cache.store(measured, "step_\(k)_frames")
                }
                for m in measured.frames { results[m.frameIndex].merge(m) }
                fronts[k] = measured.front
                progress.advance(by: members.count)
            }
            if case .steps = options.part { return summary }
            // Ramp frames (step -1): measured with the sites of the nearest step in time.
            let ramp = table.records.filter { $0.stepIndex < 0 && results[$0.frameIndex].status == "ok" }.map(\.frameIndex)
            if !ramp.isEmpty {
                let rampFrames = try cache.load(StepFrames.self, "ramp_frames") ?? {
                    var all = StepFrames(frames: [])
                    for f in ramp {
                        // Without any step (no hold in the log) there are no sites to measure at.
                        let analysis = nearestStep(to: f, table: table).flatMap { analyses[$0] }
                        let m = try FrameMeasurement.measure([f], times: [table.records[f].timeS], frames: frames,
                                                             okIndices: ok, shifts: registered.shifts,
                                                             fields: registered.fields, analysis: analysis, boundary: boundary, jobs: 1,
                                                             cancel: cancel)
                        all.frames += m.frames
                    }
                    try cache.store(all, "ramp_frames")
                    return all
                }()
                for m in rampFrames.frames { results[m.frameIndex].merge(m) }
                progress.advance(by: ramp.count)
            }
            clock.lap("frame measurement")

            // 6. Kinetics per step and over the run.
            steps = table.steps.indices.map { k in
                StepKinetics.assemble(k, table: table, results: results, analysis: analyses[k], front: fronts[k])
            }
            let ratios = table.steps.map { st in st.frameIndices.filter { results[$0].status == "ok" }.compactMap { results[$0].liTmRatio } }
            for w in summary.addKinetics(steps: steps, ratios: ratios, hasFront: analyses.map { $0?.front?.positionPx != nil }) {
                progress.warn(w)
            }
            if let boundary, analyses.contains(where: { $0?.front?.positionPx != nil }) {
                summary.frontBoundary = boundary
                summary.frontDirection = analyses.lazy.compactMap { $0?.front }.first { $0.positionPx != nil }?.direction
            }
            clock.lap("kinetics")
        }

        // 7. Outputs, each written atomically; summary.json last, so its presence marks a finished run.
        summary.registration = registered.summary
        if summary.registration.columnPrecisionRigidPm == nil, config.registrationMode == .nonrigid {
            progress.warn("non-rigid registration: column precision could not be compared (no lattice found)")
        }
        summary.warnings = table.warnings + progress.warnings.dropFirst(earlierWarnings).filter { !table.warnings.contains($0) }
        guard let folder else { return summary }
        let outputs = RunOutputs(folder: folder, table: table)
        try outputs.writeAverages(registered.averages, pixelSizeNm: table.pixelSizeNm)
        if !options.registrationOnly {   // `register` writes frames.csv and aligned/ (run contract §6)
            try outputs.writeStacks(frames, ok: ok, results: results, shifts: registered.shifts, fields: registered.fields,
                                    jobs: options.jobs, cancel: cancel)
        }
        if options.exportFields {
            try outputs.writeFields(registered.fields, shifts: registered.shifts, frameIndices: ok)
        }
        try outputs.writeFrames(results, registrationOnly: options.registrationOnly)
        if !options.registrationOnly {
            try outputs.writeSteps(steps)
            try outputs.writeStepDetails(analyses, averages: registered.averages, pixelSizeNm: table.pixelSizeNm,
                                         config: config, boundary: boundary)
            let figureWarnings = try outputs.writePlotsAndReport(results: results, steps: steps, averages: registered.averages,
                                                                summary: summary)
            for w in figureWarnings { progress.warn(w) }
            summary.warnings += figureWarnings.filter { !summary.warnings.contains($0) }
        }
        clock.lap("outputs")
        folder.removeStale()
        summary.timings = clock.laps
        summary.peakMemoryMB = ResourceUsage.peakMemoryMB()
        try outputs.writeSummary(summary)
        return summary
    }

    /// The run's effective config and frame table, as the run itself reads them (run contract
    /// §1), with its errors: `heatfront submit` sizes runs and rejects bad ones with this too.
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

    /// The rigid part of the registration stage on a run folder, nothing cached or written:
    /// scan, decode, register, per-step averages. `scripts/bench-rigid.sh` times it beside
    /// the scikit-image baseline, which does the same work and no more.
    public static func alignRigid(runDir: URL) throws -> (shifts: [FrameShift], averages: [AlignedAverage]) {
        let config = try RunFolder.loadConfig(runDir: runDir, configURL: nil)
        let table = try RunFolder.scan(runDir, config: config)
        let ok = table.records.filter { $0.status == .ok }.map(\.frameIndex)
        let frames = RunFrames(table: table, indices: ok)
        let aligned = try alignRigid(frames, groups: stepGroups(table, ok: ok),
                                     band: correlationBand(frames, table: table, config: config), table: table, config: config)
        return (aligned.shifts, aligned.averages)
    }

    /// Rigid registration of the run's frames as one time-ordered sequence, then each step's
    /// average on the run reference.
    /// `slips`: positions in `frames` of the frames after a link whose jump against the drift
    /// of their neighbours is a lattice vector (`AliasContinuity`), with that vector.
    static func alignRigid(_ frames: RunFrames, groups: [[Int]], band: CorrelationBand, table: FrameTable, config: RunConfig) throws
        -> (shifts: [FrameShift], averages: [AlignedAverage], slips: [AliasContinuity.Slip]) {
        let options = rigidOptions(config: config, band: band)
        var shifts = try RigidRegistration.alignRunShifts(frames, groups: [Array(0..<frames.count)], options: options)
        // Frames whose drift wanders within them enough to bias a whole-frame correlation:
        // each shift as the mean over its scan lines, measured band by band (DriftPathRefinement).
        let times = frames.records.map(\.timeS)
        let duration = frames.records.first.map { $0.midAcquisitionOffsetS > 0 ? 2 * $0.midAcquisitionOffsetS : 0 } ?? 0
        let frameS = duration > 0 ? duration : (zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 0 }.min() ?? 0)
        let wander = DriftPathRefinement.expectedWanderPx(positions: shifts.map { $0.isUsed ? SIMD2($0.dx, $0.dy) : nil },
                                                          times: times, frameDurationS: frameS) ?? 0
        func averages() throws -> [AlignedAverage] {
            try groups.map { members in
                try StackAverage.average(frames, indices: members, shifts: members.map { shifts[$0] }, interpolation: .bicubic)
            }
        }
        var stepAverages = try averages()
        // The first step's average stands for the content of every step (one costs a few ms).
        let bias = groups.indices.first { !groups[$0].isEmpty }.map { k in
            DriftPathRefinement.expectedBiasPx(wander: wander, average: stepAverages[k], shifts: groups[k].map { shifts[$0] })
        } ?? 0
        if bias >= DriftPathRefinement.biasThresholdPx {
            shifts = try DriftPathRefinement.refine(frames, shifts: shifts)
            stepAverages = try averages()
        }
        let slips = AliasContinuity.slips(positions: shifts.map { $0.isUsed ? SIMD2($0.dx, $0.dy) : nil }, times: times,
                                          latticeVectors: aliasLatticeVectors(frames, table: table, config: config))
        return (shifts, stepAverages, slips)
    }

    /// Rigid registration's settings for a run: the config's, with the band it correlates.
    static func rigidOptions(config: RunConfig, band: CorrelationBand) -> RigidOptions {
        var options = RigidOptions()
        options.maxShiftPx = config.maxShiftPx
        options.bandPassLow = band.low
        options.bandPassHigh = band.high
        options.notches = band.notches
        options.notchWidth = band.notchWidth
        return options
    }

    /// The TM lattice's basis (px) in the run's first frame, for the alias-slip check: its
    /// central 256² (still a dozen periods at 1024²), the whole frame if the centre shows none.
    static func aliasLatticeVectors(_ frames: RunFrames, table: FrameTable, config: RunConfig) -> [SIMD2<Double>] {
        func lattice(_ image: Image) -> Lattice? {
            try? LatticeFinder.find(in: image, pixelSizeNm: table.pixelSizeNm, layerSpacingNm: config.layerSpacingNm)
        }
        guard let first = try? frames.image(at: 0),
              let lattice = lattice(first.cropped(x0: (first.width - 256) / 2, y0: (first.height - 256) / 2,
                                                  x1: (first.width + 256) / 2, y1: (first.height + 256) / 2)) ?? lattice(first)
        else { return [] }
        return [lattice.tmBasis.a1, lattice.tmBasis.a2]
    }

    /// The band registration correlates: the config's, else chosen from the run's first frame
    /// (`CorrelationBand`), from the layered lattice where the frame shows one.
    static func correlationBand(_ frames: RunFrames, table: FrameTable, config: RunConfig) -> CorrelationBand {
        var band = CorrelationBand(low: 0.01, high: 0.25)
        if let first = try? frames.image(at: 0) {
            let layered = LayeredProjectionCheck.highestLayeredReflection(in: first, pixelSizeNm: table.pixelSizeNm,
                                                                          layerSpacingNm: config.layerSpacingNm)
            band = CorrelationBand.choose(for: first, layeredReflection: layered)
        }
        if let user = config.registrationBand { band.low = user.low; band.high = user.high; band.source = .config }
        return band
    }

    struct Registered {
        var shifts: [FrameShift]
        var averages: [AlignedAverage]
        /// Non-rigid mode: each used frame's scan-distortion field, by sequence position.
        var fields: [Int: ScanDistortionField]
        var summary: RegistrationSummary
    }

    /// Registration, cached as one stage. Rigid: the whole run is aligned as one sequence in
    /// time order, so neighbouring frames chain across steps and ramps (averages of different
    /// steps differ in contrast as the front moves, and drift between them can approach a
    /// lattice period, where correlating averages aliases). Then each step's frames are
    /// averaged. Non-rigid mode then corrects each step's frames against its average.
    static func register(_ frames: RunFrames, groups: [[Int]], table: FrameTable, config: RunConfig,
                         cache: StageCache, progress: ProgressReporter) throws -> Registered {
        struct Cached: Codable {
            var dx, dy, score: [Double]
            var rejection: [String?]
            var counts: [Int]
            var fields: [Int: ScanDistortionField]
            /// Warnings the stage raised, replayed when it is reused so summary.json is the same.
            var warnings: [String]
            var band: CorrelationBand
            /// Frames after a suspected lattice-alias slip.
            var slipFrames: [Int]? = nil
        }
        if let c = cache.load(Cached.self, "registration"),
           let avgs = try? groups.indices.map({ k -> AlignedAverage in
               guard let img = cache.loadImage("step_\(k)_average"), let w = cache.loadImage("step_\(k)_weight")
               else { throw CocoaError(.fileNoSuchFile) }
               return AlignedAverage(image: img, weight: w, frameCount: c.counts[k])
           }) {
            let shifts = c.dx.indices.map { FrameShift(dx: c.dx[$0], dy: c.dy[$0], score: c.score[$0], rejection: c.rejection[$0]) }
            progress.log("registration: reused from cache")
            for w in c.warnings { progress.warn(w) }
            return Registered(shifts: shifts, averages: avgs, fields: c.fields,
                              summary: registrationSummary(config: config, band: c.band, fields: c.fields, slipFrames: c.slipFrames ?? [],
                                                           precision: cache.load([Double].self, "registration_precision") ?? [],
                                                           pixelSizeNm: table.pixelSizeNm))
        }
        progress.begin("registration", total: frames.count)
        let band = correlationBand(frames, table: table, config: config)
        let aligned = try alignRigid(frames, groups: groups, band: band, table: table, config: config)
        let shifts = aligned.shifts
        var averages = aligned.averages
        progress.advance(by: frames.count)
        var fields: [Int: ScanDistortionField] = [:]
        var precision: (rigid: [Double], nonrigid: [Double]) = ([], [])
        var warnings: [String] = aligned.slips.map { slip in
            String(format: "frame %d: registered position jumps by a lattice vector (%.1f, %.1f) px from the frame before it, "
                   + "against the drift of their neighbours (%.0f σ): the frames from here on are likely one lattice alias off; "
                   + "check their shifts", frames.records[slip.after].frameIndex, slip.vector.x, slip.vector.y, slip.sigma)
        }
        let slipFrames = aligned.slips.map { frames.records[$0.after].frameIndex }
        if config.registrationMode == .nonrigid {
            /// TM column precision (px) of an average as `heatfront validate` scores it: the ideal
            /// lattice refitted to the refined sites, sites more than 5× the median residual away
            /// (misdetections at a front or a grain boundary) dropped once. The plain RMS over all
            /// sites is dominated by those few and would decide by them.
            func robustPrecision(_ image: Image) -> Double? {
                guard let lattice = try? LatticeFinder.find(in: image, pixelSizeNm: table.pixelSizeNm,
                                                            layerSpacingNm: config.layerSpacingNm) else { return nil }
                let region = CrystalRegion.detect(in: image, lattice: lattice)
                let sites = ColumnFinder.sites(in: image, lattice: lattice, region: region).tm
                let (a, b) = lattice.tmBasis
                let det = a.x * b.y - a.y * b.x
                guard sites.count >= 8, abs(det) > 1e-9 else { return nil }
                let rows = sites.map { s -> (Double, Double, SIMD2<Double>) in
                    let d = SIMD2(s.x, s.y) - lattice.origin
                    return (((d.x * b.y - d.y * b.x) / det).rounded(), ((a.x * d.y - a.y * d.x) / det).rounded(), SIMD2(s.x, s.y))
                }
                var keep = [Bool](repeating: true, count: rows.count), rms: Double?
                for _ in 0..<2 {
                    // Least squares p = o + i·a + j·b over the kept sites: 3×3 normal equations.
                    var m = [[Double]](repeating: [0, 0, 0], count: 3), v = [SIMD2<Double>](repeating: .zero, count: 3)
                    for (k, r) in rows.enumerated() where keep[k] {
                        let u = [1, r.0, r.1]
                        for p in 0..<3 { for q in 0..<3 { m[p][q] += u[p] * u[q] }; v[p] += u[p] * r.2 }
                    }
                    for c in 0..<3 {   // Gaussian elimination (symmetric positive definite)
                        guard abs(m[c][c]) > 1e-12 else { return nil }
                        for r in (c + 1)..<3 {
                            let f = m[r][c] / m[c][c]
                            for q in c..<3 { m[r][q] -= f * m[c][q] }
                            v[r] -= f * v[c]
                        }
                    }
                    var coef = [SIMD2<Double>](repeating: .zero, count: 3)
                    for c in stride(from: 2, through: 0, by: -1) {
                        var t = v[c]
                        for q in (c + 1)..<3 { t -= m[c][q] * coef[q] }
                        coef[c] = t / m[c][c]
                    }
                    let dist = rows.map { r -> Double in
                        let e = r.2 - (coef[0] + r.0 * coef[1] + r.1 * coef[2])
                        return (e * e).sum().squareRoot()
                    }
                    let kept = dist.indices.filter { keep[$0] }
                    guard !kept.isEmpty else { return nil }
                    rms = (kept.map { dist[$0] * dist[$0] }.reduce(0, +) / Double(kept.count)).squareRoot()
                    let median = dist.sorted()[dist.count / 2]
                    keep = dist.map { $0 < 5 * median }
                }
                return rms
            }
            progress.begin("non-rigid", total: frames.count)
            for (k, members) in groups.enumerated() where !members.isEmpty {
                let rigid = averages[k]
                let result = try NonrigidRegistration.correct(frames, indices: members, shifts: shifts, reference: rigid)
                let r = robustPrecision(rigid.image)
                let n = robustPrecision(result.average.image)
                if let r, let n { precision.rigid.append(r); precision.nonrigid.append(n) }
                // A correction that leaves the columns less regular than rigid alignment did is
                // not kept (low dose, or distortions outside the raster model).
                if let r, let n, n > r {
                    warnings.append(String(format: "step %d: non-rigid correction did not improve column precision "
                                           + "(%.3f px vs %.3f px rigid); rigid alignment kept", k, n, r))
                    continue
                }
                for (j, p) in members.enumerated() where shifts[p].isUsed { fields[p] = result.fields[j] }
                averages[k] = result.average
                progress.advance(by: members.count)
            }
        }
        try cache.store(Cached(dx: shifts.map(\.dx), dy: shifts.map(\.dy), score: shifts.map(\.score),
                               rejection: shifts.map(\.rejection), counts: averages.map(\.frameCount), fields: fields,
                               warnings: warnings, band: band, slipFrames: slipFrames), "registration")
        for w in warnings { progress.warn(w) }
        try cache.store(precision.rigid + precision.nonrigid, "registration_precision")
        let stored = averages
        _ = try ResultSlots<Void>.map(2 * stored.count) { i in
            let (k, a) = (i / 2, stored[i / 2])
            try i % 2 == 0 ? cache.storeImage(a.image, "step_\(k)_average") : cache.storeImage(a.weight, "step_\(k)_weight")
        }
        return Registered(shifts: shifts, averages: averages, fields: fields,
                          summary: registrationSummary(config: config, band: band, fields: fields, slipFrames: slipFrames,
                                                       precision: precision.rigid + precision.nonrigid, pixelSizeNm: table.pixelSizeNm))
    }

    /// Registration facts for `summary.json`: per-frame field statistics and, in non-rigid
    /// mode, the TM column precision of the step averages before and after (median over steps).
    /// `precision`: the steps' rigid precisions followed by their non-rigid ones (px).
    static func registrationSummary(config: RunConfig, band: CorrelationBand, fields: [Int: ScanDistortionField],
                                    slipFrames: [Int], precision p: [Double], pixelSizeNm: Double?) -> RegistrationSummary {
        var s = RegistrationSummary(mode: config.registrationMode, band: band)
        s.aliasSlipFrames = slipFrames
        guard config.registrationMode == .nonrigid else { return s }
        let stats = fields.keys.sorted().map { fields[$0]!.statistics }
        s.displacementRMSPx = stats.map(\.rms)
        s.displacementMaxPx = stats.map(\.max)
        if p.count >= 2, let nm = pixelSizeNm {
            let half = p.count / 2
            func median(_ v: ArraySlice<Double>) -> Double { let x = v.sorted(); return x[x.count / 2] }
            s.columnPrecisionRigidPm = median(p[..<half]) * nm * 1000
            s.columnPrecisionNonrigidPm = median(p[half...]) * nm * 1000
        }
        return s
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
