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
///   from the same fixed-site intensities (`SiteOccupancyProfile`) and the lock-in order
///   parameter of the single frame (`FrontLocator`) — are fitted together as one edge
///   moving at constant velocity over the whole step (`MovingFront`), each channel weighted
///   by its own noise, and each frame's position is then its own midpoint with that shape
///   held fixed. No averaging of frames before the fit: windows shrunk at the step's ends
///   made the end frames noisier and differently biased, which set the per-step slope (41 %
///   velocity error on the registration-stress preset). Velocity errors on the presets at
///   512 px (registration-stress seeds 1/3/5, boundary-front, scan-distortion): order
///   parameter alone 17.5/10.3/5.0/5.2/2.2 %, sites alone 9.2/12.5/13.2/5.6/4.5 %, both
///   10.3/9.5/7.2/6.0/1.1 %; the bundled 256 px sample: 2.9, 11.1, 3.0 %. The step's
///   velocity and width, with their jackknife SEs, are the same fit's (`StoredFront`).
enum FrameMeasurement {
    static func measure(_ members: [Int], times: [Double], frames: RunFrames, okIndices: [Int], shifts: [FrameShift],
                        fields: [Int: ScanDistortionField], analysis: StepAnalysis?, boundary: LineSegment?, jobs: Int,
                        cancel: Cancellation) throws -> StepFrames {
        guard let a = analysis else {
            return StepFrames(frames: members.map { MeasuredFrame(frameIndex: $0) })
        }
        let position = Dictionary(uniqueKeysWithValues: okIndices.enumerated().map { ($1, $0) })
        let n = members.count
        let batch = max(1, 2 * jobs)
        var out = [MeasuredFrame?](repeating: nil, count: n)
        var mapSamples = [FrontSamples?](repeating: nil, count: n), siteSamples = [FrontSamples?](repeating: nil, count: n)
        // The sites' fits as one precomputed linear operator, with the column width of the step
        // average (unbiased at low dose; Li/TM step errors on the presets within ±0.002 of
        // refitting the width on every frame, which costs 15× more).
        let estimator = SiteIntensityEstimator(sites: a.sites, width: frames.width, height: frames.height,
                                               columnSigmaPx: a.columnSigmaPx)
        // The step average's front: whether the step has one, where to start, its direction
        // and the half-spacing contrast β the per-frame order parameter is modelled with.
        let stepFront = boundary != nil ? a.front : nil
        // The order parameter varies on the scale of a layer spacing: it is mapped on a copy
        // binned so that a layer spans about 9 px, and lengths are scaled back.
        let b = max(1, Int(a.lattice.layerSpacingPx / 9))
        // Sites whose fit disc reaches past the boundary see the material beyond it (another
        // grain's columns) and are left out: 45 % of the nearest cation distance, as the fits use.
        let (a1, a2) = a.lattice.tmBasis
        func norm(_ v: SIMD2<Double>) -> Double { (v * v).sum().squareRoot() }
        let discRadius = max(1.5, 0.45 * min(norm(a1), norm(a2 / 2), norm((a2 + a1) / 2), norm((a2 - a1) / 2)))

        var b0 = 0
        while b0 < n {
            try cancel.throwIfCancelled()
            let b1 = min(n, b0 + batch)
            let first = b0
            let results = try ResultSlots<(MeasuredFrame, FrontSamples?, FrontSamples?)>.map(b1 - b0) { j in
                let i = first + j
                let p = position[members[i]]!
                let raw = try frames.image(at: p)
                let s = shifts[p]
                let (aligned, valid) = fields[p].map { NonrigidRegistration.apply($0, shift: (s.dx, s.dy), to: raw, interpolation: .bicubic) }
                    ?? Resampling.shifted(raw, by: -s.dx, -s.dy, interpolation: .bicubic)
                let img = a.invertsContrast ? aligned.negated : aligned
                var m = MeasuredFrame(frameIndex: members[i])
                var region = a.region
                for q in region.bits.indices { region.bits[q] = region.bits[q] && valid.bits[q] }
                let values = estimator?.intensities(img).intensities
                let agg = values.map { estimator!.aggregate($0, region: region) }
                    ?? SiteIntensity.measure(img, sites: a.sites, region: region).aggregate
                // Per-site values feed the front's site channel where the step has a front.
                let siteValues = stepFront?.positionPx != nil ? values : nil
                if agg.tmCount > 0 && agg.tm > 0 { m.tm = agg.tm; m.li = agg.li }

                let binned = bin(img, b), binnedRegion = bin(region, b)
                let op = OrderParameter.map(binned, gLayer: a.lattice.gLayer * Double(b),
                                            windowPx: a.windowPx / Double(b), region: binnedRegion)
                let phase = PhaseSegmentation.segment(op)
                m.rocksalt = phase.rocksaltFraction
                guard let boundary, let stepFront, stepFront.positionPx != nil else { return (m, nil, nil) }
                let scale = 1 / Double(b), c = 0.5 * (scale - 1)   // pixel centres: x_binned = (x + 0.5)/b − 0.5
                let scaled = LineSegment(x0: boundary.x0 * scale + c, y0: boundary.y0 * scale + c,
                                         x1: boundary.x1 * scale + c, y1: boundary.y1 * scale + c)
                let mapProfile = FrontLocator.locate(op, phase: phase, boundary: scaled, profileOnly: true).samples
                var sites: FrontSamples? = nil
                if let estimator, let siteValues, let crystal = mapProfile?.crystal {
                    let full = CrystalExtent(originPx: crystal.originPx * Double(b), binPx: crystal.binPx * Double(b),
                                             counts: crystal.counts)
                    sites = SiteOccupancyProfile.samples(sites: estimator.sites, intensities: siteValues, region: region,
                                                         boundary: boundary, direction: stepFront.direction,
                                                         binPx: 0.25 * a.lattice.layerSpacingPx, minimumDistancePx: discRadius,
                                                         crystal: full)
                }
                return (m, mapProfile, sites)
            }
            for j in 0..<(b1 - b0) {
                out[b0 + j] = results[j].0
                mapSamples[b0 + j] = results[j].1
                siteSamples[b0 + j] = results[j].2
            }
            b0 = b1
        }
        var measured = out.map { $0! }
        guard let stepFront, let p0 = stepFront.positionPx, let w0 = stepFront.widthPx else {
            return StepFrames(frames: measured)
        }
        let beta = stepFront.halfSpacingContrast ?? a.phase.halfSpacingContrast
        // Both channels in full-resolution pixels, fitted together (x₀, v, w shared; each
        // channel weighted by its own noise).
        let scale = Double(b)
        let map = MovingFront.ChannelSamples(mapSamples.map { $0.map {
            FrontSamples(distancesPx: $0.distancesPx.map { $0 * scale }, values: $0.values, weights: $0.weights,
                         blurSigmaPx: $0.blurSigmaPx * scale,
                         crystal: CrystalExtent(originPx: $0.crystal.originPx * scale, binPx: $0.crystal.binPx * scale,
                                                counts: $0.crystal.counts),
                         layeredLevel: $0.layeredLevel)
        } }, channel: .orderParameter(halfSpacingContrast: beta))
        let sites = MovingFront.ChannelSamples(siteSamples, channel: .siteRatio)
        var channels = siteSamples.contains(where: { $0 != nil }) ? [sites, map] : [map]
        let fit = MovingFront.fit(channels, timesS: times, startPositionPx: p0, startWidthPx: w0)
        for i in 0..<n {
            if let f = fit?.frames[i] {
                measured[i].frontPx = f.positionPx
                measured[i].rocksalt = f.rocksaltFraction
            }
        }
        let front = fit.map {
            StoredFront(referenceTimeS: $0.referenceTimeS, positionPx: $0.positionPx,
                        velocityPxPerS: $0.velocitySEMPxPerS != nil ? $0.velocityPxPerS : nil,
                        velocitySEMPxPerS: $0.velocitySEMPxPerS, widthPx: $0.widthPx, widthSEMPx: $0.widthSEMPx,
                        frameCount: $0.frameCount)
        }
        return StepFrames(frames: measured, front: front)
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
