import Foundation

/// Slope of a least-squares line with its standard error.
public struct VelocityFit: Sendable, Equatable {
    /// Slope (position units per time unit).
    public var velocity: Double
    /// Standard error of the slope: √(Σ residual² / (n − 2) / Σ (t − t̄)²).
    public var sem: Double
    /// Position at time 0.
    public var intercept: Double

    public init(velocity: Double, sem: Double, intercept: Double) {
        self.velocity = velocity
        self.sem = sem
        self.intercept = intercept
    }
}

/// Front kinetics: velocities per step, the Arrhenius activation energy and the onset step.
public enum Kinetics {
    /// Boltzmann constant in eV/K (CODATA 2018).
    public static let boltzmannEV = 8.617333262e-5

    /// Ordinary least-squares line position = intercept + velocity·time (e.g. Bevington &
    /// Robinson, *Data Reduction and Error Analysis*, ch. 6), SEM from the residual scatter
    /// with n − 2 degrees of freedom. Pairs with a non-finite member are dropped; nil with
    /// fewer than 3 pairs or all times equal.
    public static func velocity(times: [Double], positions: [Double]) -> VelocityFit? {
        guard let line = fitLine(times, positions) else { return nil }
        return VelocityFit(velocity: line.slope, sem: line.slopeSEM, intercept: line.intercept)
    }

    /// Apparent activation energy from ln v = ln v₀ − Eₐ/(k_B·T), T = temperature_C + 273.15,
    /// by least squares of ln v on 1/(k_B T) (Arrhenius 1889; the science notes). Only pairs
    /// with a positive, finite velocity and a temperature above absolute zero count; nil with
    /// fewer than 3 of them or a single temperature. SEM as in `velocity`.
    public static func arrhenius(temperaturesC: [Double], velocities: [Double]) -> (activationEnergyEV: Double, semEV: Double)? {
        var x = [Double](), y = [Double]()
        for (t, v) in zip(temperaturesC, velocities) where t.isFinite && v.isFinite && v > 0 && t > -273.15 {
            x.append(1 / (boltzmannEV * (t + 273.15)))
            y.append(log(v))
        }
        guard let line = fitLine(x, y) else { return nil }
        return (-line.slope, line.slopeSEM)
    }

    /// The onset step (contract §5): the first step whose Li/TM ratio exceeds the first
    /// step's by more than three combined standard errors (√(SEM₀² + SEMₖ²)) and by at least
    /// 0.02, or whose rock-salt fraction exceeds 0.02. nil when the first step already shows
    /// rock salt (fraction > 0.02) or no step qualifies. Rules for missing values: without a
    /// first-step ratio only the rock-salt test applies; a missing SEM counts as 0 (the
    /// 0.02 margin still applies); a step of unknown temperature cannot be the onset (no
    /// onset temperature could be reported for it).
    public static func onsetStep(ratioMeans: [Double?], ratioSEMs: [Double?], rocksaltFractions: [Double?],
                                 temperaturesC: [Double?]) -> Int? {
        let n = max(ratioMeans.count, rocksaltFractions.count)
        guard n > 0 else { return nil }
        func at<T>(_ a: [T?], _ i: Int) -> T? { i < a.count ? a[i] : nil }
        func finite(_ v: Double?) -> Double? { v.flatMap { $0.isFinite ? $0 : nil } }
        if let f0 = finite(at(rocksaltFractions, 0)), f0 > 0.02 { return nil }
        let r0 = finite(at(ratioMeans, 0)), s0 = finite(at(ratioSEMs, 0)) ?? 0
        for k in 1..<max(n, 1) {
            guard finite(at(temperaturesC, k)) != nil else { continue }
            if let f = finite(at(rocksaltFractions, k)), f > 0.02 { return k }
            if let r0, let r = finite(at(ratioMeans, k)) {
                let s = finite(at(ratioSEMs, k)) ?? 0
                let rise = r - r0
                if rise >= 0.02, rise > 3 * (s0 * s0 + s * s).squareRoot() { return k }
            }
        }
        return nil
    }

    struct Line { var slope: Double; var intercept: Double; var slopeSEM: Double }

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
        return Line(slope: slope, intercept: intercept, slopeSEM: (rss / (n - 2) / sxx).squareRoot())
    }
}
