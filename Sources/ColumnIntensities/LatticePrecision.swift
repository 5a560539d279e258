import FrameCore

/// Precision of column positions: RMS distance of refined TM sites from the best-fit ideal
/// lattice (an affine fit of origin and two basis vectors to the sites' integer indices), the
/// measure Jones et al. (2015) use to compare registrations.
public enum LatticePrecision {
    /// RMS distance (px) of `sites` from the best-fit ideal lattice of `lattice`'s basis; nil with fewer than 8 sites.
    public static func rms(_ sites: [ColumnSite], lattice: Lattice) -> Double? {
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
