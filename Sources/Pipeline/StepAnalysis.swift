import Foundation
import FrameCore
import FrameIO
import Registration
import ColumnIntensities
import FrontTracking

/// What the pipeline learns from one step's aligned average: the lattice, the analysed
/// crystal, the column sites (refined on the average, where the signal allows it) and the
/// phase map. Single frames are then measured at these fixed sites, which keeps their
/// low-dose intensities unbiased.
struct StepAnalysis: Sendable {
    var lattice: Lattice
    /// The analysed crystal: lattice fringes present, covered by every frame, inside `roi`.
    var region: Mask
    var sites: ColumnSites
    var aggregate: SiteIntensities
    var orderParameter: OrderParameterMap
    var phase: PhaseMap
    /// Demodulation window of the order parameter, px.
    var windowPx: Double
    /// The front's boundary as detected on this average when it shows rock salt.
    var detectedBoundary: LineSegment?
    var columnPrecisionPx: Double?

    /// `previous`: the lattice of an earlier step, used when this one shows none (a fully
    /// rock-salt grain has lost the layer reflection but keeps its columns in place).
    static func analyse(average: AlignedAverage, config: RunConfig, pixelSizeNm: Double?,
                        previous: Lattice?) -> StepAnalysis? {
        let image = average.image
        guard let lattice = (try? LatticeFinder.find(in: image, pixelSizeNm: pixelSizeNm,
                                                     layerSpacingNm: config.layerSpacingNm)) ?? previous else { return nil }
        // Only pixels every used frame covers, inside the user's roi.
        var covered = Mask(width: image.width, height: image.height,
                           bits: average.weight.pixels.map { $0 >= Float(average.frameCount) - 0.5 && $0 > 0 })
        if let roi = config.roi {
            for y in 0..<image.height { for x in 0..<image.width where !(x >= roi.x0 && x < roi.x1 && y >= roi.y0 && y < roi.y1) {
                covered[x, y] = false
            } }
        }
        // Two layer spacings: narrow enough to keep a 2–6 nm front sharp, wide enough to
        // average a few columns' noise (Hÿtch 1998 uses a similar mask radius ~ |g|/2).
        let windowPx = 2 * lattice.layerSpacingPx
        let op = OrderParameter.map(image, gLayer: lattice.gLayer, windowPx: windowPx, region: covered)
        var region = op.crystal
        for i in region.bits.indices { region.bits[i] = region.bits[i] && covered.bits[i] }
        guard region.setCount > 0 else { return nil }
        let found = ColumnFinder.sites(in: image, lattice: lattice, region: region)
        let measured = SiteIntensity.measure(image, sites: found, region: region)
        let phase = PhaseSegmentation.segment(op)
        let front = FrontLocator.locate(op, phase: phase, boundary: config.frontBoundary, analysed: covered)
        return StepAnalysis(lattice: lattice, region: region, sites: measured.sites, aggregate: measured.aggregate,
                            orderParameter: op, phase: phase, windowPx: windowPx,
                            detectedBoundary: front.positionPx != nil ? front.boundary : nil,
                            columnPrecisionPx: LatticePrecision.rms(measured.sites.sites.filter { $0.sublattice == .tm },
                                                                    lattice: lattice))
    }
}

extension StepAnalysis {
    /// TM column precision (px) of an average, for comparing registrations.
    static func columnPrecision(_ image: Image, config: RunConfig, pixelSizeNm: Double?) -> Double? {
        guard let lattice = try? LatticeFinder.find(in: image, pixelSizeNm: pixelSizeNm, layerSpacingNm: config.layerSpacingNm)
        else { return nil }
        let region = CrystalRegion.detect(in: image, lattice: lattice)
        return LatticePrecision.rms(ColumnFinder.sites(in: image, lattice: lattice, region: region).tm, lattice: lattice)
    }
}

/// Precision of column positions: RMS distance of refined TM sites from the best-fit ideal
/// lattice (an affine fit of origin and two basis vectors to the sites' integer indices), the
/// measure Jones et al. (2015) use to compare registrations.
enum LatticePrecision {
    static func rms(_ sites: [ColumnSite], lattice: Lattice) -> Double? {
        guard sites.count >= 8 else { return nil }
        let (a, b) = lattice.tmBasis
        let det = a.x * b.y - a.y * b.x
        guard abs(det) > 1e-9 else { return nil }
        // Integer indices of each site in the (a, b) basis.
        var rows: [(Double, Double, Double, Double)] = []   // (i, j, x, y)
        for s in sites {
            let d = SIMD2(s.x, s.y) - lattice.origin
            let i = ((d.x * b.y - d.y * b.x) / det).rounded(), j = ((a.x * d.y - a.y * d.x) / det).rounded()
            rows.append((i, j, s.x, s.y))
        }
        // Least squares x = x0 + i·ax + j·bx (and y likewise): 3×3 normal equations.
        var m = [[Double]](repeating: [0, 0, 0], count: 3), vx = [0.0, 0, 0], vy = [0.0, 0, 0]
        for r in rows {
            let u = [1, r.0, r.1]
            for p in 0..<3 { for q in 0..<3 { m[p][q] += u[p] * u[q] }; vx[p] += u[p] * r.2; vy[p] += u[p] * r.3 }
        }
        guard let cx = solve3(m, vx), let cy = solve3(m, vy) else { return nil }
        var ss = 0.0
        for r in rows {
            let ex = r.2 - (cx[0] + cx[1] * r.0 + cx[2] * r.1), ey = r.3 - (cy[0] + cy[1] * r.0 + cy[2] * r.1)
            ss += ex * ex + ey * ey
        }
        return (ss / Double(rows.count)).squareRoot()
    }

    static func solve3(_ m: [[Double]], _ v: [Double]) -> [Double]? {
        func det(_ a: [[Double]]) -> Double {
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        }
        let d = det(m)
        guard abs(d) > 1e-12 else { return nil }
        return (0..<3).map { c in
            var mc = m
            for r in 0..<3 { mc[r][c] = v[r] }
            return det(mc) / d
        }
    }
}
