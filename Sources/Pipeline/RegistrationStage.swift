import Foundation
import FrameCore
import FrameIO
import RunSettings
import Registration
import ColumnIntensities

/// The registration stage of a run, cached as one stage. Rigid: the whole run is aligned as
/// one sequence in time order (`RigidRegistration`), so neighbouring frames chain across steps
/// and ramps (averages of different steps differ in contrast as the front moves, and drift
/// between them can approach a lattice period, where correlating averages aliases). Then each
/// step's frames are averaged. Non-rigid mode then corrects each step's frames against its
/// average (`NonrigidRegistration`) and keeps the correction where it makes the columns more
/// regular (`columnPrecision`).
public enum RegistrationStage {
    struct Result {
        var shifts: [FrameShift]
        var averages: [AlignedAverage]
        /// Non-rigid mode: each used frame's scan-distortion field, by sequence position.
        var fields: [Int: ScanDistortionField]
        var summary: RegistrationSummary
    }

    /// What the stage stores in the stage cache besides the step averages.
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

    /// TM column precision (px) of each step's average, rigid and non-rigid, in step order.
    struct PrecisionPairs {
        var rigid: [Double] = []
        var nonrigid: [Double] = []
        /// The cache's and `summary`'s layout: the rigid precisions followed by the non-rigid ones.
        var flattened: [Double] { rigid + nonrigid }
    }

    /// Registers `frames` (`groups`: each step's positions in them), reusing the cached stage
    /// when there is one; warnings go to `progress`.
    static func run(_ frames: RunFrames, groups: [[Int]], table: FrameTable, config: RunConfig,
                    cache: StageCache, progress: ProgressReporter) throws -> Result {
        if let reused = reuse(cache, groups: groups, table: table, config: config, progress: progress) { return reused }
        progress.begin("registration", total: frames.count)
        let band = correlationBand(frames, table: table, config: config)
        let aligned = try alignRigid(frames, groups: groups, band: band, table: table, config: config)
        let shifts = aligned.shifts
        var averages = aligned.averages
        progress.advance(by: frames.count)
        var fields: [Int: ScanDistortionField] = [:]
        var precision = PrecisionPairs()
        var warnings = aligned.slips.map { slipWarning($0, frames: frames) }
        warnings += aligned.outliers.map { "frame \(frames.records[$0.index].frameIndex): \($0.detail); rejected" }
        let slipFrames = aligned.slips.map { frames.records[$0.after].frameIndex }
        if config.registrationMode == .nonrigid {
            warnings += try correctNonrigid(frames, groups: groups, shifts: shifts, averages: &averages, fields: &fields,
                                            precision: &precision, table: table, config: config, progress: progress)
        }
        try cache.store(Cached(dx: shifts.map(\.dx), dy: shifts.map(\.dy), score: shifts.map(\.score),
                               rejection: shifts.map(\.rejection), counts: averages.map(\.frameCount), fields: fields,
                               warnings: warnings, band: band, slipFrames: slipFrames), "registration")
        for w in warnings { progress.warn(w) }
        try cache.store(precision.flattened, "registration_precision")
        try storeAverages(averages, cache: cache)
        return Result(shifts: shifts, averages: averages, fields: fields,
                      summary: summary(config: config, band: band, fields: fields, slipFrames: slipFrames,
                                       precision: precision.flattened, pixelSizeNm: table.pixelSizeNm))
    }

    /// The cached stage with its warnings replayed; nil when the cache holds none (or not all
    /// of its step averages).
    static func reuse(_ cache: StageCache, groups: [[Int]], table: FrameTable, config: RunConfig,
                      progress: ProgressReporter) -> Result? {
        guard let c = cache.load(Cached.self, "registration"),
              let averages = try? groups.indices.map({ k -> AlignedAverage in
                  guard let image = cache.loadImage("step_\(k)_average"), let weight = cache.loadImage("step_\(k)_weight")
                  else { throw CocoaError(.fileNoSuchFile) }
                  return AlignedAverage(image: image, weight: weight, frameCount: c.counts[k])
              }) else { return nil }
        let shifts = c.dx.indices.map { FrameShift(dx: c.dx[$0], dy: c.dy[$0], score: c.score[$0], rejection: c.rejection[$0]) }
        progress.log("registration: reused from cache")
        for w in c.warnings { progress.warn(w) }
        return Result(shifts: shifts, averages: averages, fields: c.fields,
                      summary: summary(config: config, band: c.band, fields: c.fields, slipFrames: c.slipFrames ?? [],
                                       precision: cache.load([Double].self, "registration_precision") ?? [],
                                       pixelSizeNm: table.pixelSizeNm))
    }

    /// Each step's average and weight map, into the cache side by side.
    static func storeAverages(_ averages: [AlignedAverage], cache: StageCache) throws {
        _ = try ResultSlots<Void>.map(2 * averages.count) { i in
            let (k, average) = (i / 2, averages[i / 2])
            try i % 2 == 0 ? cache.storeImage(average.image, "step_\(k)_average")
                           : cache.storeImage(average.weight, "step_\(k)_weight")
        }
    }

    static func slipWarning(_ slip: AliasContinuity.Slip, frames: RunFrames) -> String {
        String(format: "frame %d: registered position jumps by a lattice vector (%.1f, %.1f) px from the frame before it, "
               + "against the drift of their neighbours (%.0f σ): the frames from here on are likely one lattice alias off; "
               + "check their shifts", frames.records[slip.after].frameIndex, slip.vector.x, slip.vector.y, slip.sigma)
    }

    /// Non-rigid correction of each step's frames against its rigid average. A correction that
    /// leaves the columns less regular than rigid alignment did is not kept (low dose, or
    /// distortions outside the raster model): returns the warnings naming those steps.
    static func correctNonrigid(_ frames: RunFrames, groups: [[Int]], shifts: [FrameShift],
                                averages: inout [AlignedAverage], fields: inout [Int: ScanDistortionField],
                                precision: inout PrecisionPairs, table: FrameTable, config: RunConfig,
                                progress: ProgressReporter) throws -> [String] {
        var warnings: [String] = []
        progress.begin("non-rigid", total: frames.count)
        for (k, members) in groups.enumerated() where !members.isEmpty {
            let rigid = averages[k]
            let result = try NonrigidRegistration.correct(frames, indices: members, shifts: shifts, reference: rigid)
            let rigidPrecision = columnPrecision(of: rigid.image, table: table, config: config)
            let nonrigidPrecision = columnPrecision(of: result.average.image, table: table, config: config)
            if let rigidPrecision, let nonrigidPrecision {
                precision.rigid.append(rigidPrecision)
                precision.nonrigid.append(nonrigidPrecision)
                if nonrigidPrecision > rigidPrecision {
                    warnings.append(String(format: "step %d: non-rigid correction did not improve column precision "
                                           + "(%.3f px vs %.3f px rigid); rigid alignment kept", k, nonrigidPrecision, rigidPrecision))
                    continue
                }
            }
            for (j, p) in members.enumerated() where shifts[p].isUsed { fields[p] = result.fields[j] }
            averages[k] = result.average
            progress.advance(by: members.count)
        }
        return warnings
    }

    /// TM column precision (px) of an average as `heatfront validate` scores it: the RMS
    /// distance of the refined TM column sites from the best-fit ideal lattice (Jones et al.,
    /// Adv. Struct. Chem. Imaging 1 (2015) 8), with sites more than 5× the median distance
    /// away (misdetections at a front or a grain boundary) dropped once
    /// (`LatticePrecision.robustRMS`). The plain RMS over all sites is dominated by those few
    /// and would decide by them. Nil when the average shows no lattice or too few sites.
    static func columnPrecision(of image: Image, table: FrameTable, config: RunConfig) -> Double? {
        guard let lattice = try? LatticeFinder.find(in: image, pixelSizeNm: table.pixelSizeNm,
                                                    layerSpacingNm: config.layerSpacingNm) else { return nil }
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        let sites = ColumnFinder.sites(in: image, lattice: lattice, region: region).tm
        return LatticePrecision.robustRMS(sites, lattice: lattice)
    }

    /// Registration facts for `summary.json`: per-frame field statistics and, in non-rigid
    /// mode, the TM column precision of the step averages before and after (median over steps).
    /// `precision`: the steps' rigid precisions followed by their non-rigid ones (px).
    static func summary(config: RunConfig, band: CorrelationBand, fields: [Int: ScanDistortionField],
                        slipFrames: [Int], precision: [Double], pixelSizeNm: Double?) -> RegistrationSummary {
        var s = RegistrationSummary(mode: config.registrationMode, band: band)
        s.aliasSlipFrames = slipFrames
        guard config.registrationMode == .nonrigid else { return s }
        let stats = fields.keys.sorted().map { fields[$0]!.statistics }
        s.displacementRMSPx = stats.map(\.rms)
        s.displacementMaxPx = stats.map(\.max)
        if precision.count >= 2, let nm = pixelSizeNm {
            let half = precision.count / 2
            func median(_ v: ArraySlice<Double>) -> Double { let x = v.sorted(); return x[x.count / 2] }
            s.columnPrecisionRigidPm = median(precision[..<half]) * nm * 1000
            s.columnPrecisionNonrigidPm = median(precision[half...]) * nm * 1000
        }
        return s
    }
}

// MARK: - Rigid registration of a run

extension RegistrationStage {
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

    /// The band registration correlates: the config's, else chosen from the run's first frame
    /// (`CorrelationBand`), from the layered lattice where the frame shows one.
    static func correlationBand(_ frames: RunFrames, table: FrameTable, config: RunConfig) -> CorrelationBand {
        var band = CorrelationBand(low: CorrelationBand.defaultLow, high: CorrelationBand.defaultHigh)
        if let first = try? frames.image(at: 0) {
            let layered = LayeredProjectionCheck.highestLayeredReflection(in: first, pixelSizeNm: table.pixelSizeNm,
                                                                          layerSpacingNm: config.layerSpacingNm)
            band = CorrelationBand.choose(for: first, layeredReflection: layered)
        }
        if let user = config.registrationBand { band.low = user.low; band.high = user.high; band.source = .config }
        return band
    }

    /// The TM lattice's basis (px) in the run's first frame, for the alias-slip check: its
    /// central `CorrelationBand.spectrumCropPx`² (still a dozen periods at 1024²), the whole
    /// frame if the centre shows none.
    static func aliasLatticeVectors(_ frames: RunFrames, table: FrameTable, config: RunConfig) -> [SIMD2<Double>] {
        func lattice(_ image: Image) -> Lattice? {
            try? LatticeFinder.find(in: image, pixelSizeNm: table.pixelSizeNm, layerSpacingNm: config.layerSpacingNm)
        }
        let c = CorrelationBand.spectrumCropPx
        guard let first = try? frames.image(at: 0),
              let lattice = lattice(first.cropped(x0: (first.width - c) / 2, y0: (first.height - c) / 2,
                                                  x1: (first.width + c) / 2, y1: (first.height + c) / 2)) ?? lattice(first)
        else { return [] }
        return [lattice.tmBasis.a1, lattice.tmBasis.a2]
    }

    /// The rigid part of the registration stage on a run folder, nothing cached or written:
    /// scan, decode, register, per-step averages. `scripts/bench-rigid.sh` times it beside
    /// the scikit-image baseline, which does the same work and no more.
    public static func alignRigid(runDir: URL) throws -> (shifts: [FrameShift], averages: [AlignedAverage]) {
        let config = try RunFolder.loadConfig(runDir: runDir, configURL: nil)
        let table = try RunFolder.scan(runDir, config: config)
        let ok = table.records.filter { $0.status == .ok }.map(\.frameIndex)
        let frames = RunFrames(table: table, indices: ok)
        let aligned = try alignRigid(frames, groups: RunPipeline.stepGroups(table, ok: ok),
                                     band: correlationBand(frames, table: table, config: config), table: table, config: config)
        return (aligned.shifts, aligned.averages)
    }

    /// Rigid registration of the run's frames as one time-ordered sequence, then each step's
    /// average on the run reference.
    /// `slips`: positions in `frames` of the frames after a link whose jump against the drift
    /// of their neighbours is a lattice vector (`AliasContinuity`), with that vector.
    static func alignRigid(_ frames: RunFrames, groups: [[Int]], band: CorrelationBand, table: FrameTable, config: RunConfig) throws
        -> (shifts: [FrameShift], averages: [AlignedAverage], slips: [AliasContinuity.Slip],
            outliers: [RegistrationConsistency.Outlier]) {
        let options = rigidOptions(config: config, band: band)
        var shifts = try RigidRegistration.alignRunShifts(frames, groups: [Array(0..<frames.count)], options: options)
        // Frames whose drift wanders within them enough to bias a whole-frame correlation:
        // each shift as the mean over its scan lines, measured band by band (DriftPathRefinement).
        let times = frames.records.map(\.timeS)
        let wander = DriftPathRefinement.expectedWanderPx(positions: shifts.map { $0.isUsed ? SIMD2($0.dx, $0.dy) : nil },
                                                          times: times, frameDurationS: frameDurationS(frames)) ?? 0
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
        let lattice = aliasLatticeVectors(frames, table: table, config: config)
        // Frames whose registration disagrees with their neighbours' are rejected, not averaged.
        let outliers = RegistrationConsistency.outliers(positions: shifts.map { $0.isUsed ? SIMD2($0.dx, $0.dy) : nil },
                                                        scores: shifts.map(\.score), times: times, latticeVectors: lattice)
        for o in outliers { shifts[o.index].rejection = RegistrationConsistency.reason }
        if !outliers.isEmpty { stepAverages = try averages() }
        let slips = AliasContinuity.slips(positions: shifts.map { $0.isUsed ? SIMD2($0.dx, $0.dy) : nil }, times: times,
                                          latticeVectors: lattice)
        return (shifts, stepAverages, slips, outliers)
    }

    /// One frame's acquisition time (s): twice the mid-acquisition offset the decoder reports,
    /// else the shortest interval between frames; 0 when neither is known.
    static func frameDurationS(_ frames: RunFrames) -> Double {
        let times = frames.records.map(\.timeS)
        let duration = frames.records.first.map { $0.midAcquisitionOffsetS > 0 ? 2 * $0.midAcquisitionOffsetS : 0 } ?? 0
        return duration > 0 ? duration : (zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 0 }.min() ?? 0)
    }
}
