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
}

/// Two-phase segmentation of the crystal by its layered order parameter q = A(g)/A(2g).
///
/// Method: Otsu (IEEE Trans. SMC 9 (1979) 62) on q over the crystal proposes two classes;
/// the physics then places the cut. With TM weight `a` on TM planes and `b` on Li planes,
/// A(g) ∝ t·(a − b) and A(2g) ∝ t·(a + b) (t thickness): across the front a − b falls
/// linearly with the occupancy change P, a + b changes by a factor (1 + βP), so
/// q(P) = K·(1 − αP)/(1 + βP). β is measured from the data as the step of log A(2g)
/// between the classes after removing a quadratic thickness trend (least squares over the
/// crystal); K and q(1) are the class medians, which give α. The cut is q(½), the front
/// midpoint — the same definition as the simulator's truth and as `FrontLocator`'s 50 %
/// crossing — rather than Otsu's cut, which moves with the class sizes.
///
/// One class only. Two classes are accepted when Otsu's lower class median is below half
/// the upper one (a real rock-salt region has q near 0; noise splitting a single layered
/// class gives two medians within a few noise widths). Otherwise the crystal is all one
/// phase: rock salt when its median q < 1/3, else layered. The absolute rule holds for any
/// column profile whose transfer falls with frequency (F(g) ≥ F(2g)): an ordered layered
/// crystal has (a − b)/(a + b) ≈ 0.95 and so q ≳ 0.95, while q < 1/3 needs TM on the Li
/// sites at more than half the TM-site weight's share.
public enum PhaseSegmentation {
    public static func segment(_ op: OrderParameterMap) -> PhaseMap {
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

        var twoClasses = false
        var cut = 1.0 / 3
        if let split = OtsuSplit(q) {
            let low = q.filter { $0 < split.threshold }, high = q.filter { $0 >= split.threshold }
            if let ml = LeastSquares.median(low), let mh = LeastSquares.median(high),
               mh > 0, ml < 0.5 * mh, low.count >= max(16, q.count / 500) {
                twoClasses = true
                cut = split.threshold
            }
        }
        guard twoClasses else {
            let all = LeastSquares.median(q) ?? 1
            let rocksalt = all < 1.0 / 3
            _ = labelAll { _ in rocksalt }
            return PhaseMap(width: w, height: h, labels: labels, threshold: 1.0 / 3,
                            rocksaltFraction: rocksalt ? 1 : 0,
                            layeredRatio: rocksalt ? nil : all, rocksaltRatio: rocksalt ? all : nil)
        }

        // Refine: β from the 2g amplitudes, then the cut at the model's midpoint; twice, as
        // the labels the β fit uses move with the cut.
        var beta = 0.0, layeredRatio = 0.0, rocksaltRatio = 0.0
        // Near the crystal edge the window sees vacuum too and both amplitudes fall; keep
        // 2σ away from it for β.
        let interior = erode(op.crystal, radius: 2 * op.windowPx)
        for _ in 0..<3 {
            let isRS = q.map { $0 < cut }
            let lay = zip(q, isRS).filter { !$0.1 }.map(\.0), rs = zip(q, isRS).filter { $0.1 }.map(\.0)
            guard let k = LeastSquares.median(lay), let r = LeastSquares.median(rs), k > 0 else { break }
            layeredRatio = k; rocksaltRatio = r
            // Only confidently classified pixels measure β: the transition zone would
            // dilute the step between the phases.
            let margin = 0.05 * (k - r)
            let confident = indices.indices.map { (q[$0] <= r + margin || q[$0] >= k - margin) && interior[indices[$0]] }
            beta = halfSpacingStep(op, indices: indices, isRocksalt: isRS, use: confident, width: w, height: h) ?? 0
            let alpha = 1 - (r / k) * (1 + beta)
            let newCut = k * (1 - alpha / 2) / (1 + beta / 2)
            guard newCut.isFinite, newCut > r, newCut < k else { break }
            cut = newCut
        }
        let n = labelAll { $0 < cut }
        return PhaseMap(width: w, height: h, labels: labels, threshold: cut,
                        rocksaltFraction: Double(n) / Double(q.count),
                        layeredRatio: layeredRatio, rocksaltRatio: rocksaltRatio, halfSpacingContrast: beta)
    }

    /// β = exp(γ) − 1 from log A(2g) ≈ quadratic(x, y) + γ·[rock salt], least squares over
    /// (at most ~20 000 evenly subsampled) confidently classified crystal pixels; clamped
    /// to [−0.5, 3].
    static func halfSpacingStep(_ op: OrderParameterMap, indices: [Int], isRocksalt: [Bool], use: [Bool],
                                width w: Int, height h: Int) -> Double? {
        let stride = max(1, indices.count / 20_000)
        var design = [Double](), y = [Double]()
        var nRS = 0, nL = 0
        for k in Swift.stride(from: 0, to: indices.count, by: stride) where use[k] {
            let i = indices[k]
            let a = Double(op.amplitudeHalf.pixels[i])
            guard a > 0, a.isFinite else { continue }
            let px = Double(i % w) / Double(max(w, 1)) - 0.5, py = Double(i / w) / Double(max(h, 1)) - 0.5
            design += [1, px, py, isRocksalt[k] ? 1 : 0]
            y.append(log(a))
            if isRocksalt[k] { nRS += 1 } else { nL += 1 }
        }
        guard nRS >= 8, nL >= 8, let c = LeastSquares.linear(design: design, p: 4, y: y) else { return nil }
        return min(3, max(-0.5, exp(c[3]) - 1))
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
