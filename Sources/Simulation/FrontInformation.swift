import FrameCore

/// How precisely a run's frames can locate the front at all: the Cramér–Rao lower bound
/// (Cramér, *Mathematical Methods of Statistics*, 1946; Rao, Bull. Calcutta Math. Soc. 37,
/// 81, 1945) on the front position of one frame and on a hold's velocity, as used for
/// electron-microscope images by den Dekker et al. (Ultramicroscopy 104, 83, 2005).
///
/// Every other property of the specimen, the scan and the detector is taken as known and
/// the frame as ideally acquired (no jitter, flyback or drift within it), so the bound is
/// what no estimator of the front can beat, not what one can reach. Each pixel contributes
/// (∂μ/∂x)²/σ², μ its expected value and σ² = gain²·λ + read noise² + 1/12 ADU² its
/// variance (λ expected electrons): for shot noise alone this is the Poisson information
/// (∂λ/∂x)²/λ exactly; the read noise and rounding enter as Gaussian.
extension HeatingRunSimulator {
    /// Fisher information (nm⁻²) of frame `i` about its front position, from the expected
    /// detector values with the front moved `deltaNm` either side of its true place; nil
    /// where the frame has no front.
    public func frontPositionInformation(frame i: Int, deltaNm: Double = 0.01) -> Double? {
        guard let front = frameTruth(i).frontPositionNm else { return nil }
        let before = idealIntensity(frame: i, frontNm: front - deltaNm)
        let after = idealIntensity(frame: i, frontNm: front + deltaNm)
        let gain = detector.gainADUPerElectron, floor = detector.readNoiseADU * detector.readNoiseADU + 1.0 / 12
        var information = 0.0
        for k in before.pixels.indices {
            let a = detector.expectedValue(intensity: Double(before.pixels[k]))
            let b = detector.expectedValue(intensity: Double(after.pixels[k]))
            let slope = (b - a) / (2 * deltaNm)
            information += slope * slope / (gain * (0.5 * (a + b) - detector.offsetADU) + floor)
        }
        return information
    }

    /// Model intensity of frame `i` as the ideal acquisition sees it (no jitter, flyback or
    /// drift within the frame), with the front at `frontNm` instead of its true place.
    public func idealIntensity(frame i: Int, frontNm: Double) -> Image {
        intensity(frame: i, distortions: false, jitter: nil, frontNm: frontNm)
    }

    /// The bound on a hold's velocity (nm/s) fitted, with the position at the hold's mean
    /// time, to frames at `timesS` carrying `information` (nm⁻²) each: the (v, v) element of
    /// the inverse of Σ I_f·[1, t_f; t_f, t_f²]. Nil with fewer than two frames or no spread.
    public static func velocityBound(timesS: [Double], information: [Double]) -> Double? {
        guard timesS.count == information.count, timesS.count >= 2 else { return nil }
        let total = information.reduce(0, +)
        guard total > 0 else { return nil }
        let mean = zip(timesS, information).map { $0 * $1 }.reduce(0, +) / total
        let spread = zip(timesS, information).map { ($0 - mean) * ($0 - mean) * $1 }.reduce(0, +)
        return spread > 0 ? 1 / spread.squareRoot() : nil
    }
}
