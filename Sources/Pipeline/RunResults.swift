import Foundation
import FrameCore
import FrameIO

/// What the pipeline measured for one frame: one row of `frames.csv`.
public struct FrameResult: Sendable, Equatable {
    public var frameIndex: Int
    /// The scan's status of the frame, or the registration's rejection (`rejected:<reason>`).
    public var status: FrameStatus
    public var shiftX: Double?
    public var shiftY: Double?
    public var score: Double?
    public var tmIntensity: Double?
    public var liIntensity: Double?
    public var rocksaltFraction: Double?
    /// Front distance from its boundary, in pixels (converted to nm on output when calibrated).
    public var frontPositionPx: Double?

    public init(frameIndex: Int, status: FrameStatus) {
        self.frameIndex = frameIndex
        self.status = status
    }

    public var liTmRatio: Double? {
        guard let li = liIntensity, let tm = tmIntensity, tm > 0 else { return nil }
        return li / tm
    }
}

/// What the pipeline measured for one temperature step: one row of `steps.csv`.
public struct StepResult: Sendable, Codable, Equatable {
    public var stepIndex: Int
    public var temperatureC: Double?
    public var tStart: Double
    public var tEnd: Double
    public var nFrames: Int
    public var nUsed: Int
    public var ratioMean: Double?
    public var ratioSEM: Double?
    /// Li/TM ratio measured on the step's aligned average.
    public var ratioOfAverage: Double?
    public var rocksaltFraction: Double?
    public var frontStartPx: Double?
    public var frontEndPx: Double?
    public var velocityPxPerS: Double?
    public var velocitySEMPxPerS: Double?
    /// Degrees of freedom of that SEM: the jackknife's Satterthwaite degrees of freedom, or
    /// those of the autocorrelation-corrected SEM where that one is used.
    public var velocityDOF: Int?
    /// √Σ(t − t̄)² over the frames with a front (s): the velocity's SEM times it is the
    /// per-frame position noise the Arrhenius fit pools over a run's holds.
    public var velocityTimeSpreadS: Double?
    /// Whether the velocity is above zero by the one-sided t test at the 5 % level.
    public var motionDetected: Bool?
    /// One-sided 95 % upper confidence bound of the velocity, px/s.
    public var velocityUpperPxPerS: Double?
    public var frontWidthPx: Double?
    /// Standard error of the width, px.
    public var frontWidthSEMPx: Double?
    /// TM column-position precision in the aligned average: RMS deviation from the best-fit
    /// ideal lattice, px.
    public var columnPrecisionPx: Double?
}
