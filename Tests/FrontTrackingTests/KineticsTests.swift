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

    @Test("Arrhenius recovers Ea from noise-free and noisy v(T)")
    func arrhenius() throws {
        let ea = 1.5, v0 = 1e13
        let temps: [Double] = [450, 475, 500, 525, 550]
        let v = temps.map { v0 * exp(-ea / (Kinetics.boltzmannEV * ($0 + 273.15))) }
        let exact = try #require(Kinetics.arrhenius(temperaturesC: temps, velocities: v))
        #expect(abs(exact.activationEnergyEV - ea) < 0.01)
        #expect(exact.semEV < 1e-6)
        // 5 % multiplicative noise: within 3 SEM, and the SEM is of the expected size.
        var rng = SplitMix64(seed: 3)
        let noisy = v.map { $0 * exp(0.05 * rng.gaussian()) }
        let fit = try #require(Kinetics.arrhenius(temperaturesC: temps, velocities: noisy))
        #expect(abs(fit.activationEnergyEV - ea) < 3 * fit.semEV + 1e-9)
        #expect(fit.semEV > 0.005 && fit.semEV < 0.2)
        // Non-positive velocities are left out; fewer than 3 left → nil.
        let withStalls = try #require(Kinetics.arrhenius(temperaturesC: temps + [300, 325], velocities: v + [0, -0.01]))
        #expect(abs(withStalls.activationEnergyEV - ea) < 0.01)
        #expect(Kinetics.arrhenius(temperaturesC: [400, 500, 600], velocities: [1, 0, 2]) == nil)
    }

    @Test("onset step: ratio rise, rock salt, and the null cases")
    func onset() {
        let temps: [Double?] = [25, 50, 75, 100, 125]
        // Ratio rises by 0.05 at step 3, SEMs 0.005 → 7 combined SEM.
        #expect(Kinetics.onsetStep(ratioMeans: [0.10, 0.10, 0.11, 0.15, 0.2], ratioSEMs: [0.005, 0.005, 0.005, 0.005, 0.005],
                                   rocksaltFractions: [0, 0, 0, 0, 0.1], temperaturesC: temps) == 3)
        // Rock salt first (fraction 0.03 > 0.02 at step 2), ratio flat.
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.1, 0.1, 0.1, 0.1], ratioSEMs: [0.01, 0.01, 0.01, 0.01, 0.01],
                                   rocksaltFractions: [0, 0.01, 0.03, 0.2, 0.5], temperaturesC: temps) == 2)
        // Rise of 0.03 but noisy (SEM 0.01 each → 3 SEM = 0.042): not yet; 0.05 at step 4 is.
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.1, 0.13, 0.12, 0.15], ratioSEMs: [0.01, 0.01, 0.01, 0.01, 0.01],
                                   rocksaltFractions: [0, 0, 0, 0, 0], temperaturesC: temps) == 4)
        // Significant (many SEM) but below the 0.02 floor: no onset.
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.11, 0.115, 0.118, 0.119], ratioSEMs: [0.0001, 0.0001, 0.0001, 0.0001, 0.0001],
                                   rocksaltFractions: [0, 0, 0, 0, 0.02], temperaturesC: temps) == nil)
        // First step already rock salt: nil even though later steps rise.
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.3, 0.5], ratioSEMs: [0.01, 0.01, 0.01],
                                   rocksaltFractions: [0.05, 0.3, 0.6], temperaturesC: [25, 50, 75]) == nil)
        // Nothing happens.
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.1], ratioSEMs: [0.01, 0.01], rocksaltFractions: [0, 0], temperaturesC: [25, 50]) == nil)
        #expect(Kinetics.onsetStep(ratioMeans: [], ratioSEMs: [], rocksaltFractions: [], temperaturesC: []) == nil)
        // Missing first-step ratio: only the rock-salt test; unknown temperature is skipped.
        #expect(Kinetics.onsetStep(ratioMeans: [nil, 0.5, 0.5], ratioSEMs: [nil, 0.01, 0.01],
                                   rocksaltFractions: [0, 0, 0.1], temperaturesC: [25, 50, 75]) == 2)
        #expect(Kinetics.onsetStep(ratioMeans: [0.1, 0.3, 0.3], ratioSEMs: [0.01, 0.01, 0.01],
                                   rocksaltFractions: [0, 0, 0], temperaturesC: [25, nil, 75]) == 2)
    }
}
