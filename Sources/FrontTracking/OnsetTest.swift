import Foundation

/// The onset of the transformation: the first hold whose Li/TM ratio has risen above the
/// pre-heating baseline (the first hold) by more than its noise can explain, or that shows
/// a front — with a stated false-alarm rate and no fixed threshold on the ratio.
///
/// Statistic: Welch's t for the rise of the hold's mean over the baseline's,
/// t = (m̄ₖ − m̄₀) / √(SEₖ² + SE₀²), one-sided. Frames of a hold are not independent (slow
/// drifts of thickness, focus or dose correlate neighbouring frames), so each SE is that of
/// the mean of an AR(1) series: with n frames and lag-1 correlation ρ the mean counts as
/// n_eff = n / (1 + 2 Σₗ (1 − l/n) ρˡ) independent frames (Bayley & Hammersley, J. R. Stat.
/// Soc. Suppl. 8, 184, 1946), and the sample variance s² underestimates σ² by the factor
/// (n − n/n_eff)/(n − 1), so SE² = s² (n − 1) / (n (n_eff − 1)), with n_eff − 1 degrees of
/// freedom per hold (Welch–Satterthwaite for the pair). ρ is the lag-1 autocorrelation of
/// the frames about their own hold's mean, pooled over the baseline and every hold up to
/// the one tested — those the null hypothesis (no onset yet) says are alike, so a later
/// hold's transformation trend cannot inflate it — corrected to first order for its
/// small-sample bias (E[r₁] ≈ ρ − (1 + 4ρ)/n; Kendall, Biometrika 41, 403, 1954; Marriott &
/// Pope, Biometrika 41, 390, 1954) and kept in [0, 0.9]. A hold counts when its one-sided
/// p-value is below α/(H − 1): the false-alarm rate α holds for the whole run of H holds
/// (Bonferroni). Over simulated AR(1) runs stated at α = 5 % (800 each): 6 holds × 12 frames
/// 3.5, 5.8 and 6.5 % false alarms at ρ = 0, 0.3, 0.6; 12 holds × 6 frames 2.0, 6.1, 9.9 %.
/// Taking the frames as independent gives 26 % at ρ = 0.5 (`KineticsTests`).
public enum OnsetTest {
    /// What the test is asked: the family-wise false-alarm rate over a run's holds.
    public struct Configuration: Sendable, Equatable {
        public var falseAlarmRate: Double
        /// Upper limit of the lag-1 autocorrelation used for the effective sample size.
        public var maximumAutocorrelation: Double
        public init(falseAlarmRate: Double = 0.01, maximumAutocorrelation: Double = 0.9) {
            self.falseAlarmRate = falseAlarmRate
            self.maximumAutocorrelation = maximumAutocorrelation
        }
    }

    /// One hold against the baseline.
    public struct Hold: Sendable, Equatable {
        public var stepIndex: Int
        /// Frames with a ratio, and their effective number; the baseline's in this comparison.
        public var frames: Int
        public var effectiveFrames: Double
        public var baselineEffectiveFrames: Double
        public var mean: Double
        /// Rise over the baseline, its standard error (correlation included), the Welch t,
        /// its degrees of freedom and one-sided p-value.
        public var rise: Double
        public var riseSE: Double
        public var t: Double
        public var dof: Double
        public var pValue: Double
        /// p below the per-hold level, or a front in the hold.
        public var significant: Bool
        public var hasFront: Bool
    }

    public struct Result: Sendable, Equatable {
        /// The onset hold; nil when the baseline has already transformed (it shows a front)
        /// or no hold qualifies.
        public var onsetStep: Int?
        public var baselineTransformed: Bool
        /// α/(H − 1): the level each hold is tested at.
        public var perHoldLevel: Double
        /// Every later hold's test against the baseline.
        public var holds: [Hold]
    }

    /// `ratios[k]`: hold k's per-frame Li/TM ratios in time order (non-finite values are
    /// dropped); `hasFront[k]`: whether hold k shows a front; `temperaturesC[k]`: nil where
    /// unknown (such a hold cannot be the onset: no temperature could be reported).
    public static func test(ratios: [[Double]], hasFront: [Bool], temperaturesC: [Double?],
                            configuration: Configuration = Configuration()) -> Result {
        let n = max(ratios.count, hasFront.count)
        func front(_ k: Int) -> Bool { k < hasFront.count && hasFront[k] }
        func series(_ k: Int) -> [Double] { k < ratios.count ? ratios[k].filter(\.isFinite) : [] }
        let level = configuration.falseAlarmRate / Double(max(1, n - 1))
        var result = Result(onsetStep: nil, baselineTransformed: front(0), perHoldLevel: level, holds: [])
        guard n > 1 else { return result }
        let base = series(0)
        for k in 1..<n {
            let known = k < temperaturesC.count && temperaturesC[k]?.isFinite == true
            var hold = Hold(stepIndex: k, frames: 0, effectiveFrames: 0, baselineEffectiveFrames: 0, mean: .nan, rise: .nan, riseSE: .nan, t: .nan,
                            dof: .nan, pValue: .nan, significant: front(k), hasFront: front(k))
            let x = series(k)
            if base.count >= 2, x.count >= 2 {
                let rho = pooledAutocorrelation((0...k).map(series), limit: configuration.maximumAutocorrelation)
                let n0 = effectiveSize(base.count, rho), nk = effectiveSize(x.count, rho)
                let (m0, v0) = meanVariance(base), (mk, vk) = meanVariance(x)
                let se0 = varianceOfMean(v0, n: base.count, effective: n0), sek = varianceOfMean(vk, n: x.count, effective: nk)
                let se = (se0 + sek).squareRoot()
                hold.frames = x.count; hold.effectiveFrames = nk; hold.mean = mk
                hold.rise = mk - m0; hold.riseSE = se
                hold.baselineEffectiveFrames = n0
                if se > 0, se.isFinite {
                    let dof = (se0 + sek) * (se0 + sek) / (se0 * se0 / (n0 - 1) + sek * sek / (nk - 1))
                    hold.t = hold.rise / se; hold.dof = dof
                    hold.pValue = 1 - Distributions.studentTCDF(hold.t, dof: dof)
                    hold.significant = hold.significant || hold.pValue < level
                }
            }
            result.holds.append(hold)
            if result.onsetStep == nil, !result.baselineTransformed, known, hold.significant { result.onsetStep = k }
        }
        return result
    }

    /// Bayley & Hammersley's effective number of an AR(1) series of n values with lag-1
    /// correlation ρ: n / (1 + 2 Σₗ₌₁ⁿ⁻¹ (1 − l/n) ρˡ), at least 1.
    public static func effectiveSize(_ n: Int, _ rho: Double) -> Double {
        guard n > 1, rho > 0 else { return Double(max(n, 1)) }
        var sum = 0.0, power = 1.0
        for l in 1..<n { power *= rho; sum += (1 - Double(l) / Double(n)) * power }
        return max(1, Double(n) / (1 + 2 * sum))
    }

    /// Variance of the mean of an AR(1) series of n values with sample variance `s2` and
    /// effective size `effective`: s² (n − 1) / (n (n_eff − 1)); infinite when n_eff ≤ 1.
    static func varianceOfMean(_ s2: Double, n: Int, effective: Double) -> Double {
        effective > 1 + 1e-9 ? s2 * Double(n - 1) / (Double(n) * (effective - 1)) : .infinity
    }

    /// Lag-1 autocorrelation of several series about their own means, pooled, with Kendall's
    /// first-order bias correction r + (1 + 4r)/n (from E[r] ≈ ρ − (1 + 4ρ)/n, n the mean
    /// series length), kept in [0, `limit`]. (Inverting the bias exactly, (n r + 1)/(n − 4),
    /// amplifies the estimate's noise n/(n − 4)-fold: with holds of 6 frames the onset was
    /// found at its hold on 9 of gradual-onset seeds 1–16, against 16 of 16 with this.)
    public static func pooledAutocorrelation(_ series: [[Double]], limit: Double) -> Double {
        var lag = 0.0, zero = 0.0, count = 0
        for x in series where x.count >= 3 {
            let m = x.reduce(0, +) / Double(x.count)
            for i in x.indices {
                zero += (x[i] - m) * (x[i] - m)
                if i + 1 < x.count { lag += (x[i] - m) * (x[i + 1] - m) }
            }
            count += x.count
        }
        let used = series.filter { $0.count >= 3 }.count
        guard zero > 0, used > 0 else { return 0 }
        let r = lag / zero, length = Double(count) / Double(used)
        return min(limit, max(0, r + (1 + 4 * r) / length))
    }

    static func meanVariance(_ x: [Double]) -> (Double, Double) {
        let m = x.reduce(0, +) / Double(x.count)
        let v = x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(1, x.count - 1))
        return (m, v)
    }
}
