import FrameCore
import Foundation

/// One sample of a line intensity profile.
public struct ProfilePoint: Sendable, Equatable {
    /// Distance from the line's start, px.
    public var distancePx: Double
    /// Mean intensity across the profile width at this distance; NaN where the line has left
    /// the image (write an empty cell).
    public var intensity: Double
    /// Set on the sample nearest to where a TM plane or a Li plane crosses the line.
    public var site: Sublattice?

    public init(distancePx: Double, intensity: Double, site: Sublattice?) {
        self.distancePx = distancePx; self.intensity = intensity; self.site = site
    }
}

/// Line intensity profiles across the layers, as Pokle et al., ACS Appl. Mater. Interfaces
/// 13 (2021) tracked per temperature: TM planes are maxima, Li planes between them are dark in
/// the layered phase and fill in as TM moves into them.
///
/// Samples are taken every 0.5 px along the line; each is the mean of bilinear samples every
/// 0.5 px across the line over `widthPx` (a width of one or more column spacings averages the
/// columns of each plane into a plane profile). Plane positions come from the refined lattice —
/// a TM plane crosses the line where gLayer·(r − origin) is an integer, a Li plane where it is
/// a half-integer — corrected by the mean displacement of that plane's sites near the line;
/// the sample nearest each crossing is marked.
public enum LineProfile {
    public static let stepPx = 0.5

    /// `line` nil = automatic: perpendicular to the layers through the middle (centroid) of the
    /// analysed crystal (`region`, or the whole image), as long as it stays in the crystal and
    /// the image.
    public static func profile(_ image: Image, line: LineSegment?, widthPx: Double, sites: ColumnSites,
                               region: Mask?) -> (line: LineSegment, points: [ProfilePoint]) {
        let lattice = sites.lattice
        guard image.width > 1, image.height > 1, line != nil || lattice.isUsable else {
            return (line ?? LineSegment(x0: 0, y0: 0, x1: 0, y1: 0), [])
        }
        let seg = line ?? automaticLine(image, lattice: lattice, region: region)
        let length = seg.length
        // A line may leave the image (samples there are NaN) but not absurdly: at most 4× the
        // image's perimeter, so a bad line cannot allocate without bound.
        guard length.isFinite, length > 0, length <= 4 * Double(image.width + image.height),
              [seg.x0, seg.y0].allSatisfy({ $0.isFinite }), widthPx.isFinite,
              widthPx <= Double(image.width + image.height) else { return (seg, []) }
        let start = SIMD2(seg.x0, seg.y0)
        let dir = SIMD2(seg.x1 - seg.x0, seg.y1 - seg.y0) / length
        let across = SIMD2(-dir.y, dir.x)
        let halfWidth = max(0, widthPx) / 2
        let nAcross = max(1, Int((2 * halfWidth / stepPx).rounded()) + 1)
        let n = Int((length / stepPx).rounded(.down)) + 1
        var points = [ProfilePoint]()
        points.reserveCapacity(n)
        for k in 0..<n {
            let c = start + Double(k) * stepPx * dir
            var sum = 0.0, count = 0
            for m in 0..<nAcross {
                let o = nAcross == 1 ? 0 : -halfWidth + Double(m) * (2 * halfWidth) / Double(nAcross - 1)
                let p = c + o * across
                if let v = image.bilinear(p.x, p.y) { sum += Double(v); count += 1 }
            }
            points.append(ProfilePoint(distancePx: Double(k) * stepPx,
                                       intensity: count > 0 ? sum / Double(count) : .nan, site: nil))
        }
        markPlaneCrossings(&points, sites: sites, start: start, direction: dir, length: length, halfWidth: halfWidth)
        return (seg, points)
    }

    /// Marks the sample nearest each plane crossing. Crossings: phase(t) = gLayer·(start +
    /// t·dir − origin), linear in t. Each plane's local displacement (mean phase offset of
    /// its sites near the line) moves its crossing, so marks follow distortions the global
    /// lattice does not describe.
    static func markPlaneCrossings(_ points: inout [ProfilePoint], sites: ColumnSites, start: SIMD2<Double>,
                                   direction dir: SIMD2<Double>, length: Double, halfWidth: Double) {
        let lattice = sites.lattice
        let across = SIMD2(-dir.y, dir.x)
        let g = lattice.gLayer
        let slope = dot(g, dir)
        guard abs(slope) > 1e-9 else { return }
        let p0 = dot(g, start - lattice.origin)
        let p1 = p0 + slope * length
        let lo = min(p0, p1), hi = max(p0, p1)
        var offsets = [Int: (sum: Double, count: Int)]()
        let band = max(halfWidth, lattice.columnSpacingPx)
        for site in sites.sites {
            let r = site.position - start
            let t = dot(r, dir)
            guard abs(dot(r, across)) <= band, t >= -lattice.layerSpacingPx,
                  t <= length + lattice.layerSpacingPx else { continue }
            let phase = dot(g, site.position - lattice.origin) - (site.sublattice == .li ? 0.5 : 0)
            let plane = phase.rounded()
            let key = 2 * Int(plane) + (site.sublattice == .li ? 1 : 0)
            let entry = offsets[key] ?? (0, 0)
            offsets[key] = (entry.sum + phase - plane, entry.count + 1)
        }
        var half = (2 * lo).rounded(.up)
        while half <= 2 * hi {
            var shift = 0.0
            if let e = offsets[Int(half)], e.count > 0 { shift = e.sum / Double(e.count) }
            let t = (half / 2 + shift - p0) / slope
            let k = Int((t / stepPx).rounded())
            if k >= 0 && k < points.count {
                let isTM = half.truncatingRemainder(dividingBy: 2) == 0
                points[k].site = isTM ? .tm : .li
            }
            half += 1
        }
    }

    /// The line across the layers through the crystal's centroid, clipped to the crystal.
    static func automaticLine(_ image: Image, lattice: Lattice, region: Mask?) -> LineSegment {
        let w = image.width, h = image.height
        let mask = (region?.width == w && region?.height == h) ? region : nil
        var centre = SIMD2(Double(w - 1) / 2, Double(h - 1) / 2)
        if let m = mask, m.setCount > 0 {
            var sx = 0.0, sy = 0.0, n = 0.0
            for y in 0..<h { for x in 0..<w where m[x, y] { sx += Double(x); sy += Double(y); n += 1 } }
            centre = SIMD2(sx / n, sy / n)
            if !m.contains(centre.x, centre.y) {
                // A non-convex crystal: use its pixel nearest the centroid.
                var best = centre, bestD = Double.infinity
                for y in 0..<h {
                    for x in 0..<w where m[x, y] {
                        let d = (Double(x) - centre.x) * (Double(x) - centre.x) + (Double(y) - centre.y) * (Double(y) - centre.y)
                        if d < bestD { bestD = d; best = SIMD2(Double(x), Double(y)) }
                    }
                }
                centre = best
            }
        }
        let n = lattice.layerNormal
        func reach(_ sign: Double) -> Double {
            var t = 0.0
            while true {
                let p = centre + sign * (t + 0.5) * n
                guard p.x >= 0, p.y >= 0, p.x <= Double(w - 1), p.y <= Double(h - 1) else { break }
                if let m = mask, !m.contains(p.x, p.y) { break }
                t += 0.5
            }
            return t
        }
        let back = reach(-1), forward = reach(1)
        let a = centre - back * n, b = centre + forward * n
        return LineSegment(x0: a.x, y0: a.y, x1: b.x, y1: b.y)
    }
}
