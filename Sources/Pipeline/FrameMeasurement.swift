import Foundation
import FrameCore
import FrameIO
import Registration
import ColumnIntensities
import FrontTracking

/// One frame's measurements, as cached and merged into `FrameResult`.
struct MeasuredFrame: Codable, Sendable {
    var frameIndex: Int
    var tm: Double?
    var li: Double?
    var rocksalt: Double?
    var frontPx: Double?
}

/// The step's front fitted over all its frames as one moving edge (`MovingFront`).
struct StoredFront: Codable, Sendable {
    var referenceTimeS: Double
    var positionPx: Double
    /// Velocity and its jackknife standard error with `frameCount − 1` degrees of freedom.
    var velocityPxPerS: Double?
    var velocitySEMPxPerS: Double?
    var widthPx: Double
    var widthSEMPx: Double?
    var frameCount: Int
}

/// A step's measured frames: the unit the stage cache stores.
struct StepFrames: Codable, Sendable {
    var frames: [MeasuredFrame]
    var front: StoredFront? = nil
}

extension FrameResult {
    mutating func merge(_ m: MeasuredFrame) {
        tmIntensity = m.tm
        liIntensity = m.li
        rocksaltFraction = m.rocksalt
        frontPositionPx = m.frontPx
    }
}

/// Per-frame measurement of one step, streamed: frames are decoded and aligned in batches,
/// and only the batch is held at once.
///
/// - Column intensities: measured on each aligned frame at the step average's fixed sites
///   (unbiased at low dose, where refining single noisy columns would chase noise).
/// - Front: every frame's own profiles across the front — Li-site over TM-site intensity
///   from the same fixed-site intensities (`SiteOccupancyProfile`) and the frame's lock-in
///   order parameter over the average's half-spacing amplitude
///   (`OrderParameterMap.normalised(byHalfSpacing:phase:)`, `FrontLocator`) — are fitted
///   together as one edge moving at constant velocity over the whole step (`MovingFront`),
///   each channel weighted by its own noise, and each frame's position is then its own
///   midpoint with that shape held fixed. No averaging of frames before the fit: windows
///   shrunk at the step's ends made the end frames noisier and differently biased, which set
///   the per-step slope. The step's width is the same fit's; its velocity the mean of each
///   channel fitted alone, both with jackknife SEs (`MovingFront`, `StoredFront`); the
///   velocities' errors per preset are in docs/benchmarks.md.
enum FrameMeasurement {
    static func measure(_ members: [Int], times: [Double], frames: RunFrames, okIndices: [Int], shifts: [FrameShift],
                        fields: [Int: ScanDistortionField], analysis: StepAnalysis?, boundary: LineSegment?, jobs: Int,
                        cancel: Cancellation) throws -> StepFrames {
        guard let analysis else {
            return StepFrames(frames: members.map { MeasuredFrame(frameIndex: $0) })
        }
        let plan = StepPlan(analysis, boundary: boundary, width: frames.width, height: frames.height)
        let position = Dictionary(uniqueKeysWithValues: okIndices.enumerated().map { ($1, $0) })
        let n = members.count
        let batch = max(1, 2 * jobs)
        var measured = [FrameSamples]()
        measured.reserveCapacity(n)
        var first = 0
        while first < n {
            try cancel.throwIfCancelled()
            let last = min(n, first + batch), offset = first
            measured += try ResultSlots<FrameSamples>.map(last - first) { j in
                let p = position[members[offset + j]]!
                let (aligned, valid) = try alignedFrame(p, frames: frames, shift: shifts[p], field: fields[p])
                return plan.measure(aligned, valid: valid, frameIndex: members[offset + j])
            }
            first = last
        }
        return plan.fitFront(measured, timesS: times)
    }

    /// Frame `p` decoded and moved onto the step average's grid (bicubic), with the pixels
    /// the frame covers there.
    static func alignedFrame(_ p: Int, frames: RunFrames, shift s: FrameShift,
                             field: ScanDistortionField?) throws -> (image: Image, valid: Mask) {
        let raw = try frames.image(at: p)
        if let field { return NonrigidRegistration.apply(field, shift: (s.dx, s.dy), to: raw, interpolation: .bicubic) }
        return Resampling.shifted(raw, by: -s.dx, -s.dy, interpolation: .bicubic)
    }

    /// b×b block means (edge blocks partial); b = 1 returns the image.
    static func bin(_ image: Image, _ b: Int) -> Image {
        guard b > 1 else { return image }
        let W = image.width, H = image.height
        let w = (W + b - 1) / b, h = (H + b - 1) / b
        var out = [Float](repeating: 0, count: w * h)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<H {
                    let row = (y / b) * w, line = y * W
                    for bx in 0..<w {
                        var s = dst[row + bx]
                        for x in (bx * b)..<min(W, bx * b + b) { s += src[line + x] }
                        dst[row + bx] = s
                    }
                }
                for by in 0..<h {
                    let rows = Float(min(H, by * b + b) - by * b)
                    for bx in 0..<w { dst[by * w + bx] /= rows * Float(min(W, bx * b + b) - bx * b) }
                }
            }
        }
        return Image(width: w, height: h, pixels: out)
    }

    /// A mask binned like `bin(_:_:)`: a block is set when all its pixels are.
    static func bin(_ mask: Mask, _ b: Int) -> Mask {
        guard b > 1 else { return mask }
        let w = (mask.width + b - 1) / b, h = (mask.height + b - 1) / b
        var out = [Bool](repeating: true, count: w * h)
        for y in 0..<mask.height { for x in 0..<mask.width where !mask.bits[y * mask.width + x] { out[(y / b) * w + x / b] = false } }
        return Mask(width: w, height: h, bits: out)
    }
}

/// One frame's measurements with its two profiles across the front (full-resolution
/// pixels), for the step's moving-front fit.
struct FrameSamples: Sendable {
    var frame: MeasuredFrame
    var map: FrontSamples? = nil
    var sites: FrontSamples? = nil
}

/// What every frame of a step is measured with, prepared once per step: the sites' linear
/// operator, the order parameter's binning, its lock-in on the region and the boundary on the
/// binned grid, and the step average's front the frames' fit starts from.
struct StepPlan: Sendable {
    let analysis: StepAnalysis
    /// The sites' fits as one precomputed linear operator, with the column width of the step
    /// average (unbiased at low dose; Li/TM step errors on the presets within ±0.002 of
    /// refitting the width on every frame, which costs 15× more).
    let estimator: SiteIntensityEstimator?
    /// Block binning of the frame for its order-parameter map (`OrderParameter.binning`).
    let binning: Int
    /// The lock-in's region part, on the binned grid (nil where the lattice gives no map).
    let lockIn: OrderParameter.RegionLockIn?
    /// The step average's front from the run's boundary, when it has a position: whether the
    /// frames are profiled, where their fit starts, its direction and the half-spacing
    /// contrast β the per-frame order parameter is modelled with.
    let front: FrontMeasurement?
    let boundary: LineSegment?
    let binnedBoundary: LineSegment?
    /// Sites whose fit disc reaches past the boundary see the material beyond it (another
    /// grain's columns) and are left out of the site profile: the fits' own disc radius.
    let siteMinimumDistancePx: Double

    init(_ a: StepAnalysis, boundary: LineSegment?, width: Int, height: Int) {
        analysis = a
        estimator = SiteIntensityEstimator(sites: a.sites, width: width, height: height, columnSigmaPx: a.columnSigmaPx)
        binning = OrderParameter.binning(layerSpacingPx: a.lattice.layerSpacingPx)
        lockIn = Self.lockIn(a, region: FrameMeasurement.bin(a.region, binning), binning: binning)
        let (a1, a2) = a.lattice.tmBasis
        siteMinimumDistancePx = ColumnFinder.fitRadius(a1: a1, a2: a2)
        if let boundary, let f = a.front, f.positionPx != nil {
            front = f
            self.boundary = boundary
            // Pixel centres on the binned grid: x_binned = (x + 0.5)/b − 0.5.
            let scale = 1 / Double(binning), c = 0.5 * (scale - 1)
            binnedBoundary = LineSegment(x0: boundary.x0 * scale + c, y0: boundary.y0 * scale + c,
                                         x1: boundary.x1 * scale + c, y1: boundary.y1 * scale + c)
        } else {
            front = nil
            self.boundary = nil
            binnedBoundary = nil
        }
    }

    /// One aligned frame: Li and TM intensities at the fixed sites, the rock-salt fraction of
    /// its own phase map and, where the step has a front, both profiles across it.
    func measure(_ aligned: Image, valid: Mask, frameIndex: Int) -> FrameSamples {
        let a = analysis
        let image = a.invertsContrast ? aligned.negated : aligned
        var m = MeasuredFrame(frameIndex: frameIndex)
        // The analysed region is covered by every frame of the step, so normally by this one.
        let covered = zip(a.region.bits, valid.bits).allSatisfy { !$0 || $1 }
        let region = covered ? a.region : Mask(width: a.region.width, height: a.region.height,
                                               bits: zip(a.region.bits, valid.bits).map { $0 && $1 })
        // Sites whose fit reaches a pixel this frame does not cover are left out of both the
        // frame's Li/TM and its site profile.
        let values = estimator.map { $0.masked($0.intensities(image).intensities, valid: valid) }
        let aggregate = values.map { estimator!.aggregate($0, region: region) }
            ?? SiteIntensity.measure(image, sites: a.sites, region: region).aggregate
        if aggregate.tmCount > 0 && aggregate.tm > 0 { m.tm = aggregate.tm; m.li = aggregate.li }

        let b = Double(binning)
        let binned = FrameMeasurement.bin(image, binning)
        let op = (covered ? lockIn : Self.lockIn(a, region: FrameMeasurement.bin(region, binning), binning: binning))
            .map { OrderParameter.map(binned, on: $0) }
            ?? .empty(width: binned.width, height: binned.height, windowPx: a.windowPx / b)
        let phase = PhaseSegmentation.segment(op, halfSpacingContrast: a.phase.halfSpacingContrast)
        m.rocksalt = phase.rocksaltFraction
        guard let front, let boundary, let binnedBoundary else { return FrameSamples(frame: m) }
        let profiled = a.halfSpacingReference.map { op.normalised(byHalfSpacing: $0, phase: phase) } ?? (map: op, phase: phase)
        guard let map = FrontLocator.locate(profiled.map, phase: profiled.phase, boundary: binnedBoundary,
                                            profileOnly: true).samples else {
            return FrameSamples(frame: m)
        }
        // The map's profile in full-resolution pixels.
        let crystal = CrystalExtent(originPx: map.crystal.originPx * b, binPx: map.crystal.binPx * b,
                                    counts: map.crystal.counts)
        let full = FrontSamples(distancesPx: map.distancesPx.map { $0 * b }, values: map.values, weights: map.weights,
                                blurSigmaPx: map.blurSigmaPx * b, crystal: crystal, layeredLevel: map.layeredLevel)
        var sites: FrontSamples? = nil
        if let estimator, let values {
            sites = SiteOccupancyProfile.samples(sites: estimator.sites, intensities: values, region: region,
                                                 boundary: boundary, direction: front.direction,
                                                 binPx: 0.25 * a.lattice.layerSpacingPx,
                                                 minimumDistancePx: siteMinimumDistancePx, crystal: crystal)
        }
        return FrameSamples(frame: m, map: full, sites: sites)
    }

    /// The lock-in on the step average's crystal `region` (binned `binning`-fold).
    static func lockIn(_ a: StepAnalysis, region: Mask, binning: Int) -> OrderParameter.RegionLockIn? {
        let b = Double(binning)
        return OrderParameter.RegionLockIn(gLayer: a.lattice.gLayer * b, windowPx: a.windowPx / b, region: region)
    }

    /// The step's frames fitted as one moving edge (`MovingFront`): both channels in
    /// full-resolution pixels, fitted together (x₀, v, w shared; each channel weighted by its
    /// own noise), and each frame's own position and rock-salt fraction from that fit.
    func fitFront(_ samples: [FrameSamples], timesS: [Double]) -> StepFrames {
        var measured = samples.map(\.frame)
        guard let front, let p0 = front.positionPx, let w0 = front.widthPx else { return StepFrames(frames: measured) }
        // Profiles over the average's A(2g) fall linearly with the occupancy change (β = 0).
        let beta = analysis.halfSpacingReference != nil ? 0 : front.halfSpacingContrast ?? analysis.phase.halfSpacingContrast
        let map = MovingFront.ChannelSamples(samples.map(\.map), channel: .orderParameter(halfSpacingContrast: beta))
        let siteSamples = samples.map(\.sites)
        let sites = MovingFront.ChannelSamples(siteSamples, channel: .siteRatio)
        let channels = siteSamples.contains(where: { $0 != nil }) ? [sites, map] : [map]
        guard let fit = MovingFront.fit(channels, timesS: timesS, startPositionPx: p0, startWidthPx: w0) else {
            return StepFrames(frames: measured)
        }
        for i in measured.indices {
            if let f = fit.frames[i] {
                measured[i].frontPx = f.positionPx
                measured[i].rocksalt = f.rocksaltFraction
            }
        }
        let stored = StoredFront(referenceTimeS: fit.referenceTimeS, positionPx: fit.positionPx,
                                 velocityPxPerS: fit.velocitySEMPxPerS != nil ? fit.velocityPxPerS : nil,
                                 velocitySEMPxPerS: fit.velocitySEMPxPerS, widthPx: fit.widthPx,
                                 widthSEMPx: fit.widthSEMPx, frameCount: fit.frameCount)
        return StepFrames(frames: measured, front: stored)
    }
}
