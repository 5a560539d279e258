import FrameCore

/// Precision of column positions: RMS distance of refined TM sites from the best-fit ideal
/// lattice (an affine fit of origin and two basis vectors to the sites' integer indices, by
/// linear least squares), the measure Jones et al., Adv. Struct. Chem. Imaging 1 (2015) 8,
/// use to compare registrations.
public enum LatticePrecision {
    /// RMS distance (px) of `sites` from the best-fit ideal lattice of `lattice`'s basis; nil with fewer than 8 sites.
    public static func rms(_ sites: [ColumnSite], lattice: Lattice) -> Double? {
        fittedRMS(sites, lattice: lattice, outlierFactor: nil)
    }

    /// The RMS distance with outliers dropped once: the lattice is refitted to the sites
    /// closer than `outlierFactor`× the median distance, and the RMS taken over those. A few
    /// misdetections (at a front or a grain boundary) dominate the plain RMS; this measures
    /// the columns themselves. Nil with fewer than 8 sites.
    public static func robustRMS(_ sites: [ColumnSite], lattice: Lattice, outlierFactor: Double = 5) -> Double? {
        fittedRMS(sites, lattice: lattice, outlierFactor: outlierFactor)
    }

    /// The fit over all sites, then (with `outlierFactor`) once more over the sites closer
    /// than that many median distances; the RMS over the sites of the last fit.
    static func fittedRMS(_ sites: [ColumnSite], lattice: Lattice, outlierFactor: Double?) -> Double? {
        guard let rows = indexed(sites, lattice: lattice) else { return nil }
        var keep = [Bool](repeating: true, count: rows.count), rms: Double?
        for _ in 0..<(outlierFactor == nil ? 1 : 2) {
            guard let distances = distances(rows, fittedTo: keep) else { return nil }
            let kept = distances.indices.filter { keep[$0] }
            guard !kept.isEmpty else { return nil }
            rms = (kept.map { distances[$0] * distances[$0] }.reduce(0, +) / Double(kept.count)).squareRoot()
            let median = distances.sorted()[distances.count / 2]
            keep = distances.map { $0 < (outlierFactor ?? .infinity) * median }
        }
        return rms
    }

    /// A site with its integer indices (i, j) in the TM basis.
    struct IndexedSite {
        var i, j: Double
        var position: SIMD2<Double>
    }

    /// Each site's nearest lattice indices; nil with fewer than 8 sites or a degenerate basis.
    static func indexed(_ sites: [ColumnSite], lattice: Lattice) -> [IndexedSite]? {
        guard sites.count >= 8 else { return nil }
        let (a1, a2) = lattice.tmBasis
        let det = a1.x * a2.y - a1.y * a2.x
        guard abs(det) > 1e-9 else { return nil }
        return sites.map { s in
            let d = SIMD2(s.x, s.y) - lattice.origin
            return IndexedSite(i: ((d.x * a2.y - d.y * a2.x) / det).rounded(), j: ((a1.x * d.y - a1.y * d.x) / det).rounded(),
                               position: SIMD2(s.x, s.y))
        }
    }

    /// Distance of every site from the ideal lattice p = origin + i·a1 + j·a2 fitted by least
    /// squares (3×3 normal equations, positive definite: solved without pivoting, one solve
    /// per axis) to the sites in `fittedTo`; nil when that fit is singular.
    static func distances(_ rows: [IndexedSite], fittedTo keep: [Bool]) -> [Double]? {
        var normal = [Double](repeating: 0, count: 9), vx = [0.0, 0, 0], vy = [0.0, 0, 0]
        for (k, r) in rows.enumerated() where keep[k] {
            let u = [1, r.i, r.j]
            for p in 0..<3 {
                for q in 0..<3 { normal[p * 3 + q] += u[p] * u[q] }
                vx[p] += u[p] * r.position.x
                vy[p] += u[p] * r.position.y
            }
        }
        guard let cx = LeastSquares.solve(normal, vx, n: 3, pivoting: false),
              let cy = LeastSquares.solve(normal, vy, n: 3, pivoting: false) else { return nil }
        return rows.map { r in
            let ex = r.position.x - (cx[0] + r.i * cx[1] + r.j * cx[2])
            let ey = r.position.y - (cy[0] + r.i * cy[1] + r.j * cy[2])
            return (ex * ex + ey * ey).squareRoot()
        }
    }
}
