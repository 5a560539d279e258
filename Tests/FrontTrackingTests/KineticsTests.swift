import TestSupport
import Foundation
import Testing
import FrontTracking

@Suite("Kinetics")
struct KineticsTests {
    @Test("velocity: exact slope, intercept and the analytic SEM")
    func velocityAnalytic() throws {
        // Residuals orthogonal to 1 and t, so the fit returns the line exactly and the SEM is
        // √(Σr²/(n−2)/Σ(t−t̄)²) = √(0.025/3/10).
        let t: [Double] = [0, 1, 2, 3, 4]
        let r: [Double] = [0.05, -0.10, 0, 0.10, -0.05]
        let x = zip(t, r).map { 1 + 2 * $0 + $1 }
        let fit = try #require(Kinetics.velocity(times: t, positions: x))
        #expect(abs(fit.velocity - 2) < 1e-12)
        #expect(abs(fit.intercept - 1) < 1e-12)
        #expect(abs(fit.sem - (0.025 / 3 / 10).squareRoot()) < 1e-12)
    }

    @Test("velocity SEM matches the scatter of slopes over noise realisations")
    func velocitySEMMonteCarlo() throws {
        var rng = SplitMix64(seed: 7)
        let t = (0..<12).map { Double($0) * 2.5 }
        var slopes = [Double](), sems = [Double]()
        for _ in 0..<2000 {
            let x = t.map { 3 + 0.4 * $0 + 0.5 * rng.gaussian() }
            let fit = try #require(Kinetics.velocity(times: t, positions: x))
            slopes.append(fit.velocity); sems.append(fit.sem)
        }
        let mean = slopes.reduce(0, +) / Double(slopes.count)
        let sd = (slopes.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(slopes.count - 1)).squareRoot()
        let meanSEM = sems.reduce(0, +) / Double(sems.count)
        let analytic = 0.5 / t.map { ($0 - t.reduce(0, +) / 12) * ($0 - t.reduce(0, +) / 12) }.reduce(0, +).squareRoot()
        #expect(abs(mean - 0.4) < 3 * analytic / 2000.0.squareRoot() + 1e-9)
        #expect(abs(sd / analytic - 1) < 0.06, "scatter \(sd) vs σ/√Sxx \(analytic)")
        #expect(abs(meanSEM / analytic - 1) < 0.06, "mean SEM \(meanSEM) vs \(analytic)")
    }

    @Test("velocity needs 3 finite points and distinct times")
    func velocityNil() {
        #expect(Kinetics.velocity(times: [0, 1], positions: [0, 1]) == nil)
        #expect(Kinetics.velocity(times: [0, 1, .nan], positions: [0, 1, 2]) == nil)
        #expect(Kinetics.velocity(times: [2, 2, 2], positions: [0, 1, 2]) == nil)
        #expect(Kinetics.velocity(times: [0, 1, 2, .nan], positions: [0, 1, 2, 5])?.velocity == 1)
    }

    @Test("Student t, chi-square and F: tabulated quantiles and CDFs")
    func distributions() {
        // Tabulated values (e.g. Abramowitz & Stegun, tables 26.7 and 26.8).
        #expect(abs(Distributions.studentTQuantile(0.975, dof: 10) - 2.228138852) < 1e-6)
        #expect(abs(Distributions.studentTQuantile(0.95, dof: 5) - 2.015048373) < 1e-6)
        #expect(abs(Distributions.studentTQuantile(0.995, dof: 2) - 9.924843201) < 1e-5)
        #expect(abs(Distributions.studentTQuantile(0.975, dof: .infinity) - 1.959963985) < 1e-6)
        #expect(abs(Distributions.studentTCDF(0, dof: 7) - 0.5) < 1e-12)
        #expect(abs(Distributions.studentTCDF(1.3, dof: 4) + Distributions.studentTCDF(-1.3, dof: 4) - 1) < 1e-12)
        #expect(abs(Distributions.chiSquareQuantile(0.95, dof: 1) - 3.841458821) < 1e-6)
        #expect(abs(Distributions.chiSquareQuantile(0.95, dof: 3) - 7.814727903) < 1e-6)
        #expect(abs(Distributions.chiSquareCDF(2, dof: 2) - (1 - exp(-1))) < 1e-12)
        #expect(abs(Distributions.chiSquareCDF(60, dof: 40) - 0.9781265316) < 1e-8)
        // F CDFs (scipy.stats.f): the 95 % point of F(2, 20) is 3.4928.
        #expect(abs(Distributions.fCDF(1, dof1: 5, dof2: 10) - 0.5348805735) < 1e-8)
        #expect(abs(Distributions.fCDF(3.5, dof1: 2, dof2: 20) - 0.9502649779) < 1e-8)
        #expect(abs(Distributions.fCDF(0.2, dof1: 8, dof2: 3) - 0.0305783975) < 1e-8)
        #expect(Distributions.fCDF(0, dof1: 3, dof2: 3) == 0)
    }

    @Test("motion: stationary fronts are falsely detected 5 % of the time; the upper bound covers 95 %")
    func motionTest() throws {
        var rng = SplitMix64(seed: 11)
        let t = (0..<12).map { Double($0) * 25 }
        var detected = 0, covered = 0
        let trials = 4000
        for _ in 0..<trials {
            let x = t.map { _ in 0.05 * rng.gaussian() }
            let m = try #require(Kinetics.velocity(times: t, positions: x)?.motion(level: 0.05))
            if m.detected { detected += 1 }
            if m.upperBound >= 0 { covered += 1 }
        }
        let rate = Double(detected) / Double(trials), coverage = Double(covered) / Double(trials)
        #expect(abs(rate - 0.05) < 0.012, "false detections \(rate)")
        #expect(abs(coverage - 0.95) < 0.012, "upper-bound coverage \(coverage)")
        // 0.6 nm in 275 s against 0.05 nm of noise per frame: detected every time.
        var found = 0
        for _ in 0..<200 {
            let x = t.map { 0.6 * $0 / 275 + 0.05 * rng.gaussian() }
            if try #require(Kinetics.velocity(times: t, positions: x)?.motion())?.detected == true { found += 1 }
        }
        #expect(found == 200)
        #expect(VelocityFit(velocity: 1, sem: 0, intercept: 0, dof: 5).motion() == nil)
    }

    static let arrheniusTemps: [Double] = [200, 225, 250]
    static func arrheniusVelocity(_ tC: Double, ea: Double = 1.0, v0: Double = 4e7) -> Double {
        v0 * exp(-ea / (Kinetics.boltzmannEV * (tC + 273.15)))
    }

    @Test("Arrhenius fit: exact without noise, nil without enough holds")
    func arrheniusExact() throws {
        let v = Self.arrheniusTemps.map { Self.arrheniusVelocity($0) }
        let fit = try #require(Kinetics.arrheniusFit(temperaturesC: Self.arrheniusTemps, velocities: v,
                                                     sems: v.map { 0.03 * $0 }))
        #expect(abs(fit.activationEnergyEV - 1) < 1e-6)
        #expect(abs(fit.prefactor / 4e7 - 1) < 1e-4)
        #expect(fit.chiSquare < 1e-8 && fit.dof == 1)
        let lo = try #require(fit.ci95EV.low), hi = try #require(fit.ci95EV.high)
        // Nearly linear here: the 95 % interval is about ±1.96 SEM.
        #expect(abs((hi - lo) / (2 * 1.96 * fit.semEV) - 1) < 0.05, "CI [\(lo), \(hi)], SEM \(fit.semEV)")
        #expect(Kinetics.arrheniusFit(temperaturesC: [200, 225], velocities: Array(v.prefix(2)), sems: [1, 1]) == nil)
        #expect(Kinetics.arrheniusFit(temperaturesC: [200, 200, 200], velocities: v, sems: v) == nil)
        #expect(Kinetics.arrheniusFit(temperaturesC: Self.arrheniusTemps, velocities: v, sems: [0, 0, 0]) == nil)
    }

    /// Coverage of the true Ea = 1 over `trials` noisy sets of three holds whose errors are
    /// `noiseScale` times their stated SEMs: by the SEM as fitted (before the Birge ratio),
    /// by the reported (scaled) SEM and by the 95 % interval; and the scatter of Ea.
    static func arrheniusCoverage(noiseScale: Double, trials: Int = 2000, seed: UInt64 = 5) throws
        -> (plain: Double, scaled: Double, ci: Double, mean: Double, sd: Double, meanPlainSEM: Double) {
        var rng = SplitMix64(seed: seed)
        // Relative SEMs as on the slow-front preset: the 200 °C hold's velocity is barely
        // 3 SEM above zero, the others 3 % and 1 %.
        let relative = [0.3, 0.03, 0.01]
        let truth = arrheniusTemps.map { arrheniusVelocity($0) }
        var plain = 0, scaled = 0, inCI = 0, estimates = [Double](), sems = [Double]()
        for _ in 0..<trials {
            let s = zip(truth, relative).map { $0 * $1 }
            let v = zip(truth, s).map { $0 + noiseScale * $1 * rng.gaussian() }
            let fit = try #require(Kinetics.arrheniusFit(temperaturesC: arrheniusTemps, velocities: v, sems: s))
            let error = abs(fit.activationEnergyEV - 1)
            if error <= fit.semEV / fit.scaleFactor { plain += 1 }
            if error <= fit.semEV { scaled += 1 }
            if let lo = fit.ci95EV.low, let hi = fit.ci95EV.high, lo <= 1, hi >= 1 { inCI += 1 }
            estimates.append(fit.activationEnergyEV); sems.append(fit.semEV / fit.scaleFactor)
        }
        let n = Double(trials)
        let mean = estimates.reduce(0, +) / n
        let sd = (estimates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot()
        return (Double(plain) / n, Double(scaled) / n, Double(inCI) / n, mean, sd, sems.reduce(0, +) / n)
    }

    @Test("Arrhenius fit: the fitted SEM covers the true Ea as often as it says, a noisy slow hold included; the Birge ratio widens it a little")
    func arrheniusCoverage() throws {
        let c = try Self.arrheniusCoverage(noiseScale: 1)
        #expect(abs(c.mean - 1) < 3 * c.sd / 2000.0.squareRoot() + 0.002, "mean Ea \(c.mean)")
        #expect(abs(c.meanPlainSEM / c.sd - 1) < 0.1, "SEM \(c.meanPlainSEM) vs scatter \(c.sd)")
        #expect(abs(c.plain - 0.683) < 0.035, "fitted SEM coverage \(c.plain)")
        // χ²₁ exceeds 1 on a third of the sets, so with correct SEMs the scaled SEM and
        // interval cover somewhat more than their nominal 68 and 95 %.
        #expect(c.scaled > c.plain + 0.02 && c.scaled < 0.78, "scaled SEM coverage \(c.scaled)")
        #expect(c.ci >= 0.95 && c.ci < 0.99, "95 % interval coverage \(c.ci)")
    }

    @Test("Arrhenius fit: with hold errors 30 % larger than their SEMs, the Birge ratio brings the coverage back toward 68 %")
    func arrheniusCoverageUnderestimatedSEMs() throws {
        let c = try Self.arrheniusCoverage(noiseScale: 1.3, seed: 6)
        #expect(c.plain < 0.60, "fitted SEM coverage \(c.plain)")
        #expect(c.scaled > c.plain + 0.05 && c.scaled > 0.60, "scaled SEM coverage \(c.scaled)")
        #expect(c.ci > 0.88, "95 % interval coverage \(c.ci)")
    }

    /// A hold's frames as an AR(1) series: x_t = ρ x_{t−1} + √(1 − ρ²) σ ε_t.
    static func ar1(_ n: Int, mean: Double, sigma: Double, rho: Double, rng: inout SplitMix64) -> [Double] {
        var x = sigma * rng.gaussian(), out = [Double]()
        for _ in 0..<n {
            out.append(mean + x)
            x = rho * x + (1 - rho * rho).squareRoot() * sigma * rng.gaussian()
        }
        return out
    }

    @Test("onset: the stated false-alarm rate holds with correlated frames; a rise of 6 noise SDs is found at its hold")
    func onsetFalseAlarms() {
        var rng = SplitMix64(seed: 9)
        let temps: [Double?] = [25, 150, 175, 200, 225, 250]
        let trials = 2000
        var falseAlarms = 0, naiveAlarms = 0, found = 0
        for _ in 0..<trials {
            // No onset: six holds of 12 frames, AR(1) with ρ = 0.5.
            let flat = (0..<6).map { _ in Self.ar1(12, mean: 0.03, sigma: 0.002, rho: 0.5, rng: &rng) }
            let r = OnsetTest.test(ratios: flat, hasFront: Array(repeating: false, count: 6), temperaturesC: temps,
                                   configuration: .init(falseAlarmRate: 0.05))
            if r.onsetStep != nil { falseAlarms += 1 }
            // The same test with the frames taken as independent.
            let naive = OnsetTest.test(ratios: flat, hasFront: Array(repeating: false, count: 6), temperaturesC: temps,
                                       configuration: .init(falseAlarmRate: 0.05, maximumAutocorrelation: 0))
            if naive.onsetStep != nil { naiveAlarms += 1 }
            // A rise of 0.012 (6 σ of one frame) from hold 2 on, frames less correlated (ρ = 0.3).
            let rising = (0..<6).map { k in Self.ar1(12, mean: 0.03 + (k >= 2 ? 0.012 : 0), sigma: 0.002, rho: 0.3, rng: &rng) }
            if OnsetTest.test(ratios: rising, hasFront: Array(repeating: false, count: 6), temperaturesC: temps).onsetStep == 2 {
                found += 1
            }
        }
        let rate = Double(falseAlarms) / Double(trials), naive = Double(naiveAlarms) / Double(trials)
        #expect(rate <= 0.075, "false alarms \(rate) at a stated 5 %")
        #expect(naive > 2 * rate, "independent frames assumed: \(naive) false alarms")
        #expect(Double(found) / Double(trials) > 0.9, "rise found at its hold in \(found) of \(trials)")
    }

    @Test("onset: a front counts, a baseline with a front gives none, unknown temperatures are skipped")
    func onsetRules() {
        var flat = [[Double]]()
        for k in 0..<4 {
            var hold = [Double]()
            for i in 0..<10 { hold.append(0.03 + 0.001 * Double((i * 7 + k) % 5)) }
            flat.append(hold)
        }
        #expect(OnsetTest.test(ratios: flat, hasFront: [false, false, true, true], temperaturesC: [25, 50, 75, 100]).onsetStep == 2)
        let r = OnsetTest.test(ratios: flat, hasFront: [true, true, true, true], temperaturesC: [25, 50, 75, 100])
        #expect(r.onsetStep == nil && r.baselineTransformed)
        var risen = flat
        risen[1] = risen[1].map { $0 + 0.05 }; risen[2] = risen[2].map { $0 + 0.05 }
        #expect(OnsetTest.test(ratios: risen, hasFront: [false, false, false, false], temperaturesC: [25, nil, 75, 100]).onsetStep == 2)
        #expect(OnsetTest.test(ratios: [], hasFront: [], temperaturesC: []).onsetStep == nil)
        #expect(OnsetTest.effectiveSize(12, 0) == 12)
        #expect(abs(OnsetTest.effectiveSize(1000, 0.5) - 1000.0 / 3) < 2)
    }
}

@Suite("Kinetics: SEM degrees of freedom and pooled hold noise")
struct KineticsPoolingTests {
    @Test("jackknife slope degrees of freedom: (Σ a)² / Σ a², a = (t − t̄)²")
    func jackknifeDOF() throws {
        // 12 equally spaced frames: Σa = 143, Σa² = 3038.75 (in units of the spacing).
        let twelve = try #require(Kinetics.jackknifeSlopeDOF(times: (0..<12).map { 25 * Double($0) }))
        #expect(abs(twelve - 143.0 * 143.0 / 3038.75) < 1e-9)
        let eight = try #require(Kinetics.jackknifeSlopeDOF(times: (0..<8).map(Double.init)))
        #expect(abs(eight - 42.0 * 42.0 / 388.5) < 1e-9)
        #expect(Kinetics.jackknifeSlopeDOF(times: [1, 1, 1]) == nil)
        #expect(Kinetics.jackknifeSlopeDOF(times: [1, 2]) == nil)
    }

    @Test("jackknife inflation of a slope's variance: κ = ((n − 1)/n) Σ a/(1 − h) / Σ a, as a Monte Carlo shows")
    func jackknifeInflation() throws {
        // 12 equally spaced frames: Σ a/(1 − h) = 187.4 over Σ a = 143 (spacing units).
        let t = (0..<12).map { 25 * Double($0) }
        let kappa = try #require(Kinetics.jackknifeSlopeVarianceInflation(times: t))
        #expect(abs(kappa - 1.2009) < 1e-3)
        // The mean delete-one jackknife variance of the least-squares slope over white noise,
        // against the slope's variance σ²/Σa: their ratio is κ (uneven times: end frames of
        // high leverage, as in a hold with a late frame).
        var rng = SplitMix64(seed: 5)
        let uneven: [Double] = [0, 20, 45, 70, 90, 115, 140, 160, 185, 210, 300]
        let mean = uneven.reduce(0, +) / Double(uneven.count)
        let sxx = uneven.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
        var total = 0.0
        let trials = 10000
        for _ in 0..<trials {
            let x = uneven.map { 1 + 0.02 * $0 + rng.gaussian() }
            let slopes = uneven.indices.map { i in
                Kinetics.velocity(times: uneven.enumerated().filter { $0.offset != i }.map(\.element),
                                  positions: x.enumerated().filter { $0.offset != i }.map(\.element))!.velocity
            }
            let g = Double(slopes.count), m = slopes.reduce(0, +) / g
            total += (g - 1) / g * slopes.map { ($0 - m) * ($0 - m) }.reduce(0, +)
        }
        let measured = total / Double(trials) * sxx
        let predicted = try #require(Kinetics.jackknifeSlopeVarianceInflation(times: uneven))
        #expect(predicted > 1.3)
        #expect(abs(measured / predicted - 1) < 0.05, "jackknife variance over σ²/Σa \(measured), predicted \(predicted)")
        #expect(Kinetics.jackknifeSlopeVarianceInflation(times: [1, 1, 1]) == nil)
    }

    @Test("pooled SEMs: one per-frame noise over the holds, weighted by degrees of freedom")
    func pooled() {
        // Holds with time spreads 10 and 20 s; their SEMs imply per-frame noise 0.1 and 0.2
        // with 6 and 2 degrees of freedom: pooled √((6·0.01 + 2·0.04)/8) = √0.0175, 8 dof.
        let s = Kinetics.pooledVelocitySEMs(sems: [0.01, 0.01, .nan], dofs: [6, 2, 5], timeSpreadsS: [10, 20, 5])
        let sigma = 0.0175.squareRoot()
        #expect(abs(s[0].sem - sigma / 10) < 1e-12 && s[0].dof == 8)
        #expect(abs(s[1].sem - sigma / 20) < 1e-12 && s[1].dof == 8)
        #expect(s[2].sem.isNaN && s[2].dof == 5)
        // Without spreads nothing is pooled.
        #expect(Kinetics.pooledVelocitySEMs(sems: [0.01, 0.02], dofs: [3, 3], timeSpreadsS: [.nan, .nan]).map(\.sem) == [0.01, 0.02])
    }

    @Test("pooled SEMs: a hold far noisier than the others keeps its own SEM")
    func pooledHeterogeneity() {
        // Per-frame noise 0.1, 0.1, 0.1 and 0.4 (10 dof each): the last one's F = 16 against
        // the others' pool (10, 30 dof) is far beyond the 1 % level, so it keeps its own.
        let noisy = Kinetics.pooledVelocitySEMs(sems: [0.01, 0.01, 0.01, 0.04], dofs: [10, 10, 10, 10],
                                                timeSpreadsS: [10, 10, 10, 10])
        #expect(noisy[3].sem == 0.04 && noisy[3].dof == 10)
        let rest = ((3 * 0.01 + 0.16) / 4).squareRoot() / 10
        #expect(noisy[0..<3].allSatisfy { abs($0.sem - rest) < 1e-12 && $0.dof == 40 })
        // At 1.6× the others' noise (F = 2.56, p ≈ 0.02) it is pooled.
        let mild = Kinetics.pooledVelocitySEMs(sems: [0.01, 0.01, 0.01, 0.016], dofs: [10, 10, 10, 10],
                                               timeSpreadsS: [10, 10, 10, 10])
        #expect(mild.allSatisfy { $0.dof == 40 })
    }
}
