import TestSupport
import Foundation
import Testing
import FrameCore
import FrontTracking

/// A step of low-dose frames in which the front leaves the boundary region by about one
/// width, as on the registration-stress preset: the velocity from one moving-edge fit over
/// all frames against the truth, and against fitting each frame's window alone, then
/// regressing (what the pipeline did before).
@Suite("Moving front")
struct MovingFrontTests {
    static let frameCount = 8
    static let intervalS = 20.0
    static let startNm = 1.0
    static let velocityNmPerS = 0.009

    static func frames(seed: UInt64) -> (images: [Image], grain: SyntheticGrain) {
        var grain = SyntheticGrain()
        grain.widthNm = 3; grain.beyond = .amorphous; grain.dose = 0.02
        let images = (0..<frameCount).map { k -> Image in
            var g = grain
            g.frontNm = startNm + velocityNmPerS * intervalS * Double(k)
            g.seed = seed * 100 + UInt64(k)
            return g.render()
        }
        return (images, grain)
    }

    static func mean(_ images: [Image]) -> Image {
        var px = [Float](repeating: 0, count: images[0].count)
        for im in images { for i in px.indices { px[i] += im.pixels[i] } }
        return Image(width: images[0].width, height: images[0].height, pixels: px.map { $0 / Float(images.count) })
    }

    /// Velocity (nm/s) from the moving-edge fit, and from per-window fits then least squares.
    static func velocities(seed: UInt64) throws -> (joint: Double, windows: Double, positionsRMS: Double) {
        let (images, grain) = frames(seed: seed)
        let window = grain.layerSpacingPx
        let times = (0..<frameCount).map { Double($0) * intervalS }
        // Step average: start values and β.
        let average = OrderParameter.map(mean(images), gLayer: grain.gLayer, windowPx: window, region: nil)
        let start = FrontLocator.locate(average, phase: PhaseSegmentation.segment(average), boundary: grain.boundary)
        let p0 = try #require(start.positionPx), w0 = try #require(start.widthPx)
        let beta = try #require(start.halfSpacingContrast)
        // Single frames' profiles, fitted as one moving edge.
        let samples = images.map { im -> FrontSamples? in
            let op = OrderParameter.map(im, gLayer: grain.gLayer, windowPx: window, region: nil)
            return FrontLocator.locate(op, phase: PhaseSegmentation.segment(op), boundary: grain.boundary, profileOnly: true).samples
        }
        let fit = try #require(MovingFront.fit(samples, timesS: times, channel: .orderParameter(halfSpacingContrast: beta),
                                               startPositionPx: p0, startWidthPx: w0))
        let positions = fit.frames.map { $0.map { $0.positionPx * grain.pixelNm } }
        let located = positions.indices.filter { positions[$0] != nil }
        let joint = try #require(Kinetics.velocity(times: located.map { times[$0] }, positions: located.map { positions[$0]! }))
        var sq = 0.0
        for i in located { let e = positions[i]! - (startNm + velocityNmPerS * times[i]); sq += e * e }
        // The previous way: each frame's window (±2 frames, shrunk at the ends) fitted alone.
        var wt = [Double](), wp = [Double]()
        for i in 0..<frameCount {
            let r = min(2, i, frameCount - 1 - i)
            let op = OrderParameter.map(mean(Array(images[(i - r)...(i + r)])), gLayer: grain.gLayer, windowPx: window, region: nil)
            if let p = FrontLocator.locate(op, phase: PhaseSegmentation.segment(op), boundary: grain.boundary,
                                           layeredLevelPrior: 3).positionPx {
                wt.append(times[i]); wp.append(p * grain.pixelNm)
            }
        }
        let windows = try #require(Kinetics.velocity(times: wt, positions: wp))
        return (joint.velocity, windows.velocity, (sq / Double(max(1, located.count))).squareRoot())
    }

    @Test("low-dose front leaving the boundary: velocity within 10 %")
    func lowDoseVelocity() throws {
        var jointErrors = [Double](), windowErrors = [Double]()
        for seed in 1...3 as ClosedRange<UInt64> {
            let v = try Self.velocities(seed: seed)
            let je = abs(v.joint / Self.velocityNmPerS - 1), we = abs(v.windows / Self.velocityNmPerS - 1)
            jointErrors.append(je); windowErrors.append(we)
            #expect(v.positionsRMS < 0.3, "seed \(seed): per-frame positions RMS \(v.positionsRMS) nm")
        }
        let jointWorst = jointErrors.max()!, windowWorst = windowErrors.max()!
        let errors = "joint " + jointErrors.map { String(format: "%.3f", $0) }.joined(separator: " ")
            + ", windows " + windowErrors.map { String(format: "%.3f", $0) }.joined(separator: " ")
        #expect(jointWorst <= 0.10, "moving-edge fit: worst velocity error \(jointWorst) (\(errors))")
        #expect(jointWorst < windowWorst, "moving-edge fit \(jointWorst) vs per-window fits \(windowWorst) (\(errors))")
    }

    /// The moving edge's velocity SEM against the scatter of its velocity over noise
    /// realisations: the jackknife must neither hide nor inflate what the frames' noise does.
    @Test("moving-edge velocity SEM matches its scatter over noise realisations")
    func velocitySEMCoverage() throws {
        var zs = [Double]()
        for seed in 11...22 as ClosedRange<UInt64> {
            let (images, grain) = Self.frames(seed: seed)
            let window = grain.layerSpacingPx
            let times = (0..<Self.frameCount).map { Double($0) * Self.intervalS }
            let average = OrderParameter.map(Self.mean(images), gLayer: grain.gLayer, windowPx: window, region: nil)
            let start = FrontLocator.locate(average, phase: PhaseSegmentation.segment(average), boundary: grain.boundary)
            let p0 = try #require(start.positionPx), w0 = try #require(start.widthPx)
            let samples = images.map { im -> FrontSamples? in
                let op = OrderParameter.map(im, gLayer: grain.gLayer, windowPx: window, region: nil)
                return FrontLocator.locate(op, phase: PhaseSegmentation.segment(op), boundary: grain.boundary,
                                           profileOnly: true).samples
            }
            let fit = try #require(MovingFront.fit(samples, timesS: times, channel: .orderParameter(halfSpacingContrast: start.halfSpacingContrast ?? 0),
                                                   startPositionPx: p0, startWidthPx: w0))
            let sem = try #require(fit.velocitySEMPxPerS)
            zs.append((fit.velocityPxPerS * grain.pixelNm - Self.velocityNmPerS) / (sem * grain.pixelNm))
        }
        let rms = (zs.map { $0 * $0 }.reduce(0, +) / Double(zs.count)).squareRoot()
        #expect(rms < 1.6 && rms > 0.6,
                "RMS of (v − v_true)/SEM \(rms) over 12 noise realisations: \(zs.map { String(format: "%+.2f", $0) }.joined(separator: " "))")
    }

    /// Two channels with independent noise: the step's velocity is the mean of each channel
    /// fitted alone; its SEM, from their replicates averaged frame by frame, is about 1/√2 of
    /// a channel's own and matches the velocities' scatter over noise realisations (with the
    /// SEMs' own noise, about 6.7 degrees of freedom, E[z²] ≈ 6.7/4.7: RMS z about 1.2).
    @Test("two channels: the velocity is the mean of the channels' own fits")
    func channelMean() throws {
        var rng = SplitMix64(seed: 3)
        let times = (0..<12).map { Double($0) * 20 }
        let distances = (0..<60).map { 2 * Double($0) + 1 }
        func profiles() -> [FrontSamples?] {
            times.map { t in
                let values = distances.map { x -> Double in
                    let p = 0.5 * (1 - tanh((x - 30 - 0.2 * t) / 8))
                    return (0.15 + 0.5 * p) / (1 - 0.3 * p) + 0.01 * rng.gaussian()
                }
                return FrontSamples(distancesPx: distances, values: values, weights: distances.map { _ in 20 },
                                    blurSigmaPx: 0, crystal: CrystalExtent(distancesPx: distances))
            }
        }
        var z = [Double](), sems = [Double](), own = [Double]()
        for _ in 0..<40 {
            let a = profiles(), b = profiles()
            let both = try #require(MovingFront.fit([.init(a, channel: .siteRatio), .init(b, channel: .siteRatio)],
                                                    timesS: times, startPositionPx: 30, startWidthPx: 15))
            let alone = try [a, b].map {
                try #require(MovingFront.fit($0, timesS: times, channel: .siteRatio, startPositionPx: 30, startWidthPx: 15))
            }
            let mean = (alone[0].velocityPxPerS + alone[1].velocityPxPerS) / 2
            #expect(abs(both.velocityPxPerS - mean) < 1e-9 * mean)
            let sem = try #require(both.velocitySEMPxPerS)
            z.append((both.velocityPxPerS - 0.2) / sem)
            sems.append(sem)
            own += try alone.map { try #require($0.velocitySEMPxPerS) }
        }
        let rms = { (x: [Double]) in (x.map { $0 * $0 }.reduce(0, +) / Double(x.count)).squareRoot() }
        #expect(rms(sems) / rms(own) > 0.6 && rms(sems) / rms(own) < 0.85, "SEM of the mean over a channel's: \(rms(sems) / rms(own))")
        #expect(rms(z) > 0.8 && rms(z) < 1.6, "RMS of (v − v_true)/SEM \(rms(z))")
    }

    @Test("crystal extent: fraction behind a position")
    func crystalExtent() {
        let extent = CrystalExtent(distancesPx: (0..<100).map { Double($0) + 0.5 })
        #expect(abs(extent.fraction(behind: 50) - 0.5) < 0.01)
        #expect(extent.fraction(behind: -10) == 0)
        #expect(extent.fraction(behind: 1000) == 1)
        #expect(CrystalExtent(distancesPx: []).fraction(behind: 3) == 0)
    }
}
