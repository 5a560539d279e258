import Foundation
import FrameCore

/// Layered / rock-salt labels of every pixel of an order-parameter map.
public struct PhaseMap: Sendable {
    public static let notCrystal: UInt8 = 0
    public static let layered: UInt8 = 1
    public static let rocksalt: UInt8 = 2

    public var width: Int
    public var height: Int
    /// Row-major: 0 not crystal, 1 layered, 2 rock salt.
    public var labels: [UInt8]
    /// Cut on the order parameter (amplitude ratio g/2g): below it a crystal pixel is rock salt.
    public var threshold: Double
    /// Rock-salt pixels over crystal pixels; nil when there is no crystal.
    public var rocksaltFraction: Double?
    /// Typical ratio of the layered phase (median of its pixels); nil when none.
    public var layeredRatio: Double?
    /// Typical ratio of the rock-salt phase; nil when none.
    public var rocksaltRatio: Double?
    /// β: relative change of the half-spacing (2g) amplitude from layered to rock salt at
    /// equal thickness (0 when TM only moves between sites, 1 when TM is added to empty Li
    /// sites). The front fit needs it to turn the ratio back into a quantity linear in
    /// occupancy.
    public var halfSpacingContrast: Double

    public init(width: Int, height: Int, labels: [UInt8], threshold: Double, rocksaltFraction: Double?,
                layeredRatio: Double? = nil, rocksaltRatio: Double? = nil, halfSpacingContrast: Double = 0) {
        self.width = width
        self.height = height
        self.labels = labels
        self.threshold = threshold
        self.rocksaltFraction = rocksaltFraction
        self.layeredRatio = layeredRatio
        self.rocksaltRatio = rocksaltRatio
        self.halfSpacingContrast = halfSpacingContrast
    }

    public subscript(x: Int, y: Int) -> UInt8 { labels[y * width + x] }

    /// The pixels labelled `label`.
    public func mask(_ label: UInt8) -> Mask { Mask(width: width, height: height, bits: labels.map { $0 == label }) }
}

/// Two-phase segmentation of the crystal by its layered order parameter q = A(g)/A(2g).
///
/// Method: Otsu (IEEE Trans. SMC 9 (1979) 62) on q over the crystal proposes two classes;
/// the physics then places the cut. With TM weight `a` on TM planes and `b` on Li planes,
/// A(g) ∝ t·(a − b) and A(2g) ∝ t·(a + b) (t thickness): across the front a − b falls
/// linearly with the occupancy change P, a + b changes by a factor (1 + βP), so
/// q(P) = K·(1 − αP)/(1 + βP). K and q(1) are the plateaus (the outer deciles of Otsu's
/// two classes), which give α for any β; β is measured from the data as the change of
/// A(2g) with progress P once a thickness plane is removed (`halfSpacingContrast`). The cut is q(½), the front
/// midpoint — the same definition as the simulator's truth and as `FrontLocator`'s 50 %
/// crossing — rather than Otsu's cut, which moves with the class sizes.
///
/// One class only. Two classes are accepted when the upper class median is layered-like
/// in absolute terms (≥ 1/3, see below; noise splitting an all-rock-salt crystal fails
/// this) and either the lower class median is below half the upper one, or — for a thin,
/// window-blurred rock-salt strip whose median never reaches its plateau — the lower
/// class's lowest decile is below half the upper median and more than 6 noise σ below it
/// (σ from the upper class's upper quartile, robust). Noise splitting one layered class
/// gives neither: its lower tail reaches only ~2σ down. Otherwise the crystal is all one
/// phase: rock salt when its median q < 1/3, else layered. The absolute rule holds for any
/// column profile whose transfer falls with frequency (F(g) ≥ F(2g)): an ordered layered
/// crystal has (a − b)/(a + b) ≈ 0.95 and so q ≳ 0.95, while q < 1/3 needs TM on the Li
/// sites at more than half the TM-site weight's share.
///
/// A step's single frames are segmented with the β of its average (`halfSpacingContrast`),
/// measured there at the average's signal instead of again in every noisy frame (its grid
/// search is 40 % of a frame's segmentation).
public enum PhaseSegmentation {
    /// - Parameter halfSpacingContrast: β when already known (a step average's, for its
    ///   frames); measured from this map when nil.
    public static func segment(_ op: OrderParameterMap, halfSpacingContrast known: Double? = nil) -> PhaseMap {
        let w = op.layered.width, h = op.layered.height
        var labels = [UInt8](repeating: PhaseMap.notCrystal, count: w * h)
        var indices = [Int](), q = [Double]()
        for i in 0..<(w * h) where op.crystal.bits[i] {
            let v = Double(op.layered.pixels[i])
            guard v.isFinite else { continue }
            indices.append(i)
            q.append(v)
        }
        guard q.count >= 16 else {
            return PhaseMap(width: w, height: h, labels: labels, threshold: 1.0 / 3, rocksaltFraction: nil)
        }
        func labelAll(_ isRocksalt: (Double) -> Bool) -> Int {
            var n = 0
            for (k, i) in indices.enumerated() {
                let rs = isRocksalt(q[k])
                labels[i] = rs ? PhaseMap.rocksalt : PhaseMap.layered
                if rs { n += 1 }
            }
            return n
        }

        let sorted = SortedSample(q)
        guard let classes = otsuClasses(sorted) else {
            let all = sorted.median() ?? 1
            let rocksalt = all < 1.0 / 3
            _ = labelAll { _ in rocksalt }
            return PhaseMap(width: w, height: h, labels: labels, threshold: 1.0 / 3,
                            rocksaltFraction: rocksalt ? 1 : 0,
                            layeredRatio: rocksalt ? nil : all, rocksaltRatio: rocksalt ? all : nil)
        }
        var cut = classes.cut
        // Plateaus: the extreme decile of each Otsu class (class medians sit inside a wide
        // front's transition zone; whole-crystal quantiles miss a small rock-salt class).
        let r = classes.lowDecile
        guard let k = sorted.quantile(0.9, in: sorted.atOrAbove(classes.cut)), k > r else {
            let n = labelAll { $0 < cut }
            return PhaseMap(width: w, height: h, labels: labels, threshold: cut, rocksaltFraction: Double(n) / Double(q.count))
        }
        // Near the crystal edge the window sees vacuum too and both amplitudes fall; keep
        // 2σ away from it for β.
        let beta = known ?? halfSpacingContrast(op, q: q, indices: indices, use: erode(op.crystal, radius: 2 * op.windowPx),
                                                layered: k, rocksalt: r, width: w, height: h) ?? 0
        let alpha = 1 - (r / k) * (1 + beta)
        let modelCut = k * (1 - alpha / 2) / (1 + beta / 2)
        if modelCut.isFinite, modelCut > r, modelCut < k { cut = modelCut }
        let layeredRatio = sorted.median(in: sorted.atOrAbove(cut)) ?? k
        let rocksaltRatio = sorted.median(in: sorted.below(cut)) ?? r
        let n = labelAll { $0 < cut }
        return PhaseMap(width: w, height: h, labels: labels, threshold: cut,
                        rocksaltFraction: Double(n) / Double(q.count),
                        layeredRatio: layeredRatio, rocksaltRatio: rocksaltRatio, halfSpacingContrast: beta)
    }

    /// Otsu's two classes of q when they pass the two-class test (see `PhaseSegmentation`):
    /// the cut and the low class's lowest decile. nil: the crystal is one phase.
    static func otsuClasses(_ q: SortedSample) -> (cut: Double, lowDecile: Double)? {
        guard let split = OtsuSplit(q) else { return nil }
        let low = q.below(split.threshold), high = q.atOrAbove(split.threshold)
        // The low class's most rock-salt-like decile (a thin, window-blurred rock-salt
        // strip at a boundary never reaches its plateau in the class median), tested
        // against half the layered level and against the layered class's own noise
        // (spread of its upper half, robust σ).
        guard let ml = q.median(in: low), let r10 = q.quantile(0.1, in: low),
              let mh = q.median(in: high), let h75 = q.quantile(0.75, in: high),
              mh >= 1.0 / 3, low.count >= max(16, q.count / 500), high.count >= max(16, q.count / 500),
              ml < 0.5 * mh || (r10 < 0.5 * mh && r10 < mh - 6 * (h75 - mh) / 0.674) else { return nil }
        return (split.threshold, r10)
    }

    /// β by a grid search over [−0.5, 3] (step 0.025): each candidate turns every pixel's q
    /// into its progress P = (1 − q/K)/(α + β·q/K) (clamped to 0…1, α from the plateaus),
    /// and the β whose log A(2g) − log(1 + βP) is best explained by a thickness plane
    /// c₀ + c₁x + c₂y (least squares over ≤ ~20 000 evenly subsampled pixels, the plane's
    /// normal matrix formed once) wins. Using the continuous P, not the two labels, keeps the
    /// transition zone from diluting the step. nil when too few usable pixels.
    static func halfSpacingContrast(_ op: OrderParameterMap, q: [Double], indices: [Int], use: [Bool],
                                    layered k: Double, rocksalt r: Double, width w: Int, height h: Int) -> Double? {
        let stride = max(1, indices.count / 20_000)
        var design = [Double](), logA = [Double](), qs = [Double]()
        for j in Swift.stride(from: 0, to: indices.count, by: stride) where use[indices[j]] {
            let i = indices[j]
            let a = Double(op.amplitudeHalf.pixels[i])
            guard a > 0, a.isFinite else { continue }
            design += [1, Double(i % w) / Double(max(w, 1)) - 0.5, Double(i / w) / Double(max(h, 1)) - 0.5]
            logA.append(log(a))
            qs.append(q[j] / k)
        }
        guard logA.count >= 32, let plane = LeastSquares.LinearDesign(design: design, p: 3) else { return nil }
        var best: (beta: Double, rss: Double)?
        for step in 0...140 {
            let beta = -0.5 + 0.025 * Double(step)
            let alpha = 1 - (r / k) * (1 + beta)
            // P clamped to 0 leaves log A(2g) as it is; clamped to 1 it takes one shared log.
            let full = log(1 + beta)
            let y = qs.indices.map { i -> Double in
                let den = alpha + beta * qs[i]
                let p = den > 0 ? min(1, max(0, (1 - qs[i]) / den)) : 1
                return p == 0 ? logA[i] : p == 1 ? logA[i] - full : logA[i] - log(1 + beta * p)
            }
            guard let c = plane.solve(y) else { continue }
            let rss = design.withUnsafeBufferPointer { x in
                y.withUnsafeBufferPointer { y in
                    var rss = 0.0
                    for i in y.indices {
                        let e = y[i] - c[0] - c[1] * x[3 * i + 1] - c[2] * x[3 * i + 2]
                        rss += e * e
                    }
                    return rss
                }
            }
            if best == nil || rss < best!.rss { best = (beta, rss) }
        }
        return best?.beta
    }

    /// Pixels of `mask` farther than `radius` from any unset pixel (or the image border is
    /// not counted as unset), by a two-pass 3-4 chamfer distance transform (Borgefors,
    /// CVGIP 34 (1986) 344).
    static func erode(_ mask: Mask, radius: Double) -> [Bool] {
        let w = mask.width, h = mask.height
        let big = Int32.max / 4
        var d = mask.bits.map { $0 ? big : 0 }
        for y in 0..<h {
            for x in 0..<w where d[y * w + x] > 0 {
                var v = d[y * w + x]
                if x > 0 { v = min(v, d[y * w + x - 1] + 3) }
                if y > 0 {
                    v = min(v, d[(y - 1) * w + x] + 3)
                    if x > 0 { v = min(v, d[(y - 1) * w + x - 1] + 4) }
                    if x + 1 < w { v = min(v, d[(y - 1) * w + x + 1] + 4) }
                }
                d[y * w + x] = v
            }
        }
        for y in stride(from: h - 1, through: 0, by: -1) {
            for x in stride(from: w - 1, through: 0, by: -1) where d[y * w + x] > 0 {
                var v = d[y * w + x]
                if x + 1 < w { v = min(v, d[y * w + x + 1] + 3) }
                if y + 1 < h {
                    v = min(v, d[(y + 1) * w + x] + 3)
                    if x + 1 < w { v = min(v, d[(y + 1) * w + x + 1] + 4) }
                    if x > 0 { v = min(v, d[(y + 1) * w + x - 1] + 4) }
                }
                d[y * w + x] = v
            }
        }
        let limit = Int32(min(Double(big - 1), (3 * radius).rounded(.up)))
        return d.map { $0 > limit }
    }
}
