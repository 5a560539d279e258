import Foundation
import FrameCore
import FrameIO
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

/// `summary.json` (run contract §5). Every listed key is always present; unknown values are
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

    static let onsetRule = "first step whose Li/TM ratio exceeds the first step's by more than 3 standard errors and by at least 0.02, or whose rock-salt fraction exceeds 0.02; null when the first step already shows rock salt or no step does"
    static let activationRule = "Arrhenius fit ln v = ln v0 - Ea/(kB T) over steps with positive front velocity (at least 3)"

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

    /// Onset temperature and activation energy from the steps (contract §5 rules).
    mutating func addKinetics(steps: [StepResult]) {
        if let k = Kinetics.onsetStep(ratioMeans: steps.map(\.ratioMean), ratioSEMs: steps.map(\.ratioSEM),
                                      rocksaltFractions: steps.map(\.rocksaltFraction),
                                      temperaturesC: steps.map(\.temperatureC)) {
            onsetStep = k
            onsetTemperatureC = steps[k].temperatureC
        }
        let moving = steps.filter { ($0.velocityPxPerS ?? 0) > 0 && $0.temperatureC != nil }
        if moving.count >= 3,
           let fit = Kinetics.arrhenius(temperaturesC: moving.map { $0.temperatureC! },
                                        velocities: moving.map { $0.velocityPxPerS! }) {
            activationEnergyEV = fit.activationEnergyEV
            activationEnergySEMEV = fit.semEV
        }
    }

    enum Key: String, CodingKey {
        case contractVersion = "contract_version", heatfrontVersion = "heatfront_version", runDir = "run_dir"
        case nFrames = "n_frames", nUsed = "n_used", nSteps = "n_steps", frameSize = "frame_size"
        case pixelSizeNm = "pixel_size_nm", pixelSizeSource = "pixel_size_source"
        case timeSource = "time_source", temperatureSource = "temperature_source"
        case onsetTemperatureC = "onset_temperature_C", onsetStep = "onset_step_index", onsetRule = "onset_rule"
        case activationEnergyEV = "activation_energy_eV", activationEnergySEMEV = "activation_energy_sem_eV"
        case activationRule = "activation_energy_rule"
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

