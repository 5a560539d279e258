import FrameCore
import Foundation

/// Places and refines the TM and Li column sites of a layered crystal.
///
/// Method (Atomap-like, Nord et al., Adv. Struct. Chem. Imaging 3 (2017) 9, but from a
/// Fourier-measured lattice rather than peak finding):
/// 1. TM sites are the nodes of the lattice from `LatticeFinder` that fall in the image and
///    the analysed region.
/// 2. With `refine`, each TM column is moved to its centre of mass, then fitted by a 2-D
///    Gaussian + constant (`SiteRefinement`) on the region's pixels only (an aligned
///    average's uncovered zeros never enter a fit), in parallel; the lattice (origin and both basis
///    vectors) is then re-fitted to the refined positions by least squares, discarding outliers.
///    Fits are screened against their lattice neighbours (`screenRefinedPositions`): outliers
///    and failed fits are refitted from the position the neighbours predict, and when the fits'
///    own position uncertainty shows the frame is noise-dominated (median > 0.05 px) every
///    column takes lattice + its neighbours' median deviation instead.
/// 3. Li sites lie half-way between neighbouring TM planes, at the midpoint of a TM column and
///    a column of the next plane: with the inter-plane vector a2 (stacking offset δ within
///    ±½ a1) the two candidates are r + a2/2 and r + (a2 + a1)/2. The cation sublattice of
///    the O3 (α-NaFeO2) structure is itself ABC-stacked, which puts the Li site at −δ from the TM
///    plane below; the candidate nearest that rule is used unless the image clearly says
///    otherwise (the other candidate is brighter by > 10 % of a TM column and by 1.5×), so
///    Li sites are measured where they are even when they are dark. Each Li site is the
///    midpoint of the two refined TM columns (following local distortions), or the refined
///    lattice position where a neighbour is missing.
///
/// Without `refine` the sites are the lattice nodes themselves (fastest; for single low-dose
/// frames, where per-column fits only add noise). With `refine` on step averages the positions
/// are precise to ~0.002 px on noiseless data and follow smooth distortions; on noisy single
/// frames the screening makes them coarse but unbiased.
///
/// `region` nil: the crystal is detected from the local lattice-fringe amplitude
/// (`CrystalRegion.detect`); in an image that is crystal everywhere this is the whole image.
public enum ColumnFinder {
    public static func sites(in image: Image, lattice: Lattice, region: Mask?, refine: Bool = true) -> ColumnSites {
        guard image.width > 1, image.height > 1, lattice.isUsable else { return ColumnSites(sites: [], lattice: lattice) }
        let mask: Mask
        if let r = region, r.width == image.width, r.height == image.height {
            mask = r
        } else {
            mask = CrystalRegion.detect(in: image, lattice: lattice)
        }
        var lat = lattice
        let (a1, a2) = lat.tmBasis
        let radius = fitRadius(a1: a1, a2: a2)

        // 1. TM lattice nodes inside the image (a margin of one pixel) and the region.
        let nodes = latticeNodes(lat, width: image.width, height: image.height, extra: 1)
        var tmIndex = [SIMD2<Int32>]()
        var tmStart = [SIMD2<Double>]()
        for (ij, p) in nodes where inside(p, image) && mask.contains(p.x, p.y) {
            tmIndex.append(ij); tmStart.append(p)
        }

        // 2. Refinement and lattice re-fit.
        var tmPos = tmStart
        var refined = [Bool](repeating: false, count: tmStart.count)
        var sigma: Double? = nil
        if refine, !tmStart.isEmpty {
            (lat, tmPos, refined, sigma) = refinedColumns(image, lattice: lat, indices: tmIndex, start: tmStart,
                                                          radius: radius, mask: mask)
        }

        // 3. Li sites between TM planes j and j+1.
        var out = [ColumnSite]()
        out.reserveCapacity(2 * tmPos.count)
        for k in tmPos.indices { out.append(ColumnSite(x: tmPos[k].x, y: tmPos[k].y, sublattice: .tm)) }
        out += liSites(image, lattice: lat, nodes: nodes, tmIndex: tmIndex, tmPositions: tmPos,
                       placed: refine ? refined : nil, radius: radius, mask: mask)
        return ColumnSites(sites: out, lattice: lat, columnSigmaPx: sigma)
    }

    /// The TM columns fitted from their lattice nodes, the lattice refitted to them, strayed or
    /// failed fits screened and refitted from where their neighbours predict them; the median
    /// fitted σ. `refined` marks positions that come from the fits or the refitted lattice.
    static func refinedColumns(_ image: Image, lattice: Lattice, indices tmIndex: [SIMD2<Int32>],
                               start tmStart: [SIMD2<Double>], radius: Double, mask: Mask)
        -> (lattice: Lattice, positions: [SIMD2<Double>], refined: [Bool], sigma: Double?) {
        var lat = lattice
        let (a1, a2) = lat.tmBasis
        var tmPos = tmStart
        var refined = [Bool](repeating: false, count: tmStart.count)
        var sigma: Double? = nil
        let fits = SiteRefinement.refine(image, at: tmStart, radiusPx: radius, mask: mask)
        var sigmas = [Double]()
        var uncertainty = [Double](repeating: .infinity, count: fits.count)
        for k in fits.indices where fits[k].converged {
            tmPos[k] = SIMD2(fits[k].x, fits[k].y)
            refined[k] = true
            sigmas.append(fits[k].sigma)
            uncertainty[k] = fits[k].positionUncertainty
        }
        if !sigmas.isEmpty {
            sigmas.sort()
            sigma = sigmas[sigmas.count / 2]
        }
        if let better = refitLattice(lat, indices: tmIndex, positions: tmPos, use: refined) {
            lat = better
            let limit = 0.2 * min(norm(a1), norm(a2))
            let screened = screenRefinedPositions(lat, indices: tmIndex, positions: tmPos, refined: refined,
                                                  uncertainty: uncertainty, limit: limit)
            tmPos = screened.positions
            // Columns whose first fit failed or strayed (a start too far off in a strongly
            // distorted frame) get a second fit from the position their neighbours predict.
            if !screened.noiseDominated, !screened.replaced.isEmpty {
                let retry = SiteRefinement.refine(image, at: screened.replaced.map { tmPos[$0] }, radiusPx: radius,
                                                  mask: mask)
                for (n, k) in screened.replaced.enumerated() where retry[n].converged {
                    let p = SIMD2(retry[n].x, retry[n].y)
                    if norm(p - tmPos[k]) <= max(limit, 6 * retry[n].positionUncertainty) { tmPos[k] = p }
                }
            }
            for k in refined.indices { refined[k] = true }
        }
        return (lat, tmPos, refined, sigma)
    }

    /// The Li sites between TM planes j and j+1 inside the image and `mask`: the midpoint of
    /// the two TM columns where both are placed (`placed` nil: all are), else the lattice position.
    static func liSites(_ image: Image, lattice lat: Lattice, nodes: [(SIMD2<Int32>, SIMD2<Double>)],
                        tmIndex: [SIMD2<Int32>], tmPositions tmPos: [SIMD2<Double>], placed: [Bool]?,
                        radius: Double, mask: Mask) -> [ColumnSite] {
        let (b1, b2) = lat.tmBasis
        let shift = liNeighbourShift(image, lattice: lat, tmPositions: tmPos, radius: radius)
        var byIndex = [SIMD2<Int32>: Int]()
        for k in tmIndex.indices { byIndex[tmIndex[k]] = k }
        var out = [ColumnSite]()
        for (ij, _) in nodes {
            let upper = SIMD2<Int32>(ij.x + Int32(shift), ij.y + 1)
            let p: SIMD2<Double>
            if let k0 = byIndex[ij], let k1 = byIndex[upper], placed?[k0] ?? true, placed?[k1] ?? true {
                p = (tmPos[k0] + tmPos[k1]) / 2
            } else {
                p = lat.origin + Double(ij.x) * b1 + Double(ij.y) * b2 + (b2 + Double(shift) * b1) / 2
            }
            if inside(p, image) && mask.contains(p.x, p.y) {
                out.append(ColumnSite(x: p.x, y: p.y, sublattice: .li))
            }
        }
        return out
    }

    /// Guards refined positions against noise. Each fit's position uncertainty (from its
    /// covariance) says how well the data place a column: when the median uncertainty exceeds
    /// 0.05 px (single or few low-dose frames) no site is placed by a fit to its own noise —
    /// every site takes lattice + the median deviation of its (up to 8) lattice neighbours,
    /// which follows real, smooth distortions (scan drift, strain) and is unbiased. (Measuring
    /// an intensity at a position fitted to the same noisy pixels chases noise peaks: at
    /// ~5 counts per column peak that inflates TM intensities by ~9 %.)
    /// Otherwise fitted positions are kept, except outliers that disagree with their
    /// neighbours' median by more than max(`limit`, 6 × their uncertainty) and sites that were
    /// not refined, which take lattice + neighbour median too.
    static func screenRefinedPositions(_ lattice: Lattice, indices: [SIMD2<Int32>], positions: [SIMD2<Double>],
                                       refined: [Bool], uncertainty: [Double], limit: Double)
        -> (positions: [SIMD2<Double>], replaced: [Int], noiseDominated: Bool) {
        let (a1, a2) = lattice.tmBasis
        var byIndex = [SIMD2<Int32>: Int]()
        for k in indices.indices { byIndex[indices[k]] = k }
        let ideal = indices.map { lattice.origin + Double($0.x) * a1 + Double($0.y) * a2 }
        let deviation = positions.indices.map { positions[$0] - ideal[$0] }
        var local = [SIMD2<Double>](repeating: .zero, count: positions.count)
        for k in positions.indices {
            var xs = [Double](), ys = [Double]()
            for dj in Int32(-1)...1 {
                for di in Int32(-1)...1 where di != 0 || dj != 0 {
                    if let n = byIndex[indices[k] &+ SIMD2(di, dj)], refined[n] {
                        xs.append(deviation[n].x); ys.append(deviation[n].y)
                    }
                }
            }
            guard xs.count >= 3 else { continue }
            xs.sort(); ys.sort()
            local[k] = SIMD2(median(xs), median(ys))
        }
        var known = positions.indices.filter { refined[$0] && uncertainty[$0].isFinite }.map { uncertainty[$0] }
        guard !known.isEmpty else { return (positions.indices.map { ideal[$0] + local[$0] }, [], true) }
        known.sort()
        let noiseDominated = median(known) > 0.05
        var out = positions
        var replaced = [Int]()
        for k in positions.indices {
            let keep = !noiseDominated && refined[k] &&
                norm(deviation[k] - local[k]) <= max(limit, 6 * uncertainty[k])
            if !keep { out[k] = ideal[k] + local[k]; replaced.append(k) }
        }
        return (out, replaced, noiseDominated)
    }

    /// Fit-disc radius: 45 % of the nearest-neighbour distance between cation sites, so that a
    /// disc holds its own column and not the neighbours'.
    public static func fitRadius(a1: SIMD2<Double>, a2: SIMD2<Double>) -> Double {
        let nn = min(norm(a1), norm(a2 / 2), norm((a2 + a1) / 2), norm((a2 - a1) / 2))
        return max(1.5, 0.45 * nn)
    }

    @inline(__always) static func inside(_ p: SIMD2<Double>, _ image: Image) -> Bool {
        p.x >= 0 && p.y >= 0 && p.x <= Double(image.width - 1) && p.y <= Double(image.height - 1)
    }

    /// All nodes origin + i·a1 + j·a2 within `extra` cells of the image.
    static func latticeNodes(_ lattice: Lattice, width: Int, height: Int, extra: Int) -> [(SIMD2<Int32>, SIMD2<Double>)] {
        let (a1, a2) = lattice.tmBasis
        var iLo = Double.infinity, iHi = -Double.infinity, jLo = Double.infinity, jHi = -Double.infinity
        for c in [SIMD2(0.0, 0.0), SIMD2(Double(width - 1), 0), SIMD2(0, Double(height - 1)),
                  SIMD2(Double(width - 1), Double(height - 1))] {
            let (i, j) = lattice.latticeCoordinates(of: c)
            iLo = min(iLo, i); iHi = max(iHi, i); jLo = min(jLo, j); jHi = max(jHi, j)
        }
        // Guard against absurd lattices (cells below a pixel) blowing up memory.
        guard [iLo, iHi, jLo, jHi].allSatisfy({ $0.isFinite }),
              (iHi - iLo + 3) * (jHi - jLo + 3) <= Double(width * height) else { return [] }
        let i0 = Int(iLo.rounded(.down)) - extra, i1 = Int(iHi.rounded(.up)) + extra
        let j0 = Int(jLo.rounded(.down)) - extra, j1 = Int(jHi.rounded(.up)) + extra
        var out = [(SIMD2<Int32>, SIMD2<Double>)]()
        let lim = SIMD2(Double(width), Double(height))
        for j in j0...j1 {
            for i in i0...i1 {
                let p = lattice.origin + Double(i) * a1 + Double(j) * a2
                if p.x >= -2 && p.y >= -2 && p.x <= lim.x + 1 && p.y <= lim.y + 1 {
                    out.append((SIMD2(Int32(i), Int32(j)), p))
                }
            }
        }
        return out
    }

    /// Least-squares fit of p = r0 + i·a1 + j·a2 to refined TM positions, twice (the second time
    /// without sites more than 3× the RMS residual off); nil with too few sites.
    static func refitLattice(_ lattice: Lattice, indices: [SIMD2<Int32>], positions: [SIMD2<Double>],
                             use: [Bool]) -> Lattice? {
        var keep = use
        var result: (r0: SIMD2<Double>, a1: SIMD2<Double>, a2: SIMD2<Double>)? = nil
        for pass in 0..<2 {
            // Normal equations for [r0, a1, a2] per coordinate: design rows (1, i, j).
            var ata = [Double](repeating: 0, count: 9)
            var atx = [Double](repeating: 0, count: 3), aty = [Double](repeating: 0, count: 3)
            var count = 0
            var iSet = Set<Int32>(), jSet = Set<Int32>()
            for k in positions.indices where keep[k] {
                let row = [1, Double(indices[k].x), Double(indices[k].y)]
                for a in 0..<3 {
                    atx[a] += row[a] * positions[k].x
                    aty[a] += row[a] * positions[k].y
                    for b in 0..<3 { ata[a * 3 + b] += row[a] * row[b] }
                }
                count += 1
                iSet.insert(indices[k].x); jSet.insert(indices[k].y)
            }
            guard count >= 6, iSet.count >= 2, jSet.count >= 2,
                  let sx = LeastSquares.solve(ata, atx, n: 3), let sy = LeastSquares.solve(ata, aty, n: 3) else { return nil }
            let fit = (r0: SIMD2(sx[0], sy[0]), a1: SIMD2(sx[1], sy[1]), a2: SIMD2(sx[2], sy[2]))
            result = fit
            if pass == 0 {
                var res = [Double](repeating: 0, count: positions.count)
                var sum = 0.0
                for k in positions.indices where keep[k] {
                    let p = fit.r0 + Double(indices[k].x) * fit.a1 + Double(indices[k].y) * fit.a2
                    res[k] = norm(positions[k] - p); sum += res[k] * res[k]
                }
                let rms = (sum / Double(count)).squareRoot()
                let cut = max(3 * rms, 0.05)
                for k in positions.indices where keep[k] && res[k] > cut { keep[k] = false }
            }
        }
        guard let fit = result else { return nil }
        let refitted = Lattice(basis: fit.a1, fit.a2, origin: fit.r0, resolvedColumns: lattice.gColumn != nil)
        // The sites keep their (i, j) indices, so the new lattice must index the same way: its
        // basis (sign conventions, reduction of a2) must be the fitted one. Near-vertical layers
        // can flip the normal's sign convention; keep the old lattice then.
        let (b1, b2) = refitted.tmBasis
        let scale = norm(fit.a1)
        guard refitted.isUsable, norm(b1 - fit.a1) < 1e-6 * scale, norm(b2 - fit.a2) < 1e-6 * scale else { return nil }
        return refitted
    }

    /// Which TM column of the next plane the Li site lies midway to: 0 → r + a2/2, 1 → r + (a2 + a1)/2.
    static func liNeighbourShift(_ image: Image, lattice: Lattice, tmPositions: [SIMD2<Double>], radius: Double) -> Int {
        let (a1, a2) = lattice.tmBasis
        let a = norm(a1)
        let delta = dot(a2, a1) / a          // stacking offset along a1, px, within ±a/2
        // ABC rule of the O3 cation sublattice: Li at −δ from the TM plane below.
        func circular(_ x: Double) -> Double { let r = x.truncatingRemainder(dividingBy: a); return min(abs(r), a - abs(r)) }
        let c0 = delta / 2, c1 = delta / 2 + a / 2
        var shift = circular(c0 + delta) <= circular(c1 + delta) ? 0 : 1
        // Data check on a sample of sites: fixed-position Gaussian amplitudes at both candidates.
        guard !tmPositions.isEmpty else { return shift }
        let stride = max(1, tmPositions.count / 1500)
        var sample = [SIMD2<Double>]()
        for k in Swift.stride(from: 0, to: tmPositions.count, by: stride) { sample.append(tmPositions[k]) }
        let sigma = max(0.8, radius / 2.5)
        func meanAmplitude(_ offset: SIMD2<Double>) -> Double {
            let pts = sample.map { $0 + offset }.filter { inside($0, image) }
            guard !pts.isEmpty else { return 0 }
            let amps = SiteIntensity.fixedAmplitudes(image, at: pts, sigma: sigma, radius: radius)
            return amps.reduce(0, +) / Double(amps.count)
        }
        let tmA = meanAmplitude(.zero)
        let candidates = [meanAmplitude(a2 / 2), meanAmplitude((a2 + a1) / 2)]
        let other = 1 - shift
        if candidates[other] > candidates[shift] + 0.1 * tmA && candidates[other] > 1.5 * max(candidates[shift], 0) {
            shift = other
        }
        return shift
    }
}

extension Lattice {
    /// The lattice with real-space TM basis (a1 in-plane, a2 to the next plane) and origin.
    init(basis a1: SIMD2<Double>, _ a2: SIMD2<Double>, origin: SIMD2<Double>, resolvedColumns: Bool) {
        let det = a1.x * a2.y - a1.y * a2.x
        // Reciprocal basis: b1 · a1 = 1, b1 · a2 = 0; b2 · a2 = 1, b2 · a1 = 0.
        let b1 = SIMD2(a2.y / det, -a2.x / det)
        var b2 = SIMD2(-a1.y / det, a1.x / det)
        if b2.y < 0 || (b2.y == 0 && b2.x < 0) { b2 = -b2 }
        let normal = b2 / norm(b2)
        let along = SIMD2(-normal.y, normal.x)
        var gc = b1
        if dot(gc, along) < 0 { gc = -gc }
        self.init(layerNormal: normal, layerSpacingPx: 1 / norm(b2), columnSpacingPx: abs(dot(a1, along)),
                  gLayer: b2, gColumn: resolvedColumns ? gc : nil, origin: origin)
    }
}

/// Median of a sorted, non-empty array.
func median(_ sorted: [Double]) -> Double {
    let n = sorted.count
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
}
