import Foundation

/// Slope of a least-squares line with its standard error.
public struct VelocityFit: Sendable, Equatable {
    /// Slope (position units per time unit).
    public var velocity: Double
    /// Standard error of the slope: √(Σ residual² / (n − 2) / Σ (t − t̄)²).
    public var sem: Double
    /// Position at time 0.
    public var intercept: Double
    /// Degrees of freedom of the SEM: points − 2.
    public var dof: Int

    public init(velocity: Double, sem: Double, intercept: Double, dof: Int = 1) {
        self.velocity = velocity
        self.sem = sem
        self.intercept = intercept
        self.dof = dof
    }

    /// Whether the data show motion, and how fast the front can be at most: the one-sided
    /// t test of v > 0 (t = v/SEM against Student's t with `dof` degrees of freedom) at
    /// `level`, and the one-sided upper confidence bound v + t₁₋ₗₑᵥₑₗ·SEM (e.g. Bevington &
    /// Robinson, ch. 11). nil when the SEM is not positive and finite.
    public func motion(level: Double = 0.05) -> (detected: Bool, upperBound: Double)? {
        guard sem.isFinite, sem > 0, dof > 0, level > 0, level < 1 else { return nil }
        let critical = Distributions.studentTQuantile(1 - level, dof: Double(dof))
        return (velocity / sem > critical, velocity + critical * sem)
    }
}

/// Front kinetics: velocities per step (here), the Arrhenius activation energy
/// (`arrheniusFit`, ArrheniusFit.swift); the onset is `OnsetTest`'s.
public enum Kinetics {
    /// Boltzmann constant in eV/K (CODATA 2018).
    public static let boltzmannEV = 8.617333262e-5

    /// Ordinary least-squares line position = intercept + velocity·time (e.g. Bevington &
    /// Robinson, *Data Reduction and Error Analysis*, ch. 6), SEM from the residual scatter
    /// with n − 2 degrees of freedom. Pairs with a non-finite member are dropped; nil with
    /// fewer than 3 pairs or all times equal.
    public static func velocity(times: [Double], positions: [Double]) -> VelocityFit? {
        guard let line = fitLine(times, positions) else { return nil }
        return VelocityFit(velocity: line.slope, sem: line.slopeSEM, intercept: line.intercept, dof: line.count - 2)
    }

    /// The slope's standard error when the positions' errors are correlated in time: the OLS
    /// SEM scaled by √((n − 2)/(n_eff − 2)), n_eff = n (1 − ρ)/(1 + ρ) from the lag-1
    /// autocorrelation ρ of the residuals about the line (Santer et al., J. Geophys. Res. 105,
    /// 7337, 2000), ρ corrected for its small-sample bias as in `OnsetTest`
    /// (ρ = (n r₁ + 1)/(n − 4)) and kept in [0, 0.9]. Positions fitted with one shared profile
    /// err together as the front moves over whatever every frame shares (the shape's own
    /// error, fixed patterns along the profile): smooth in time, so neighbouring residuals
    /// correlate, and the plain SEM, which takes them as independent, is too small. nil with
    /// fewer than 5 points or n_eff ≤ 2.5; returns (SEM, degrees of freedom n_eff − 2).
    public static func autocorrelatedSlopeSEM(times: [Double], positions: [Double]) -> (sem: Double, dof: Double)? {
        var t = [Double](), x = [Double]()
        for (a, b) in zip(times, positions) where a.isFinite && b.isFinite { t.append(a); x.append(b) }
        guard t.count >= 5, let line = fitLine(t, x) else { return nil }
        let order = t.indices.sorted { t[$0] < t[$1] }
        let r = order.map { x[$0] - line.intercept - line.slope * t[$0] }
        let zero = r.map { $0 * $0 }.reduce(0, +)
        guard zero > 0 else { return nil }
        let n = Double(r.count)
        let r1 = zip(r.dropFirst(), r).map { $0 * $1 }.reduce(0, +) / zero
        let rho = min(0.9, max(0, (n * r1 + 1) / (n - 4)))
        let effective = n * (1 - rho) / (1 + rho)
        guard effective > 2.5 else { return nil }
        return (line.slopeSEM * ((n - 2) / (effective - 2)).squareRoot(), effective - 2)
    }

    struct Line { var slope: Double; var intercept: Double; var slopeSEM: Double; var count: Int }

    static func fitLine(_ xs: [Double], _ ys: [Double]) -> Line? {
        var x = [Double](), y = [Double]()
        for (a, b) in zip(xs, ys) where a.isFinite && b.isFinite { x.append(a); y.append(b) }
        let n = Double(x.count)
        guard x.count >= 3 else { return nil }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxx = 0.0, sxy = 0.0
        for i in x.indices { sxx += (x[i] - mx) * (x[i] - mx); sxy += (x[i] - mx) * (y[i] - my) }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx, intercept = my - slope * mx
        var rss = 0.0
        for i in x.indices { let r = y[i] - intercept - slope * x[i]; rss += r * r }
        return Line(slope: slope, intercept: intercept, slopeSEM: (rss / (n - 2) / sxx).squareRoot(), count: x.count)
    }
}

extension Kinetics {
    /// Satterthwaite's degrees of freedom of a delete-one jackknife variance of a slope over
    /// the times `t`: the jackknife weighs each frame's squared residual by its leverage on
    /// the slope, aᵢ ∝ (tᵢ − t̄)², so its variance estimate has ν = (Σ aᵢ)² / Σ aᵢ² degrees of
    /// freedom, not n − 1 (Satterthwaite, Biometrics Bull. 2, 110, 1946; for robust and
    /// jackknife standard errors of regression coefficients, Bell & McCaffrey, Survey
    /// Methodology 28, 169, 2002; Imbens & Kolesár, Rev. Econ. Stat. 98, 701, 2016). Twelve
    /// equally spaced frames give 6.7, eight give 4.5: the end frames decide the slope and its
    /// error estimate alike. nil with fewer than 3 finite times or all times equal.
    public static func jackknifeSlopeDOF(times: [Double]) -> Double? {
        guard let a = slopeLeverages(times) else { return nil }
        let sum = a.reduce(0, +), squares = a.map { $0 * $0 }.reduce(0, +)
        return sum * sum / squares
    }

    /// aᵢ = (tᵢ − t̄)² over the finite times, each frame's share of a slope's leverage; nil
    /// with fewer than 3 finite times or all times equal.
    private static func slopeLeverages(_ times: [Double]) -> [Double]? {
        let t = times.filter(\.isFinite)
        guard t.count >= 3 else { return nil }
        let mean = t.reduce(0, +) / Double(t.count)
        let a = t.map { ($0 - mean) * ($0 - mean) }
        return a.reduce(0, +) > 0 ? a : nil
    }

    /// How much a delete-one jackknife over-states the variance of a least-squares slope over
    /// the times `t` with independent errors of equal variance: its expectation is κ times the
    /// slope's variance, κ = ((n − 1)/n)·Σ aᵢ/(1 − hᵢ) / Σ aᵢ with aᵢ = (tᵢ − t̄)² and hᵢ =
    /// 1/n + aᵢ/Σ a the frame's leverage (the jackknife variance is biased upward: Efron &
    /// Stein, Ann. Stat. 9, 586, 1981; its leverage form and correction as in Bell &
    /// McCaffrey 2002, above). Twelve equally spaced frames give κ = 1.20, so their jackknife
    /// SE is √1.20 = 1.10 times too large. nil as for `jackknifeSlopeDOF`.
    public static func jackknifeSlopeVarianceInflation(times: [Double]) -> Double? {
        guard let a = slopeLeverages(times) else { return nil }
        let n = Double(a.count), sum = a.reduce(0, +)
        return (n - 1) / n * a.map { $0 / (1 - 1 / n - $0 / sum) }.reduce(0, +) / sum
    }

    /// The holds' velocity SEMs with their per-frame position noise pooled over the run:
    /// σₖ = SEMₖ·√Sₖ (Sₖ = Σ(t − t̄)² over hold k's frames) is the noise of one frame's front
    /// position that hold k's SEM implies; the pooled σ² = Σ νₖσₖ² / Σ νₖ (νₖ the SEMs'
    /// degrees of freedom), and each hold's SEM becomes σ/√Sₖ with Σ νₖ degrees of freedom.
    /// A hold's SEM from its own dozen frames is itself uncertain — over simulated runs its
    /// spread from seed to seed matches 3–4 degrees of freedom, and it carries almost no
    /// information on that hold's actual error — while the position noise is a property of
    /// the run's imaging (dose, front width and contrast), about the same in every hold (the
    /// holds' true travel errors agree within ±20 % on every simulator preset). The pooled
    /// SEM keeps a hold whose SEM came out small by chance from claiming a precision its
    /// frames do not have, and from taking the Arrhenius fit and shrinking Eₐ's SEM with it
    /// (the full-pooling limit of the moderated variances of Smyth, Stat. Appl. Genet. Mol.
    /// Biol. 3:3, 2004). A hold whose own noise is larger than the other holds' pooled noise
    /// by an F test at `heterogeneityLevel` (one-sided; a frame series that went bad) keeps
    /// its own SEM and degrees of freedom. Entries that are not positive and finite (SEM,
    /// degrees of freedom, spread) are returned unchanged and do not enter the pool.
    public static func pooledVelocitySEMs(sems: [Double], dofs: [Double], timeSpreadsS: [Double],
                                          heterogeneityLevel: Double = 0.01) -> [(sem: Double, dof: Double)] {
        let unchanged = zip(sems, dofs).map { (sem: $0, dof: $1) }
        guard sems.count == dofs.count, sems.count == timeSpreadsS.count else { return unchanged }
        let pooled = sems.indices.filter {
            sems[$0].isFinite && sems[$0] > 0 && dofs[$0].isFinite && dofs[$0] > 0 && timeSpreadsS[$0].isFinite && timeSpreadsS[$0] > 0
        }
        let noise = pooled.map { sems[$0] * sems[$0] * timeSpreadsS[$0] * timeSpreadsS[$0] }
        let weighted = zip(pooled, noise).map { dofs[$0] * $1 }.reduce(0, +), dof = pooled.map { dofs[$0] }.reduce(0, +)
        guard dof > 0, weighted > 0 else { return unchanged }
        var out = unchanged
        for (j, k) in pooled.enumerated() {
            let othersDOF = dof - dofs[k], others = (weighted - dofs[k] * noise[j]) / othersDOF
            if othersDOF > 0, others > 0,
               1 - Distributions.fCDF(noise[j] / others, dof1: dofs[k], dof2: othersDOF) < heterogeneityLevel { continue }
            out[k] = ((weighted / dof).squareRoot() / timeSpreadsS[k], dof)
        }
        return out
    }
}
