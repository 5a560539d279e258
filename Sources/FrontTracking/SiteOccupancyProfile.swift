import Foundation
import FrameCore
import ColumnIntensities

/// The front seen in the column intensities: Li-site over TM-site intensity, summed over the
/// sites in each bin of distance from the boundary.
///
/// Method: the fixed-site, deblended column intensities of `SiteIntensityEstimator` (linear
/// in the data, so unbiased under Poisson noise at any dose), binned along the propagation
/// direction like `FrontLocator`'s lock-in profile. Where TM moves into the Li sites the Li
/// columns brighten and the TM columns dim until, in cation-mixed rock salt, both look alike
/// (the science notes: the Li/TM ratio as a second order parameter). The ratio of the bin's
/// sums cancels thickness, and unlike the lock-in amplitude it has no window blur (the sites
/// are sampled where they are) and no noise floor (a linear estimate, not a modulus).
public enum SiteOccupancyProfile {
    /// Samples of Li/TM against distance (px) from `boundary` along `direction` (unit, into
    /// the grain), in bins of `binPx`; sites outside `region`, with a foot outside the
    /// boundary segment, or with non-finite intensity are left out. nil with fewer than 8
    /// bins holding both kinds of site.
    public static func samples(sites: [ColumnSite], intensities: [Double], region: Mask?, boundary: LineSegment,
                               direction: SIMD2<Double>, binPx: Double, minimumDistancePx: Double = 0,
                               crystal: CrystalExtent) -> FrontSamples? {
        guard sites.count == intensities.count, binPx > 0, binPx.isFinite else { return nil }
        let p0 = SIMD2(boundary.x0, boundary.y0), p1 = SIMD2(boundary.x1, boundary.y1)
        let length = boundary.length
        guard length.isFinite, length > 1, direction.x.isFinite, direction.y.isFinite else { return nil }
        let along = (p1 - p0) / length
        var li = [Int: Double](), tm = [Int: Double](), n = [Int: Double](), tSum = [Int: Double]()
        for (site, value) in zip(sites, intensities) where value.isFinite {
            if let region {
                let x = Int(site.x.rounded()), y = Int(site.y.rounded())
                guard x >= 0, y >= 0, x < region.width, y < region.height, region[x, y] else { continue }
            }
            let r = site.position - p0
            let s = (r * along).sum(), t = (r * direction).sum()
            guard s >= 0, s <= length, t >= minimumDistancePx else { continue }
            let b = Int(t / binPx)
            if site.sublattice == .li { li[b, default: 0] += value } else { tm[b, default: 0] += value }
            n[b, default: 0] += 1
            tSum[b, default: 0] += t
        }
        let bins = n.keys.sorted().filter { (tm[$0] ?? 0) > 0 && li[$0] != nil && n[$0]! >= 4 }
        guard bins.count >= 8 else { return nil }
        return FrontSamples(distancesPx: bins.map { tSum[$0]! / n[$0]! }, values: bins.map { li[$0]! / tm[$0]! },
                            weights: bins.map { n[$0]! }, blurSigmaPx: 0, crystal: crystal)
    }
}
