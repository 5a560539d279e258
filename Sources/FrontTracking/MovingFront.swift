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
    /// Velocity of the midpoint (px/s), with several channels the mean of their own fits'
    /// velocities; 0 and not fitted with fewer than 3 frames.
    public var velocityPxPerS: Double
    /// Its delete-one-frame jackknife standard error (px/s), divided by the square root of
    /// the jackknife's inflation of a slope's variance (`Kinetics.jackknifeSlopeVarianceInflation`);
    /// nil when not fitted.
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
/// `frames.csv`. The width is W = 2·atanh(0.8)·w. With several channels the step's velocity
/// is the mean of the channels' own velocities, each channel fitted alone the same way (its
/// own x₀, w and levels), with equal weights; with one channel, or where a channel's own fit
/// fails, it is v. Both with their delete-one-frame jackknife standard errors (see the
/// code), the velocity's from the channels' replicates averaged frame by frame, so it
/// carries their correlation.
///
/// Why: low-dose frames fitted one at a time each trade their plateaus, β and w against
/// their position, and which trade they make depends on how far out the front is (near the
/// boundary no rock-salt plateau is in view) and on how many frames were averaged (windows
/// shrunk at a step's ends); either sets the slope over a step in which the front moves
/// about one width. With one shape per step every frame is measured the same way, so a
/// remaining bias is common to the step's frames and leaves the velocity alone.
///
/// Why the channels' own velocities, averaged: the joint fit shares one midpoint and width
/// between channels whose profiles differ in shape, and weights them by their residual
/// variance, not by how well each pins the velocity; which channel pins it better changes
/// from hold to hold, and a hold's dozen frames estimate the channels' SEMs too poorly to
/// weight by them (docs/benchmarks.md, "The velocity from the two channels").
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
        guard var problem = SpaceTimeFit(channels, timesS: timesS, startPositionPx: startPositionPx,
                                         startWidthPx: startWidthPx, layeredLevelPrior: layeredLevelPrior),
              let (solution, fullMixing, variances, replicates) = problem.solved() else { return nil }
        let shape = solution.shape
        let velocity = stepVelocity(problem, joint: (shape.v, replicates.mapValues(\.v)), timesS: timesS,
                                    startPositionPx: startPositionPx, startWidthPx: startWidthPx,
                                    layeredLevelPrior: layeredLevelPrior)
        let widthSE = SpaceTimeFit.jackknifeStandardError(replicates.mapValues(\.w))
        let frames = problem.framePositions(shape, variances: variances, neighbours: neighbours)
        let first = shape.levels[0]
        return MovingFrontFit(referenceTimeS: problem.tRef, positionPx: shape.x0, velocityPxPerS: velocity.v,
                              velocitySEMPxPerS: velocity.sem,
                              widthPx: FrontLocator.tanhWidthFactor * shape.w,
                              widthSEMPx: widthSE.map { FrontLocator.tanhWidthFactor * $0 },
                              frameCount: velocity.frameCount, fullMixing: fullMixing, layeredLevel: first.a,
                              depth: problem.isSites[0] ? 1 - SpaceTimeFit.value(1, first) : -first.b / first.a,
                              halfSpacingContrast: first.beta, frames: frames)
    }

    /// The step's velocity, its SE and the replicates' count: with several channels the mean
    /// of their own fits (`channelVelocity`, `channelMean`), else — or where a channel's own fit
    /// fails — the joint fit's; the jackknife SE divided by √κ, its upward bias on a slope
    /// (`Kinetics.jackknifeSlopeVarianceInflation`). No SE where the fit has no velocity.
    static func stepVelocity(_ problem: SpaceTimeFit, joint: (v: Double, replicates: [Int: Double]), timesS: [Double],
                             startPositionPx: Double, startWidthPx: Double, layeredLevelPrior: Double)
        -> (v: Double, sem: Double?, frameCount: Int) {
        var velocity = joint
        if problem.chans.count > 1, problem.fitVelocity {
            let own = problem.chans.compactMap {
                channelVelocity($0, timesS: timesS, startPositionPx: startPositionPx, startWidthPx: startWidthPx,
                                layeredLevelPrior: layeredLevelPrior)
            }
            if own.count == problem.chans.count { velocity = channelMean(own) }
        }
        let inflation = Kinetics.jackknifeSlopeVarianceInflation(times: problem.used.map { timesS[$0] }) ?? 1
        let sem = SpaceTimeFit.jackknifeStandardError(velocity.replicates).map { $0 / inflation.squareRoot() }
        return (velocity.v, problem.fitVelocity ? sem : nil, velocity.replicates.count)
    }

    /// One channel's own space–time fit (its own x₀, w and levels): its velocity and the
    /// velocity's delete-one-frame replicates by frame; nil where the fit fails.
    static func channelVelocity(_ c: ChannelSamples, timesS: [Double], startPositionPx: Double, startWidthPx: Double,
                                layeredLevelPrior: Double) -> (v: Double, replicates: [Int: Double])? {
        guard var alone = SpaceTimeFit([c], timesS: timesS, startPositionPx: startPositionPx, startWidthPx: startWidthPx,
                                       layeredLevelPrior: layeredLevelPrior),
              alone.fitVelocity, let solved = alone.solved() else { return nil }
        return (solved.solution.shape.v, solved.replicates.mapValues(\.v))
    }

    /// The channels' velocities averaged with equal weights, and their replicates averaged
    /// frame by frame over the frames every channel's jackknife refitted.
    static func channelMean(_ own: [(v: Double, replicates: [Int: Double])]) -> (v: Double, replicates: [Int: Double]) {
        let n = Double(own.count)
        let frames = own.dropFirst().reduce(Set(own[0].replicates.keys)) { $0.intersection($1.replicates.keys) }
        let replicates = Dictionary(uniqueKeysWithValues: frames.map { f in
            (f, own.map { $0.replicates[f]! }.reduce(0, +) / n)
        })
        return (own.map(\.v).reduce(0, +) / n, replicates)
    }

    /// The `count` delete-one refits, run concurrently (each refit only reads the fit's
    /// state), in order; nil where a refit failed.
    static func jackknife(_ count: Int, refit: (Int) -> [Double]?) -> [[Double]?] {
        withoutActuallyEscaping(refit) { refit in
            let shared = UncheckedSendable(refit)
            return ResultSlots<[Double]?>.map(count) { shared.value($0) }
        }
    }
}
