import Foundation
import FrameCore

/// The order-parameter profile across the front that `FrontLocator.locate` fitted.
public struct FrontProfile: Sendable {
    /// Bin centres: distance from the boundary along the propagation direction (px).
    public var distancesPx: [Double]
    /// Transformation progress P per bin, linear in site occupancy: 1 = rock salt of the
    /// fitted plateau, 0 = layered (still blurred by the lock-in window).
    public var values: [Double]
    /// Pixels averaged in each bin (the fit weights).
    public var weights: [Double]
    /// Fitted front midpoint (px from the boundary).
    public var positionPx: Double
    /// σ (px) of the Gaussian blur the lock-in window put on the profile.
    public var blurSigmaPx: Double

    public init(distancesPx: [Double], values: [Double], weights: [Double], positionPx: Double, blurSigmaPx: Double) {
        self.distancesPx = distancesPx
        self.values = values
        self.weights = weights
        self.positionPx = positionPx
        self.blurSigmaPx = blurSigmaPx
    }
}

/// Where the layered / rock-salt front is in one image.
public struct FrontMeasurement: Sendable {
    /// The line the front started from (length 0 when none was given or found).
    public var boundary: LineSegment
    /// Unit propagation direction, normal to the boundary, into the grain (zero when no boundary).
    public var direction: SIMD2<Double>
    /// Distance of the front midpoint from the boundary along `direction` (px); nil when
    /// no front exists (no rock salt attached to the boundary, or no layered crystal left).
    public var positionPx: Double?
    /// 10–90 % width of the occupancy profile, window blur removed (px); nil when not fitted.
    public var widthPx: Double?
    /// Rock-salt fraction of the crystal: when a front was fitted, the crystal lying between
    /// the boundary and the fitted midpoint (lines extended across the image) over all
    /// crystal — exact for a straight front, unlike any cut on the blurred order parameter;
    /// otherwise the phase map's; 0 without crystal.
    public var rocksaltFraction: Double
    /// What the fit saw, for `FrontLocator.width(profiles:)` over a step's frames.
    public var profile: FrontProfile?
    /// β, the relative change of the half-spacing (2g) amplitude from layered to rock salt,
    /// that the fit used (refitted from the 2g profile when the front was far enough out);
    /// nil when no front was fitted.
    public var halfSpacingContrast: Double?
    /// The binned profile, whether or not this image alone shows a front (nil without a
    /// boundary or crystal beside it): what `MovingFront` fits over a step's frames.
    public var samples: FrontSamples?

    public init(boundary: LineSegment, direction: SIMD2<Double>, positionPx: Double?, widthPx: Double?,
                rocksaltFraction: Double, profile: FrontProfile? = nil) {
        self.boundary = boundary
        self.direction = direction
        self.positionPx = positionPx
        self.widthPx = widthPx
        self.rocksaltFraction = rocksaltFraction
        self.profile = profile
    }

    /// The front line itself: the boundary moved by `positionPx` along `direction`.
    public var frontLine: LineSegment? {
        guard let p = positionPx else { return nil }
        return LineSegment(x0: boundary.x0 + p * direction.x, y0: boundary.y0 + p * direction.y,
                           x1: boundary.x1 + p * direction.x, y1: boundary.y1 + p * direction.y)
    }
}

/// Locates the reaction front and measures its width.
///
/// Profile: every crystal pixel whose foot on the boundary lies within the boundary
/// segment is binned (1 px) by its distance t from the boundary along the propagation
/// direction, and the order parameter q = A(g)/A(2g) is averaged per bin — the average
/// parallel to the front that beats down noise without widening the front.
///
/// Model (fitted by Levenberg–Marquardt): the occupancy change follows a tanh front,
/// P(t) = ½(1 − tanh((t − t₀)/w)) (1 at the boundary, 0 in the layered grain), seen
/// through the lock-in window as P_σ = G_σ * P (σ = the map's window, integrated by
/// 33-node quadrature). Fringe amplitudes are linear in occupancy, so
/// q(t) = K·(1 − α·P_σ)/(1 + β·P_σ) with β from `PhaseMap.halfSpacingContrast` and K, α,
/// t₀, w free. `layeredLevelPrior` > 0 holds K near the segmentation's layered level
/// (`PhaseMap.layeredRatio`) with that weight relative to the whole profile: in noisy maps
/// (single frames) a front far out leaves too little layered crystal in view to pin the
/// plateau, and a free K trades off against t₀ (`MovingFront` fits a step's frames
/// together with the same prior). Not by default: where the front is wide, the
/// layered class includes part of it and the prior biases the width. A front still
/// within w + 2σ of the boundary shows no rock-salt plateau: there α = 1 (full cation
/// mixing) is imposed. When the front is > 3σ out, β is refitted jointly from the 2g
/// amplitude profile (see the code). t₀ is the 50 % crossing of the occupancy — unbiased whatever α and β, where
/// a tanh fitted to q itself would shift by up to 0.35 w. The width 2·atanh(0.8)·w is the
/// 10–90 % width of the true (unblurred) profile: the window's blur is modelled, not
/// subtracted in quadrature (the quadrature rule is only exact for Gaussian edges).
/// Beyond the boundary there are no fringes, so within ~2σ of it the window averages the
/// crystal side only: the model truncates the Gaussian at the boundary (t = 0) and
/// renormalises, which keeps fronts that have just left the boundary unbiased.
///
/// Boundary when none is given: the crystal edge pixels labelled rock salt (edges on the
/// image border do not count), a total-least-squares line through them, moved half a pixel
/// out to the 50 % edge the crystal mask approximates, and extended over the whole field of
/// view (`fieldExtent`).
public enum FrontLocator {
    /// 2·atanh(0.8): 10–90 % width of ½(1 + tanh(x/w)) in units of w.
    static let tanhWidthFactor = 2 * atanh(0.8)

    /// `analysed`: the pixels the phase map's labels speak for (e.g. those every frame
    /// covers). Outside it "not crystal" only means "not measured", so a rock-salt region
    /// touching it is not taken for a boundary. `profileOnly`: stop once `samples` is
    /// measured (no fit, no position), for `MovingFront` over a step's frames.
    public static func locate(_ op: OrderParameterMap, phase: PhaseMap, boundary: LineSegment?,
                              analysed: Mask? = nil, layeredLevelPrior: Double = 0,
                              profileOnly: Bool = false) -> FrontMeasurement {
        let w = op.layered.width, h = op.layered.height
        let fraction = phase.rocksaltFraction ?? 0
        let none = FrontMeasurement(boundary: boundary ?? LineSegment(x0: 0, y0: 0, x1: 0, y1: 0),
                                    direction: .zero, positionPx: nil, widthPx: nil, rocksaltFraction: fraction)
        guard phase.width == w, phase.height == h, phase.labels.count == w * h, op.crystal.width == w,
              op.crystal.height == h else { return none }
        guard let segment = boundary ?? detectBoundary(phase, analysed: analysed),
              let axes = BoundaryAxes(segment, phase: phase) else { return none }
        var result = none
        result.boundary = segment
        result.direction = axes.normal
        let bins = BinnedProfile(op, phase: phase, axes: axes)
        // The profile as measured, with every crystal pixel's distance from the boundary (the
        // line extended across the image) for the rock-salt fraction behind any position.
        var crystalDistances = [Double]()
        for i in 0..<(w * h) where phase.labels[i] != PhaseMap.notCrystal {
            crystalDistances.append(((SIMD2(Double(i % w), Double(i / w)) - axes.p0) * axes.normal).sum())
        }
        result.samples = FrontSamples(distancesPx: bins.ts, values: bins.ys, weights: bins.ws, blurSigmaPx: op.windowPx,
                                      crystal: CrystalExtent(distancesPx: crystalDistances),
                                      layeredLevel: phase.layeredRatio)
        if profileOnly { return result }
        // A front needs crystal beside the boundary and layered crystal left ahead of it.
        // Where rock salt covers the boundary the front is fitted as below; where it does
        // not, a front may just have nucleated (its midpoint within a width of the
        // boundary, no pixel clearly rock salt): only the fully mixed edge is fitted then,
        // and it counts only if its midpoint lies inside the grain (see `nascentEdge`).
        guard bins.crystalNearBoundary > 0, bins.layeredCount >= 16, bins.ts.count >= 8 else { return result }
        let rockSaltOnBoundary = 2 * bins.rsNearBoundary >= bins.crystalNearBoundary
        // Start: the area-equivalent position (rock-salt pixels over the mean bin population).
        let meanBin = bins.ws.reduce(0, +) / Double(bins.ws.count)
        let areaPosition = bins.rsArea / meanBin
        let fitted = fitEdge(bins, phase: phase, sigma: op.windowPx, areaPosition: areaPosition,
                             rockSaltOnBoundary: rockSaltOnBoundary, kPrior: layeredLevelPrior)
        if let fitted, accept(fitted, bins: bins, phase: phase, axes: axes, sigma: op.windowPx,
                              rockSaltOnBoundary: rockSaltOnBoundary, into: &result) {
            return result
        }
        // The fit failed: the area-equivalent position is still an unbiased estimate for a
        // straight front; no width. Without rock salt on the boundary there is no front.
        if rockSaltOnBoundary { result.positionPx = areaPosition }
        return result
    }

    /// The boundary segment's frame: its start, unit direction along it, length and the unit
    /// normal oriented towards the crystal lying beside the segment.
    struct BoundaryAxes {
        var p0: SIMD2<Double>
        var along: SIMD2<Double>
        var normal: SIMD2<Double>
        var length: Double

        init?(_ segment: LineSegment, phase: PhaseMap) {
            let w = phase.width, h = phase.height
            let p0 = SIMD2(segment.x0, segment.y0), p1 = SIMD2(segment.x1, segment.y1)
            let length = segment.length
            guard length.isFinite, length > 1 else { return nil }
            let along = (p1 - p0) / length
            var normal = SIMD2(-along.y, along.x)
            var side = 0.0
            for i in 0..<(w * h) where phase.labels[i] != PhaseMap.notCrystal {
                let r = SIMD2(Double(i % w), Double(i / w)) - p0
                let s = (r * along).sum()
                if s >= 0, s <= length { side += (r * normal).sum() > 0 ? 1 : -1 }
            }
            if side < 0 { normal = -normal }
            (self.p0, self.along, self.normal, self.length) = (p0, along, normal, length)
        }
    }

    /// The order parameter q and the half-spacing amplitude averaged in 1 px bins of distance
    /// from the boundary (crystal pixels whose foot lies on the segment; bins with fewer than
    /// max(3, 5 % of the fullest) pixels dropped), each bin's mean pixel position (centred),
    /// and the counts the front's checks need.
    struct BinnedProfile {
        var ts = [Double](), ys = [Double](), ws = [Double](), halves = [Double](), xs = [Double](), yc = [Double]()
        var rsNearBoundary = 0, crystalNearBoundary = 0, layeredCount = 0
        var rsArea = 0.0

        init(_ op: OrderParameterMap, phase: PhaseMap, axes: BoundaryAxes) {
            let w = op.layered.width, h = op.layered.height
            let nb = Int(Double(w + h)) + 2
            var sum = [Double](repeating: 0, count: nb), count = [Double](repeating: 0, count: nb)
            var sumHalf = [Double](repeating: 0, count: nb)
            var sumX = [Double](repeating: 0, count: nb), sumY = [Double](repeating: 0, count: nb)
            let band = max(4, op.windowPx)
            for i in 0..<(w * h) where phase.labels[i] != PhaseMap.notCrystal {
                let r = SIMD2(Double(i % w), Double(i / w)) - axes.p0
                let s = (r * axes.along).sum(), t = (r * axes.normal).sum()
                guard s >= 0, s <= axes.length, t >= -0.5 else { continue }
                let b = Int((t + 0.5).rounded(.down))
                guard b < nb else { continue }
                sum[b] += Double(op.layered.pixels[i]); count[b] += 1
                sumHalf[b] += Double(op.amplitudeHalf.pixels[i])
                sumX[b] += Double(i % w); sumY[b] += Double(i / w)
                if t <= band {
                    crystalNearBoundary += 1
                    if phase.labels[i] == PhaseMap.rocksalt { rsNearBoundary += 1 }
                }
                if phase.labels[i] == PhaseMap.layered { layeredCount += 1 }
            }
            let minCount = max(3.0, 0.05 * (count.max() ?? 0))
            for b in 0..<nb where count[b] >= minCount {
                ts.append(Double(b)); ys.append(sum[b] / count[b]); ws.append(count[b])
                halves.append(sumHalf[b] / count[b])
                xs.append(sumX[b] / count[b] - Double(w) / 2); yc.append(sumY[b] / count[b] - Double(h) / 2)
            }
            for i in 0..<(w * h) where phase.labels[i] == PhaseMap.rocksalt {
                let r = SIMD2(Double(i % w), Double(i / w)) - axes.p0
                let s = (r * axes.along).sum(), t = (r * axes.normal).sum()
                if s >= 0, s <= axes.length, t >= -0.5 { rsArea += 1 }
            }
        }
    }

    typealias EdgeFit = (k: Double, alpha: Double, t0: Double, w: Double, beta: Double)

    /// The edge fitted to the binned profile: the ratio alone with the segmentation's β
    /// (nascent edge, or free depth from two starting widths), full mixing imposed where the
    /// front is still within w + 2σ of the boundary, then β refitted from the 2g amplitude.
    static func fitEdge(_ bins: BinnedProfile, phase: PhaseMap, sigma: Double, areaPosition: Double,
                        rockSaltOnBoundary: Bool, kPrior: Double) -> EdgeFit? {
        let ts = bins.ts, ys = bins.ys, ws = bins.ws
        let beta0 = phase.halfSpacingContrast
        let k0 = phase.layeredRatio ?? (ys.max() ?? 1)
        let r0 = phase.rocksaltRatio ?? 0
        let alpha0 = min(1.5, max(0.2, 1 - (r0 / max(k0, 1e-9)) * (1 + beta0)))
        let edge = BlurredTanhEdge(sigma: sigma)
        let totalWeight = ws.reduce(0, +)
        let sqrtW = ws.map { ($0 / totalWeight).squareRoot() }
        let w0 = log(max(3, sigma / 2))
        var fitted: EdgeFit?
        var bestCost = Double.infinity
        // First the ratio alone with the segmentation's β, from two starting widths (a
        // narrow and a wide front), keeping the better fit. Parameters: K, α, t₀, ln w.
        let tLast = ts.last ?? 0
        let memo = EdgeProfileMemo<[Double]>()
        if !rockSaltOnBoundary {
            fitted = nascentEdge(ts: ts, ys: ys, sqrtW: sqrtW, edge: edge, sigma: sigma, beta: beta0, k0: k0,
                                 startWidth: w0, kPrior: kPrior)
        }
        for startWidth in [w0, log(max(3, tLast / 10))] where rockSaltOnBoundary {
            guard let fit = LeastSquares.levenbergMarquardt(start: [k0, alpha0, areaPosition, startWidth], residuals: { p in
                let wt = exp(p[3])
                let prs = edge.profile(ts, centre: p[2], w: wt, edge: 0, memo: memo)
                return ts.indices.map { i in
                    let pr = prs[i]
                    return sqrtW[i] * (ys[i] - p[0] * (1 - p[1] * pr) / (1 + beta0 * pr))
                } + [kPrior * (p[0] - k0)]
            }), fit.parameters.allSatisfy(\.isFinite) else { continue }
            if fitted == nil || fit.cost < bestCost {
                let p = fit.parameters
                fitted = (p[0], p[1], p[2], exp(p[3]), beta0)
                bestCost = fit.cost
            }
        }
        if rockSaltOnBoundary, let first = fitted, first.t0 < first.w + 2 * sigma,
           let full = fullMixingEdge(bins, from: first, sqrtW: sqrtW, edge: edge, k0: k0, kPrior: kPrior) {
            fitted = full
        }
        if let first = fitted, let refit = halfSpacingRefit(bins, from: first, sqrtW: sqrtW, edge: edge, sigma: sigma,
                                                            k0: k0, kPrior: kPrior) {
            fitted = refit
        }
        return fitted
    }

    /// A front still within ~w + 2σ of the boundary shows no rock-salt plateau: its depth
    /// α and its position t₀ then trade off against each other. Rock salt proper is fully
    /// cation-mixed (q → 0, α = 1 for any β), so α is fixed there.
    static func fullMixingEdge(_ bins: BinnedProfile, from first: EdgeFit, sqrtW: [Double], edge: BlurredTanhEdge,
                               k0: Double, kPrior: Double) -> EdgeFit? {
        let ts = bins.ts, ys = bins.ys, beta0 = first.beta, memo = EdgeProfileMemo<[Double]>()
        guard let fit = LeastSquares.levenbergMarquardt(start: [first.k, first.t0, log(first.w)], residuals: { p in
            let wt = exp(p[2])
            let prs = edge.profile(ts, centre: p[1], w: wt, edge: 0, memo: memo)
            return ts.indices.map { i in
                let pr = prs[i]
                return sqrtW[i] * (ys[i] - p[0] * (1 - pr) / (1 + beta0 * pr))
            } + [kPrior * (p[0] - k0)]
        }), fit.parameters.allSatisfy(\.isFinite) else { return nil }
        return (fit.parameters[0], 1, fit.parameters[1], exp(fit.parameters[2]), beta0)
    }

    /// β refitted jointly from the 2g amplitude profile, (c₀ + c₁x̄ + c₂ȳ)(1 + βP_σ): a
    /// thickness plane (evaluated at each bin's mean pixel position, so the image's edges
    /// clipping the bins do not matter) times the phase step, which the 1-D geometry
    /// separates far better than the segmentation's whole-crystal estimate. Bins within
    /// 2σ of the boundary are left out of that part (the window there also sees what
    /// lies beyond the boundary); with the front that close (t₀ ≤ 3σ), β stays the segmentation's.
    static func halfSpacingRefit(_ bins: BinnedProfile, from first: EdgeFit, sqrtW: [Double], edge: BlurredTanhEdge,
                                 sigma: Double, k0: Double, kPrior: Double) -> EdgeFit? {
        let ts = bins.ts, ys = bins.ys, halves = bins.halves, xs = bins.xs, yc = bins.yc
        let halfBins = ts.indices.filter { ts[$0] > 2 * sigma }
        let halfScale = LeastSquares.median(halfBins.map { halves[$0] }) ?? 0
        let qScale = max(k0, 1e-9)
        guard first.t0 > 3 * sigma, halfBins.count >= 8, halfScale > 0 else { return nil }
        let start = [first.k, first.alpha, first.t0, log(first.w), first.beta, halfScale, 0, 0]
        let memo = EdgeProfileMemo<[Double]>()
        guard let fit = LeastSquares.levenbergMarquardt(start: start, residuals: { p in
            let wt = exp(p[3]), b = p[4]
            let prs = edge.profile(ts, centre: p[2], w: wt, edge: 0, memo: memo)
            var r = ts.indices.map { i -> Double in
                let pr = prs[i]
                return sqrtW[i] * (ys[i] - p[0] * (1 - p[1] * pr) / (1 + b * pr)) / qScale
            }
            for i in halfBins {
                let pr = prs[i]
                let model = (p[5] + p[6] * xs[i] + p[7] * yc[i]) * (1 + b * pr)
                r.append(sqrtW[i] * (halves[i] - model) / halfScale)
            }
            r.append(kPrior * (p[0] - k0) / qScale)
            return r
        }), fit.parameters.allSatisfy(\.isFinite), fit.parameters[4] > -0.9, fit.parameters[4] < 5,
           exp(fit.parameters[3]) > 0.25, abs(fit.parameters[2] - first.t0) < 2 * max(sigma, first.w) else { return nil }
        let p = fit.parameters
        return (p[0], p[1], p[2], exp(p[3]), p[4])
    }

    /// Writes an accepted edge into `result` — position, width, β, the profile as progress and
    /// the rock-salt fraction by geometry — and returns whether it was accepted: K > 0,
    /// α > 0.1, the midpoint inside the profile (a nascent front's inside the grain) and a
    /// width between ¼ px and the profile's length.
    static func accept(_ fitted: EdgeFit, bins: BinnedProfile, phase: PhaseMap, axes: BoundaryAxes, sigma: Double,
                       rockSaltOnBoundary: Bool, into result: inout FrontMeasurement) -> Bool {
        let (k, alpha, t0, wt, beta) = fitted
        let tMax = bins.ts.last ?? 0
        guard k > 0, alpha > 0.1, t0 > (rockSaltOnBoundary ? -sigma : 0), t0 < tMax + sigma, wt < tMax, wt > 0.25
        else { return false }
        result.positionPx = t0
        result.widthPx = tanhWidthFactor * wt
        result.halfSpacingContrast = beta
        // Per-bin progress, inverting q = K(1 − αP)/(1 + βP).
        let values = bins.ys.map { y -> Double in
            let rel = y / k
            let den = alpha + beta * rel
            return den != 0 ? (1 - rel) / den : .nan
        }
        result.profile = FrontProfile(distancesPx: bins.ts, values: values, weights: bins.ws,
                                      positionPx: t0, blurSigmaPx: sigma)
        // The fraction by geometry: crystal between the boundary and the fitted midpoint, both
        // lines extended across the image (the truth's own definition). Counting pixels below
        // a q cut would miss a rock-salt strip narrower than the window, whose blurred q never
        // reaches the cut, and miscount a wide front with no pure phase in view.
        let w = phase.width, h = phase.height
        var crystal = 0, rocksalt = 0
        for i in 0..<(w * h) where phase.labels[i] != PhaseMap.notCrystal {
            crystal += 1
            let t = ((SIMD2(Double(i % w), Double(i / w)) - axes.p0) * axes.normal).sum()
            if t < t0 { rocksalt += 1 }
        }
        if crystal > 0 { result.rocksaltFraction = Double(rocksalt) / Double(crystal) }
        return true
    }

    /// A front that has just nucleated: the fully cation-mixed edge (α = 1) fitted from
    /// starting midpoints at −σ, 0, σ and 3σ (the best fit kept). No front leaves q
    /// flat or raised at the boundary, and the best edge then lies beyond it (t₀ ≪ −σ, or a
    /// width below a quarter pixel that fits one bin): `locate`'s checks (t₀ > −σ, w > ¼ px)
    /// reject those, so only a dip in the order parameter that reaches from the boundary
    /// into the grain, as deep as full mixing makes it, counts as a front.
    static func nascentEdge(ts: [Double], ys: [Double], sqrtW: [Double], edge: BlurredTanhEdge, sigma: Double,
                            beta: Double, k0: Double, startWidth: Double,
                            kPrior: Double) -> (k: Double, alpha: Double, t0: Double, w: Double, beta: Double)? {
        var best: (k: Double, alpha: Double, t0: Double, w: Double, beta: Double)?, bestCost = Double.infinity
        let memo = EdgeProfileMemo<[Double]>()
        for start in [-sigma, 0, sigma, 3 * sigma] {
            guard let fit = LeastSquares.levenbergMarquardt(start: [k0, start, startWidth], residuals: { p in
                let wt = exp(p[2])
                let prs = edge.profile(ts, centre: p[1], w: wt, edge: 0, memo: memo)
                return ts.indices.map { i in
                    let pr = prs[i]
                    return sqrtW[i] * (ys[i] - p[0] * (1 - pr) / (1 + beta * pr))
                } + [kPrior * (p[0] - k0)]
            }), fit.parameters.allSatisfy(\.isFinite), fit.cost < bestCost else { continue }
            best = (fit.parameters[0], 1, fit.parameters[1], exp(fit.parameters[2]), beta)
            bestCost = fit.cost
        }
        return best
    }

    /// 10–90 % width of the front from several frames' profiles, each shifted so its own
    /// fitted midpoint is at 0 (motion during a step then does not widen the result), merged
    /// into 1 px bins and fitted with the same blurred-tanh edge (free plateaus, centre and
    /// w; σ = the profiles' mean blur). nil without profiles or when the fit fails.
    public static func width(profiles: [FrontProfile]) -> Double? {
        let usable = profiles.filter { $0.positionPx.isFinite && $0.distancesPx.count == $0.values.count
            && $0.weights.count == $0.values.count }
        guard !usable.isEmpty else { return nil }
        var bins: [Int: (sum: Double, weight: Double)] = [:]
        for p in usable {
            // Bins within 2σ of the boundary saw a truncated window: left out here.
            for i in p.distancesPx.indices where p.values[i].isFinite && p.weights[i] > 0
                && p.distancesPx[i] > 2 * p.blurSigmaPx {
                let b = Int((p.distancesPx[i] - p.positionPx).rounded())
                let old = bins[b] ?? (0, 0)
                bins[b] = (old.sum + p.values[i] * p.weights[i], old.weight + p.weights[i])
            }
        }
        let keys = bins.keys.sorted()
        guard keys.count >= 8 else { return nil }
        let ts = keys.map(Double.init), ys = keys.map { bins[$0]!.sum / bins[$0]!.weight }
        let total = keys.reduce(0.0) { $0 + bins[$1]!.weight }
        let sqrtW = keys.map { (bins[$0]!.weight / total).squareRoot() }
        let sigma = usable.map(\.blurSigmaPx).reduce(0, +) / Double(usable.count)
        let edge = BlurredTanhEdge(sigma: sigma)
        let span = (ts.last ?? 0) - (ts.first ?? 0)
        let memo = EdgeProfileMemo<[Double]>()
        guard let fit = LeastSquares.levenbergMarquardt(start: [0, 1, 0, log(max(3, sigma / 2))], residuals: { p in
            let prs = edge.profile(ts, centre: p[2], w: exp(p[3]), edge: nil, memo: memo)
            return ts.indices.map { i in sqrtW[i] * (ys[i] - (p[0] + (p[1] - p[0]) * prs[i])) }
        }), fit.parameters.allSatisfy(\.isFinite) else { return nil }
        let wt = exp(fit.parameters[3])
        guard abs(fit.parameters[1] - fit.parameters[0]) > 0.1, wt < span else { return nil }
        return tanhWidthFactor * wt
    }

    /// Crystal-edge pixels labelled rock salt (a neighbour inside the image is not crystal),
    /// fitted with a total-least-squares line; nil when fewer than 8 such pixels.
    static func detectBoundary(_ phase: PhaseMap, analysed: Mask? = nil) -> LineSegment? {
        let w = phase.width, h = phase.height
        var pts = [SIMD2<Double>]()
        for y in 0..<h {
            for x in 0..<w where phase.labels[y * w + x] == PhaseMap.rocksalt {
                var edge = false
                for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let nx = x + dx, ny = y + dy
                    if nx >= 0, ny >= 0, nx < w, ny < h, phase.labels[ny * w + nx] == PhaseMap.notCrystal,
                       analysed?.bits[ny * w + nx] ?? true { edge = true }
                }
                if edge { pts.append(SIMD2(Double(x), Double(y))) }
            }
        }
        guard pts.count >= 8 else { return nil }
        let c = pts.reduce(SIMD2<Double>.zero, +) / Double(pts.count)
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for p in pts { let d = p - c; sxx += d.x * d.x; sxy += d.x * d.y; syy += d.y * d.y }
        // Principal axis of the 2×2 scatter matrix.
        let angle = 0.5 * atan2(2 * sxy, sxx - syy)
        let u = SIMD2(cos(angle), sin(angle))
        let ss = pts.map { (($0 - c) * u).sum() }
        guard let lo = ss.min(), let hi = ss.max(), hi - lo > 1 else { return nil }
        // Move half a pixel away from the crystal: edge pixels lie just inside the 50 % edge.
        var n = SIMD2(-u.y, u.x)
        var side = 0.0
        for i in 0..<(w * h) where phase.labels[i] != PhaseMap.notCrystal {
            side += ((SIMD2(Double(i % w), Double(i / w)) - c) * n).sum()
        }
        if side < 0 { n = -n }
        let (from, to) = fieldExtent(width: w, height: h, centre: c - 0.5 * n, along: u, from: lo, to: hi)
        let a = c + from * u - 0.5 * n, b = c + to * u - 0.5 * n
        return LineSegment(x0: a.x, y0: a.y, x1: b.x, y1: b.y)
    }

    /// The line's extent over the whole field of view: from the foot of one image corner to
    /// the foot of another (along-line coordinates from `centre`), never shorter than
    /// `from…to`. Rock salt often meets only part of the boundary in the average the line is
    /// fitted on, but the front runs beside the whole straight boundary (the model
    /// `CrystalExtent` already assumes): binning every crystal pixel beside the line gives the
    /// profiles the whole front length the frames show, not just the part beside the fitted
    /// edge pixels.
    static func fieldExtent(width w: Int, height h: Int, centre c: SIMD2<Double>, along u: SIMD2<Double>,
                            from lo: Double, to hi: Double) -> (Double, Double) {
        let corners = [SIMD2(0.0, 0.0), SIMD2(Double(w - 1), 0), SIMD2(0, Double(h - 1)), SIMD2(Double(w - 1), Double(h - 1))]
        let feet = corners.map { (($0 - c) * u).sum() }
        return (min(lo, feet.min()!), max(hi, feet.max()!))
    }
}

/// ½(1 − tanh((t − t₀)/w)) convolved with a Gaussian of σ, by quadrature on 33 nodes over
/// ±4σ (exact enough: the nodes are σ/4 apart, far finer than any w the fit accepts).
///
/// Each node's term is evaluated as the logistic 1/(1 + e^{2(u − t₀)/w}), the same function
/// as ½(1 − tanh((u − t₀)/w)), and e^{2(t − o_j − t₀)/w} = e^{2(t − t₀)/w}·e^{−2o_j/w} with
/// the node factors e^{−2o_j/w} formed once per width (`Scaled`): one exponential per t
/// instead of a tanh per node, which made the front fits' residuals ~10× cheaper.
struct BlurredTanhEdge {
    let offsets: [Double]
    let weights: [Double]

    init(sigma: Double) {
        if sigma > 0 {
            let z = (-16...16).map { Double($0) / 4 }
            let g = z.map { exp(-0.5 * $0 * $0) }
            let s = g.reduce(0, +)
            offsets = z.map { $0 * sigma }
            weights = g.map { $0 / s }
        } else {
            offsets = [0]; weights = [1]
        }
    }

    /// With `edge`, nodes beyond it (t − u < edge) are left out and the rest renormalised:
    /// beyond the boundary there are no fringes, so the lock-in ratio there averages the
    /// crystal side only.
    func value(_ t: Double, centre: Double, w: Double, edge: Double? = nil) -> Double {
        Scaled(self, w: w).value(t, centre: centre, edge: edge)
    }

    /// The edge at every t, one width.
    func values(_ ts: [Double], centre: Double, w: Double, edge: Double?) -> [Double] {
        let scaled = Scaled(self, w: w)
        return ts.map { scaled.value($0, centre: centre, edge: edge) }
    }

    /// The edge at one width: the node factors e^{−2o_j/w}, or none where they would leave
    /// the exponential's range (w below ~σ/37, only ever a trial step's), where each node
    /// takes its own exponential.
    struct Scaled {
        let edge: BlurredTanhEdge
        let scale: Double
        let factors: [Double]?

        init(_ edge: BlurredTanhEdge, w: Double) {
            self.edge = edge
            scale = 2 / w
            let reach = (edge.offsets.map(abs).max() ?? 0) * abs(scale)
            factors = reach.isFinite && reach <= 300 ? edge.offsets.map { exp(-$0 * 2 / w) } : nil
        }

        func value(_ t: Double, centre: Double, edge cut: Double?) -> Double {
            let offsets = edge.offsets, weights = edge.weights
            // |z₀| ≤ 400 and node factors within e^±300 keep every product finite; beyond
            // 400 every node's term is 0 or 1 to double precision anyway.
            let z0 = min(400, max(-400, (t - centre) * scale))
            let e0 = exp(z0)
            var v = 0.0, norm = 0.0
            for j in offsets.indices {
                if let cut, t - offsets[j] < cut { continue }
                let e = factors.map { e0 * $0[j] } ?? exp((t - offsets[j] - centre) * scale)
                v += weights[j] / (1 + e)
                norm += weights[j]
            }
            return norm > 0 ? v / norm : 1 / (1 + e0)
        }
    }
}

/// The last few edge profiles a fit evaluated, by the edge parameters they depend on
/// (centre or x₀, w, v). The profile is the expensive part of a fit's residuals (a
/// quadrature of tanh per bin) and does not depend on the levels: the forward-difference
/// Jacobian's columns for the levels (and trial steps that only move them) reuse it. Keys
/// match exactly (bit patterns), so a reused profile is the one `compute` would give. Safe
/// to share between the Jacobian's concurrent columns.
final class EdgeProfileMemo<Value>: @unchecked Sendable {
    private var entries = [(key: SIMD3<Double>, value: Value)]()
    private let lock = NSLock()
    /// A Jacobian adds one entry per edge parameter after the point it is taken at; six
    /// keep that point through the Jacobian of up to three edge parameters and two trial steps.
    private let capacity = 6

    func value(_ key: SIMD3<Double>, compute: () -> Value) -> Value {
        let bits = SIMD3(key.x.bitPattern, key.y.bitPattern, key.z.bitPattern)
        if let found = lock.withLock({
            entries.last { SIMD3($0.key.x.bitPattern, $0.key.y.bitPattern, $0.key.z.bitPattern) == bits }?.value
        }) {
            return found
        }
        let value = compute()
        lock.withLock {
            entries.append((key, value))
            if entries.count > capacity { entries.removeFirst() }
        }
        return value
    }
}

extension BlurredTanhEdge {
    /// `value(_:centre:w:edge:)` at every t, through `memo`.
    func profile(_ ts: [Double], centre: Double, w: Double, edge: Double?,
                 memo: EdgeProfileMemo<[Double]>) -> [Double] {
        memo.value(SIMD3(centre, w, 0)) { values(ts, centre: centre, w: w, edge: edge) }
    }
}
