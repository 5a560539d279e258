import FrameCore

/// The rigid displacement of one frame's content relative to a reference.
///
/// Sign convention (docs/outputs.md, frames.csv): `dx > 0` means the content moved right (towards
/// increasing column), `dy > 0` that it moved down (increasing row). Moving the frame by
/// `(-dx, -dy)` aligns it with the reference.
public struct FrameShift: Sendable, Equatable {
    public var dx: Double
    public var dy: Double
    /// Normalised cross-correlation (band-passed, windowed) of the aligned frame with the
    /// reference it was measured against, clamped to 0–1.
    public var score: Double
    /// `nil` when the frame is used; otherwise why it is not (`frames.csv` writes
    /// `rejected:<reason>`): `"noise"` (no correlation peak above the noise of the
    /// correlation), `"overlap"` (shift beyond `maxShiftPx` or too little common area),
    /// `"size"` (frame size differs from the run's), `"nonfinite"` (NaN/∞ pixels),
    /// `"unreadable"` (the sequence threw when asked for the frame).
    public var rejection: String?

    public init(dx: Double, dy: Double, score: Double, rejection: String? = nil) {
        self.dx = dx
        self.dy = dy
        self.score = score
        self.rejection = rejection
    }

    public var isUsed: Bool { rejection == nil }
}

/// How a shifted image is resampled.
public enum Interpolation: Sendable {
    /// Linear in x and y (2×2 taps): smooths, never overshoots.
    case bilinear
    /// Keys cubic convolution (a = −0.5, 4×4 taps; Keys, IEEE Trans. ASSP 29, 1153 (1981)):
    /// keeps column peaks sharper than bilinear.
    case bicubic
}

/// Parameters of rigid registration. Frequencies are in cycles per pixel, lengths in pixels.
public struct RigidOptions: Sendable {
    /// Largest shift (either axis) of a frame relative to the run reference; beyond it a
    /// frame is rejected (`"overlap"`). It is not a search limit: correlations are searched
    /// over the whole map (up to just under half the frame size), so a frame that moved
    /// too far is found and rejected rather than matched to a lattice-aliased peak.
    public var maxShiftPx: Double = 200
    /// Sub-pixel resolution of the upsampled-DFT peak refinement: 1/upsampleFactor px.
    public var upsampleFactor: Int = 50
    /// Band-pass low cut-off (Gaussian high-pass, σ in cycles/px): removes thickness
    /// gradients and slow contrast drifts that do not move with the specimen.
    public var bandPassLow: Double = 0.01
    /// Band-pass high cut-off (cosine roll-off from 0.7× to 1×, zero above): removes shot
    /// noise beyond the information limit. At most 0.5.
    public var bandPassHigh: Double = 0.25
    /// Frequencies (cycles/px) taken out of the correlation with their mirror images, each by a
    /// Gaussian notch of σ `notchWidth`: scan interference that stays fixed in the frame
    /// (`CorrelationBand`).
    public var notches: [SIMD2<Double>] = []
    public var notchWidth: Double = 1.0 / 256
    /// Exponent p of the |F_a F_b|^−p spectral whitening: 0 = plain cross-correlation,
    /// 1 = full phase correlation (fails on low-dose lattice images: it whitens the noise).
    public var phaseCorrelationWeight: Double = 0
    /// Rounds of "average of the others → re-align each frame to it" after the joint
    /// pairwise solution (at least one is always run: it also places frames the pairs
    /// could not connect and rejects noise frames).
    public var iterations: Int = 2
    /// Each frame is correlated with its next `neighbours` frames in the joint solution.
    public var neighbours: Int = 3
    /// A correlation peak must stand this many noise standard deviations above zero
    /// (noise level from the effective number of Fourier modes in the band); otherwise
    /// the pair is dropped or the frame rejected as `"noise"`.
    public var minSignificance: Double = 7
    /// Frames whose aligned score (0–1) falls below this are rejected as `"noise"`.
    public var minScore: Double = 0
    /// Pair shifts disagreeing with the joint solution by more than this (px) are
    /// outliers and removed (the threshold grows to 4 robust σ of the residuals if larger).
    public var outlierThresholdPx: Double = 1.0
    /// Frames sharing less than this fraction of their area with the reference are rejected (`"overlap"`).
    public var minOverlapFraction: Double = 0.25
    /// Shortest lattice period (px) for the aliasing guard; `nil` = estimated from the power spectrum.
    public var latticePeriodPx: Double? = nil
    /// Resampling used for the group averages of `alignRun`.
    public var interpolation: Interpolation = .bicubic
    /// Memory (MB) the frames' band spectra may take; beyond it they are kept in an unlinked
    /// temporary file, so a long run's registration needs no more memory than a short one's
    /// (`SpectrumStore`; about 0.4 MB per 1024² frame with the pipeline's band-pass).
    public var spectraMemoryMB: Int = 64

    public init() {}
}

/// Frames of one group moved onto the run reference and averaged.
public struct AlignedAverage: Sendable {
    /// Mean of the contributing frames per pixel (0 where none contributes).
    public var image: Image
    /// Number of frames contributing to each pixel.
    public var weight: Image
    /// Frames used (not rejected).
    public var frameCount: Int

    public init(image: Image, weight: Image, frameCount: Int) {
        self.image = image
        self.weight = weight
        self.frameCount = frameCount
    }
}

/// Rigid registration of a whole run.
public struct RunAlignment: Sendable {
    /// One per input frame, all relative to one run-wide reference.
    public var shifts: [FrameShift]
    /// One per group, on the run reference frame (same size as the frames).
    public var groupAverages: [AlignedAverage]

    public init(shifts: [FrameShift], groupAverages: [AlignedAverage]) {
        self.shifts = shifts
        self.groupAverages = groupAverages
    }
}

/// Input the registration cannot work with.
public enum RegistrationError: Error, CustomStringConvertible, Equatable, Sendable {
    case emptySequence
    case frameTooSmall(width: Int, height: Int)
    case groupIndexOutOfRange(group: Int, index: Int, count: Int)
    case frameInTwoGroups(index: Int)
    case shiftCountMismatch(indices: Int, shifts: Int)
    case invalidOption(String)

    public var description: String {
        switch self {
        case .emptySequence: return "registration: no frames"
        case let .frameTooSmall(w, h): return "registration: frames of \(w)×\(h) px are too small (need ≥ 16×16)"
        case let .groupIndexOutOfRange(g, i, n): return "registration: group \(g) lists frame \(i), but the run has \(n) frames"
        case let .frameInTwoGroups(i): return "registration: frame \(i) is listed in two groups"
        case let .shiftCountMismatch(i, s): return "registration: \(i) frame indices but \(s) shifts"
        case let .invalidOption(s): return "registration: invalid option: \(s)"
        }
    }
}
