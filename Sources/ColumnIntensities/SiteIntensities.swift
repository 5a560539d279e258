import FrameCore
import Foundation

/// Mean background-corrected column intensities of the two sublattices over a region.
public struct SiteIntensities: Sendable, Equatable {
    /// Mean integrated intensity of TM columns.
    public var tm: Double
    /// Mean integrated intensity at Li sites.
    public var li: Double
    /// About 0 for an ordered layered phase, rising toward 1 as TM fills the Li sites.
    /// `tm`, `li` and `ratio` are NaN when no site of a sublattice lies in the region: write
    /// an empty cell, never the NaN.
    public var ratio: Double { li / tm }
    public var tmCount: Int
    public var liCount: Int

    public init(tm: Double, li: Double, tmCount: Int, liCount: Int) {
        self.tm = tm; self.li = li; self.tmCount = tmCount; self.liCount = liCount
    }
}

/// Background-corrected HAADF intensity of every column site.
///
/// Method: each site's intensity is the volume 2πσ²A of a Gaussian of the lattice-wide column
/// width σ fitted, with a constant background c, at the site's fixed position by linear least
/// squares over a disc of radius 0.45 × the nearest-neighbour cation distance
/// (Gaussian-volume integration as in Atomap, Nord et al. 2017, and the "fixed-position"
/// column-intensity fits of quantitative HAADF, e.g. De Backer et al., Ultramicroscopy 134
/// (2013) 23). Why this rather than a disc sum minus an annulus: Li sites sit only ≈ 0.24 nm
/// from four TM columns, so any annulus around a Li site lies on TM tails and would make dark Li
/// sites negative; the local constant of the fit takes up the slowly varying background
/// (probe tails, thickness), and the neighbours' own fitted Gaussians are subtracted before
/// each site is fitted (four Jacobi passes over all sites — a block solution of the joint
/// linear model), so the bright TM columns do not leak into the Li sites. O columns, 0.14 nm
/// from every cation site, are part of that model (placed by the O3 stacking rule, fitted, not
/// reported): left out, their tails would lower every cation amplitude by ~3 % of a TM column,
/// which is 0.03 on the ratio of a dark Li site. σ comes from a pooled fit of all TM columns
/// of the image with the Li and O columns subtracted (`pooledSigma`).
///
/// Positions are fixed and the fit is linear in the data, so the estimate is unbiased under
/// Poisson noise: on single low-dose frames it is noisy but unbiased, on step averages precise.
/// Li sites are measured wherever they are, dark or bright. The aggregate is the plain mean over
/// the sites inside `region` (all sites when nil).
public enum SiteIntensity {
    public static func measure(_ image: Image, sites: ColumnSites, region: Mask?) -> (sites: ColumnSites, aggregate: SiteIntensities) {
        let m = measureWithWidth(image, sites: sites, region: region)
        return (m.sites, m.aggregate)
    }

    /// `measure`, also returning the column width σ (px) fitted on the image and used for
    /// every site (nil when nothing was measured): build a `SiteIntensityEstimator` with it
    /// to measure single frames at the same sites and width.
    ///
    /// The deblended fits at fixed σ run as `DeblendingOperator`'s precomputed linear
    /// operator (the same estimator, to rounding), and the model of the non-TM columns that
    /// the width fit removes is painted only around the sampled TM columns it is read at.
    public static func measureWithWidth(_ image: Image, sites: ColumnSites, region: Mask?)
        -> (sites: ColumnSites, aggregate: SiteIntensities, columnSigmaPx: Double?) {
        var out = sites
        let positions = sites.sites.map { $0.position }
        guard !positions.isEmpty, image.width > 1, image.height > 1, sites.lattice.isUsable,
              positions.allSatisfy({ $0.x.isFinite && $0.y.isFinite }) else {
            return (out, SiteIntensities(tm: .nan, li: .nan, tmCount: 0, liCount: 0), nil)
        }
        let (a1, a2) = sites.lattice.tmBasis
        let radius = ColumnFinder.fitRadius(a1: a1, a2: a2)
        // Oxygen columns are modelled too (not reported): otherwise their tails, the same
        // around both cation sites, would lower every amplitude by ~3 % of a TM column.
        let all = positions + oxygenColumns(sites)
        let sample = WidthRefit.tmSample(sites)
        var sigma = sites.columnSigmaPx ?? pooledSigma(image, at: sample, radius: radius, initial: radius / 2.5)
        if let refit = WidthRefit(sites: sites, all: all, radius: radius, initialSigma: sigma,
                                  width: image.width, height: image.height) {
            sigma = refit.sigma(of: image)
        }
        let amplitudes = DeblendingOperator(positions: all, sigma: sigma, radius: radius,
                                            width: image.width, height: image.height).amplitudes(image, passes: 4)
        let volume = 2 * Double.pi * sigma * sigma
        for k in out.sites.indices { out.sites[k].intensity = amplitudes[k] * volume }
        let agg = aggregate(out.sites, intensities: out.sites.map(\.intensity), region: region,
                            width: image.width, height: image.height)
        return (out, agg, sigma)
    }

    /// Plain means of the finite TM and Li intensities over the sites inside `region` (all
    /// sites when nil; a region of another size than the image is ignored, as in `ColumnFinder`).
    static func aggregate(_ sites: [ColumnSite], intensities: [Double], region: Mask?,
                          width: Int, height: Int) -> SiteIntensities {
        let usedRegion = region.flatMap { $0.width == width && $0.height == height ? $0 : nil }
        var tmSum = 0.0, liSum = 0.0, tmN = 0, liN = 0
        for k in sites.indices {
            let s = sites[k]
            if let r = usedRegion, !r.contains(s.x, s.y) { continue }
            guard intensities[k].isFinite else { continue }
            switch s.sublattice {
            case .tm: tmSum += intensities[k]; tmN += 1
            case .li: liSum += intensities[k]; liN += 1
            }
        }
        return SiteIntensities(tm: tmN > 0 ? tmSum / Double(tmN) : .nan, li: liN > 0 ? liSum / Double(liN) : .nan,
                               tmCount: tmN, liCount: liN)
    }

    /// O columns of the O3 structure when the TM planes show ABC stacking (offset δ = ±⅓ a):
    /// close-packed layers a quarter of the layer spacing apart, each shifted sideways by δ
    /// from the one below, so O lies at TM + ¼a2 + ¾(δ/a)·a1 and TM + ¾a2 − ¾(δ/a)·a1.
    /// None for other stackings, where their projected positions are not known.
    static func oxygenColumns(_ sites: ColumnSites) -> [SIMD2<Double>] {
        guard let f = sites.lattice.stackingOffset, abs(abs(f) - 1.0 / 3) < 0.07 else { return [] }
        let (a1, a2) = sites.lattice.tmBasis
        let o1 = 0.25 * a2 + 0.75 * f * a1, o3 = 0.75 * a2 - 0.75 * f * a1
        var out = [SIMD2<Double>]()
        for s in sites.sites where s.sublattice == .tm {
            out.append(s.position + o1); out.append(s.position + o3)
            // The layers below the lowest TM plane of the list.
            out.append(s.position + o1 - a2); out.append(s.position + o3 - a2)
        }
        return dedupe(out, tolerance: 0.25 * norm(a1))
    }

    /// Drops points closer than `tolerance` to an earlier one (grid hashing).
    static func dedupe(_ points: [SIMD2<Double>], tolerance: Double) -> [SIMD2<Double>] {
        var seen = [SIMD2<Int>: [SIMD2<Double>]]()
        var out = [SIMD2<Double>]()
        for p in points {
            let key = SIMD2(Int((p.x / tolerance).rounded(.down)), Int((p.y / tolerance).rounded(.down)))
            var duplicate = false
            for dy in -1...1 {
                for dx in -1...1 {
                    for q in seen[key &+ SIMD2(dx, dy)] ?? [] where norm(q - p) < tolerance { duplicate = true }
                }
            }
            if !duplicate { out.append(p); seen[key, default: []].append(p) }
        }
        return out
    }

    /// Column width σ of one Gaussian + constant, `c + A·exp(−|r − p_k|²/2σ²)`, fitted by
    /// Gauss–Newton to the pooled pixels of all given columns at their fixed positions. Pooling
    /// hundreds of columns keeps the estimate unbiased at low dose, where single-column fits
    /// scatter and their median drifts. Returns `initial` when the fit fails.
    static func pooledSigma(_ image: Image, at positions: [SIMD2<Double>], radius: Double, initial: Double) -> Double {
        let samples = pooledPixels(width: image.width, height: image.height, at: positions, radius: radius)
        return pooledSigma(samples, values: samples.pixels.map { Double(image.pixels[$0]) }, radius: radius, initial: initial)
    }

    /// The samples of `pooledSigma`: the pixels within `radius` of each position, in
    /// position order, with their squared distances and their place in the position's box
    /// (so the Gaussian is evaluated separably, one row and one column of exps per position).
    struct PooledSamples {
        var pixels: [Int] = []
        var r2s: [Double] = []
        /// Per sample: box index of its position, column and row within that box.
        var box: [Int32] = []
        var ix: [Int32] = []
        var iy: [Int32] = []
        /// Per box: offset of its first column and row from the position (px), and its size.
        var first: [SIMD2<Double>] = []
        var size: [SIMD2<Int32>] = []
        var span = 0
    }

    static func pooledPixels(width w: Int, height h: Int, at positions: [SIMD2<Double>], radius: Double) -> PooledSamples {
        var out = PooledSamples()
        out.span = Int(2 * radius) + 3
        let rr = radius * radius
        for p in positions {
            let x0 = max(0, Int((p.x - radius).rounded(.down))), x1 = min(w - 1, Int((p.x + radius).rounded(.up)))
            let y0 = max(0, Int((p.y - radius).rounded(.down))), y1 = min(h - 1, Int((p.y + radius).rounded(.up)))
            guard x1 >= x0, y1 >= y0 else { continue }
            let b = Int32(out.first.count)
            out.first.append(SIMD2(Double(x0) - p.x, Double(y0) - p.y))
            out.size.append(SIMD2(Int32(x1 - x0 + 1), Int32(y1 - y0 + 1)))
            for y in y0...y1 {
                for x in x0...x1 {
                    let d2 = (Double(x) - p.x) * (Double(x) - p.x) + (Double(y) - p.y) * (Double(y) - p.y)
                    if d2 <= rr {
                        out.r2s.append(d2); out.pixels.append(y * w + x)
                        out.box.append(b); out.ix.append(Int32(x - x0)); out.iy.append(Int32(y - y0))
                    }
                }
            }
        }
        return out
    }

    /// `pooledSigma` on gathered samples and their values.
    static func pooledSigma(_ samples: PooledSamples, values: [Double], radius: Double, initial: Double) -> Double {
        let r2s = samples.r2s
        guard r2s.count >= 20 else { return initial }
        // p = (A, σ, c); A and c start from the linear fit at the initial σ.
        // Values centred on their mean (the constant absorbs it); the Gaussian is evaluated
        // once per sample and σ and reused for the residual.
        var sigma = initial
        let mean = values.reduce(0, +) / Double(values.count)
        let centred = values.map { $0 - mean }
        var gs = [Double](repeating: 0, count: r2s.count)
        let span = samples.span, boxes = samples.first.count
        var ex = [Double](repeating: 0, count: boxes * span), ey = ex
        func linear(_ s: Double) -> (a: Double, c: Double, sse: Double)? {
            var sgg = 0.0, sg = 0.0, sgv = 0.0, sse = 0.0
            let n = Double(r2s.count), inv = 1 / (2 * s * s)
            var fit: (a: Double, c: Double)? = nil
            // exp(−r²/2σ²) = exp(−dx²/2σ²)·exp(−dy²/2σ²): a row and a column of exps per box.
            ex.withUnsafeMutableBufferPointer { exp in ey.withUnsafeMutableBufferPointer { eyp in
                for b in 0..<boxes {
                    gaussianSamples(exp.baseAddress! + b * span, count: Int(samples.size[b].x), first: samples.first[b].x, inv: inv)
                    gaussianSamples(eyp.baseAddress! + b * span, count: Int(samples.size[b].y), first: samples.first[b].y, inv: inv)
                }
            } }
            centred.withUnsafeBufferPointer { v in
                gs.withUnsafeMutableBufferPointer { g in
                    ex.withUnsafeBufferPointer { exp in ey.withUnsafeBufferPointer { eyp in
                    samples.box.withUnsafeBufferPointer { bx in samples.ix.withUnsafeBufferPointer { ix in
                    samples.iy.withUnsafeBufferPointer { iy in
                        for k in 0..<g.count {
                            let base = Int(bx[k]) * span
                            let e = eyp[base + Int(iy[k])] * exp[base + Int(ix[k])]
                            g[k] = e; sgg += e * e; sg += e; sgv += e * v[k]
                        }
                    } } } } }
                    let det = sgg * n - sg * sg
                    guard det > 0 else { return }
                    let a = n * sgv / det, c = -sg * sgv / det
                    for k in 0..<g.count { let e = v[k] - c - a * g[k]; sse += e * e }
                    fit = (a, c)
                }
            }
            guard let fit else { return nil }
            return (fit.a, fit.c + mean, sse)
        }
        // Variable projection: for each σ the best (A, c) is linear; minimise the residual over σ
        // by golden-section search on [0.4, 2.5] × the initial width.
        var lo = 0.4 * initial, hi = min(2.5 * initial, 1.5 * radius)
        guard lo < hi else { return initial }
        let phi = (5.0.squareRoot() - 1) / 2
        var x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo)
        guard var f1 = linear(x1)?.sse, var f2 = linear(x2)?.sse else { return initial }
        for _ in 0..<40 {
            if f1 < f2 { hi = x2; x2 = x1; f2 = f1; x1 = hi - phi * (hi - lo); f1 = linear(x1)?.sse ?? .infinity }
            else { lo = x1; x1 = x2; f1 = f2; x2 = lo + phi * (hi - lo); f2 = linear(x2)?.sse ?? .infinity }
            if hi - lo < 1e-4 * initial { break }
        }
        sigma = (lo + hi) / 2
        guard let fit = linear(sigma), fit.a > 0, sigma > 0.45 * initial, sigma < 2.4 * initial else { return initial }
        return sigma
    }

    /// Amplitude A of `c + A·G_σ(r − p)` at fixed positions, each fitted alone.
    static func fixedAmplitudes(_ image: Image, at positions: [SIMD2<Double>], sigma: Double, radius: Double) -> [Double] {
        fitAll(image, at: positions, sigma: sigma, radius: radius)
    }

    /// Linear fit of (A, c) per site over its disc.
    static func fitAll(_ image: Image, at positions: [SIMD2<Double>], sigma: Double, radius: Double) -> [Double] {
        let n = positions.count
        var out = [Double](repeating: 0, count: n)
        guard n > 0 else { return out }
        let w = image.width, h = image.height
        let inv = 1 / (2 * sigma * sigma), r2 = radius * radius
        let chunks = min(n, max(1, ProcessInfo.processInfo.activeProcessorCount * 4))
        let span = Int(2 * radius) + 3
        out.withUnsafeMutableBufferPointer { buffer in
            let results = UncheckedSendable(buffer)
            image.pixels.withUnsafeBufferPointer { pixels in
                let px = UncheckedSendable(pixels)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    var ex = [Double](repeating: 0, count: span), ey = [Double](repeating: 0, count: span)
                    for k in (chunk * n / chunks)..<((chunk + 1) * n / chunks) {
                        let p = positions[k]
                        let x0 = max(0, Int((p.x - radius).rounded(.up))), x1 = min(w - 1, Int((p.x + radius).rounded(.down)))
                        let y0 = max(0, Int((p.y - radius).rounded(.up))), y1 = min(h - 1, Int((p.y + radius).rounded(.down)))
                        guard x1 >= x0, y1 >= y0 else { continue }
                        for x in x0...x1 { let dx = Double(x) - p.x; ex[x - x0] = exp(-dx * dx * inv) }
                        for y in y0...y1 { let dy = Double(y) - p.y; ey[y - y0] = exp(-dy * dy * inv) }
                        var sgg = 0.0, sg = 0.0, s1 = 0.0, sgd = 0.0, sd = 0.0
                        for y in y0...y1 {
                            let dy = Double(y) - p.y
                            let gy = ey[y - y0], row = y * w
                            for x in x0...x1 {
                                let dx = Double(x) - p.x
                                guard dx * dx + dy * dy <= r2 else { continue }
                                let g = gy * ex[x - x0]
                                let d = Double(px.value[row + x])
                                sgg += g * g; sg += g; s1 += 1; sgd += g * d; sd += d
                            }
                        }
                        let det = sgg * s1 - sg * sg
                        guard s1 >= 3, det > 1e-12 * s1 * s1 else { continue }
                        results.value[k] = (s1 * sgd - sg * sd) / det
                    }
                }
            }
        }
        return out
    }
}

/// The column width refitted on one image, as `SiteIntensity.measure` does it: rough
/// deblended amplitudes at the initial width (two Jacobi passes), the Li and O columns painted
/// with them and removed, then the pooled width fit (`pooledSigma`) of a sample of ≤ ~500 TM
/// columns. Everything that does not depend on the image (the rough operator, which columns
/// reach the sampled discs) is prepared once, so many frames at the same sites are cheap.
struct WidthRefit: Sendable {
    let radius: Double
    let initialSigma: Double
    let rough: DeblendingOperator
    /// The samples of the pooled width fit.
    let samples: SiteIntensity.PooledSamples
    /// The model of the non-TM columns at each sample pixel, `Σ_j A_j·G_j(p)`, as a sparse
    /// matrix over the rough amplitudes: `modelStart[i]..<modelStart[i+1]` index
    /// `modelIndex` (positions) and `modelWeight` (`G_j(p)`, the Gaussian `paint` lays).
    let modelStart: [Int]
    let modelIndex: [Int32]
    let modelWeight: [Double]

    /// Every `max(1, n/500)`-th TM site.
    static func tmSample(_ sites: ColumnSites) -> [SIMD2<Double>] {
        let tmIndices = sites.sites.indices.filter { sites.sites[$0].sublattice == .tm }
        let step = max(1, tmIndices.count / 500)
        return Swift.stride(from: 0, to: tmIndices.count, by: step).map { sites.sites[tmIndices[$0]].position }
    }

    /// Nil when there is no TM site to sample (the width is then not refitted).
    init?(sites: ColumnSites, all: [SIMD2<Double>], radius: Double, initialSigma: Double, width: Int, height: Int) {
        let sample = Self.tmSample(sites)
        guard !sample.isEmpty else { return nil }
        self.radius = radius
        self.initialSigma = initialSigma
        let op = DeblendingOperator(positions: all, sigma: initialSigma, radius: radius, width: width, height: height)
        rough = op
        samples = SiteIntensity.pooledPixels(width: width, height: height, at: sample, radius: radius)
        let samplePixels = samples.pixels
        // Which non-TM columns' painted boxes cover each sample pixel, and with what weight:
        // candidates per sampled column from a grid of cells one interaction range wide.
        let others = all.indices.filter { $0 >= sites.sites.count || sites.sites[$0].sublattice != .tm }
        let range = radius + 3 * initialSigma + radius + 2
        var grid = [SIMD2<Int>: [Int]]()
        for j in others where op.boxes[j].y >= op.boxes[j].x {
            grid[SIMD2(Int((all[j].x / range).rounded(.down)), Int((all[j].y / range).rounded(.down))), default: []].append(j)
        }
        var start = [0], index = [Int32](), weight = [Double]()
        var next = 0   // sample pixels are in sample order
        let rr = radius * radius
        for c in sample {
            let key = SIMD2(Int((c.x / range).rounded(.down)), Int((c.y / range).rounded(.down)))
            var candidates = [Int]()
            for dy in -1...1 { for dx in -1...1 { candidates += grid[key &+ SIMD2(dx, dy)] ?? [] } }
            candidates.sort()
            // The pixels `pooledPixels` took for this column (same bounds and test).
            let x0 = max(0, Int((c.x - radius).rounded(.down))), x1 = min(width - 1, Int((c.x + radius).rounded(.up)))
            let y0 = max(0, Int((c.y - radius).rounded(.down))), y1 = min(height - 1, Int((c.y + radius).rounded(.up)))
            guard x1 >= x0, y1 >= y0 else { continue }
            for y in y0...y1 {
                for x in x0...x1 {
                    let d2 = (Double(x) - c.x) * (Double(x) - c.x) + (Double(y) - c.y) * (Double(y) - c.y)
                    guard d2 <= rr else { continue }
                    assert(samplePixels[next] == y * width + x)
                    next += 1
                    for j in candidates {
                        let box = op.boxes[j]
                        guard x >= Int(box.x), x <= Int(box.y), y >= Int(box.z), y <= Int(box.w) else { continue }
                        index.append(Int32(j))
                        weight.append(op.gy[j * op.boxSpan + y - Int(box.z)] * op.gx[j * op.boxSpan + x - Int(box.x)])
                    }
                    start.append(index.count)
                }
            }
        }
        modelStart = start; modelIndex = index; modelWeight = weight
    }

    func sigma(of image: Image) -> Double {
        let amplitudes = rough.amplitudes(image, passes: 2)
        let samplePixels = samples.pixels
        var values = [Double](repeating: 0, count: samplePixels.count)
        for i in samplePixels.indices {
            var m = 0.0
            for q in modelStart[i]..<modelStart[i + 1] { m += amplitudes[Int(modelIndex[q])] * modelWeight[q] }
            // As `measure`'s cleaned image: the difference rounded to the image's Float.
            values[i] = Double(Float(Double(image.pixels[samplePixels[i]]) - m))
        }
        return SiteIntensity.pooledSigma(samples, values: values, radius: radius, initial: initialSigma)
    }
}
