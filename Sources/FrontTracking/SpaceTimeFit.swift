import FrameCore
import Foundation

/// The space–time fit behind `MovingFront.fit`: one step's bins from every frame and
/// channel, the edge model they are fitted with, and the fit's stages — the solve for a
/// given mixing model, the choice between free plateaus and full cation mixing, the
/// reweighting by each channel's noise, the delete-one-frame jackknife and each frame's own
/// midpoint. The method and its references are `MovingFront`'s.
struct SpaceTimeFit {
    typealias Level = (a: Double, b: Double, beta: Double)
    typealias Shape = (x0: Double, w: Double, v: Double, levels: [Level])
    typealias Solution = (shape: Shape, parameters: [Double], residuals: ([Double]) -> [Double])

    /// One channel's bins over all frames: frame, time from the reference, distance, value,
    /// pixel count and the square root of the current weight.
    struct Bins { var frame = [Int](), dt = [Double](), t = [Double](), y = [Double](), count = [Double](), root = [Double]() }

    let timesS: [Double]
    let chans: [MovingFront.ChannelSamples]
    /// Frames with a usable profile in some channel, their mean time and the first's offset from it.
    let used: [Int]
    let tRef: Double
    let tFirst: Double
    let fitVelocity: Bool
    let startPositionPx: Double, startWidthPx: Double, layeredLevelPrior: Double
    // Per channel: blur, edge model, start level, kind, fixed β and bins.
    let sigmas: [Double]
    let edges: [BlurredTanhEdge]
    let k0s: [Double]
    let isSites: [Bool]
    let fixedBetas: [Double?]
    /// Per order-parameter channel, each frame's layered level: the prior's centre is their
    /// median, recomputed without the frame a jackknife replicate leaves out.
    let frameLevels: [[Int: Double]]
    var bins: [Bins]
    /// A blurred profile's neighbouring bins share their noise (over ≈ 2√π σ): its bins
    /// count as that many times fewer independent ones when the channels are weighted.
    let correlation: [Double]
    /// The layered-level prior keeps its weight relative to the data when the bins are reweighted.
    var priorScale: [Double]
    let tMaxAll: Double
    /// The largest blur of the channels.
    var sigma: Double { sigmas.max() ?? 0 }

    /// Whether frame `i`'s profile can enter the fit.
    static func usable(_ s: FrontSamples?, _ i: Int, timesS: [Double]) -> Bool {
        guard let s, timesS[i].isFinite, s.distancesPx.count >= 8 else { return false }
        return s.values.count == s.distancesPx.count && s.weights.count == s.distancesPx.count
    }

    func usable(_ s: FrontSamples?, _ i: Int) -> Bool { Self.usable(s, i, timesS: timesS) }

    /// nil without a usable profile, with an order-parameter channel of non-finite β, or
    /// with inconsistent inputs.
    init?(_ channels: [MovingFront.ChannelSamples], timesS: [Double], startPositionPx: Double, startWidthPx: Double,
          layeredLevelPrior: Double) {
        let n = timesS.count
        guard !channels.isEmpty, channels.allSatisfy({ $0.samples.count == n }), startPositionPx.isFinite,
              startWidthPx.isFinite, startWidthPx > 0 else { return nil }
        let chans = channels.filter { c in c.samples.indices.contains { Self.usable(c.samples[$0], $0, timesS: timesS) } }
        guard !chans.isEmpty else { return nil }
        if chans.contains(where: { if case .orderParameter(let b) = $0.channel { return !b.isFinite } else { return false } }) {
            return nil
        }
        let used = (0..<n).filter { i in chans.contains { Self.usable($0.samples[i], i, timesS: timesS) } }
        let tRef = used.map { timesS[$0] }.reduce(0, +) / Double(used.count)
        let timeSpread = used.map { abs(timesS[$0] - tRef) }.max() ?? 0
        self.timesS = timesS
        self.chans = chans
        self.used = used
        self.tRef = tRef
        fitVelocity = used.count >= 3 && timeSpread > 0
        tFirst = (used.map { timesS[$0] }.min() ?? tRef) - tRef
        self.startPositionPx = startPositionPx
        self.startWidthPx = startWidthPx
        self.layeredLevelPrior = layeredLevelPrior
        let prepared = chans.map { Self.prepare($0, timesS: timesS, tRef: tRef) }
        sigmas = prepared.map(\.sigma)
        edges = sigmas.map { BlurredTanhEdge(sigma: $0) }
        k0s = prepared.map(\.k0)
        isSites = chans.map { $0.channel == .siteRatio }
        fixedBetas = chans.map { if case .orderParameter(let b) = $0.channel { return b } else { return nil } }
        frameLevels = prepared.map(\.levels)
        bins = prepared.map(\.bins)
        correlation = chans.indices.map { k -> Double in
            let t = Array(Set(prepared[k].bins.t)).sorted()
            let spacing = t.count > 1 ? (LeastSquares.median(zip(t.dropFirst(), t).map { $0 - $1 }) ?? 1) : 1
            return max(1, 2 * Double.pi.squareRoot() * prepared[k].sigma / max(spacing, 1e-9))
        }
        priorScale = [Double](repeating: 1, count: chans.count)
        tMaxAll = prepared.flatMap(\.bins.t).max() ?? 0
    }

    /// One channel's blur (the frames' mean), start level (the frames' median layered level;
    /// for site ratios the median of the farthest fifth of the bins), per-frame layered
    /// levels and bins, each weighted by its share of its frame's pixels.
    static func prepare(_ c: MovingFront.ChannelSamples, timesS: [Double], tRef: Double)
        -> (sigma: Double, k0: Double, levels: [Int: Double], bins: Bins) {
        let frames = (0..<timesS.count).filter { usable(c.samples[$0], $0, timesS: timesS) }
        let sigma = frames.map { c.samples[$0]!.blurSigmaPx }.reduce(0, +) / Double(frames.count)
        let sites = c.channel == .siteRatio
        var byFrame = [Int: Double]()
        for f in frames { if let l = c.samples[f]!.layeredLevel, l.isFinite, l > 0 { byFrame[f] = l } }
        let levels = frames.compactMap { byFrame[$0] }
        let far = frames.flatMap { f -> [Double] in
            // The farthest fifth of the bins (by distance; bins may come strip by strip).
            let sample = c.samples[f]!
            let cut = LeastSquares.quantile(sample.distancesPx, 0.8) ?? 0
            return sample.distancesPx.indices.filter { sample.distancesPx[$0] >= cut }.map { sample.values[$0] }
        }
        let k0 = sites ? (LeastSquares.median(far) ?? 0.1)
            : (LeastSquares.median(levels) ?? frames.compactMap { c.samples[$0]!.values.max() }.max() ?? 1)
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
        return (sigma, k0, sites ? [:] : byFrame, b)
    }

    static func value(_ p: Double, _ l: Level) -> Double { (l.a + l.b * p) / (1 + l.beta * p) }

    /// Channel k's model at bin i: the shape's edge at the frame's centre (or `centre`).
    func model(_ k: Int, _ i: Int, _ sh: Shape, centre: Double? = nil) -> Double {
        let c = centre ?? (sh.x0 + sh.v * bins[k].dt[i])
        return Self.value(edges[k].value(bins[k].t[i], centre: c, w: sh.w, edge: 0), sh.levels[k])
    }

    /// Every channel's occupancy change P at its bins (`excluding` that frame's), in bin
    /// order: what `model` feeds to the channel's levels.
    func progress(_ sh: Shape, excluding: Int?) -> [[Double]] {
        chans.indices.map { k in
            let edge = BlurredTanhEdge.Scaled(edges[k], w: sh.w)
            return bins[k].t.indices.compactMap { i -> Double? in
                guard bins[k].frame[i] != excluding else { return nil }
                return edge.value(bins[k].t[i], centre: sh.x0 + sh.v * bins[k].dt[i], edge: 0)
            }
        }
    }
}

extension SpaceTimeFit {
    /// Parameter positions of one channel's levels (−1: not a parameter).
    typealias LevelLayout = (a: Int, depth: Int, beta: Int)

    /// The start parameters — x₀, ln w, [v], then per channel A, [B or α], [β] — and where
    /// each channel's levels sit among them.
    func startParameters(fullMixing: Bool) -> (start: [Double], layout: [LevelLayout]) {
        var start = [startPositionPx, log(max(0.5, startWidthPx / FrontLocator.tanhWidthFactor))]
        if fitVelocity { start.append(0) }
        var layout = [LevelLayout]()
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
        return (start, layout)
    }

    /// The shape the parameters describe.
    func shape(_ p: [Double], layout: [LevelLayout]) -> Shape {
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

    /// The fitted shape, the parameters and the weighted residuals as a function of them
    /// (bins in channel order, each channel's level prior after its bins). `from`: start
    /// there instead (the parameters' layout must match); `excluding`: leave that frame's
    /// bins out (the jackknife).
    func solve(fullMixing: Bool, from: [Double]? = nil, excluding: Int? = nil, maxIterations: Int = 200) -> Solution? {
        var (start, layout) = startParameters(fullMixing: fullMixing)
        if let from, from.count == start.count { start = from }
        let (weights, scales) = (bins, priorScale)
        let centres = chans.indices.map { k -> Double in
            guard let excluding, !isSites[k], frameLevels[k][excluding] != nil else { return k0s[k] }
            return LeastSquares.median(frameLevels[k].filter { $0.key != excluding }.map(\.value)) ?? k0s[k]
        }
        let priors = chans.indices.map { k in
            layeredLevelPrior * Double(Set(weights[k].frame).subtracting([excluding ?? -1]).count).squareRoot()
        }
        let problem = self, memo = EdgeProfileMemo<[[Double]]>()
        let residuals = { (p: [Double]) -> [Double] in
            let sh = problem.shape(p, layout: layout)
            let progress = memo.value(SIMD3(sh.x0, sh.w, sh.v)) { problem.progress(sh, excluding: excluding) }
            var r = [Double]()
            for k in problem.chans.indices {
                var j = 0
                for i in weights[k].t.indices where weights[k].frame[i] != excluding {
                    r.append(weights[k].root[i] * (weights[k].y[i] - Self.value(progress[k][j], sh.levels[k])))
                    j += 1
                }
                if !problem.isSites[k] {
                    r.append(scales[k] * priors[k] * (p[layout[k].a] - centres[k]) / max(centres[k], 1e-9))
                }
            }
            return r
        }
        guard let fit = LeastSquares.levenbergMarquardt(start: start, maxIterations: maxIterations,
                                                        concurrent: excluding == nil, residuals: residuals),
              fit.parameters.allSatisfy(\.isFinite) else { return nil }
        return (shape(fit.parameters, layout: layout), fit.parameters, residuals)
    }

    func plausible(_ sh: Shape) -> Bool {
        sh.w > 0.25 && sh.w < tMaxAll && sh.x0 > -sh.w && sh.x0 < tMaxAll + sh.w
            && sh.levels.allSatisfy { $0.beta > -0.95 && $0.beta < 5 && abs(Self.value(1, $0) - Self.value(0, $0)) > 1e-6 }
    }

    /// The free fit where it shows the rock-salt plateau; else full cation mixing. A front
    /// that stays within w + 2σ of the boundary shows no rock-salt plateau: the plateau and
    /// x₀ trade off, so full mixing is imposed for the whole step — also when the free fit
    /// wanders off (a step edge outside the profiles, a negative width).
    func initialSolution() -> (solution: Solution, fullMixing: Bool)? {
        if let free = solve(fullMixing: false), plausible(free.shape), free.shape.x0 + free.shape.v * tFirst >= free.shape.w + 2 * sigma,
           chans.indices.allSatisfy({ isSites[$0] || -free.shape.levels[$0].b / free.shape.levels[$0].a >= 0.1 }) {
            return (free, false)
        }
        guard let full = solve(fullMixing: true), plausible(full.shape) else { return nil }
        return (full, true)
    }
}

extension SpaceTimeFit {
    /// Each channel's variance as a quadratic in the fitted level, from the residuals of `shape`.
    func varianceModels(_ shape: Shape) -> [((Double) -> Double)?] {
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
        return models
    }

    /// Iteratively reweighted least squares, two rounds: every bin weighted by its pixel
    /// count over its channel's variance at the fitted level (and the blur's correlation),
    /// then refitted. Returns the variance models of the last accepted round (nil entries
    /// without one); a round whose refit fails is undone.
    mutating func reweight(_ solution: inout Solution, fullMixing: Bool) -> [((Double) -> Double)?] {
        var variances = [((Double) -> Double)?](repeating: nil, count: chans.count)
        for _ in 0..<2 {
            let models = varianceModels(solution.shape)
            guard models.allSatisfy({ $0 != nil }) else { break }
            let saved = bins, savedScale = priorScale
            for k in chans.indices {
                let before = bins[k].root.map { $0 * $0 }.reduce(0, +)
                for i in bins[k].t.indices {
                    bins[k].root[i] = (bins[k].count[i] / (correlation[k] * models[k]!(model(k, i, solution.shape)))).squareRoot()
                }
                let after = bins[k].root.map { $0 * $0 }.reduce(0, +)
                if before > 0, after > 0 { priorScale[k] *= (after / before).squareRoot() }
            }
            guard let refit = solve(fullMixing: fullMixing), plausible(refit.shape) else { bins = saved; priorScale = savedScale; break }
            solution = refit
            variances = models
        }
        return variances
    }

    /// The fit solved from its start (`initialSolution`), reweighted (`reweight`), with its
    /// jackknife replicates (`jackknife`); nil where it has no start.
    mutating func solved() -> (solution: Solution, fullMixing: Bool, variances: [((Double) -> Double)?],
                               replicates: [Int: (v: Double, w: Double)])? {
        guard let start = initialSolution() else { return nil }
        var solution = start.solution
        let variances = reweight(&solution, fullMixing: start.fullMixing)
        return (solution, start.fullMixing, variances, jackknife(solution, fullMixing: start.fullMixing))
    }

    /// The delete-one-frame jackknife of the whole fit (Quenouille 1956; Tukey 1958; Efron &
    /// Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 11): each frame left out in
    /// turn, shape, levels, x₀ and v refitted from the full solution with the final weights.
    /// The replicates carry what each frame's noise does to the shared shape and thereby to
    /// v — the positions of frames fitted with one shape err together as the front moves
    /// through a hold, which the scatter of per-frame positions about their line does not
    /// show — and assume nothing about the bins' noise or their correlation.
    /// Returns each left-out frame's refitted v and w; frames whose refit failed are absent.
    func jackknife(_ solution: Solution, fullMixing: Bool) -> [Int: (v: Double, w: Double)] {
        let solutionParameters = solution.parameters
        let usedFrames = Array(Set(bins.flatMap(\.frame))).sorted()
        guard usedFrames.count >= 3 else { return [:] }
        let refits = MovingFront.jackknife(usedFrames.count) { j in
            solve(fullMixing: fullMixing, from: solutionParameters, excluding: usedFrames[j], maxIterations: 40)
                .flatMap { plausible($0.shape) ? [$0.shape.v, $0.shape.w] : nil }
        }
        var replicates = [Int: (v: Double, w: Double)]()
        for (frame, refit) in zip(usedFrames, refits) { if let refit { replicates[frame] = (refit[0], refit[1]) } }
        return replicates
    }

    /// The jackknife standard error of delete-one replicates by left-out frame (summed in
    /// frame order): SE² = (G − 1)/G Σ (θ₍₋ᵢ₎ − θ̄)²; nil with fewer than 3.
    static func jackknifeStandardError(_ byFrame: [Int: Double]) -> Double? {
        guard byFrame.count >= 3 else { return nil }
        let replicates = byFrame.keys.sorted().map { byFrame[$0]! }
        let g = Double(replicates.count), mean = replicates.reduce(0, +) / g
        let se = ((g - 1) / g * replicates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)).squareRoot()
        return se.isFinite && se > 0 ? se : nil
    }

    /// Each frame's own midpoint, the shape held fixed, from the frame and its `neighbours`
    /// on each side in time, every one placed at the frame's midpoint moved by v·Δt — so a
    /// window, even one cut short at the step's ends, stays centred on the frame.
    func framePositions(_ shape: Shape, variances: [((Double) -> Double)?], neighbours: Int) -> [FrameFront?] {
        let byTime = used.sorted { timesS[$0] < timesS[$1] }
        let rank = Dictionary(uniqueKeysWithValues: byTime.enumerated().map { ($1, $0) })
        var frames = [FrameFront?](repeating: nil, count: timesS.count)
        for f in used {
            guard let r = rank[f] else { continue }
            let window = Set(byTime[max(0, r - neighbours)...min(byTime.count - 1, r + neighbours)])
            frames[f] = framePosition(f, window: window, shape: shape, variances: variances)
        }
        return frames
    }

    /// Frame f's midpoint fitted to the bins of the frames in `window`, and its profile as progress.
    func framePosition(_ f: Int, window: Set<Int>, shape: Shape, variances: [((Double) -> Double)?]) -> FrameFront? {
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
              }), let c = fit.parameters.first, c.isFinite, c > -max(sigma, shape.w), c < tMax + sigma else { return nil }
        // Progress per bin, inverting (A + BP)/(1 + βP).
        let l = shape.levels[own]
        let values = s.values.map { v -> Double in
            let den = l.b - v * l.beta
            return den != 0 ? (v - l.a) / den : .nan
        }
        return FrameFront(positionPx: c, rocksaltFraction: s.crystal.fraction(behind: c),
                          profile: FrontProfile(distancesPx: s.distancesPx, values: values, weights: s.weights,
                                                positionPx: c, blurSigmaPx: s.blurSigmaPx))
    }
}

