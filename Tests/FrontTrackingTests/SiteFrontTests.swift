import Foundation
import Testing
import TestSupport
import FrameCore
import ColumnIntensities
import FrontTracking

/// Column intensities of a grain whose TM migrates into the Li sites behind a tanh front
/// (x = P/2 of each site swapped), drawn with Poisson noise at a few counts per column, as
/// `SiteIntensityEstimator` would report them: the site-ratio profile fitted as one moving
/// edge must give the true velocity.
@Suite("Moving front from site intensities")
struct SiteFrontTests {
    static let pixelNm = 0.025
    static let angle = 25.0 * Double.pi / 180
    static var along: SIMD2<Double> { SIMD2(cos(angle), sin(angle)) }
    static var across: SIMD2<Double> { SIMD2(-along.y, along.x) }
    static let origin = SIMD2<Double>(60, 256)
    static var boundary: LineSegment {
        let a = origin - 600 * across, b = origin + 600 * across
        return LineSegment(x0: a.x, y0: a.y, x1: b.x, y1: b.y)
    }

    /// TM and Li sites of the grain (s ≥ 0 beyond the boundary) in a 512² field.
    static func sites() -> [ColumnSite] {
        let d = 0.468 / pixelNm, a = 0.244 / pixelNm
        var out = [ColumnSite]()
        for k in -40...40 {
            for i in -60...60 {
                for li in [false, true] {
                    let z = Double(k) + (li ? 0.5 : 0), shift = Double(k) / 3 + (li ? 0.5 : 0)
                    let p = origin + z * d * across + (Double(i) + shift) * a * along
                    guard p.x >= 0, p.y >= 0, p.x < 512, p.y < 512, ((p - origin) * along).sum() >= 0 else { continue }
                    out.append(ColumnSite(x: p.x, y: p.y, sublattice: li ? .li : .tm))
                }
            }
        }
        return out
    }

    /// Noisy integrated intensities with the front at `frontPx`, 10–90 % width `widthPx`.
    static func intensities(_ sites: [ColumnSite], frontPx: Double, widthPx: Double, countsPerTM: Double,
                            rng: inout SplitMix64) -> [Double] {
        let w = widthPx / (2 * atanh(0.8))
        return sites.map { site in
            let s = ((site.position - origin) * along).sum()
            let x = 0.25 * (1 - tanh((s - frontPx) / w))            // half the TM swapped in rock salt
            let own = site.sublattice == .tm ? 271.0 : 6.5, other = site.sublattice == .tm ? 6.5 : 271.0
            let mean = ((1 - x) * own + x * other) / 271 * countsPerTM
            return Double(rng.poisson(mean)) + 2 * rng.gaussian()  // shot noise plus a background floor
        }
    }

    static func crystal(_ sites: [ColumnSite]) -> CrystalExtent {
        CrystalExtent(distancesPx: sites.map { (($0.position - origin) * along).sum() })
    }

    /// A step of 8 frames in which the front leaves the boundary (the first step of a run,
    /// where the previous per-frame fits were worst) or moves further out.
    @Test("velocity within 10 % from a step of low-dose frames", arguments: [0.0, 2.0])
    func velocity(startNm: Double) throws {
        let sites = Self.sites(), extent = Self.crystal(sites)
        let times = (0..<8).map { Double($0) * 22 }
        let vNm = 0.0085, widthNm = 3.0
        var errors = [Double]()
        for seed in 1...8 as ClosedRange<UInt64> {
            var rng = SplitMix64(seed: seed)
            let samples = times.map { t -> FrontSamples? in
                let front = (startNm + vNm * t) / Self.pixelNm
                let values = Self.intensities(sites, frontPx: front, widthPx: widthNm / Self.pixelNm, countsPerTM: 30, rng: &rng)
                return SiteOccupancyProfile.samples(sites: sites, intensities: values, region: nil, boundary: Self.boundary,
                                                    direction: Self.along, binPx: 4.7, minimumDistancePx: 4,
                                                    crystal: extent)
            }
            let fit = try #require(MovingFront.fit(samples, timesS: times, channel: .siteRatio,
                                                   startPositionPx: (startNm + 0.6) / Self.pixelNm, startWidthPx: 100))
            let located = times.indices.filter { fit.frames[$0] != nil }
            #expect(located.count == times.count, "seed \(seed): \(located.count) frames located")
            let v = try #require(Kinetics.velocity(times: located.map { times[$0] },
                                                   positions: located.map { fit.frames[$0]!.positionPx * Self.pixelNm }))
            let error = v.velocity / vNm - 1
            errors.append(error)
            #expect(abs(fit.widthPx * Self.pixelNm - widthNm) < 1, "seed \(seed): width \(fit.widthPx * Self.pixelNm) nm")
        }
        let mean = errors.reduce(0, +) / Double(errors.count)
        #expect(errors.allSatisfy { abs($0) <= 0.10 }, "velocity errors \(errors)")
        #expect(abs(mean) <= 0.05, "mean velocity error \(mean): biased")
    }

    @Test("too few sites: no samples rather than a crash")
    func degenerate() {
        let few = Array(Self.sites().prefix(5))
        #expect(SiteOccupancyProfile.samples(sites: few, intensities: [Double](repeating: 1, count: 5), region: nil,
                                             boundary: Self.boundary, direction: Self.along, binPx: 4,
                                             crystal: Self.crystal(few)) == nil)
        #expect(SiteOccupancyProfile.samples(sites: few, intensities: [1], region: nil, boundary: Self.boundary,
                                             direction: Self.along, binPx: 4, crystal: Self.crystal(few)) == nil)
        #expect(MovingFront.fit([nil, nil], timesS: [0, 1], channel: .siteRatio, startPositionPx: 10, startWidthPx: 10) == nil)
    }
}
