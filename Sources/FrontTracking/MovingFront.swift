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
    /// 10–90 % width of the occupancy profile (px), the window's blur removed.
    public var widthPx: Double
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
/// over all frames' bins, each frame weighted equally; for the order parameter K is held
/// near the frames' layered level as in `FrontLocator`. Then every frame's own midpoint is
/// refitted with the shape held fixed (one parameter each): those positions go to
/// `frames.csv`, and the step's velocity is their least-squares slope (run contract §4),
/// which equals v up to the frames' noise.
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

    public static func fit(_ samples: [FrontSamples?], timesS: [Double], channel: Channel,
                           startPositionPx: Double, startWidthPx: Double, layeredLevelPrior: Double = 3,
                           neighbours: Int = 0) -> MovingFrontFit? {
        guard samples.count == timesS.count else { return nil }
        let used = samples.indices.filter { i in
            guard let s = samples[i], timesS[i].isFinite, s.distancesPx.count >= 8 else { return false }
            return s.values.count == s.distancesPx.count && s.weights.count == s.distancesPx.count
        }
        guard !used.isEmpty, startPositionPx.isFinite, startWidthPx.isFinite, startWidthPx > 0 else { return nil }
        let tRef = used.map { timesS[$0] }.reduce(0, +) / Double(used.count)
        let timeSpread = used.map { abs(timesS[$0] - tRef) }.max() ?? 0
        let fitVelocity = used.count >= 3 && timeSpread > 0
        let sigma = used.map { samples[$0]!.blurSigmaPx }.reduce(0, +) / Double(used.count)
        let edge = BlurredTanhEdge(sigma: sigma)
        let isSites = channel == .siteRatio
        let fixedBeta: Double? = { if case .orderParameter(let b) = channel { return b } else { return nil } }()
        if let fixedBeta, !fixedBeta.isFinite { return nil }
        let levels = used.compactMap { samples[$0]!.layeredLevel }.filter { $0.isFinite && $0 > 0 }
        // Layered level: the segmentation's (q), or the far end of the profiles (sites).
        let farValues = used.flatMap { f -> [Double] in
            let s = samples[f]!
            return Array(s.values.suffix(max(1, s.values.count / 5)))
        }
        let k0 = isSites ? (LeastSquares.median(farValues) ?? 0.1)
            : (LeastSquares.median(levels) ?? used.compactMap { samples[$0]!.values.max() }.max() ?? 1)
        let qScale = isSites ? 1 : max(k0, 1e-9)

        // Flattened bins: frame-relative time, distance, data, √weight (each frame's weights sum to 1).
        var dt = [Double](), ts = [Double](), ys = [Double](), sw = [Double](), counts = [Double]()
        for f in used {
            let s = samples[f]!
            let total = s.weights.reduce(0, +)
            guard total > 0 else { continue }
            for i in s.distancesPx.indices where s.values[i].isFinite {
                dt.append(timesS[f] - tRef); ts.append(s.distancesPx[i])
                ys.append(s.values[i])
                sw.append((s.weights[i] / total).squareRoot())
                counts.append(s.weights[i])
            }
        }
        guard !ts.isEmpty else { return nil }
        let priorWeight = isSites ? 0 : layeredLevelPrior * Double(used.count).squareRoot()
        typealias Shape = (a: Double, b: Double, beta: Double, x0: Double, w: Double, v: Double)
        func value(_ p: Double, _ sh: Shape) -> Double { (sh.a + sh.b * p) / (1 + sh.beta * p) }

        // Parameters: A, x₀, ln w, [v], [B or α], [β].
        func solve(fullMixing: Bool) -> (shape: Shape, cost: Double)? {
            var start = [k0, startPositionPx, log(max(0.5, startWidthPx / FrontLocator.tanhWidthFactor))]
            if fitVelocity { start.append(0) }
            let depthIndex = fullMixing ? -1 : start.count
            if !fullMixing { start.append(isSites ? 0.5 : 0.9) }
            let conserve = isSites && fullMixing
            let betaIndex = isSites && !conserve ? start.count : -1
            if betaIndex >= 0 { start.append(-0.3) }
            let vIndex = fitVelocity ? 3 : -1
            func shape(_ p: [Double]) -> Shape {
                let beta = betaIndex >= 0 ? p[betaIndex] : conserve ? -(1 - p[0]) / 2 : fixedBeta!
                let b: Double
                if isSites { b = depthIndex >= 0 ? p[depthIndex] : 1 + beta - p[0] }
                else { b = -(depthIndex >= 0 ? p[depthIndex] : 1) * p[0] }
                return (p[0], b, beta, p[1], exp(p[2]), vIndex >= 0 ? p[vIndex] : 0)
            }
            guard let fit = LeastSquares.levenbergMarquardt(start: start, residuals: { p in
                let sh = shape(p)
                var r = [Double](repeating: 0, count: ts.count + 1)
                for i in ts.indices {
                    let pr = edge.value(ts[i], centre: sh.x0 + sh.v * dt[i], w: sh.w, edge: 0)
                    r[i] = sw[i] * (ys[i] - value(pr, sh))
                }
                r[ts.count] = priorWeight * (p[0] - k0) / qScale
                return r
            }), fit.parameters.allSatisfy(\.isFinite) else { return nil }
            return (shape(fit.parameters), fit.cost)
        }
        // A front that stays within w + 2σ of the boundary shows no rock-salt plateau: the
        // plateau and x₀ trade off, so full mixing is imposed for the whole step — also when
        // the free fit wanders off (a step edge outside the profiles, a negative width).
        let tMaxAll = ts.max() ?? 0
        let tFirst = (used.map { timesS[$0] }.min() ?? tRef) - tRef
        func plausible(_ sh: Shape) -> Bool {
            sh.w > 0.25 && sh.w < tMaxAll && sh.x0 > -sh.w && sh.x0 < tMaxAll + sh.w && sh.beta > -0.95 && sh.beta < 5
                && abs(value(1, sh) - value(0, sh)) > 1e-6
        }
        var shape: Shape, fullMixing = false
        if let free = solve(fullMixing: false)?.shape, plausible(free), free.x0 + free.v * tFirst >= free.w + 2 * sigma,
           isSites || -free.b / free.a >= 0.1 {
            shape = free
        } else {
            guard let full = solve(fullMixing: true)?.shape, plausible(full) else { return nil }
            shape = full
            fullMixing = true
        }
        // Site ratios: a bin's variance grows steeply with its level (bright Li sites in rock
        // salt, Poisson noise), so the fit is reweighted by the variance that the residuals
        // show as a function of the fitted level — iteratively reweighted least squares
        // (Carroll & Ruppert, Transformation and Weighting in Regression, 1988, ch. 3).
        var variance: ((Double) -> Double)? = nil
        if isSites {
            for _ in 0..<2 {
                var design = [Double](), target = [Double]()
                for i in ts.indices {
                    let m = value(edge.value(ts[i], centre: shape.x0 + shape.v * dt[i], w: shape.w, edge: 0), shape)
                    let r = ys[i] - m
                    design += [1, m, m * m]; target.append(counts[i] * r * r)
                }
                guard let c = LeastSquares.linear(design: design, p: 3, y: target), c.allSatisfy(\.isFinite) else { break }
                let floor = max(1e-12, 0.05 * (target.reduce(0, +) / Double(max(1, target.count))))
                let model: (Double) -> Double = { m in max(floor, c[0] + c[1] * m + c[2] * m * m) }
                for i in ts.indices {
                    let m = value(edge.value(ts[i], centre: shape.x0 + shape.v * dt[i], w: shape.w, edge: 0), shape)
                    sw[i] = (counts[i] / model(m)).squareRoot()
                }
                guard let refit = solve(fullMixing: fullMixing), plausible(refit.shape) else { break }
                shape = refit.shape
                variance = model
            }
        }
        // Each frame's own midpoint, the shape held fixed, from the frame and its `neighbours`
        // on each side in time, every one placed at the frame's midpoint moved by v·Δt — so a
        // window, even one cut short at the step's ends, stays centred on the frame.
        let byTime = used.sorted { timesS[$0] < timesS[$1] }
        let rank = Dictionary(uniqueKeysWithValues: byTime.enumerated().map { ($1, $0) })
        var frames = [FrameFront?](repeating: nil, count: samples.count)
        for f in used {
            let s = samples[f]!
            guard let tMax = s.distancesPx.last, let r = rank[f] else { continue }
            let window = byTime[max(0, r - neighbours)...min(byTime.count - 1, r + neighbours)]
            var wd = [Double](), wt = [Double](), wy = [Double](), wr = [Double]()
            let guess = shape.x0 + shape.v * (timesS[f] - tRef)
            for g in window {
                let sg = samples[g]!
                let total = sg.weights.reduce(0, +)
                guard total > 0 else { continue }
                let shift = shape.v * (timesS[g] - timesS[f])
                for i in sg.distancesPx.indices where sg.values[i].isFinite {
                    wd.append(shift); wt.append(sg.distancesPx[i]); wy.append(sg.values[i])
                    if let variance {
                        let m = value(edge.value(sg.distancesPx[i], centre: guess + shift, w: shape.w, edge: 0), shape)
                        wr.append((sg.weights[i] / variance(m)).squareRoot())
                    } else {
                        wr.append((sg.weights[i] / total).squareRoot())
                    }
                }
            }
            guard !wt.isEmpty, let fit = LeastSquares.levenbergMarquardt(start: [guess], residuals: { p in
                wt.indices.map { i in
                    wr[i] * (wy[i] - value(edge.value(wt[i], centre: p[0] + wd[i], w: shape.w, edge: 0), shape))
                }
            }), let c = fit.parameters.first, c.isFinite, c > -max(sigma, shape.w), c < tMax + sigma else { continue }
            let y = s.values
            // Progress per bin, inverting (A + BP)/(1 + βP).
            let values = y.map { v -> Double in
                let den = shape.b - v * shape.beta
                return den != 0 ? (v - shape.a) / den : .nan
            }
            frames[f] = FrameFront(positionPx: c, rocksaltFraction: s.crystal.fraction(behind: c),
                                   profile: FrontProfile(distancesPx: s.distancesPx, values: values, weights: s.weights,
                                                         positionPx: c, blurSigmaPx: s.blurSigmaPx))
        }
        return MovingFrontFit(referenceTimeS: tRef, positionPx: shape.x0, velocityPxPerS: shape.v,
                              widthPx: FrontLocator.tanhWidthFactor * shape.w, layeredLevel: shape.a,
                              depth: isSites ? 1 - value(1, shape) : -shape.b / shape.a,
                              halfSpacingContrast: shape.beta, frames: frames)
    }
}
