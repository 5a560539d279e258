import Foundation

/// The apparent activation energy from hold velocities that each carry a standard error.
public struct ArrheniusFit: Sendable, Equatable {
    /// Eₐ (eV) of v = v₀·exp(−Eₐ/(k_B T)).
    public var activationEnergyEV: Double
    /// Its standard error (eV), from the curvature of χ² at the minimum, times `scaleFactor`.
    public var semEV: Double
    /// The 95 % confidence interval (eV) from the profile likelihood with the SEMs times
    /// `scaleFactor`; an end is nil where χ² does not rise far enough within ±10 eV of the
    /// estimate (unbounded by the data).
    public var ci95EV: (low: Double?, high: Double?)
    /// Birge ratio S = max(1, √(χ²/dof)) (1 without degrees of freedom): how much more the
    /// holds scatter about the Arrhenius line than their SEMs allow.
    public var scaleFactor: Double
    /// The prefactor v₀ (same unit as the velocities).
    public var prefactor: Double
    /// χ² of the fit over its `dof` = holds − 2 degrees of freedom, and the probability of a
    /// χ² at least this large if the Arrhenius model holds and the SEMs are right.
    public var chiSquare: Double
    public var dof: Int
    public var pValue: Double?

    public static func == (a: ArrheniusFit, b: ArrheniusFit) -> Bool {
        a.activationEnergyEV == b.activationEnergyEV && a.semEV == b.semEV && a.ci95EV.low == b.ci95EV.low
            && a.ci95EV.high == b.ci95EV.high && a.scaleFactor == b.scaleFactor && a.prefactor == b.prefactor
            && a.chiSquare == b.chiSquare && a.dof == b.dof
    }
}

extension Kinetics {
    /// Maximum-likelihood Arrhenius fit of velocities v̂ₖ ± sₖ at temperatures Tₖ: the
    /// weighted least squares χ²(Eₐ, v₀) = Σ ((v̂ₖ − v₀ e^{−Eₐ xₖ}) / sₖ)², xₖ = 1/(k_B Tₖ)
    /// (Bevington & Robinson, *Data Reduction and Error Analysis*, 3rd ed., ch. 6 and 8).
    ///
    /// This is the weighted regression of ln v on x with each hold weighted by
    /// 1/σ²(ln v), σ(ln v) = s/v (the delta method), evaluated at the fitted v rather than
    /// the measured one — so a hold measured low by chance is not down-weighted for it, and
    /// a hold whose velocity is barely above its noise (where ln v̂ is biased and its
    /// linearised error meaningless) still counts with the weight its data deserve. For a
    /// given Eₐ, χ² is quadratic in v₀, so v₀ is profiled out in closed form and the fit is
    /// a one-dimensional minimisation of the profile χ²ₚ(Eₐ): a 0.01 eV grid over ±10 eV
    /// around the unweighted log-linear estimate, then golden-section refinement. SEM =
    /// √(2 / χ²ₚ''); the 95 % interval is where χ²ₚ exceeds its minimum by the χ²₁ 95 %
    /// quantile, 3.841 (profile likelihood; Venzon & Moolgavkar, Appl. Stat. 37, 87, 1988).
    ///
    /// When the holds scatter about the line more than their SEMs allow (χ²/dof > 1), both
    /// are widened by the Birge ratio S = √(χ²/dof) (Birge, Phys. Rev. 40, 207, 1932; the
    /// Particle Data Group's scale factor): the SEM times S, the interval where χ²ₚ exceeds
    /// its minimum by 3.841·S². The hold SEMs come from the frames' position noise and miss
    /// what the frames cannot show, such as errors shared by a hold's frames; the scatter
    /// of the holds about the line shows part of it. With correct SEMs (three holds) the
    /// scaled SEM covers the true Eₐ about 73 % of the time instead of 68 %.
    ///
    /// Only holds with a finite velocity, a positive finite SEM and a temperature above
    /// absolute zero count; nil with fewer than `minimumHolds` (at least 2) of them, a
    /// single temperature, or no minimum inside the grid.
    public static func arrheniusFit(temperaturesC: [Double], velocities: [Double], sems: [Double],
                                    minimumHolds: Int = 3) -> ArrheniusFit? {
        var x = [Double](), v = [Double](), s = [Double]()
        for i in temperaturesC.indices where i < velocities.count && i < sems.count {
            let t = temperaturesC[i], vi = velocities[i], si = sems[i]
            guard t.isFinite, t > -273.15, vi.isFinite, si.isFinite, si > 0 else { continue }
            x.append(1 / (boltzmannEV * (t + 273.15))); v.append(vi); s.append(si)
        }
        guard x.count >= max(2, minimumHolds), let xMin = x.min(), let xMax = x.max(), xMax > xMin else { return nil }
        let xMean = x.reduce(0, +) / Double(x.count)
        let dx = x.map { $0 - xMean }
        // χ²ₚ(Eₐ) with v₀ at its optimum A(Eₐ) = Σ v̂ e/s² / Σ e²/s² (≥ 0), e = exp(−Eₐ (x − x̄)).
        func profile(_ ea: Double) -> (chi2: Double, a: Double) {
            var num = 0.0, den = 0.0
            let e = dx.map { exp(-ea * $0) }
            for i in e.indices { num += v[i] * e[i] / (s[i] * s[i]); den += e[i] * e[i] / (s[i] * s[i]) }
            let a = den > 0 ? max(0, num / den) : 0
            var c = 0.0
            for i in e.indices { let r = (v[i] - a * e[i]) / s[i]; c += r * r }
            return (c, a)
        }
        // Start: the log-linear fit of the positive velocities, else 1 eV.
        let positive = v.indices.filter { v[$0] > 0 }
        let start = Kinetics.fitLine(positive.map { x[$0] }, positive.map { log(v[$0]) }).map { -$0.slope } ?? 1
        let centre = start.isFinite ? start : 1
        let grid = stride(from: centre - 10, through: centre + 10, by: 0.01).map { $0 }
        let values = grid.map { profile($0).chi2 }
        guard let best = values.indices.min(by: { values[$0] < values[$1] }), best > 0, best < grid.count - 1 else { return nil }
        // Golden-section search inside the bracket around the grid minimum.
        var lo = grid[best - 1], hi = grid[best + 1]
        let g = (5.0.squareRoot() - 1) / 2
        var c = hi - g * (hi - lo), d = lo + g * (hi - lo)
        for _ in 0..<80 {
            if profile(c).chi2 < profile(d).chi2 { hi = d } else { lo = c }
            c = hi - g * (hi - lo); d = lo + g * (hi - lo)
        }
        let ea = 0.5 * (lo + hi)
        let (chi2, a) = profile(ea)
        // Curvature by central differences (step small against the SEMs met in practice).
        let h = 1e-3
        let curvature = (profile(ea + h).chi2 - 2 * chi2 + profile(ea - h).chi2) / (h * h)
        guard curvature > 0 else { return nil }
        let dof = x.count - 2
        let scale = dof > 0 ? Swift.max(1, (chi2 / Double(dof)).squareRoot()) : 1
        let limit = chi2 + scale * scale * Distributions.chiSquareQuantile(0.95, dof: 1)
        func crossing(from inside: Double, to outside: Double) -> Double? {
            guard profile(outside).chi2 > limit else { return nil }
            var a = inside, b = outside
            for _ in 0..<100 {
                let m = 0.5 * (a + b)
                if profile(m).chi2 > limit { b = m } else { a = m }
            }
            return 0.5 * (a + b)
        }
        return ArrheniusFit(activationEnergyEV: ea, semEV: scale * (2 / curvature).squareRoot(),
                            ci95EV: (crossing(from: ea, to: ea - 10), crossing(from: ea, to: ea + 10)),
                            scaleFactor: scale, prefactor: a * exp(ea * xMean), chiSquare: chi2, dof: dof,
                            pValue: dof > 0 ? 1 - Distributions.chiSquareCDF(chi2, dof: Double(dof)) : nil)
    }
}
