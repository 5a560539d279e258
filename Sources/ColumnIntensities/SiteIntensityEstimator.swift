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

    /// `intensities` with NaN for every site whose fit disc holds a pixel `valid` does not set:
    /// a resampled frame has no value there (zero, or its edge repeated), so that site's fit
    /// would mix in a value that is not the specimen's. The discs are the operator's own (the
    /// rough one's when the width is refitted: the same positions and radius). A mask of another
    /// size leaves every site NaN.
    public func masked(_ intensities: [Double], valid: Mask) -> [Double] {
        guard valid.width == width, valid.height == height else { return intensities.map { _ in .nan } }
        let discs = fixed ?? refit!.rough
        return intensities.indices.map { discs.discInside($0, valid) ? intensities[$0] : .nan }
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
        let layout = Layout(positions: positions, sigma: sigma, radius: radius, width: w, height: h)
        count = positions.count
        width = w
        boxSpan = layout.span
        (boxes, gx, gy) = layout.gaussianTables()
        (rowStart, rows, fit) = layout.discFits(boxes: boxes, gx: gx, gy: gy)
        (couplingStart, couplingIndex, coupling) = layout.couplings(boxes: boxes, gx: gx, gy: gy, rowStart: rowStart,
                                                                    rows: rows, fit: fit)
    }

    /// The positions, their painted boxes' reach (`radius + 3σ`, as `SiteIntensity.paint`) and
    /// the split of the positions into chunks for `concurrentPerform`.
    struct Layout {
        let positions: [SIMD2<Double>]
        let n: Int, w: Int, h: Int
        let inv: Double, radius: Double, r2: Double, reach: Double
        let span: Int, chunks: Int

        init(positions: [SIMD2<Double>], sigma: Double, radius: Double, width: Int, height: Int) {
            self.positions = positions
            n = positions.count
            w = width
            h = height
            inv = 1 / (2 * sigma * sigma)
            self.radius = radius
            r2 = radius * radius
            reach = Swift.max(radius, radius + 3 * sigma)
            let threads = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
            chunks = Swift.max(1, Swift.min(n, threads * 4))
            span = Int(2 * reach) + 3
        }

        /// Positions `chunk` of `chunks` covers.
        func range(_ chunk: Int) -> Range<Int> { (chunk * n / chunks)..<((chunk + 1) * n / chunks) }

        /// 1. Painted boxes and their Gaussian tables.
        func gaussianTables() -> ([SIMD4<Int32>], [Double], [Double]) {
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
                    for j in range(chunk) where bxs[j].y >= bxs[j].x {
                        let p = positions[j], box = bxs[j]
                        gaussianSamples(tx.value.baseAddress! + j * span, count: Int(box.y - box.x) + 1,
                                        first: Double(box.x) - p.x, inv: inv)
                        gaussianSamples(ty.value.baseAddress! + j * span, count: Int(box.w - box.z) + 1,
                                        first: Double(box.z) - p.y, inv: inv)
                    }
                }
            } }
            return (boxes, gx, gy)
        }

        /// 2. Disc fits, with exactly the pixels and guard of `SiteIntensity.fitAll`: each
        /// position's disc rows and the (n/det, Σg/det) of its two-parameter fit.
        func discFits(boxes: [SIMD4<Int32>], gx: [Double], gy: [Double]) -> ([Int], [SIMD3<Int32>], [SIMD2<Double>]) {
            struct Part { var rowCounts: [Int] = []; var rows: [SIMD3<Int32>] = []; var fits: [SIMD2<Double>] = [] }
            let parts = ResultSlots<Part>.map(chunks) { chunk in
                var part = Part()
                var rowBuf = [SIMD3<Int32>]()
                gx.withUnsafeBufferPointer { gxp in gy.withUnsafeBufferPointer { gyp in
                    for k in range(chunk) {
                        let fitted = discFit(k, box: boxes[k], gx: gxp.baseAddress! + k * span,
                                             gy: gyp.baseAddress! + k * span, rows: &rowBuf)
                        part.rows.append(contentsOf: fitted == .zero ? [] : rowBuf)
                        part.rowCounts.append(fitted == .zero ? 0 : rowBuf.count)
                        part.fits.append(fitted)
                    }
                } }
                return part
            }
            return (rowStarts(parts.map(\.rowCounts)), parts.flatMap(\.rows), parts.flatMap(\.fits))
        }

        /// Where each position's entries start in a compressed-row table (n + 1 starts), from
        /// every chunk's per-position counts in chunk order.
        func rowStarts(_ counts: [[Int]]) -> [Int] {
            var start = [Int](repeating: 0, count: n + 1), k = 0
            for cnt in counts.joined() { start[k + 1] = start[k] + cnt; k += 1 }
            return start
        }

        /// The disc rows (y, x0, x1) of position k into `rows` and its fit (n/det, Σg/det), zero
        /// when the disc is empty or the fit degenerate. `gx`, `gy`: its Gaussian tables.
        func discFit(_ k: Int, box: SIMD4<Int32>, gx: UnsafePointer<Double>, gy: UnsafePointer<Double>,
                     rows: inout [SIMD3<Int32>]) -> SIMD2<Double> {
            let p = positions[k]
            let x0 = Swift.max(0, Int((p.x - radius).rounded(.up))), x1 = Swift.min(w - 1, Int((p.x + radius).rounded(.down)))
            let y0 = Swift.max(0, Int((p.y - radius).rounded(.up))), y1 = Swift.min(h - 1, Int((p.y + radius).rounded(.down)))
            guard x1 >= x0, y1 >= y0, box.y >= box.x else { return .zero }
            let ex = gx + (x0 - Int(box.x)), ey = gy - Int(box.z)
            var sgg = 0.0, sg = 0.0, s1 = 0.0
            rows.removeAll(keepingCapacity: true)
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
                if first >= 0 { rows.append(SIMD3(Int32(y), Int32(first), Int32(last))) }
            }
            let det = sgg * s1 - sg * sg
            guard s1 >= 3, det > 1e-12 * s1 * s1 else { return .zero }
            return SIMD2(s1 / det, sg / det)
        }

        /// 3. Couplings M_kj = Σ_{p ∈ disc_k ∩ box_j} w_kp·G_j(p) of fitted positions, with
        ///    w_kp = (n·g_kp − Σg_k)/det_k, in compressed rows.
        func couplings(boxes: [SIMD4<Int32>], gx: [Double], gy: [Double], rowStart: [Int], rows: [SIMD3<Int32>],
                       fit: [SIMD2<Double>]) -> ([Int], [Int32], [Double]) {
            let grid = CellGrid(self, fitted: (0..<n).filter { rowStart[$0 + 1] > rowStart[$0] }, boxes: boxes)
            struct Part { var counts: [Int] = []; var index: [Int32] = []; var value: [Double] = [] }
            let parts = ResultSlots<Part>.map(chunks) { chunk in
                var part = Part()
                var found = [Int32]()
                var prefixKJ = [Double](repeating: 0, count: span + 1), prefixJ = prefixKJ
                rows.withUnsafeBufferPointer { rwp in gx.withUnsafeBufferPointer { gxp in gy.withUnsafeBufferPointer { gyp in
                prefixKJ.withUnsafeMutableBufferPointer { pkj in prefixJ.withUnsafeMutableBufferPointer { pj in
                    let tables = CouplingTables(boxes: boxes, gx: gxp.baseAddress!, gy: gyp.baseAddress!, span: span,
                                                prefixKJ: pkj.baseAddress!, prefixJ: pj.baseAddress!)
                    for k in range(chunk) {
                        let discRows = UnsafeBufferPointer(rebasing: rwp[rowStart[k]..<rowStart[k + 1]])
                        guard !discRows.isEmpty else { part.counts.append(0); continue }
                        let before = part.index.count
                        grid.overlapping(k, discRows: discRows, boxes: boxes, into: &found)
                        for j in found {
                            let m = tables.coupling(k, Int(j), discRows: discRows, fit: fit[k])
                            if m != 0 { part.index.append(j); part.value.append(m) }
                        }
                        part.counts.append(part.index.count - before)
                    }
                } } } } }
                return part
            }
            return (rowStarts(parts.map(\.counts)), parts.flatMap(\.index), parts.flatMap(\.value))
        }
    }

    /// The fitted positions bucketed on a grid of cells wider than a disc plus a box, so
    /// the boxes that can overlap a disc lie in its own and the 8 neighbouring cells.
    struct CellGrid {
        let positions: [SIMD2<Double>]
        let cell: Double, cols: Int, rows: Int
        let bucketStart: [Int]
        let bucket: [Int32]

        init(_ layout: Layout, fitted: [Int], boxes: [SIMD4<Int32>]) {
            positions = layout.positions
            cell = layout.radius + layout.reach + 2
            cols = Swift.max(1, Int(Double(layout.w) / cell) + 1)
            rows = Swift.max(1, Int(Double(layout.h) / cell) + 1)
            var start = [Int](repeating: 0, count: cols * rows + 1)
            var cells = [Int](repeating: 0, count: fitted.count)
            for (q, j) in fitted.enumerated() {
                let (cx, cy) = Self.cellOf(positions[j], cell: cell, cols: cols, rows: rows)
                cells[q] = cy * cols + cx
                start[cells[q] + 1] += 1
            }
            for b in 0..<(cols * rows) { start[b + 1] += start[b] }
            var fill = start, bucket = [Int32](repeating: 0, count: start.last!)
            for (q, j) in fitted.enumerated() { bucket[fill[cells[q]]] = Int32(j); fill[cells[q]] += 1 }
            bucketStart = start
            self.bucket = bucket
        }

        static func cellOf(_ p: SIMD2<Double>, cell: Double, cols: Int, rows: Int) -> (Int, Int) {
            (Swift.min(cols - 1, Swift.max(0, Int(p.x / cell))), Swift.min(rows - 1, Swift.max(0, Int(p.y / cell))))
        }

        /// The positions j ≠ k whose box overlaps the bounding box of k's disc, in index order.
        func overlapping(_ k: Int, discRows: UnsafeBufferPointer<SIMD3<Int32>>, boxes: [SIMD4<Int32>],
                         into found: inout [Int32]) {
            let dy0 = discRows.first!.x, dy1 = discRows.last!.x
            var dx0 = Int32.max, dx1 = Int32.min
            for row in discRows { dx0 = Swift.min(dx0, row.y); dx1 = Swift.max(dx1, row.z) }
            let (cx, cy) = Self.cellOf(positions[k], cell: cell, cols: cols, rows: rows)
            found.removeAll(keepingCapacity: true)
            for yy in Swift.max(0, cy - 1)...Swift.min(rows - 1, cy + 1) {
                for xx in Swift.max(0, cx - 1)...Swift.min(cols - 1, cx + 1) {
                    let b = yy * cols + xx
                    for q in bucketStart[b]..<bucketStart[b + 1] {
                        let j = bucket[q]
                        guard Int(j) != k else { continue }
                        let box = boxes[Int(j)]
                        if box.x <= dx1, box.y >= dx0, box.z <= dy1, box.w >= dy0 { found.append(j) }
                    }
                }
            }
            found.sort()
        }
    }

    /// The Gaussian tables and prefix-sum scratch one coupling is computed with.
    struct CouplingTables {
        let boxes: [SIMD4<Int32>]
        let gx: UnsafePointer<Double>, gy: UnsafePointer<Double>
        let span: Int
        let prefixKJ: UnsafeMutablePointer<Double>, prefixJ: UnsafeMutablePointer<Double>

        /// M_kj per disc row y inside box j: g_jy·(n/det·g_ky·Σ_x g_kx·g_jx − Σg/det·Σ_x g_jx),
        /// the x sums from prefix sums over the disc's columns inside box j.
        func coupling(_ k: Int, _ j: Int, discRows: UnsafeBufferPointer<SIMD3<Int32>>, fit: SIMD2<Double>) -> Double {
            var dx0 = Int32.max, dx1 = Int32.min
            for row in discRows { dx0 = Swift.min(dx0, row.y); dx1 = Swift.max(dx1, row.z) }
            let boxK = boxes[k], box = boxes[j]
            let gxk = gx + k * span - Int(boxK.x), gyk = gy + k * span - Int(boxK.z)
            let gxj = gx + j * span - Int(box.x), gyj = gy + j * span - Int(box.z)
            let xs = Int(Swift.max(dx0, box.x)), xe = Int(Swift.min(dx1, box.y))
            var a = 0.0, c = 0.0
            prefixKJ[0] = 0; prefixJ[0] = 0
            for x in xs...xe { a += gxk[x] * gxj[x]; c += gxj[x]; prefixKJ[x - xs + 1] = a; prefixJ[x - xs + 1] = c }
            var m = 0.0
            for row in discRows {
                if row.x < box.z || row.x > box.w { continue }
                let xa = Int(Swift.max(row.y, box.x)), xb = Int(Swift.min(row.z, box.y))
                if xa > xb { continue }
                let y = Int(row.x)
                let sKJ = prefixKJ[xb - xs + 1] - prefixKJ[xa - xs], sJ = prefixJ[xb - xs + 1] - prefixJ[xa - xs]
                m += gyj[y] * (fit.x * gyk[y] * sKJ - fit.y * sJ)
            }
            return m
        }
    }

    /// Whether every pixel of position k's fit disc is set in `valid` (the image's size).
    func discInside(_ k: Int, _ valid: Mask) -> Bool {
        for r in rowStart[k]..<rowStart[k + 1] {
            let row = rows[r], start = Int(row.x) * width
            for x in Int(row.y)...Int(row.z) where !valid.bits[start + x] { return false }
        }
        return true
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

