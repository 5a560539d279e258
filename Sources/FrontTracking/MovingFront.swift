import FrameCore
import Foundation

/// Where the crystal lies along the propagation direction: a histogram (¼ px bins) of every
/// crystal pixel's distance from the boundary line, the line extended across the image — so
/// the rock-salt fraction behind any front position can be read off without the map.
public struct CrystalExtent: Sendable, Equatable {
    public var originPx: Double
    public var binPx: Double
    public var counts: [Int]

    public init(originPx: Double, binPx: Double, counts: [Int]) {
        self.originPx = originPx
        self.binPx = binPx
        self.counts = counts
    }

    public init(distancesPx: [Double], binPx: Double = 0.25) {
        self.binPx = binPx
        let finite = distancesPx.filter(\.isFinite)
        let lo = finite.min() ?? 0, hi = finite.max() ?? 0
        originPx = lo
        var c = [Int](repeating: 0, count: finite.isEmpty ? 0 : Int((hi - lo) / binPx) + 1)
        for d in finite { c[min(c.count - 1, Int((d - lo) / binPx))] += 1 }
        counts = c
    }

    /// Fraction of the crystal lying closer to the boundary than `positionPx` (0 without crystal).
    public func fraction(behind positionPx: Double) -> Double {
        let total = counts.reduce(0, +)
        guard total > 0, positionPx.isFinite else { return 0 }
        let x = (positionPx - originPx) / binPx
        let full = max(0, min(counts.count, Int(x.rounded(.down))))
        var n = Double(counts[..<full].reduce(0, +))
        if full < counts.count, x > 0 { n += Double(counts[full]) * (x - Double(full)) }
        return n / Double(total)
    }
}

/// One image's order-parameter profile across the front, binned (1 px) by distance from the
/// boundary, as `FrontLocator.locate` measured it — whether or not that image alone showed a front.
public struct FrontSamples: Sendable {
    /// Bin centres: distance from the boundary along the propagation direction (px).
    public var distancesPx: [Double]
    /// The measured quantity per bin: the mean order parameter q = A(g)/A(2g)
    /// (`FrontLocator`), or Li-site over TM-site intensity (`SiteOccupancyProfile`).
    public var values: [Double]
    /// Pixels per bin.
    public var weights: [Double]
    /// σ (px) of the lock-in window that blurred the profile.
    public var blurSigmaPx: Double
    /// The crystal along the propagation direction, for the rock-salt fraction.
    public var crystal: CrystalExtent
    /// The segmentation's layered level of q (order-parameter profiles only).
    public var layeredLevel: Double?

    public init(distancesPx: [Double], values: [Double], weights: [Double],
                blurSigmaPx: Double, crystal: CrystalExtent, layeredLevel: Double? = nil) {
        self.distancesPx = distancesPx
        self.values = values
        self.weights = weights
        self.blurSigmaPx = blurSigmaPx
        self.crystal = crystal
        self.layeredLevel = layeredLevel
    }
}

/// One frame's front from a `MovingFront` fit.
public struct FrameFront: Sendable {
    /// The frame's own front midpoint (px from the boundary), the shared profile shape held fixed.
    public var positionPx: Double
    /// Crystal between the boundary and that midpoint over all crystal.
    public var rocksaltFraction: Double
    /// The frame's profile as progress P, for `FrontLocator.width(profiles:)`.
    public var profile: FrontProfile
}

/// A step's front fitted as one edge moving at constant velocity.
public struct MovingFrontFit: Sendable {
    /// Time (s) at which `positionPx` applies: the mean time of the frames used.
    public var referenceTimeS: Double
    /// Midpoint at `referenceTimeS` (px from the boundary).
    public var positionPx: Double
    /// Velocity of the midpoint (px/s); 0 and not fitted with fewer than 3 frames.
    public var velocityPxPerS: Double
    /// Its delete-one-frame jackknife standard error (px/s); nil when not fitted.
    public var velocitySEMPxPerS: Double?
    /// 10–90 % width of the occupancy profile (px), the window's blur removed.
    public var widthPx: Double
    /// Its delete-one-frame jackknife standard error (px).
    public var widthSEMPx: Double?
    /// Frames the jackknife refitted without: the standard errors have `frameCount − 1`
    /// degrees of freedom.
    public var frameCount: Int
    /// Whether full cation mixing behind the front was imposed (the front stayed near the boundary).
    public var fullMixing: Bool
    /// K, α, β of q = K(1 − αP)/(1 + βP).
    public var layeredLevel: Double
    public var depth: Double
    public var halfSpacingContrast: Double
    /// Per input frame: its own position with the shape held fixed; nil where the frame had
    /// no profile or its fit failed.
    public var frames: [FrameFront?]
}

/// The front of a temperature step as one moving edge, fitted to every frame's profile at
/// once (a space–time fit), instead of fitting each frame (or a window of frames) alone and
/// regressing the positions afterwards.
///
/// Model: frame f at time t_f sees the occupancy change
/// P_f(x) = G_σ * ½(1 − tanh((x − x₀ − v(t_f − t̄))/w)) (σ the profile's blur, 0 for site
/// intensities; the lock-in window truncated at the boundary as in `FrontLocator`), and
/// measures (A + B·P)/(1 + β·P) of it (`Channel`). x₀, v, w and the levels are shared by all
/// frames of the step and fitted by Levenberg–Marquardt (Marquardt, J. SIAM 11, 431, 1963)
/// over all frames' bins, weighted by the inverse of each bin's variance as its channel's
/// residuals show it (see `fit(_:timesS:startPositionPx:startWidthPx:layeredLevelPrior:neighbours:)`);
/// for the order parameter K is held near the frames' layered level as in `FrontLocator`. Then every frame's own midpoint is
/// refitted with the shape held fixed (one parameter each): those positions go to
/// `frames.csv`. The step's velocity is v, the width W = 2·atanh(0.8)·w, both with their
/// delete-one-frame jackknife standard errors (see the code).
///
/// Why: low-dose frames fitted one at a time each trade their plateaus, β and w against
/// their position, and which trade they make depends on how far out the front is (near the
/// boundary no rock-salt plateau is in view) and on how many frames were averaged (windows
/// shrunk at a step's ends); either sets the slope over a step in which the front moves
/// about one width. With one shape per step every frame is measured the same way, so a
/// remaining bias is common to the step's frames and leaves the velocity alone.
///
/// A front that stays within w + 2σ of the boundary for the whole step shows no rock-salt
/// plateau, and plateau and position trade off: full cation mixing is then imposed (q → 0,
/// Li and TM sites alike), and for site intensities also conservation of the TM in each
/// column pair (the TM site loses what the Li site gains: β = −(1 − A)/2), the physics of
/// TM migrating into Li sites.
///
/// (Tried: removing the lock-in noise power measured at a fringe-free frequency, g/2 or
/// g rotated by 90°, and fitting q² — the amplitude's Rician bias in rock salt is real,
/// about 7 % of the layered level in one registration-stress frame, but removing it made the
/// velocities noisier, not better.)
public enum MovingFront {
    /// What a profile measures, modelled as (A + B·P)/(1 + β·P) of the occupancy change P.
    public enum Channel: Sendable, Equatable {
        /// Lock-in order parameter q = K(1 − αP)/(1 + βP) (`FrontLocator`): A = K, B = −αK,
        /// β the half-spacing contrast, given. Full mixing: α = 1.
        case orderParameter(halfSpacingContrast: Double)
        /// Li-site over TM-site intensity, summed per bin (`SiteOccupancyProfile`): A the
        /// layered ratio, β the relative change of the TM-site intensity, both free. Full
        /// mixing: Li and TM sites alike, ratio 1 at P = 1.
        case siteRatio
    }

    /// One channel's profiles of a step's frames (nil where a frame has none), all in the
    /// same length unit and frame order.
    public struct ChannelSamples: Sendable {
        public var samples: [FrontSamples?]
        public var channel: Channel
        public init(_ samples: [FrontSamples?], channel: Channel) {
            self.samples = samples
            self.channel = channel
        }
    }

    /// One channel: see `fit(_:timesS:startPositionPx:startWidthPx:layeredLevelPrior:neighbours:)`.
    public static func fit(_ samples: [FrontSamples?], timesS: [Double], channel: Channel,
                           startPositionPx: Double, startWidthPx: Double, layeredLevelPrior: Double = 3,
                           neighbours: Int = 0) -> MovingFrontFit? {
        fit([ChannelSamples(samples, channel: channel)], timesS: timesS, startPositionPx: startPositionPx,
            startWidthPx: startWidthPx, layeredLevelPrior: layeredLevelPrior, neighbours: neighbours)
    }

    /// The step's edge from one or more channels at once: x₀, v and w shared, levels per
    /// channel, every channel's bins weighted by the inverse of the variance its residuals
    /// show as a function of the fitted level (iteratively reweighted least squares, Carroll
    /// & Ruppert, *Transformation and Weighting in Regression*, 1988, ch. 3) — so the
    /// channels weigh each other by their noise, and within a channel the noisy bins (bright
    /// Li sites in rock salt) do not swamp the rest (unweighted, a front leaving the
    /// boundary came out 10 % slow on synthetic site intensities). `neighbours`: each
    /// frame's own position is fitted with that many frames on each side, moved by v·Δt.
    /// Per-frame profiles and fractions are the first channel's that has the frame.
    public static func fit(_ channels: [ChannelSamples], timesS: [Double], startPositionPx: Double, startWidthPx: Double,
                           layeredLevelPrior: Double = 3, neighbours: Int = 0) -> MovingFrontFit? {
        let n = timesS.count
        guard !channels.isEmpty, channels.allSatisfy({ $0.samples.count == n }), startPositionPx.isFinite,
              startWidthPx.isFinite, startWidthPx > 0 else { return nil }
        func usable(_ s: FrontSamples?, _ i: Int) -> Bool {
            guard let s, timesS[i].isFinite, s.distancesPx.count >= 8 else { return false }
            return s.values.count == s.distancesPx.count && s.weights.count == s.distancesPx.count
        }
        let chans = channels.filter { c in c.samples.indices.contains { usable(c.samples[$0], $0) } }
        guard !chans.isEmpty else { return nil }
        if chans.contains(where: { if case .orderParameter(let b) = $0.channel { return !b.isFinite } else { return false } }) {
            return nil
        }
        let used = (0..<n).filter { i in chans.contains { usable($0.samples[i], i) } }
        let tRef = used.map { timesS[$0] }.reduce(0, +) / Double(used.count)
        let timeSpread = used.map { abs(timesS[$0] - tRef) }.max() ?? 0
        let fitVelocity = used.count >= 3 && timeSpread > 0
        let tFirst = (used.map { timesS[$0] }.min() ?? tRef) - tRef

        // Per channel: its blur, start level, prior and bins.
        struct Bins { var frame = [Int](), dt = [Double](), t = [Double](), y = [Double](), count = [Double](), root = [Double]() }
        var edges = [BlurredTanhEdge](), sigmas = [Double](), k0s = [Double](), isSites = [Bool](), fixedBetas = [Double?]()
        var bins = [Bins]()
        // Per order-parameter channel, each frame's layered level: the prior's centre is their
        // median, recomputed without the frame a jackknife replicate leaves out.
        var frameLevels = [[Int: Double]]()
        for c in chans {
            let frames = (0..<n).filter { usable(c.samples[$0], $0) }
            let sigma = frames.map { c.samples[$0]!.blurSigmaPx }.reduce(0, +) / Double(frames.count)
            sigmas.append(sigma); edges.append(BlurredTanhEdge(sigma: sigma))
            let sites = c.channel == .siteRatio
            isSites.append(sites)
            if case .orderParameter(let b) = c.channel { fixedBetas.append(b) } else { fixedBetas.append(nil) }
            var byFrame = [Int: Double]()
            for f in frames { if let l = c.samples[f]!.layeredLevel, l.isFinite, l > 0 { byFrame[f] = l } }
            frameLevels.append(sites ? [:] : byFrame)
            let levels = frames.compactMap { byFrame[$0] }
            let far = frames.flatMap { f -> [Double] in
                // The farthest fifth of the bins (by distance; bins may come strip by strip).
                let sample = c.samples[f]!
                let cut = LeastSquares.quantile(sample.distancesPx, 0.8) ?? 0
                return sample.distancesPx.indices.filter { sample.distancesPx[$0] >= cut }.map { sample.values[$0] }
            }
            k0s.append(sites ? (LeastSquares.median(far) ?? 0.1)
                : (LeastSquares.median(levels) ?? frames.compactMap { c.samples[$0]!.values.max() }.max() ?? 1))
            var b = Bins()
            for f in frames {
                let s = c.samples[f]!
                let total = s.weights.reduce(0, +)
                guard total > 0 else { continue }
                for i in s.distancesPx.indices where s.values[i].isFinite {
                    b.frame.append(f); b.dt.append(timesS[f] - tRef); b.t.append(s.distancesPx[i]); b.y.append(s.values[i])
                    b.count.append(s.weights[i]); b.root.append((s.weights[i] / total).squareRoot())
                }
            }
            bins.append(b)
        }
        let sigma = sigmas.max() ?? 0
        // A blurred profile's neighbouring bins share their noise (over ≈ 2√π σ): its bins
        // count as that many times fewer independent ones when the channels are weighted.
        let correlation = chans.indices.map { k -> Double in
            let t = Array(Set(bins[k].t)).sorted()
            let spacing = t.count > 1 ? (LeastSquares.median(zip(t.dropFirst(), t).map { $0 - $1 }) ?? 1) : 1
            return max(1, 2 * Double.pi.squareRoot() * sigmas[k] / max(spacing, 1e-9))
        }
        // The layered-level prior keeps its weight relative to the data when the bins are reweighted.
        var priorScale = [Double](repeating: 1, count: chans.count)
        let tMaxAll = bins.flatMap(\.t).max() ?? 0

        typealias Level = (a: Double, b: Double, beta: Double)
        typealias Shape = (x0: Double, w: Double, v: Double, levels: [Level])
        func value(_ p: Double, _ l: Level) -> Double { (l.a + l.b * p) / (1 + l.beta * p) }
        func model(_ k: Int, _ i: Int, _ sh: Shape, centre: Double? = nil) -> Double {
            let c = centre ?? (sh.x0 + sh.v * bins[k].dt[i])
            return value(edges[k].value(bins[k].t[i], centre: c, w: sh.w, edge: 0), sh.levels[k])
        }

        // Parameters: x₀, ln w, [v], then per channel A, [B or α], [β]. `solve` returns the
        // fitted shape, the parameters and the weighted residuals as a function of them
        // (bins in channel order, each channel's level prior after its bins).
        // `from`: start there instead (the parameters' layout must match); `excluding`: leave
        // that frame's bins out (the jackknife below).
        func solve(fullMixing: Bool, from: [Double]? = nil, excluding: Int? = nil,
                   maxIterations: Int = 200) -> (shape: Shape, parameters: [Double], residuals: ([Double]) -> [Double])? {
            var start = [startPositionPx, log(max(0.5, startWidthPx / FrontLocator.tanhWidthFactor))]
            if fitVelocity { start.append(0) }
            var layout = [(a: Int, depth: Int, beta: Int)]()
            // With an order-parameter channel to pin the plateau (q → 0 in full mixing), the
            // site channel keeps its levels free: its measured ratio in rock salt need not be
            // exactly 1 (background and deblending errors of the column intensities).
            let pinned = chans.indices.contains { !isSites[$0] }
            for k in chans.indices {
                let a = start.count; start.append(k0s[k])
                var depth = -1, beta = -1
                let free = !fullMixing || (isSites[k] && pinned)
                if free { depth = start.count; start.append(isSites[k] ? 0.5 : 0.9) }
                if isSites[k] && free { beta = start.count; start.append(-0.3) }
                layout.append((a, depth, beta))
            }
            func shape(_ p: [Double]) -> Shape {
                let levels = chans.indices.map { k -> Level in
                    let l = layout[k], a = p[l.a]
                    if isSites[k] {
                        // Full mixing and conservation of TM per column pair: β = −(1 − A)/2.
                        let beta = l.beta >= 0 ? p[l.beta] : -(1 - a) / 2
                        return (a, l.depth >= 0 ? p[l.depth] : 1 + beta - a, beta)
                    }
                    return (a, -(l.depth >= 0 ? p[l.depth] : 1) * a, fixedBetas[k]!)
                }
                return (p[0], exp(p[1]), fitVelocity ? p[2] : 0, levels)
            }
            if let from, from.count == start.count { start = from }
            let (weights, scales) = (bins, priorScale)
            let centres = chans.indices.map { k -> Double in
                guard let excluding, !isSites[k], frameLevels[k][excluding] != nil else { return k0s[k] }
                return LeastSquares.median(frameLevels[k].filter { $0.key != excluding }.map(\.value)) ?? k0s[k]
            }
            let residuals = { (p: [Double]) -> [Double] in
                let sh = shape(p)
                var r = [Double]()
                for k in chans.indices {
                    for i in weights[k].t.indices where weights[k].frame[i] != excluding {
                        r.append(weights[k].root[i] * (weights[k].y[i] - model(k, i, sh)))
                    }
                    if !isSites[k] {
                        let prior = layeredLevelPrior * Double(Set(weights[k].frame).subtracting([excluding ?? -1]).count).squareRoot()
                        r.append(scales[k] * prior * (p[layout[k].a] - centres[k]) / max(centres[k], 1e-9))
                    }
                }
                return r
            }
            guard let fit = LeastSquares.levenbergMarquardt(start: start, maxIterations: maxIterations,
                                                            concurrent: excluding == nil, residuals: residuals),
                  fit.parameters.allSatisfy(\.isFinite) else { return nil }
            return (shape(fit.parameters), fit.parameters, residuals)
        }
        func plausible(_ sh: Shape) -> Bool {
            sh.w > 0.25 && sh.w < tMaxAll && sh.x0 > -sh.w && sh.x0 < tMaxAll + sh.w
                && sh.levels.allSatisfy { $0.beta > -0.95 && $0.beta < 5 && abs(value(1, $0) - value(0, $0)) > 1e-6 }
        }
        // A front that stays within w + 2σ of the boundary shows no rock-salt plateau: the
        // plateau and x₀ trade off, so full mixing is imposed for the whole step — also when
        // the free fit wanders off (a step edge outside the profiles, a negative width).
        var solution: (shape: Shape, parameters: [Double], residuals: ([Double]) -> [Double]), fullMixing = false
        if let free = solve(fullMixing: false), plausible(free.shape), free.shape.x0 + free.shape.v * tFirst >= free.shape.w + 2 * sigma,
           chans.indices.allSatisfy({ isSites[$0] || -free.shape.levels[$0].b / free.shape.levels[$0].a >= 0.1 }) {
            solution = free
        } else {
            guard let full = solve(fullMixing: true), plausible(full.shape) else { return nil }
            solution = full
            fullMixing = true
        }
        var shape = solution.shape
        // Reweighting: each channel's variance as a quadratic in the fitted level.
        var variances = [((Double) -> Double)?](repeating: nil, count: chans.count)
        for _ in 0..<2 {
            var models = [((Double) -> Double)?]()
            for k in chans.indices {
                var design = [Double](), target = [Double]()
                for i in bins[k].t.indices {
                    let m = model(k, i, shape), r = bins[k].y[i] - m
                    design += [1, m, m * m]; target.append(bins[k].count[i] * r * r)
                }
                guard let c = LeastSquares.linear(design: design, p: 3, y: target), c.allSatisfy(\.isFinite) else {
                    models.append(nil); continue
                }
                let floor = max(1e-12, 0.05 * target.reduce(0, +) / Double(max(1, target.count)))
                models.append({ m in max(floor, c[0] + c[1] * m + c[2] * m * m) })
            }
            guard models.allSatisfy({ $0 != nil }) else { break }
            let saved = bins, savedScale = priorScale
            for k in chans.indices {
                let before = bins[k].root.map { $0 * $0 }.reduce(0, +)
                for i in bins[k].t.indices {
                    bins[k].root[i] = (bins[k].count[i] / (correlation[k] * models[k]!(model(k, i, shape)))).squareRoot()
                }
                let after = bins[k].root.map { $0 * $0 }.reduce(0, +)
                if before > 0, after > 0 { priorScale[k] *= (after / before).squareRoot() }
            }
            guard let refit = solve(fullMixing: fullMixing), plausible(refit.shape) else { bins = saved; priorScale = savedScale; break }
            solution = refit
            shape = refit.shape
            variances = models
        }

        // Standard errors of v and w: the delete-one-frame jackknife of the whole fit
        // (Quenouille 1956; Tukey 1958; Efron & Tibshirani, *An Introduction to the Bootstrap*,
        // 1993, ch. 11): each frame left out in turn, shape, levels, x₀ and v refitted from the
        // full solution with the final weights, SE² = (G − 1)/G Σ (θ₍₋ᵢ₎ − θ̄)², G − 1 degrees
        // of freedom. It carries what each frame's noise does to the shared shape and thereby
        // to v — the positions of frames fitted with one shape err together as the front moves
        // through a hold, which the scatter of per-frame positions about their line does not
        // show — and assumes nothing about the bins' noise or their correlation.
        let solutionParameters = solution.parameters
        let usedFrames = Array(Set(bins.flatMap(\.frame))).sorted()
        let deleted = usedFrames.count >= 3 ? jackknife(usedFrames.count) { j in
            solve(fullMixing: fullMixing, from: solutionParameters, excluding: usedFrames[j], maxIterations: 40)
                .flatMap { plausible($0.shape) ? [$0.shape.v, $0.shape.w] : nil }
        } : []
        func standardError(_ j: Int) -> Double? {
            guard deleted.count >= 3 else { return nil }
            let values = deleted.map { $0[j] }, g = Double(values.count)
            let mean = values.reduce(0, +) / g
            let se = ((g - 1) / g * values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)).squareRoot()
            return se.isFinite && se > 0 ? se : nil
        }
        let clusterCount = deleted.count

        // Each frame's own midpoint, the shape held fixed, from the frame and its `neighbours`
        // on each side in time, every one placed at the frame's midpoint moved by v·Δt — so a
        // window, even one cut short at the step's ends, stays centred on the frame.
        let byTime = used.sorted { timesS[$0] < timesS[$1] }
        let rank = Dictionary(uniqueKeysWithValues: byTime.enumerated().map { ($1, $0) })
        var frames = [FrameFront?](repeating: nil, count: n)
        for f in used {
            guard let r = rank[f] else { continue }
            let window = Set(byTime[max(0, r - neighbours)...min(byTime.count - 1, r + neighbours)])
            let guess = shape.x0 + shape.v * (timesS[f] - tRef)
            var terms = [(k: Int, i: Int, shift: Double, root: Double)]()
            for k in chans.indices {
                for i in bins[k].t.indices where window.contains(bins[k].frame[i]) {
                    let shift = shape.v * (timesS[bins[k].frame[i]] - timesS[f])
                    let root = variances[k].map {
                        (bins[k].count[i] / (correlation[k] * $0(model(k, i, shape, centre: guess + shift)))).squareRoot()
                    }
                        ?? bins[k].root[i]
                    terms.append((k, i, shift, root))
                }
            }
            guard let own = chans.firstIndex(where: { usable($0.samples[f], f) }), let s = chans[own].samples[f],
                  let tMax = s.distancesPx.max(), !terms.isEmpty,
                  let fit = LeastSquares.levenbergMarquardt(start: [guess], residuals: { p in
                      terms.map { $0.root * (bins[$0.k].y[$0.i] - model($0.k, $0.i, shape, centre: p[0] + $0.shift)) }
                  }), let c = fit.parameters.first, c.isFinite, c > -max(sigma, shape.w), c < tMax + sigma else { continue }
            // Progress per bin, inverting (A + BP)/(1 + βP).
            let l = shape.levels[own]
            let values = s.values.map { v -> Double in
                let den = l.b - v * l.beta
                return den != 0 ? (v - l.a) / den : .nan
            }
            frames[f] = FrameFront(positionPx: c, rocksaltFraction: s.crystal.fraction(behind: c),
                                   profile: FrontProfile(distancesPx: s.distancesPx, values: values, weights: s.weights,
                                                         positionPx: c, blurSigmaPx: s.blurSigmaPx))
        }
        let first = shape.levels[0]
        return MovingFrontFit(referenceTimeS: tRef, positionPx: shape.x0, velocityPxPerS: shape.v,
                              velocitySEMPxPerS: fitVelocity ? standardError(0) : nil,
                              widthPx: FrontLocator.tanhWidthFactor * shape.w,
                              widthSEMPx: standardError(1).map { FrontLocator.tanhWidthFactor * $0 },
                              frameCount: clusterCount, fullMixing: fullMixing, layeredLevel: first.a,
                              depth: isSites[0] ? 1 - value(1, first) : -first.b / first.a,
                              halfSpacingContrast: first.beta, frames: frames)
    }

    /// The `count` delete-one refits, run concurrently (each refit only reads the fit's
    /// state), in order; failed refits dropped.
    static func jackknife(_ count: Int, refit: (Int) -> [Double]?) -> [[Double]] {
        withoutActuallyEscaping(refit) { refit in
            let shared = UncheckedSendable(refit)
            let refits = try? ResultSlots<[Double]?>.map(count) { shared.value($0) }
            return (refits ?? []).compactMap { $0 }
        }
    }
}
