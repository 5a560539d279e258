import Foundation
import Testing
import FrameCore
import Simulation

@Suite struct FrontInformationTests {
    /// The velocity bound is the standard error of a weighted straight-line slope.
    @Test func velocityBoundIsTheWeightedSlopeError() throws {
        let times = [0.0, 10, 20, 30]
        let equal = try #require(HeatingRunSimulator.velocityBound(timesS: times, information: [4, 4, 4, 4]))
        #expect(abs(equal - 1 / (4 * 500.0).squareRoot()) < 1e-12)   // Σ(t − t̄)² = 500
        // Unequal weights: the (v, v) element of the inverse 2 × 2 Fisher matrix.
        let info = [1.0, 2, 3, 4]
        let s0 = info.reduce(0, +), s1 = zip(times, info).map { $0 * $1 }.reduce(0, +)
        let s2 = zip(times, info).map { $0 * $0 * $1 }.reduce(0, +)
        let direct = (s0 / (s0 * s2 - s1 * s1)).squareRoot()
        let bound = try #require(HeatingRunSimulator.velocityBound(timesS: times, information: info))
        #expect(abs(bound - direct) < 1e-12 * direct)
        #expect(HeatingRunSimulator.velocityBound(timesS: [5], information: [1]) == nil)
        #expect(HeatingRunSimulator.velocityBound(timesS: [5, 5], information: [1, 1]) == nil)
    }

    /// The one-step efficient estimator x̂ = x + Σ s_k (d_k − μ_k)/var_k / I, applied to frames
    /// drawn by the detector model, scatters by 1/√I: the information uses the detector's
    /// real noise (a wrong gain, read noise or variance model moves the ratio off 1).
    @Test func positionBoundIsReachedByTheEfficientEstimator() throws {
        var o = SimulationOptions(preset: .registrationStress, seed: 3, size: 192)
        o.framesPerStep = 3
        let sim = HeatingRunSimulator(o)
        let frame = try #require((0..<sim.frameCount).last { sim.frameTruth($0).frontPositionNm != nil })
        let front = try #require(sim.frameTruth(frame).frontPositionNm)
        let information = try #require(sim.frontPositionInformation(frame: frame))
        let delta = 0.01, det = sim.detector
        let model = sim.idealIntensity(frame: frame, frontNm: front)
        let before = sim.idealIntensity(frame: frame, frontNm: front - delta)
        let after = sim.idealIntensity(frame: frame, frontNm: front + delta)
        let mean = model.pixels.map { det.expectedValue(intensity: Double($0)) }
        let slope = zip(before.pixels, after.pixels).map {
            (det.expectedValue(intensity: Double($1)) - det.expectedValue(intensity: Double($0))) / (2 * delta)
        }
        let variance = mean.map { det.gainADUPerElectron * ($0 - det.offsetADU) + det.readNoiseADU * det.readNoiseADU + 1.0 / 12 }
        var rng = SeededRandom(seed: 11)
        let estimates = (0..<400).map { _ -> Double in
            let d = det.record(model, rng: &rng).pixels
            var score = 0.0
            for k in d.indices { score += slope[k] * (Double(d[k]) - mean[k]) / variance[k] }
            return front + score / information
        }
        let m = estimates.reduce(0, +) / Double(estimates.count)
        let sd = (estimates.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(estimates.count - 1)).squareRoot()
        let bound = 1 / information.squareRoot()
        #expect(sd / bound > 0.9 && sd / bound < 1.1, "sd \(sd) nm, bound \(bound) nm")
        #expect(abs(m - front) < 4 * bound / 20)
    }

    /// With nothing unknown but the line, the hold's bound is `velocityBound` of the frames'
    /// informations; each nuisance taken as unknown can only raise it, and its derivative
    /// images must be real (all zeros would leave the Fisher matrix singular: nil).
    @Test func nuisancesCanOnlyRaiseTheHoldsBound() throws {
        var o = SimulationOptions(preset: .registrationStress, seed: 3, size: 192)
        o.framesPerStep = 4
        let sim = HeatingRunSimulator(o)
        let last = try #require((0..<sim.frameCount).last { sim.frameTruth($0).frontPositionNm != nil })
        let hold = (0..<sim.frameCount).filter { sim.frameTruth($0).stepIndex == sim.frameTruth(last).stepIndex }
        #expect(hold.count == 4)
        let information = try hold.map { try #require(sim.frontPositionInformation(frame: $0)) }
        let known = try #require(HeatingRunSimulator.velocityBound(timesS: hold.map { sim.frameTruth($0).timeS },
                                                                   information: information))
        let line = try #require(sim.holdVelocityBound(frames: hold, unknown: []))
        #expect(abs(line - known) < 1e-9 * known)
        var previous = line
        for unknown: FrontNuisances in [[.width], [.width, .mixing], [.width, .mixing, .dose]] {
            let bound = try #require(sim.holdVelocityBound(frames: hold, unknown: unknown), "\(unknown.rawValue)")
            #expect(bound >= previous * (1 - 1e-9), "\(unknown.rawValue): \(bound) against \(previous)")
            previous = bound
        }
    }

    /// The shares are parts of the whole: the intensity summed at one distance keeps none of
    /// it (TM moving from TM into Li sites conserves the counts), the site discs most of it,
    /// the dark Li sites (low variance) more than the bright TM sites.
    @Test func informationLiesInTheSublatticeContrast() throws {
        var o = SimulationOptions(preset: .registrationStress, seed: 3, size: 192)
        o.framesPerStep = 3
        let sim = HeatingRunSimulator(o)
        let frame = try #require((0..<sim.frameCount).last { sim.frameTruth($0).frontPositionNm != nil })
        let total = try #require(sim.frontPositionInformation(frame: frame))
        // Sites 3.7 px apart at this size (0.067 nm/px): discs of 1.2 px.
        let s = try #require(sim.frontInformationShares(frame: frame, discPx: 1.2))
        #expect(abs(s.total - total) <= 1e-9 * total)
        #expect(s.distance < 0.02 * total)
        #expect(s.sites > 0.6 * total && s.sites <= total && s.lockIn <= total)
        #expect(s.liDiscs > 1.5 * s.tmDiscs, "Li \(s.liDiscs / total), TM \(s.tmDiscs / total)")
    }
}
