import FrameCore

/// Otsu's threshold (N. Otsu, IEEE Trans. SMC 9 (1979) 62): the cut that maximises the
/// between-class variance of a 256-bin histogram spanning the 0.5–99.5 % quantiles (so a
/// few outliers cannot squeeze the useful range into one bin).
struct OtsuSplit {
    var threshold: Double
    /// Between-class variance over total variance (0…1): ≈ 0.64 for one Gaussian class,
    /// → 1 for two well separated classes.
    var effectiveness: Double

    init?(_ values: [Double]) {
        let v = values.filter(\.isFinite)
        guard v.count >= 4, let lo = LeastSquares.quantile(v, 0.005), let hi = LeastSquares.quantile(v, 0.995) else { return nil }
        self.init(v, lo: lo, hi: hi)
    }

    /// The same split from the sample already sorted.
    init?(_ sorted: SortedSample) {
        guard sorted.count >= 4, let lo = sorted.quantile(0.005), let hi = sorted.quantile(0.995) else { return nil }
        self.init(sorted.values, lo: lo, hi: hi)
    }

    /// The split of finite values `v` on a histogram spanning lo…hi.
    private init?(_ v: [Double], lo: Double, hi: Double) {
        guard hi > lo else { return nil }
        let bins = 256
        var hist = [Double](repeating: 0, count: bins)
        let scale = Double(bins) / (hi - lo)
        for x in v { hist[min(bins - 1, max(0, Int((x - lo) * scale)))] += 1 }
        let total = Double(v.count)
        var sumAll = 0.0, sumSq = 0.0
        for i in 0..<bins {
            let c = lo + (Double(i) + 0.5) / scale
            sumAll += hist[i] * c; sumSq += hist[i] * c * c
        }
        let meanAll = sumAll / total
        let varAll = sumSq / total - meanAll * meanAll
        var best = -1.0, bestIndex = 0, w0 = 0.0, sum0 = 0.0
        for i in 0..<(bins - 1) {
            let c = lo + (Double(i) + 0.5) / scale
            w0 += hist[i]; sum0 += hist[i] * c
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = sum0 / w0, m1 = (sumAll - sum0) / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1) / (total * total)
            if between > best { best = between; bestIndex = i }
        }
        guard best >= 0 else { return nil }
        threshold = lo + Double(bestIndex + 1) / scale
        effectiveness = varAll > 0 ? min(1, best / varAll) : 0
    }
}
