import Foundation
import FrameCore
import FrameIO
import RunSettings
import ColumnIntensities
import FrontTracking
import Registration

/// Registration facts for `summary.json`.
public struct RegistrationSummary: Sendable, Encodable {
    public var mode: String
    /// Per-frame displacement-field statistics (non-rigid mode): RMS and max, px.
    public var displacementRMSPx: [Double]? = nil
    public var displacementMaxPx: [Double]? = nil
    /// TM column precision of the step averages, rigid only vs with non-rigid correction, pm.
    public var columnPrecisionRigidPm: Double? = nil
    public var columnPrecisionNonrigidPm: Double? = nil
    /// `frame_index` of each frame whose registered position jumps by a lattice vector from
    /// the frame before it against the drift of their neighbours (a suspected lattice-alias
    /// slip, also listed in `warnings`); empty when every link agrees with the drift.
    public var aliasSlipFrames: [Int] = []
    /// The correlated band, [low, high] cycles/px, where it came from and the notched frequencies.
    var band: CorrelationBand

    init(mode: RegistrationMode, band: CorrelationBand) { self.mode = mode.rawValue; self.band = band }

    enum CodingKeys: String, CodingKey {
        case bandCyclesPerPx = "band_cycles_per_px", bandSource = "band_source", notches = "notches_cycles_per_px"
        case mode, displacementRMSPx = "displacement_rms_px", displacementMaxPx = "displacement_max_px"
        case columnPrecisionRigidPm = "column_precision_rigid_pm", columnPrecisionNonrigidPm = "column_precision_nonrigid_pm"
        case aliasSlipFrames = "alias_slip_frames"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(aliasSlipFrames, forKey: .aliasSlipFrames)
        try c.encode([band.low, band.high], forKey: .bandCyclesPerPx)
        try c.encode(band.source.rawValue, forKey: .bandSource)
        try c.encode(band.notches.map { [$0.x, $0.y] }, forKey: .notches)
        if let displacementRMSPx { try c.encode(displacementRMSPx, forKey: .displacementRMSPx) }
        if let displacementMaxPx { try c.encode(displacementMaxPx, forKey: .displacementMaxPx) }
        if let columnPrecisionRigidPm { try c.encode(columnPrecisionRigidPm, forKey: .columnPrecisionRigidPm) }
        if let columnPrecisionNonrigidPm { try c.encode(columnPrecisionNonrigidPm, forKey: .columnPrecisionNonrigidPm) }
    }
}

/// The layered lattice found in the run's first step that shows a lattice, and whether the
/// Li/TM model applies to it (`LayeredProjectionCheck`), for `summary.json`'s `lattice`.
struct LatticeSummary: Sendable, Encodable {
    var stepIndex: Int
    var layerSpacingPx: Double
    var layerSpacingNm: Double?
    /// In-plane column spacing; nil when the columns along the layers were not resolved.
    var columnSpacingPx: Double?
    var columnSpacingNm: Double?
    var layerAngleDeg: Double
    var stackingOffset: Double?
    var contrastSetting: String
    var contrast: String?
    var cellSkewness: Double?
    var tmSitesOnColumns: Double?
    var layeredLiTmRatio: Double?
    var layeredModelApplies: Bool
    var reason: String?

    init?(_ outcomes: [Result<StepAnalysis, StepSkipped>], pixelSizeNm: Double?, contrast setting: ColumnContrast) {
        var found: (Int, Lattice, LayeredProjectionCheck?, String?)? = nil
        for (k, o) in outcomes.enumerated() {
            switch o {
            case .success(let a): found = (k, a.lattice, a.check, nil)
            case .failure(let s): if let l = s.lattice { found = (k, l, s.check, s.reason) }
            }
            if found != nil { break }
        }
        guard let (k, lattice, check, reason) = found else { return nil }
        stepIndex = k
        layerSpacingPx = lattice.layerSpacingPx
        layerSpacingNm = pixelSizeNm.map { $0 * lattice.layerSpacingPx }
        columnSpacingPx = lattice.gColumn == nil ? nil : lattice.columnSpacingPx
        columnSpacingNm = columnSpacingPx.flatMap { c in pixelSizeNm.map { $0 * c } }
        layerAngleDeg = lattice.layerAngleDegrees
        stackingOffset = lattice.stackingOffset
        contrastSetting = setting.rawValue
        self.contrast = check?.contrast.rawValue
        cellSkewness = check?.cellSkewness
        tmSitesOnColumns = check?.tmSitesOnColumns
        layeredLiTmRatio = check?.layeredLiTmRatio
        layeredModelApplies = reason == nil
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case stepIndex = "step_index", layerSpacingPx = "layer_spacing_px", layerSpacingNm = "layer_spacing_nm"
        case columnSpacingPx = "column_spacing_px", columnSpacingNm = "column_spacing_nm"
        case layerAngleDeg = "layer_angle_deg", stackingOffset = "stacking_offset"
        case contrastSetting = "contrast_setting", contrast, cellSkewness = "cell_skewness"
        case tmSitesOnColumns = "tm_sites_on_columns", layeredLiTmRatio = "layered_li_tm_ratio"
        case layeredModelApplies = "layered_model_applies", reason
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stepIndex, forKey: .stepIndex)
        try c.encode(layerSpacingPx, forKey: .layerSpacingPx)
        try c.encode(layerSpacingNm, forKey: .layerSpacingNm)
        try c.encode(columnSpacingPx, forKey: .columnSpacingPx)
        try c.encode(columnSpacingNm, forKey: .columnSpacingNm)
        try c.encode(layerAngleDeg, forKey: .layerAngleDeg)
        try c.encode(stackingOffset, forKey: .stackingOffset)
        try c.encode(contrastSetting, forKey: .contrastSetting)
        try c.encode(contrast, forKey: .contrast)
        try c.encode(cellSkewness, forKey: .cellSkewness)
        try c.encode(tmSitesOnColumns, forKey: .tmSitesOnColumns)
        try c.encode(layeredLiTmRatio, forKey: .layeredLiTmRatio)
        try c.encode(layeredModelApplies, forKey: .layeredModelApplies)
        try c.encode(reason, forKey: .reason)
    }
}

/// `summary.json` (docs/outputs.md, "summary.json"). Every listed key is always present; unknown values are
/// `null`. Keys are sorted so that reruns write the same bytes, except the wall-clock fields
/// `timings_s`, `peak_memory_mb` and `started_at`.
public struct RunSummary: Sendable, Encodable {
    public var runDir: String
    public var nFrames: Int
    public var nUsed = 0
    public var pixelSizeNm: Double?
    public var pixelSizeSource: String
    public var timeSource: String
    public var temperatureSource: String
    public var frameWidth: Int
    public var frameHeight: Int
    public var nSteps: Int
    public var onsetTemperatureC: Double? = nil
    public var onsetStep: Int? = nil
    public var activationEnergyEV: Double? = nil
    public var activationEnergySEMEV: Double? = nil
    /// The Arrhenius fit behind them and the steps it used.
    public var activation: ArrheniusFit? = nil
    public var activationSteps: [Int] = []
    public var onsetTest: OnsetTest.Result? = nil
    /// The boundary the front positions are measured from, on the run's reference frame,
    /// and the unit direction they are measured along (into the grain).
    public var frontBoundary: LineSegment? = nil
    public var frontDirection: SIMD2<Double>? = nil
    public var warnings: [String] = []
    public var ignored: [String]
    /// Paths the scan could not use, with the reason.
    public var skipped: [SkippedPath]
    /// The heating log's clock: the log time at the first frame, and where it came from.
    public var heatingLogOffsetS: Double?
    public var heatingLogClock: String?
    var inputs: [InputFile]
    public var timings: [String: Double] = [:]
    public var peakMemoryMB: Double? = nil
    public var startedAt = ""
    var config: RunConfig
    public var registration: RegistrationSummary
    var lattice: LatticeSummary? = nil

    static let onsetConfiguration = OnsetTest.Configuration()
    static let onsetRule = "first step whose frames' Li/TM ratio rises above the first (pre-heating) step's by a one-sided Welch t test with each step's effective number of frames from the pooled lag-1 autocorrelation (Bayley & Hammersley 1946), at a false-alarm rate of false_alarm_rate for the whole run (Bonferroni: each step at false_alarm_rate/(steps - 1)), or that shows a front; null when the first step already shows a front or no step qualifies; statistics per step in onset_test"
    static let activationRule = "maximum-likelihood Arrhenius fit v = v0 exp(-Ea/(kB T)) of every step's front velocity weighted by its SEM (weighted least squares of ln v with sigma(ln v) = SEM/v at the fitted v), each step's SEM from the per-frame position noise pooled over the run's steps (SEM_k^2 S_k weighted by the SEMs' degrees of freedom, S_k = sum of (t - mean t)^2 over step k's frames), at least 3 steps; SEM from the curvature of chi-square, 95 % interval from the profile likelihood (delta chi-square 3.84), both widened by the Birge ratio sqrt(chi-square/dof) where it exceeds 1"
    static let originRule = "front_boundary_px: the line the front leaves, on the run's reference frame (x0, y0, x1, y1 in px); positions are distances from it along front_direction to the front's midpoint (half the cation mixing of rock salt); the line is the total-least-squares fit through the edge of the grain's crystal mask (the 50 % level of its local lattice-fringe amplitude) where rock salt meets the boundary, on the aligned average of the last step with rock salt on the boundary, moved half a pixel out, and taken as straight across the field of view (the segment runs from the foot of one image corner to the foot of another); front.boundary in the config replaces it"

    init(table: FrameTable, runDir: URL, config: RunConfig, inputs: [InputFile]) {
        self.runDir = runDir.path
        nFrames = table.records.count
        pixelSizeNm = table.pixelSizeNm
        pixelSizeSource = table.pixelSizeSource
        timeSource = table.timeSource
        temperatureSource = table.temperatureSource
        frameWidth = table.frameWidth
        frameHeight = table.frameHeight
        nSteps = table.steps.count
        ignored = table.ignored
        skipped = table.skipped
        heatingLogOffsetS = table.logClock?.offsetS
        heatingLogClock = table.logClock?.basis.rawValue
        self.inputs = inputs
        self.config = config
        registration = RegistrationSummary(mode: config.registrationMode, band: CorrelationBand(low: 0, high: 0))
    }

    /// Onset and activation energy from the steps: `ratios[k]` are step k's per-frame Li/TM
    /// ratios in time order, `hasFront[k]` whether step k shows a front. Returns warnings.
    mutating func addKinetics(steps: [StepResult], ratios: [[Double]], hasFront: [Bool]) -> [String] {
        let onset = OnsetTest.test(ratios: ratios, hasFront: hasFront, temperaturesC: steps.map(\.temperatureC),
                                   configuration: Self.onsetConfiguration)
        onsetTest = onset
        if let k = onset.onsetStep {
            onsetStep = k
            onsetTemperatureC = steps[k].temperatureC
        }
        let precision = StepKinetics.precisionWarnings(steps)
        let measured = steps.filter { $0.velocityPxPerS != nil && $0.velocitySEMPxPerS != nil && $0.temperatureC != nil }
        // The steps' SEMs carry the run's pooled per-frame position noise (`StepKinetics.pooled`).
        if let fit = Kinetics.arrheniusFit(temperaturesC: measured.map { $0.temperatureC! },
                                           velocities: measured.map { $0.velocityPxPerS! },
                                           sems: measured.map { $0.velocitySEMPxPerS! }, minimumHolds: 3) {
            activation = fit
            activationSteps = measured.map(\.stepIndex)
            activationEnergyEV = fit.activationEnergyEV
            activationEnergySEMEV = fit.semEV
            if let p = fit.pValue, p < 0.01 {
                return precision + [String(format: "the Arrhenius fit does not describe the step velocities (chi-square %.1f for %d degrees of freedom, p = %.2g): check the velocities before using the activation energy", fit.chiSquare, fit.dof, p)]
            }
        }
        return precision
    }

    enum Key: String, CodingKey {
        case contractVersion = "contract_version", heatfrontVersion = "heatfront_version", runDir = "run_dir"
        case nFrames = "n_frames", nUsed = "n_used", nSteps = "n_steps", frameSize = "frame_size"
        case pixelSizeNm = "pixel_size_nm", pixelSizeSource = "pixel_size_source"
        case timeSource = "time_source", temperatureSource = "temperature_source"
        case onsetTemperatureC = "onset_temperature_C", onsetStep = "onset_step_index", onsetRule = "onset_rule"
        case activationEnergyEV = "activation_energy_eV", activationEnergySEMEV = "activation_energy_sem_eV"
        case activationRule = "activation_energy_rule", activationCI = "activation_energy_ci95_eV"
        case activationFit = "activation_energy_fit", onsetTest = "onset_test"
        case frontBoundary = "front_boundary_px", frontDirection = "front_direction", originRule = "front_origin_rule"
        case warnings, ignored, skipped, inputs, config, registration, lattice
        case heatingLogOffsetS = "heating_log_offset_s", heatingLogClock = "heating_log_clock"
        case timings = "timings_s", peakMemoryMB = "peak_memory_mb", startedAt = "started_at"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(HeatFrontVersion.contract, forKey: .contractVersion)
        try c.encode(HeatFrontVersion.string, forKey: .heatfrontVersion)
        try c.encode(runDir, forKey: .runDir)
        try c.encode(nFrames, forKey: .nFrames)
        try c.encode(nUsed, forKey: .nUsed)
        try c.encode(nSteps, forKey: .nSteps)
        try c.encode([frameWidth, frameHeight], forKey: .frameSize)
        try c.encode(pixelSizeNm, forKey: .pixelSizeNm)          // Optional: encodes null
        try c.encode(pixelSizeSource, forKey: .pixelSizeSource)
        try c.encode(timeSource, forKey: .timeSource)
        try c.encode(temperatureSource, forKey: .temperatureSource)
        try c.encode(onsetTemperatureC, forKey: .onsetTemperatureC)
        try c.encode(onsetStep, forKey: .onsetStep)
        try c.encode(Self.onsetRule, forKey: .onsetRule)
        try c.encode(activationEnergyEV, forKey: .activationEnergyEV)
        try c.encode(activationEnergySEMEV, forKey: .activationEnergySEMEV)
        try c.encode(Self.activationRule, forKey: .activationRule)
        try c.encode(activation.map { [$0.ci95EV.low, $0.ci95EV.high] }, forKey: .activationCI)
        try c.encode(activation.map { ActivationFitSummary($0, steps: activationSteps, pixelSizeNm: pixelSizeNm) },
                     forKey: .activationFit)
        try c.encode(onsetTest.map { OnsetSummary($0, configuration: Self.onsetConfiguration) }, forKey: .onsetTest)
        try c.encode(frontBoundary.map { [$0.x0, $0.y0, $0.x1, $0.y1] }, forKey: .frontBoundary)
        try c.encode(frontDirection.map { [$0.x, $0.y] }, forKey: .frontDirection)
        try c.encode(Self.originRule, forKey: .originRule)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(ignored, forKey: .ignored)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(heatingLogOffsetS, forKey: .heatingLogOffsetS)
        try c.encode(heatingLogClock, forKey: .heatingLogClock)
        try c.encode(inputs, forKey: .inputs)
        try c.encode(config, forKey: .config)
        try c.encode(registration, forKey: .registration)
        try c.encode(lattice, forKey: .lattice)
        try c.encode(timings, forKey: .timings)
        try c.encode(peakMemoryMB, forKey: .peakMemoryMB)
        try c.encode(startedAt, forKey: .startedAt)
    }

    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(self)
    }
}


/// `activation_energy_fit` in summary.json: the Arrhenius fit's details.
struct ActivationFitSummary: Encodable {
    var steps: [Int]
    var chiSquare: Double
    var dof: Int
    var pValue: Double?
    var scaleFactor: Double
    var v0PxPerS: Double
    var v0NmPerS: Double?

    init(_ f: ArrheniusFit, steps: [Int], pixelSizeNm: Double?) {
        self.steps = steps
        chiSquare = f.chiSquare; dof = f.dof; pValue = f.pValue; scaleFactor = f.scaleFactor
        v0PxPerS = f.prefactor; v0NmPerS = pixelSizeNm.map { $0 * f.prefactor }
    }

    enum CodingKeys: String, CodingKey {
        case steps = "step_indices", chiSquare = "chi_square", dof, pValue = "p_value", scaleFactor = "scale_factor"
        case v0PxPerS = "v0_px_per_s", v0NmPerS = "v0_nm_per_s"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(steps, forKey: .steps); try c.encode(chiSquare, forKey: .chiSquare); try c.encode(dof, forKey: .dof)
        try c.encode(pValue, forKey: .pValue); try c.encode(scaleFactor, forKey: .scaleFactor)
        try c.encode(v0PxPerS, forKey: .v0PxPerS); try c.encode(v0NmPerS, forKey: .v0NmPerS)
    }
}

/// `onset_test` in summary.json: the test's configuration and every step's statistic.
struct OnsetSummary: Encodable {
    struct Step: Encodable {
        var step: Int, frames: Int, effectiveFrames: Double?, baselineEffectiveFrames: Double?, rise: Double?, riseSE: Double?
        var t: Double?, dof: Double?, pValue: Double?, hasFront: Bool, significant: Bool
        enum CodingKeys: String, CodingKey {
            case step = "step_index", frames = "n_frames", effectiveFrames = "n_effective"
            case baselineEffectiveFrames = "baseline_n_effective", rise = "li_tm_rise"
            case riseSE = "li_tm_rise_se", t, dof, pValue = "p_value", hasFront = "front", significant
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(step, forKey: .step); try c.encode(frames, forKey: .frames)
            try c.encode(effectiveFrames, forKey: .effectiveFrames); try c.encode(baselineEffectiveFrames, forKey: .baselineEffectiveFrames)
            try c.encode(rise, forKey: .rise)
            try c.encode(riseSE, forKey: .riseSE); try c.encode(t, forKey: .t); try c.encode(dof, forKey: .dof)
            try c.encode(pValue, forKey: .pValue); try c.encode(hasFront, forKey: .hasFront)
            try c.encode(significant, forKey: .significant)
        }
    }
    var statistic = "one-sided Welch t of the step's mean Li/TM ratio over the first step's; each mean's squared standard error s^2 (n - 1) / (n (n_effective - 1)), n_effective = n / (1 + 2 sum_l (1 - l/n) rho^l) from the lag-1 autocorrelation rho pooled over the first step and every step up to the one tested; Welch-Satterthwaite degrees of freedom"
    var falseAlarmRate: Double
    var perStepLevel: Double
    var maximumAutocorrelation: Double
    var baselineStep = 0
    var baselineHasFront: Bool
    var steps: [Step]

    init(_ r: OnsetTest.Result, configuration: OnsetTest.Configuration) {
        func finite(_ v: Double) -> Double? { v.isFinite ? v : nil }
        falseAlarmRate = configuration.falseAlarmRate
        maximumAutocorrelation = configuration.maximumAutocorrelation
        perStepLevel = r.perHoldLevel
        baselineHasFront = r.baselineTransformed
        steps = r.holds.map {
            Step(step: $0.stepIndex, frames: $0.frames, effectiveFrames: $0.frames > 0 ? $0.effectiveFrames : nil,
                 baselineEffectiveFrames: $0.frames > 0 ? $0.baselineEffectiveFrames : nil,
                 rise: finite($0.rise), riseSE: finite($0.riseSE), t: finite($0.t), dof: finite($0.dof),
                 pValue: finite($0.pValue), hasFront: $0.hasFront, significant: $0.significant)
        }
    }

    enum CodingKeys: String, CodingKey {
        case statistic, falseAlarmRate = "false_alarm_rate", perStepLevel = "per_step_level"
        case maximumAutocorrelation = "maximum_autocorrelation", baselineStep = "baseline_step_index"
        case baselineHasFront = "baseline_front", steps
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(statistic, forKey: .statistic); try c.encode(falseAlarmRate, forKey: .falseAlarmRate)
        try c.encode(perStepLevel, forKey: .perStepLevel); try c.encode(maximumAutocorrelation, forKey: .maximumAutocorrelation)
        try c.encode(baselineStep, forKey: .baselineStep)
        try c.encode(baselineHasFront, forKey: .baselineHasFront); try c.encode(steps, forKey: .steps)
    }
}
