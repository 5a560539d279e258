import Foundation
import FrameCore

/// The true values of one simulated frame, in the units and conventions of `frames.csv`
/// (docs/outputs.md, frames.csv).
///
/// - `shiftXPx`, `shiftYPx`: where frame 0's content lies in this frame, in pixels, averaged
///   over frame 0's scan lines: the translation that aligns the two images. It includes the
///   raster's share (content that drifted Δ rows is scanned Δ line times later and has moved
///   on by then); the drift's random walk within a frame averages out over the lines.
///   +x = content moved right, +y = content moved down.
/// - `liTmRatio`: mean background-free column intensity (column weight × occupancy ×
///   thickness; no probe tails, no diffuse background) at the Li sites divided by the same
///   at the TM sites, over the analysed crystal (the grain under study) inside the frame's
///   own field of view (docs/user-guide.md, "The run folder"), which drifts with the specimen.
/// - `rocksaltFraction`: fraction of that crystal area lying between the boundary and the
///   front midpoint.
/// - `frontPositionNm`: distance of the front midpoint from the boundary along the
///   propagation direction; nil before the front exists.
public struct FrameTruth: Sendable, Equatable {
    public var frameIndex: Int
    /// Acquisition start, seconds since frame 0's start.
    public var timeS: Double
    /// Holder temperature at mid-acquisition.
    public var temperatureC: Double
    /// Hold index, -1 for frames taken during a ramp.
    public var stepIndex: Int
    public var shiftXPx: Double
    public var shiftYPx: Double
    public var liTmRatio: Double
    public var rocksaltFraction: Double
    public var frontPositionNm: Double?
    /// `ok`, or `rejected:noise` for injected pure-noise frames.
    public var expectedStatus: String
    /// Path of the frame file relative to the run folder.
    public var file: String
}

/// The true values of one temperature step (hold), computed from its frames like `steps.csv`.
public struct StepTruth: Sendable, Codable, Equatable {
    public var stepIndex: Int
    public var temperatureC: Double
    public var tStartS: Double
    public var tEndS: Double
    public var nFrames: Int
    /// Frames with expected status `ok`.
    public var nUsed: Int
    public var liTmRatioMean: Double
    public var rocksaltFraction: Double
    public var frontPositionStartNm: Double?
    public var frontPositionEndNm: Double?
    /// The model's front velocity at the hold temperature (exact slope over the hold); nil without a front.
    public var frontVelocityNmPerS: Double?
    /// The front moves at least 1 nm between the step's first and last frame.
    public var moving: Bool

    enum CodingKeys: String, CodingKey {
        case stepIndex = "step_index", temperatureC = "temperature_C", tStartS = "t_start_s", tEndS = "t_end_s"
        case nFrames = "n_frames", nUsed = "n_used", liTmRatioMean = "li_tm_ratio_mean"
        case rocksaltFraction = "rocksalt_fraction", frontPositionStartNm = "front_position_start_nm"
        case frontPositionEndNm = "front_position_end_nm", frontVelocityNmPerS = "front_velocity_nm_per_s"
        case moving
    }
}

/// Ideal TM column lattice of the analysed grain on frame 0 (pixels):
/// `origin + i·alongBasis + j·acrossBasis`; Li sites at `+ liOffset`.
public struct ColumnLatticeTruth: Sendable, Codable, Equatable {
    public var originPx: [Double]
    public var alongBasisPx: [Double]
    public var acrossBasisPx: [Double]
    public var liOffsetPx: [Double]

    enum CodingKeys: String, CodingKey {
        case originPx = "origin_px", alongBasisPx = "along_basis_px", acrossBasisPx = "across_basis_px", liOffsetPx = "li_offset_px"
    }

    /// Ideal TM positions inside a `width × height` frame (with `margin` pixels kept clear).
    public func tmPositions(width: Int, height: Int, margin: Double = 0) -> [SIMD2<Double>] {
        sites(offset: SIMD2(0, 0), width: width, height: height, margin: margin)
    }

    public func liPositions(width: Int, height: Int, margin: Double = 0) -> [SIMD2<Double>] {
        sites(offset: SIMD2(liOffsetPx[0], liOffsetPx[1]), width: width, height: height, margin: margin)
    }

    func sites(offset: SIMD2<Double>, width: Int, height: Int, margin: Double) -> [SIMD2<Double>] {
        let o = SIMD2(originPx[0], originPx[1]) + offset
        let a = SIMD2(alongBasisPx[0], alongBasisPx[1]), b = SIMD2(acrossBasisPx[0], acrossBasisPx[1])
        let det = a.x * b.y - a.y * b.x
        guard abs(det) > 1e-9 else { return [] }
        // Index range from the corners, through the inverse basis.
        var iMin = Int.max, iMax = Int.min, jMin = Int.max, jMax = Int.min
        for cx in [0.0, Double(width - 1)] { for cy in [0.0, Double(height - 1)] {
            let d = SIMD2(cx, cy) - o
            let i = (d.x * b.y - d.y * b.x) / det, j = (a.x * d.y - a.y * d.x) / det
            iMin = min(iMin, Int(floor(i)) - 1); iMax = max(iMax, Int(ceil(i)) + 1)
            jMin = min(jMin, Int(floor(j)) - 1); jMax = max(jMax, Int(ceil(j)) + 1)
        } }
        var out: [SIMD2<Double>] = []
        guard iMin <= iMax, jMin <= jMax else { return out }
        for j in jMin...jMax { for i in iMin...iMax {
            let p = o + Double(i) * a + Double(j) * b
            if p.x >= margin, p.y >= margin, p.x <= Double(width - 1) - margin, p.y <= Double(height - 1) - margin {
                out.append(p)
            }
        } }
        return out
    }
}

/// Run-level truth, written as `ground_truth.json`.
public struct RunTruth: Sendable, Codable, Equatable {
    public var preset: String
    public var seed: UInt64
    public var frameCount: Int
    public var width: Int
    public var height: Int
    public var format: String
    public var material: String
    public var pixelSizeNm: Double
    public var layerSpacingNm: Double
    public var inPlaneSpacingNm: Double
    public var layerAngleDeg: Double
    /// The boundary the front starts from, clipped to frame 0 (pixels).
    public var boundary: LineSegment
    /// Unit vector (x right, y down) the front moves along, into the grain.
    public var propagationDirection: [Double]
    public var neighbour: String
    /// The first hold in which the transformation has begun (uniform cation mixing above
    /// zero, or a front); nil when the first hold has already begun or no hold does.
    public var onsetTemperatureC: Double?
    /// Allowed onset error: half the smallest step of the temperature programme, so the
    /// reported onset must be the right hold.
    public var onsetToleranceC: Double
    /// The model's own threshold (front onset, or start of uniform mixing).
    public var modelOnsetTemperatureC: Double?
    public var activationEnergyEV: Double?
    public var v0NmPerS: Double?
    public var frontWidthNm: Double?
    public var movingStepCount: Int
    public var steps: [StepTruth]
    public var tmLattice: ColumnLatticeTruth
    public var noiseFrames: [Int]
    public var registrationTargetPx: Double
    /// Column-position precision target (pm), only where the preset is built to test it.
    public var columnPrecisionTargetPm: Double?
    public var frameDurationS: Double
    public var firstFrameTime: String
    public var heatingLog: String
    public var definitions: [String: String]
    /// The factor on the preset's dose; nil (and absent from the file) when 1.
    public var doseScale: Double? = nil

    enum CodingKeys: String, CodingKey {
        case preset, seed, frameCount = "frame_count", width, height, format, material
        case pixelSizeNm = "pixel_size_nm", layerSpacingNm = "layer_spacing_nm", inPlaneSpacingNm = "in_plane_spacing_nm"
        case layerAngleDeg = "layer_angle_deg", boundary = "boundary_px", propagationDirection = "propagation_direction"
        case neighbour, onsetTemperatureC = "onset_temperature_C", onsetToleranceC = "onset_tolerance_C"
        case modelOnsetTemperatureC = "model_onset_temperature_C", activationEnergyEV = "activation_energy_eV"
        case v0NmPerS = "v0_nm_per_s", frontWidthNm = "front_width_nm", movingStepCount = "moving_step_count"
        case steps, tmLattice = "tm_lattice", noiseFrames = "noise_frames", registrationTargetPx = "registration_target_px"
        case columnPrecisionTargetPm = "column_precision_target_pm", frameDurationS = "frame_duration_s"
        case firstFrameTime = "first_frame_time", heatingLog = "heating_log", definitions
        case doseScale = "dose_scale"
    }

    // Optionals are written as explicit nulls so every key is always present, but for
    // dose_scale, written only for runs whose dose was scaled.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(preset, forKey: .preset); try c.encode(seed, forKey: .seed)
        try c.encode(frameCount, forKey: .frameCount); try c.encode(width, forKey: .width)
        try c.encode(height, forKey: .height); try c.encode(format, forKey: .format)
        try c.encode(material, forKey: .material); try c.encode(pixelSizeNm, forKey: .pixelSizeNm)
        try c.encode(layerSpacingNm, forKey: .layerSpacingNm); try c.encode(inPlaneSpacingNm, forKey: .inPlaneSpacingNm)
        try c.encode(layerAngleDeg, forKey: .layerAngleDeg); try c.encode(boundary, forKey: .boundary)
        try c.encode(propagationDirection, forKey: .propagationDirection); try c.encode(neighbour, forKey: .neighbour)
        try c.encode(onsetTemperatureC, forKey: .onsetTemperatureC); try c.encode(onsetToleranceC, forKey: .onsetToleranceC)
        try c.encode(modelOnsetTemperatureC, forKey: .modelOnsetTemperatureC)
        try c.encode(activationEnergyEV, forKey: .activationEnergyEV); try c.encode(v0NmPerS, forKey: .v0NmPerS)
        try c.encode(frontWidthNm, forKey: .frontWidthNm); try c.encode(movingStepCount, forKey: .movingStepCount)
        try c.encode(steps, forKey: .steps); try c.encode(tmLattice, forKey: .tmLattice)
        try c.encode(noiseFrames, forKey: .noiseFrames); try c.encode(registrationTargetPx, forKey: .registrationTargetPx)
        try c.encode(columnPrecisionTargetPm, forKey: .columnPrecisionTargetPm)
        try c.encode(frameDurationS, forKey: .frameDurationS); try c.encode(firstFrameTime, forKey: .firstFrameTime)
        try c.encode(heatingLog, forKey: .heatingLog); try c.encode(definitions, forKey: .definitions)
        try c.encodeIfPresent(doseScale, forKey: .doseScale)
    }

    public static let fieldDefinitions: [String: String] = [
        "time_s": "acquisition start of the frame, seconds since frame 0's acquisition start",
        "temperature_C": "programme (holder) temperature at the frame's mid-acquisition time",
        "step_index": "index of the temperature hold containing the frame; -1 for frames acquired during a ramp",
        "shift_px": "the translation that aligns the frame with the previous one (where the previous frame's content appears in it, averaged over that frame's scan lines that both show), summed from frame 0, pixels; it includes the raster's share (content that drifted by some rows is scanned that many line times later); +x = content moved right (increasing column), +y = content moved down (increasing row)",
        "li_tm_ratio": "mean background-free column intensity (column weight Z^1.7 x occupancy x thickness, no probe tails or diffuse background) at Li sites divided by that at TM sites, over the analysed grain inside the frame's own field of view (frame 0's view moved by the frame's drift)",
        "rocksalt_fraction": "fraction of the analysed grain's area inside the frame's own field of view lying between the boundary and the front midpoint",
        "step_rocksalt_fraction": "steps[].rocksalt_fraction: the mean over the step's frames of rocksalt_fraction, each over its own field of view; heatfront validate scores steps.csv against the fraction over the step average's own area instead (run contract: in the step's aligned average), placed by the reported shifts",
        "front_position_nm": "distance of the front midpoint (rock-salt fraction 1/2) from the boundary along the propagation direction; empty before the front exists",
        "front_width_nm": "10-90 % width of the tanh rock-salt profile across the front",
        "onset_temperature_C": "temperature of the first hold in which the transformation has begun (uniform cation mixing above zero at its temperature, or a front in any of its frames); null when the first hold has already begun or no hold does; onset_tolerance_C is half a programme step, so a reported onset must be the right hold",
        "activation_energy_eV": "Ea of the Arrhenius front velocity v = v0 exp(-Ea / kB T) used by the model",
        "tm_lattice": "ideal TM column positions of the analysed grain on frame 0: origin + i*along_basis + j*across_basis (pixels); Li sites at + li_offset",
        "status": "ok, or rejected:noise for injected pure-noise frames",
    ]
}

/// Fixed-format numbers for the text outputs (same bytes on every run).
enum TextFormat {
    static func f(_ x: Double, _ decimals: Int) -> String {
        let s = String(format: "%.\(decimals)f", x)
        return s == "-" + String(format: "%.\(decimals)f", 0.0) ? String(format: "%.\(decimals)f", 0.0) : s
    }
    static func opt(_ x: Double?, _ decimals: Int) -> String { x.map { f($0, decimals) } ?? "" }

    /// Rounds to `digits` decimals, for JSON values.
    static func r(_ x: Double, _ digits: Int = 6) -> Double {
        let p = pow(10.0, Double(digits))
        return (x * p).rounded() / p
    }
}

extension FrameTruth {
    public static let csvHeader = "frame_index,time_s,temperature_C,step_index,shift_x_px,shift_y_px,li_tm_ratio,rocksalt_fraction,front_position_nm,status,file"

    public var csvRow: String {
        [String(frameIndex), TextFormat.f(timeS, 3), TextFormat.f(temperatureC, 2), String(stepIndex),
         TextFormat.f(shiftXPx, 4), TextFormat.f(shiftYPx, 4), TextFormat.f(liTmRatio, 6),
         TextFormat.f(rocksaltFraction, 6), TextFormat.opt(frontPositionNm, 4), expectedStatus, file].joined(separator: ",")
    }
}
