import Foundation

// The columns of every table a run writes, each declared once: Pipeline writes the tables
// from these declarations, `heatfront validate` (Simulation) reads them back through them,
// and docs/outputs.md prints them (a test keeps it equal to `markdownTable`). They live in
// FrameCore, beside the CSV type, because both the writer and the validator sit above it.
// Lengths go into the `_nm` columns when the pixel size is known; the `_px` columns after
// them always hold them in pixels. New columns go at the end of a table.

/// `frames.csv`: one row per frame of the run, in `frame_index` order (docs/outputs.md, "frames.csv").
public enum FramesColumn: String, TableColumn {
    case frameIndex = "frame_index"
    case file, page
    case stepIndex = "step_index"
    case temperatureC = "temperature_C"
    case timeS = "time_s"
    case shiftXPx = "shift_x_px"
    case shiftYPx = "shift_y_px"
    case registrationScore = "registration_score"
    case status
    case tmIntensity = "tm_intensity"
    case liIntensity = "li_intensity"
    case liTmRatio = "li_tm_ratio"
    case rocksaltFraction = "rocksalt_fraction"
    case frontPositionNm = "front_position_nm"
    case frontPositionPx = "front_position_px"

    public var spec: ColumnSpec {
        switch self {
        case .frameIndex: ColumnSpec(.integer, "0-based position in acquisition order over the whole run")
        case .file: ColumnSpec(.text, "path of the frame's file relative to the run folder")
        case .page: ColumnSpec(.integer, "frame number inside a multi-frame file; 0 for a single-frame file")
        case .stepIndex: ColumnSpec(.integer, "the temperature step (hold) the frame belongs to; -1 for a frame taken during a ramp")
        case .temperatureC: ColumnSpec(.fixed(2), unit: "°C", "temperature at the frame; empty when no source gives one")
        case .timeS: ColumnSpec(.fixed(3), unit: "s", "time since the run's first frame")
        case .shiftXPx: ColumnSpec(.fixed(4), unit: "px", "displacement of the frame's content from the run's registration reference, + = moved right (increasing column); moving the frame by (−`shift_x_px`, −`shift_y_px`) aligns it; empty for a frame not registered")
        case .shiftYPx: ColumnSpec(.fixed(4), unit: "px", "the same downward, + = moved down (increasing row)")
        case .registrationScore: ColumnSpec(.fixed(4), "normalised cross-correlation of the aligned frame with the reference, 0–1")
        case .status: ColumnSpec(.text, "`ok`, `rejected:<reason>` (`size`, or the registration's reason) or `unreadable:<reason>`; only `ok` frames enter averages and fits")
        case .tmIntensity: ColumnSpec(.significant(7), unit: "frame units", "mean background-corrected intensity at the transition-metal (TM) columns of the analysed crystal, leaving out those whose fit reaches pixels the aligned frame does not cover")
        case .liIntensity: ColumnSpec(.significant(7), unit: "frame units", "the same at the Li-site columns")
        case .liTmRatio: ColumnSpec(.fixed(5), "`li_intensity / tm_intensity`: near 0 for the ordered layered phase, rising toward 1 as TM fills the Li sites (cation-mixed rock salt)")
        case .rocksaltFraction: ColumnSpec(.fixed(5), "fraction of the analysed crystal area classified as rock salt, 0–1")
        case .frontPositionNm: ColumnSpec(.fixed(4), unit: "nm", "distance of the layered/rock-salt front's midpoint from the boundary it leaves, along the propagation direction (`front_boundary_px`, `front_direction` in summary.json); empty before a front exists")
        case .frontPositionPx: ColumnSpec(.fixed(3), unit: "px", "`front_position_nm` in pixels")
        }
    }
}

/// `steps.csv`: one row per temperature step, in `step_index` order (docs/outputs.md, "steps.csv").
public enum StepsColumn: String, TableColumn {
    case stepIndex = "step_index"
    case temperatureC = "temperature_C"
    case tStartS = "t_start_s"
    case tEndS = "t_end_s"
    case nFrames = "n_frames"
    case nUsed = "n_used"
    case liTmRatioMean = "li_tm_ratio_mean"
    case liTmRatioSEM = "li_tm_ratio_sem"
    case rocksaltFraction = "rocksalt_fraction"
    case frontPositionStartNm = "front_position_start_nm"
    case frontPositionEndNm = "front_position_end_nm"
    case frontVelocityNmPerS = "front_velocity_nm_per_s"
    case frontVelocitySEMNmPerS = "front_velocity_sem_nm_per_s"
    case frontWidthNm = "front_width_nm"
    case liTmRatioAverage = "li_tm_ratio_average"
    case frontVelocityPxPerS = "front_velocity_px_per_s"
    case frontWidthPx = "front_width_px"
    case columnPrecisionPm = "column_precision_pm"
    case frontVelocityDOF = "front_velocity_dof"
    case frontMotionDetected = "front_motion_detected"
    case frontVelocityUpperNmPerS = "front_velocity_upper_nm_per_s"
    case frontVelocityUpperPxPerS = "front_velocity_upper_px_per_s"
    case frontWidthSEMNm = "front_width_sem_nm"
    case frontWidthSEMPx = "front_width_sem_px"

    public var spec: ColumnSpec {
        switch self {
        case .stepIndex: ColumnSpec(.integer, "the step, 0, 1, 2, … in time order")
        case .temperatureC: ColumnSpec(.fixed(2), unit: "°C", "the step's set-point: the median of its frames' temperatures")
        case .tStartS: ColumnSpec(.fixed(3), unit: "s", "time of the step's first frame")
        case .tEndS: ColumnSpec(.fixed(3), unit: "s", "time of its last frame")
        case .nFrames: ColumnSpec(.integer, "frames in the step")
        case .nUsed: ColumnSpec(.integer, "frames of the step with `status` `ok`")
        case .liTmRatioMean: ColumnSpec(.fixed(5), "mean of the used frames' `li_tm_ratio`")
        case .liTmRatioSEM: ColumnSpec(.fixed(5), "standard error of that mean")
        case .rocksaltFraction: ColumnSpec(.fixed(5), "rock-salt fraction of the analysed crystal in the step's aligned average, 0–1")
        case .frontPositionStartNm: ColumnSpec(.fixed(4), unit: "nm", "fitted front position at the step's first frame")
        case .frontPositionEndNm: ColumnSpec(.fixed(4), unit: "nm", "fitted front position at the step's last frame")
        case .frontVelocityNmPerS: ColumnSpec(.significant(6), unit: "nm/s", "velocity of the front over all the step's used frames at once: each profile across it (the order parameter, the Li/TM site ratio) fitted as one edge moving at constant velocity through them, and the two velocities averaged; empty with fewer than 3 frames that show a front")
        case .frontVelocitySEMNmPerS: ColumnSpec(.significant(6), unit: "nm/s", "its standard error, from the run's per-frame position noise pooled over the steps with a velocity (the larger of the jackknife spread and the frames' own scatter about their line, with its correlation in time, in each step; a step whose own noise is far above the others' keeps its own)")
        case .frontWidthNm: ColumnSpec(.fixed(4), unit: "nm", "10–90 % width of the transition zone between the phases, from the same fit (every frame aligned on the front's position at its time)")
        case .liTmRatioAverage: ColumnSpec(.fixed(5), "Li/TM ratio measured on the step's aligned average")
        case .frontVelocityPxPerS: ColumnSpec(.significant(6), unit: "px/s", "`front_velocity_nm_per_s` in pixels")
        case .frontWidthPx: ColumnSpec(.fixed(3), unit: "px", "`front_width_nm` in pixels")
        case .columnPrecisionPm: ColumnSpec(.fixed(3), unit: "pm", "precision of the TM column positions in the step's average: RMS distance from the best-fit ideal lattice; empty without a pixel size")
        case .frontVelocityDOF: ColumnSpec(.integer, "degrees of freedom of the velocity's standard error (Student's t): the pooled steps' together")
        case .frontMotionDetected: ColumnSpec(.boolean, "`true` when the velocity is above zero by a one-sided t test at the 5 % level; `false`: the motion is below what the step's data can detect")
        case .frontVelocityUpperNmPerS: ColumnSpec(.significant(6), unit: "nm/s", "one-sided 95 % upper confidence bound of the velocity (velocity + t₀.₉₅ · SEM): with `front_motion_detected` `false`, the front moves at most this fast")
        case .frontVelocityUpperPxPerS: ColumnSpec(.significant(6), unit: "px/s", "the same in pixels")
        case .frontWidthSEMNm: ColumnSpec(.fixed(4), unit: "nm", "jackknife standard error of `front_width_nm`")
        case .frontWidthSEMPx: ColumnSpec(.fixed(3), unit: "px", "the same in pixels")
        }
    }
}

/// `columns/step_<k>.csv`: every TM and Li site of step k's aligned average (docs/outputs.md, "columns/").
public enum SitesColumn: String, TableColumn {
    case xPx = "x_px"
    case yPx = "y_px"
    case xNm = "x_nm"
    case yNm = "y_nm"
    case sublattice, intensity

    public var spec: ColumnSpec {
        switch self {
        case .xPx: ColumnSpec(.fixed(3), unit: "px", "the site's centre in the average's pixels, x to the right, 0 at the centre of the top-left pixel")
        case .yPx: ColumnSpec(.fixed(3), unit: "px", "the same, y downward")
        case .xNm: ColumnSpec(.fixed(5), unit: "nm", "`x_px` in nm; empty without a pixel size")
        case .yNm: ColumnSpec(.fixed(5), unit: "nm", "`y_px` in nm; empty without a pixel size")
        case .sublattice: ColumnSpec(.text, "`tm` (transition-metal column) or `li` (Li site)")
        case .intensity: ColumnSpec(.significant(7), unit: "frame units", "the average's intensity at the site")
        }
    }
}

/// `profiles/step_<k>.csv`: the line intensity profile across the layers of step k's aligned
/// average (docs/outputs.md, "profiles/").
public enum ProfileColumn: String, TableColumn {
    case distanceNm = "distance_nm"
    case intensity, site
    case distancePx = "distance_px"

    public var spec: ColumnSpec {
        switch self {
        case .distanceNm: ColumnSpec(.fixed(4), unit: "nm", "distance from the line's start; empty without a pixel size")
        case .intensity: ColumnSpec(.significant(7), unit: "frame units", "mean intensity across the profile's width there; empty where the line has left the image")
        case .site: ColumnSpec(.text, "`tm` or `li` on the sample nearest to where a TM or a Li plane crosses the line, else empty")
        case .distancePx: ColumnSpec(.fixed(3), unit: "px", "`distance_nm` in pixels (samples every 0.5 px)")
        }
    }
}

/// `runs.csv` of a batch: one row per run folder, in the order given (docs/outputs.md, "Batches").
public enum BatchRunsColumn: String, TableColumn {
    case run
    case outDir = "out_dir"
    case status
    case nFrames = "n_frames"
    case nUsed = "n_used"
    case pixelSizeNm = "pixel_size_nm"
    case onsetTemperatureC = "onset_temperature_C"
    case activationEnergyEV = "activation_energy_eV"
    case activationEnergySEMEV = "activation_energy_sem_eV"
    case nWarnings = "n_warnings"
    case error

    public var spec: ColumnSpec {
        switch self {
        case .run: ColumnSpec(.text, "the run folder (or stack file) as given")
        case .outDir: ColumnSpec(.text, "the run's sub-folder of OUT_DIR")
        case .status: ColumnSpec(.text, "`ok` (the run finished: its summary.json was read) or `failed`")
        case .nFrames: ColumnSpec(.integer, "`n_frames` of the run's summary.json")
        case .nUsed: ColumnSpec(.integer, "`n_used` of the run's summary.json")
        case .pixelSizeNm: ColumnSpec(.fixed(6), unit: "nm", "`pixel_size_nm` of the run's summary.json")
        case .onsetTemperatureC: ColumnSpec(.fixed(1), unit: "°C", "`onset_temperature_C` of the run's summary.json")
        case .activationEnergyEV: ColumnSpec(.fixed(4), unit: "eV", "`activation_energy_eV` of the run's summary.json")
        case .activationEnergySEMEV: ColumnSpec(.fixed(4), unit: "eV", "`activation_energy_sem_eV` of the run's summary.json")
        case .nWarnings: ColumnSpec(.integer, "number of `warnings` in the run's summary.json")
        case .error: ColumnSpec(.text, "why the run failed; empty for a finished run")
        }
    }
}
