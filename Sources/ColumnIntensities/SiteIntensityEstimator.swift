import Dispatch
import Foundation
import FrameCore

/// The deblended fixed-position column amplitudes of `SiteIntensity` as a precomputed
/// linear operator, for measuring many frames at the same sites and column width.
///
/// Method: with positions and σ fixed, the per-site least-squares fit of `c + A·G_σ(r − p_k)`
/// over the site's disc is a linear functional of the pixels, `A_k = Σ_p w_kp·d_p` with
/// `w_kp = (n·g_kp − Σg)/det` (the normal equations of the two-parameter fit solved once),
/// and the neighbours' Gaussians that the Jacobi passes of `SiteIntensity` subtract enter
/// through the coupling `M_kj = Σ_p w_kp·G_j(p)` (the disc of k against the painted box of
/// j). One frame then costs one sparse dot product per site (`b = W·image`) and one sparse
/// matrix–vector product per pass (`A ← b − M_offdiag·A`), instead of painting a model image
/// and refitting every disc per pass: the same estimator (same weights, same passes), equal
/// to `SiteIntensity`'s fits up to floating-point rounding, about 30× cheaper per frame.
/// This is the "fixed-position" linear column-intensity estimator of quantitative HAADF
/// (De Backer et al., Ultramicroscopy 134 (2013) 23) with Gaussian-volume integration as in
/// Atomap (Nord et al., Adv. Struct. Chem. Imaging 3, 9 (2017)), written as a precomputed
/// block-Jacobi solve of the joint linear model. It is unbiased under Poisson noise (linear in
/// the data), so single low-dose frames give noisy but unbiased intensities.
///
/// Memory: about 1 KB per position (disc weights and couplings), ≈ 35 MB for the ~33 000
/// cation and O positions of a 1024² frame; build it once per step, not per frame, and do
/// not keep one per step.
public struct SiteIntensityEstimator: Sendable {
    public let width: Int
    public let height: Int
    /// The fixed column width σ (px) every site is fitted and integrated with, or nil when
    /// the width is refitted on every image (exactly as `SiteIntensity.measure` does).
    public let columnSigmaPx: Double?
    /// The reported sites (cation sites of the `ColumnSites` given), in their order.
    public let sites: [ColumnSite]
    let radius: Double
    let positions: [SIMD2<Double>]
    let fixed: DeblendingOperator?
    let refit: WidthRefit?

    /// Precomputes the estimator of `sites` (with their modelled O columns) for images of
    /// `width × height`.
    ///
    /// - `columnSigmaPx` given: every image is measured at that fixed width (e.g. the width
    ///   `SiteIntensity.measureWithWidth` fitted on the step average): one sparse
    ///   dot product per site and four sparse passes per image, ≈ 40× cheaper than `measure`.
    /// - nil: the width is refitted on each image from `sites.columnSigmaPx` as
    ///   `SiteIntensity.measure` does (same numbers to rounding); the rough operator at the
    ///   initial width is shared, so this is ≈ 3× cheaper than `measure`.
    ///
    /// Nil when there is nothing to measure (no sites, unusable lattice, non-finite positions,
    /// σ not positive) or, without `columnSigmaPx`, when `sites.columnSigmaPx` is nil.
    public init?(sites: ColumnSites, width: Int, height: Int, columnSigmaPx: Double? = nil) {
        let cations = sites.sites.map { $0.position }
        guard !cations.isEmpty, width > 1, height > 1, sites.lattice.isUsable,
              cations.allSatisfy({ $0.x.isFinite && $0.y.isFinite }) else { return nil }
        guard let sigma = columnSigmaPx ?? sites.columnSigmaPx, sigma.isFinite, sigma > 0 else { return nil }
        let (a1, a2) = sites.lattice.tmBasis
        radius = ColumnFinder.fitRadius(a1: a1, a2: a2)
        positions = cations + SiteIntensity.oxygenColumns(sites)
        self.width = width
        self.height = height
        self.sites = sites.sites
        if let columnSigmaPx {
            self.columnSigmaPx = columnSigmaPx
            fixed = DeblendingOperator(positions: positions, sigma: columnSigmaPx, radius: radius, width: width, height: height)
            refit = nil
        } else if let r = WidthRefit(sites: sites, all: positions, radius: radius, initialSigma: sigma,
                                     width: width, height: height) {
            self.columnSigmaPx = nil
            fixed = nil
            refit = r
        } else {
            // No TM site to refit the width on: `measure` keeps the initial width.
            self.columnSigmaPx = sigma
            fixed = DeblendingOperator(positions: positions, sigma: sigma, radius: radius, width: width, height: height)
            refit = nil
        }
    }

    /// Background-corrected integrated intensity 2πσ²·A of every reported site, with the
    /// width σ used. NaN intensities for an image of another size.
    public func intensities(_ image: Image) -> (intensities: [Double], columnSigmaPx: Double) {
        guard image.width == width, image.height == height else {
            return ([Double](repeating: .nan, count: sites.count), .nan)
        }
        let sigma: Double, amplitudes: [Double]
        if let fixed, let s = columnSigmaPx {
            sigma = s
            amplitudes = fixed.amplitudes(image, passes: 4)
        } else {
            sigma = refit!.sigma(of: image)
            amplitudes = DeblendingOperator(positions: positions, sigma: sigma, radius: radius,
                                            width: width, height: height).amplitudes(image, passes: 4)
        }
        let volume = 2 * Double.pi * sigma * sigma
        return ((0..<sites.count).map { amplitudes[$0] * volume }, sigma)
    }

    /// Mean TM and Li intensities over the sites inside `region` (all sites when nil; a region
    /// of another size is ignored, as in `SiteIntensity.measure`). An image of another size
    /// than the estimator's gives NaN means and zero counts.
    public func measure(_ image: Image, region: Mask?) -> SiteIntensities {
        guard image.width == width, image.height == height else {
            return SiteIntensities(tm: .nan, li: .nan, tmCount: 0, liCount: 0)
        }
        return aggregate(intensities(image).intensities, region: region)
    }

    /// Mean TM and Li intensities over the sites inside `region`, from `intensities(_:)`.
    public func aggregate(_ intensities: [Double], region: Mask?) -> SiteIntensities {
        SiteIntensity.aggregate(sites, intensities: intensities, region: region, width: width, height: height)
    }
}

/// `W` (per-site disc fits) and `M` (site–site couplings) of the deblended fits.
///
/// Every position's unit Gaussian is tabulated once per axis over its painted box (half-width
/// `reach = radius + 3σ`, as `SiteIntensity.paint`), and everything else is built from those
/// separable tables: the disc fit of k is `A_k = (n·Σ g_k·d − Σg_k·Σd)/det_k`, evaluated row by
/// row as `n/det·Σ_y g_y Σ_x g_x d − Σg/det·Σ_y Σ_x d`, and the coupling `M_kj` row by row from
/// prefix sums of `g_kx·g_jx` and `g_jx` along x, so neither a weight per pixel nor a
/// model image is ever stored.
struct DeblendingOperator: Sendable {
    let count: Int
    let width: Int
    let boxSpan: Int
    /// Painted box of each position: x0, x1, y0, y1 (inclusive; empty when x1 < x0).
    let boxes: [SIMD4<Int32>]
    /// `exp(−(x − p_x)²/2σ²)` over each box's columns and rows, `boxSpan` per position.
    let gx: [Double]
    let gy: [Double]
    /// Disc rows of each position, `rowStart[k]..<rowStart[k+1]`: (y, x0, x1) inclusive.
    let rowStart: [Int]
    let rows: [SIMD3<Int32>]
    /// (n/det, Σg/det) of each position's two-parameter fit (zero when not fitted).
    let fit: [SIMD2<Double>]
    /// Off-diagonal couplings in compressed rows: `couplingStart[k]..<couplingStart[k+1]`.
    let couplingStart: [Int]
    let couplingIndex: [Int32]
    let coupling: [Double]

    init(positions: [SIMD2<Double>], sigma: Double, radius: Double, width w: Int, height h: Int) {
        let n = positions.count
        count = n
        width = w
        let inv = 1 / (2 * sigma * sigma), r2 = radius * radius
        let reach = Swift.max(radius, radius + 3 * sigma)
        let threads = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunks = Swift.max(1, Swift.min(n, threads * 4))
        let span = Int(2 * reach) + 3
        boxSpan = span

        // 1. Painted boxes and their Gaussian tables.
        var boxes = [SIMD4<Int32>](repeating: SIMD4(0, -1, 0, -1), count: n)
        for j in 0..<n {
            let p = positions[j]
            let x0 = Swift.max(0, Int((p.x - reach).rounded(.up))), x1 = Swift.min(w - 1, Int((p.x + reach).rounded(.down)))
            let y0 = Swift.max(0, Int((p.y - reach).rounded(.up))), y1 = Swift.min(h - 1, Int((p.y + reach).rounded(.down)))
            guard x1 >= x0, y1 >= y0 else { continue }
            boxes[j] = SIMD4(Int32(x0), Int32(x1), Int32(y0), Int32(y1))
        }
        var gx = [Double](repeating: 0, count: n * span), gy = gx
        let bxs = boxes
        gx.withUnsafeMutableBufferPointer { gxp in gy.withUnsafeMutableBufferPointer { gyp in
            let (tx, ty) = (UncheckedSendable(gxp), UncheckedSendable(gyp))
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for j in (chunk * n / chunks)..<((chunk + 1) * n / chunks) where bxs[j].y >= bxs[j].x {
                    let p = positions[j], box = bxs[j]
                    gaussianSamples(tx.value.baseAddress! + j * span, count: Int(box.y - box.x) + 1,
                                    first: Double(box.x) - p.x, inv: inv)
                    gaussianSamples(ty.value.baseAddress! + j * span, count: Int(box.w - box.z) + 1,
                                    first: Double(box.z) - p.y, inv: inv)
                }
            }
        } }

        // 2. Disc fits, with exactly the pixels and guard of `SiteIntensity.fitAll`.
        struct DiscPart { var rowCounts: [Int] = []; var rows: [SIMD3<Int32>] = []; var fits: [SIMD2<Double>] = [] }
        let discParts = ResultSlots<DiscPart>(count: chunks)
        let (gxt, gyt) = (gx, gy)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var part = DiscPart()
            var rowBuf = [SIMD3<Int32>]()
            gxt.withUnsafeBufferPointer { gxp in gyt.withUnsafeBufferPointer { gyp in
                for k in (chunk * n / chunks)..<((chunk + 1) * n / chunks) {
                    let p = positions[k], box = bxs[k]
                    let x0 = Swift.max(0, Int((p.x - radius).rounded(.up))), x1 = Swift.min(w - 1, Int((p.x + radius).rounded(.down)))
                    let y0 = Swift.max(0, Int((p.y - radius).rounded(.up))), y1 = Swift.min(h - 1, Int((p.y + radius).rounded(.down)))
                    guard x1 >= x0, y1 >= y0, box.y >= box.x else {
                        part.rowCounts.append(0); part.fits.append(.zero); continue
                    }
                    let ex = gxp.baseAddress! + k * span + (x0 - Int(box.x)), ey = gyp.baseAddress! + k * span - Int(box.z)
                    var sgg = 0.0, sg = 0.0, s1 = 0.0
                    rowBuf.removeAll(keepingCapacity: true)
                    for y in y0...y1 {
                        let dy = Double(y) - p.y
                        let gyv = ey[y]
                        var first = -1, last = -1
                        for x in x0...x1 {
                            let dx = Double(x) - p.x
                            guard dx * dx + dy * dy <= r2 else { continue }
                            if first < 0 { first = x }
                            last = x
                            let g = gyv * ex[x - x0]
                            sgg += g * g; sg += g; s1 += 1
                        }
                        if first >= 0 { rowBuf.append(SIMD3(Int32(y), Int32(first), Int32(last))) }
                    }
                    let det = sgg * s1 - sg * sg
                    guard s1 >= 3, det > 1e-12 * s1 * s1 else {
                        part.rowCounts.append(0); part.fits.append(.zero); continue
                    }
                    part.rows.append(contentsOf: rowBuf)
                    part.rowCounts.append(rowBuf.count)
                    part.fits.append(SIMD2(s1 / det, sg / det))
                }
            } }
            discParts.set(chunk, .success(part))
        }
        var rowStart = [Int](repeating: 0, count: n + 1)
        var rows = [SIMD3<Int32>](), fit = [SIMD2<Double>]()
        fit.reserveCapacity(n)
        var k = 0
        for c in 0..<chunks {
            guard case .success(let part)? = discParts.get(c) else { continue }
            rows.append(contentsOf: part.rows)
            fit.append(contentsOf: part.fits)
            for cnt in part.rowCounts { rowStart[k + 1] = rowStart[k] + cnt; k += 1 }
        }

        // 3. Couplings M_kj = Σ_{p ∈ disc_k ∩ box_j} w_kp·G_j(p) of fitted positions, with
        //    w_kp = (n·g_kp − Σg_k)/det_k: per disc row y inside box j,
        //    g_jy·(n/det·g_ky·Σ_x g_kx·g_jx − Σg/det·Σ_x g_jx), the x sums from prefix sums.
        let cell = radius + reach + 2
        let cols = Swift.max(1, Int(Double(w) / cell) + 1), cellRows = Swift.max(1, Int(Double(h) / cell) + 1)
        @Sendable func cellOf(_ p: SIMD2<Double>) -> (Int, Int) {
            (Swift.min(cols - 1, Swift.max(0, Int(p.x / cell))), Swift.min(cellRows - 1, Swift.max(0, Int(p.y / cell))))
        }
        let fitted = (0..<n).filter { rowStart[$0 + 1] > rowStart[$0] }
        var bucketStart = [Int](repeating: 0, count: cols * cellRows + 1)
        for j in fitted { let (cx, cy) = cellOf(positions[j]); bucketStart[cy * cols + cx + 1] += 1 }
        for b in 0..<(cols * cellRows) { bucketStart[b + 1] += bucketStart[b] }
        var fill = bucketStart, bucket = [Int32](repeating: 0, count: bucketStart.last!)
        for j in fitted { let (cx, cy) = cellOf(positions[j]); bucket[fill[cy * cols + cx]] = Int32(j); fill[cy * cols + cx] += 1 }
        struct CouplingPart { var counts: [Int] = []; var index: [Int32] = []; var value: [Double] = [] }
        let couplingParts = ResultSlots<CouplingPart>(count: chunks)
        let (rs, rw, ft, bs, bk) = (rowStart, rows, fit, bucketStart, bucket)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var part = CouplingPart()
            var found = [Int32]()
            var prefixKJ = [Double](repeating: 0, count: span + 1), prefixJ = prefixKJ
            rw.withUnsafeBufferPointer { rwp in gxt.withUnsafeBufferPointer { gxp in gyt.withUnsafeBufferPointer { gyp in
            prefixKJ.withUnsafeMutableBufferPointer { pkj in prefixJ.withUnsafeMutableBufferPointer { pj in
                for k in (chunk * n / chunks)..<((chunk + 1) * n / chunks) {
                    let r0 = rs[k], r1 = rs[k + 1]
                    guard r1 > r0 else { part.counts.append(0); continue }
                    let boxK = bxs[k]
                    let dy0 = rwp[r0].x, dy1 = rwp[r1 - 1].x
                    var dx0 = Int32.max, dx1 = Int32.min
                    for r in r0..<r1 { dx0 = Swift.min(dx0, rwp[r].y); dx1 = Swift.max(dx1, rwp[r].z) }
                    let (cx, cy) = cellOf(positions[k])
                    found.removeAll(keepingCapacity: true)
                    for yy in Swift.max(0, cy - 1)...Swift.min(cellRows - 1, cy + 1) {
                        for xx in Swift.max(0, cx - 1)...Swift.min(cols - 1, cx + 1) {
                            let b = yy * cols + xx
                            for q in bs[b]..<bs[b + 1] {
                                let j = bk[q]
                                guard Int(j) != k else { continue }
                                let box = bxs[Int(j)]
                                if box.x <= dx1, box.y >= dx0, box.z <= dy1, box.w >= dy0 { found.append(j) }
                            }
                        }
                    }
                    found.sort()
                    let nk = ft[k].x, sk = ft[k].y
                    let gxk = gxp.baseAddress! + k * span - Int(boxK.x), gyk = gyp.baseAddress! + k * span - Int(boxK.z)
                    var added = 0
                    for j32 in found {
                        let j = Int(j32), box = bxs[j]
                        let gxj = gxp.baseAddress! + j * span - Int(box.x), gyj = gyp.baseAddress! + j * span - Int(box.z)
                        // Prefix sums over x ∈ [xs, xe] (the disc's columns inside box j).
                        let xs = Int(Swift.max(dx0, box.x)), xe = Int(Swift.min(dx1, box.y))
                        var a = 0.0, c = 0.0
                        pkj[0] = 0; pj[0] = 0
                        for x in xs...xe { a += gxk[x] * gxj[x]; c += gxj[x]; pkj[x - xs + 1] = a; pj[x - xs + 1] = c }
                        var m = 0.0
                        for r in r0..<r1 {
                            let row = rwp[r]
                            if row.x < box.z || row.x > box.w { continue }
                            let xa = Int(Swift.max(row.y, box.x)), xb = Int(Swift.min(row.z, box.y))
                            if xa > xb { continue }
                            let y = Int(row.x)
                            let sKJ = pkj[xb - xs + 1] - pkj[xa - xs], sJ = pj[xb - xs + 1] - pj[xa - xs]
                            m += gyj[y] * (nk * gyk[y] * sKJ - sk * sJ)
                        }
                        if m != 0 { part.index.append(j32); part.value.append(m); added += 1 }
                    }
                    part.counts.append(added)
                }
            } } } } }
            couplingParts.set(chunk, .success(part))
        }
        var couplingStart = [Int](repeating: 0, count: n + 1)
        var couplingIndex = [Int32](), coupling = [Double]()
        k = 0
        for c in 0..<chunks {
            guard case .success(let part)? = couplingParts.get(c) else { continue }
            couplingIndex.append(contentsOf: part.index)
            coupling.append(contentsOf: part.value)
            for cnt in part.counts { couplingStart[k + 1] = couplingStart[k] + cnt; k += 1 }
        }
        self.boxes = boxes
        self.gx = gx
        self.gy = gy
        self.rowStart = rowStart
        self.rows = rows
        self.fit = fit
        self.couplingStart = couplingStart
        self.couplingIndex = couplingIndex
        self.coupling = coupling
    }

    /// Amplitudes after `passes` Jacobi passes: `b = W·image`, then `A ← b − M_offdiag·A`
    /// (the own Gaussian that each refit adds back cancels its own share of the model exactly:
    /// `Σ_p w_kp·g_kp = 1`). Positions without a valid fit stay 0, as in `fitAll`.
    func amplitudes(_ image: Image, passes: Int) -> [Double] {
        let n = count
        var b = [Double](repeating: 0, count: n)
        guard n > 0 else { return b }
        let threads = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunks = Swift.max(1, Swift.min(n, threads * 4))
        let span = boxSpan, w = width
        image.pixels.withUnsafeBufferPointer { px in
            let pixels = UncheckedSendable(px)
            b.withUnsafeMutableBufferPointer { out in
                let o = UncheckedSendable(out)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    rows.withUnsafeBufferPointer { rwp in gx.withUnsafeBufferPointer { gxp in gy.withUnsafeBufferPointer { gyp in
                        for k in (chunk * n / chunks)..<((chunk + 1) * n / chunks) {
                            let r0 = rowStart[k], r1 = rowStart[k + 1]
                            guard r1 > r0 else { o.value[k] = 0; continue }
                            let box = boxes[k]
                            let gxk = gxp.baseAddress! + k * span - Int(box.x), gyk = gyp.baseAddress! + k * span - Int(box.z)
                            var sgd = 0.0, sd = 0.0
                            for r in r0..<r1 {
                                let row = rwp[r]
                                let y = Int(row.x), x0 = Int(row.y), x1 = Int(row.z)
                                let src = pixels.value.baseAddress! + y * w
                                var rg = 0.0, rd = 0.0
                                for x in x0...x1 { let d = Double(src[x]); rg += gxk[x] * d; rd += d }
                                sgd += gyk[y] * rg; sd += rd
                            }
                            o.value[k] = fit[k].x * sgd - fit[k].y * sd
                        }
                    } } }
                }
            }
        }
        let base = b
        var a = b
        var next = [Double](repeating: 0, count: n)
        for _ in 0..<passes {
            a.withUnsafeBufferPointer { ap in
                next.withUnsafeMutableBufferPointer { np in
                    let (cur, out) = (UncheckedSendable(ap), UncheckedSendable(np))
                    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                        couplingIndex.withUnsafeBufferPointer { idx in coupling.withUnsafeBufferPointer { val in
                            for k in (chunk * n / chunks)..<((chunk + 1) * n / chunks) {
                                guard rowStart[k + 1] > rowStart[k] else { out.value[k] = 0; continue }
                                var s = 0.0
                                for q in couplingStart[k]..<couplingStart[k + 1] {
                                    s += val[q] * cur.value[Int(idx[q])]
                                }
                                out.value[k] = base[k] - s
                            }
                        } }
                    }
                }
            }
            swap(&a, &next)
        }
        return a
    }
}

/// `out[t] = exp(−(first + t)²·inv)` for `t < count`: the Gaussian at unit steps by the
/// recurrence g(t+1) = g(t)·r(t), r(t+1) = r(t)·e^{−2·inv} (three exps instead of `count`;
/// relative error ~count·1e-16), with direct exps where the recurrence would under/overflow.
@inline(__always)
func gaussianSamples(_ out: UnsafeMutablePointer<Double>, count: Int, first: Double, inv: Double) {
    guard count > 0 else { return }
    let last = first + Double(count - 1)
    guard Swift.max(first * first, last * last) * inv < 300, inv < 50 else {
        for t in 0..<count { let d = first + Double(t); out[t] = exp(-d * d * inv) }
        return
    }
    var g = exp(-first * first * inv), r = exp(-(2 * first + 1) * inv)
    let q = exp(-2 * inv)
    for t in 0..<count { out[t] = g; g *= r; r *= q }
}

