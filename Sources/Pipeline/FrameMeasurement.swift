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

/// A front profile in a codable form, so a step's cached frames keep what the width needs.
struct StoredProfile: Codable, Sendable {
    var distancesPx: [Double]
    var values: [Double]
    var weights: [Double]
    var positionPx: Double
    var blurSigmaPx: Double

    init(_ p: FrontProfile) {
        distancesPx = p.distancesPx
        values = p.values
        weights = p.weights
        positionPx = p.positionPx
        blurSigmaPx = p.blurSigmaPx
    }

    var profile: FrontProfile {
        FrontProfile(distancesPx: distancesPx, values: values, weights: weights, positionPx: positionPx, blurSigmaPx: blurSigmaPx)
    }
}

/// A step's measured frames: the unit the stage cache stores.
struct StepFrames: Codable, Sendable {
    var frames: [MeasuredFrame]
    var profiles: [StoredProfile]
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
/// and only the batch plus `windowHalfWidth` neighbours on each side are held at once.
///
/// - Column intensities: measured on each aligned frame at the step average's fixed sites
///   (unbiased at low dose, where refining single noisy columns would chase noise).
/// - Front: mapped on the mean of the frame and its neighbours within the step, a symmetric
///   window (shrunk at the step's ends) so that a front moving steadily is not displaced;
///   where rejected frames make a window uneven in time, its position (which belongs to the
///   window's mean time) is moved to the frame's own time with the step's velocity.
enum FrameMeasurement {
    static func measure(_ members: [Int], times: [Double], frames: RunFrames, okIndices: [Int], shifts: [FrameShift],
                        fields: [Int: ScanDistortionField], analysis: StepAnalysis?, boundary: LineSegment?, jobs: Int, windowHalfWidth h: Int,
                        cancel: Cancellation) throws -> StepFrames {
        guard let a = analysis else {
            return StepFrames(frames: members.map { MeasuredFrame(frameIndex: $0) }, profiles: [])
        }
        let position = Dictionary(uniqueKeysWithValues: okIndices.enumerated().map { ($1, $0) })
        let n = members.count
        let batch = max(1, 2 * jobs)
        var aligned: [Int: (image: Image, valid: Mask)] = [:]
        var out = [MeasuredFrame?](repeating: nil, count: n)
        var profiles = [StoredProfile?](repeating: nil, count: n)
        // Symmetric windows, shrunk toward the step's ends. (Windows of a fixed length,
        // pushed off-centre at the ends, were tried: they remove the noisy single-frame ends
        // but made the velocity error on boundary-front and scan-distortion 2–3× worse.)
        @Sendable func window(_ i: Int) -> ClosedRange<Int> {
            let r = min(h, i, n - 1 - i)
            return (i - r)...(i + r)
        }
        let windowTimes = (0..<n).map { i in window(i).map { times[$0] }.reduce(0, +) / Double(window(i).count) }
        // The sites' fits as one precomputed linear operator, with the column width of the step
        // average (unbiased at low dose; Li/TM step errors on the presets within ±0.002 of
        // refitting the width on every frame, which costs 15× more).
        let estimator = SiteIntensityEstimator(sites: a.sites, width: frames.width, height: frames.height,
                                               columnSigmaPx: a.columnSigmaPx)

        var b0 = 0
        while b0 < n {
            try cancel.throwIfCancelled()
            let b1 = min(n, b0 + batch)
            let need = Array(window(b0).lowerBound...window(b1 - 1).upperBound)
            for i in aligned.keys where i < window(b0).lowerBound { aligned[i] = nil }
            let missing = need.filter { aligned[$0] == nil }
            let decoded = try ResultSlots<(image: Image, valid: Mask)>.map(missing.count) { j in
                let p = position[members[missing[j]]]!
                let img = try frames.image(at: p)
                let s = shifts[p]
                return fields[p].map { NonrigidRegistration.apply($0, shift: (s.dx, s.dy), to: img, interpolation: .bicubic) }
                    ?? Resampling.shifted(img, by: -s.dx, -s.dy, interpolation: .bicubic)
            }
            for (j, i) in missing.enumerated() { aligned[i] = decoded[j] }

            let snapshot = aligned, first = b0
            let results = try ResultSlots<(MeasuredFrame, StoredProfile?)>.map(b1 - b0) { j in
                let i = first + j
                let (img, valid) = snapshot[i]!
                var m = MeasuredFrame(frameIndex: members[i])
                var region = a.region
                for q in region.bits.indices { region.bits[q] = region.bits[q] && valid.bits[q] }
                let agg = estimator?.measure(img, region: region) ?? SiteIntensity.measure(img, sites: a.sites, region: region).aggregate
                if agg.tmCount > 0 && agg.tm > 0 { m.tm = agg.tm; m.li = agg.li }

                let mean = window(i).count == 1 ? img : meanImage(window(i).map { snapshot[$0]! })
                // The order parameter varies on the scale of a layer spacing: map it on a copy
                // binned so that a layer spans about 9 px, and scale lengths back.
                let b = max(1, Int(a.lattice.layerSpacingPx / 9))
                let binned = bin(mean, b), binnedRegion = bin(region, b)
                let op = OrderParameter.map(binned, gLayer: a.lattice.gLayer * Double(b),
                                            windowPx: a.windowPx / Double(b), region: binnedRegion)
                let phase = PhaseSegmentation.segment(op)
                m.rocksalt = phase.rocksaltFraction
                var stored: StoredProfile? = nil
                if let boundary {
                    let s = 1 / Double(b), c = 0.5 * (s - 1)   // pixel centres: x_binned = (x + 0.5)/b − 0.5
                    let scaled = LineSegment(x0: boundary.x0 * s + c, y0: boundary.y0 * s + c,
                                             x1: boundary.x1 * s + c, y1: boundary.y1 * s + c)
                    let front = FrontLocator.locate(op, phase: phase, boundary: scaled, layeredLevelPrior: 3)
                    if let position = front.positionPx {
                        m.frontPx = position * Double(b)
                        m.rocksalt = front.rocksaltFraction
                        if let p = front.profile {
                            stored = StoredProfile(FrontProfile(
                                distancesPx: p.distancesPx.map { $0 * Double(b) }, values: p.values, weights: p.weights,
                                positionPx: p.positionPx * Double(b), blurSigmaPx: p.blurSigmaPx * Double(b)))
                        }
                    }
                }
                return (m, stored)
            }
            for j in 0..<(b1 - b0) {
                out[b0 + j] = results[j].0
                profiles[b0 + j] = results[j].1
            }
            b0 = b1
        }
        var measured = out.map { $0! }
        // Each window's position belongs to its mean time: move it to the frame's own time.
        let located = (0..<n).filter { measured[$0].frontPx != nil }
        if let v = Kinetics.velocity(times: located.map { windowTimes[$0] },
                                     positions: located.map { measured[$0].frontPx! })?.velocity {
            for i in located { measured[i].frontPx! += v * (times[i] - windowTimes[i]) }
        }
        return StepFrames(frames: measured, profiles: profiles.compactMap { $0 })
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

    /// Per-pixel mean over the frames whose aligned data cover the pixel: outside its coverage
    /// a resampled frame repeats its edge pixels (streaks without fringes), and a non-rigidly
    /// corrected frame's coverage is ragged line by line.
    static func meanImage(_ frames: [(image: Image, valid: Mask)]) -> Image {
        let count = frames[0].image.count
        var acc = [Float](repeating: 0, count: count), n = [Float](repeating: 0, count: count)
        acc.withUnsafeMutableBufferPointer { acc in
            n.withUnsafeMutableBufferPointer { n in
                for f in frames {
                    f.image.pixels.withUnsafeBufferPointer { px in
                        f.valid.bits.withUnsafeBufferPointer { valid in
                            for k in 0..<count {   // selects, not branches, so it vectorises
                                acc[k] += valid[k] ? px[k] : 0
                                n[k] += valid[k] ? 1 : 0
                            }
                        }
                    }
                }
                for k in 0..<count { acc[k] = n[k] > 0 ? acc[k] / n[k] : 0 }
            }
        }
        return Image(width: frames[0].image.width, height: frames[0].image.height, pixels: acc)
    }
}
