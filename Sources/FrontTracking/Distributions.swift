import Foundation

/// The sampling distributions the kinetics' tests and intervals need: Student's t (CDF and
/// quantiles), χ² (CDF) and F (CDF), through the regularised incomplete beta and gamma functions.
///
/// Method: Press, Teukolsky, Vetterling & Flannery, *Numerical Recipes*, 3rd ed. (2007),
/// §6.2 (incomplete gamma: series below a + 1, Legendre's continued fraction above) and
/// §6.4 (incomplete beta: its continued fraction, evaluated by the modified Lentz method,
/// with the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly).
/// Quantiles by bisection on the CDF: the tests call them a few times per run.
public enum Distributions {
    /// P(T ≤ t) for Student's t with `dof` > 0 degrees of freedom (∞: the standard normal).
    public static func studentTCDF(_ t: Double, dof: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : (t < 0 ? 0 : .nan) }
        guard dof.isFinite else { return 0.5 * erfc(-t / 2.0.squareRoot()) }
        guard dof > 0 else { return .nan }
        let tail = 0.5 * incompleteBeta(dof / (dof + t * t), dof / 2, 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The t with P(T ≤ t) = p, 0 < p < 1.
    public static func studentTQuantile(_ p: Double, dof: Double) -> Double {
        guard p > 0, p < 1, dof > 0 else { return .nan }
        if p == 0.5 { return 0 }
        var lo = -1.0, hi = 1.0
        while studentTCDF(lo, dof: dof) > p { lo *= 2; if lo < -1e12 { return -.infinity } }
        while studentTCDF(hi, dof: dof) < p { hi *= 2; if hi > 1e12 { return .infinity } }
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if studentTCDF(mid, dof: dof) < p { lo = mid } else { hi = mid }
            if hi - lo <= 1e-12 * max(1, abs(mid)) { break }
        }
        return 0.5 * (lo + hi)
    }

    /// P(X ≤ x) for χ² with `dof` degrees of freedom: P(dof/2, x/2), the regularised lower
    /// incomplete gamma function.
    public static func chiSquareCDF(_ x: Double, dof: Double) -> Double {
        guard dof > 0, !x.isNaN else { return .nan }
        guard x > 0 else { return 0 }
        return incompleteGamma(dof / 2, x / 2)
    }

    /// The x with P(X ≤ x) = p for χ² with `dof` degrees of freedom.
    public static func chiSquareQuantile(_ p: Double, dof: Double) -> Double {
        guard p > 0, p < 1, dof > 0 else { return .nan }
        var lo = 0.0, hi = max(1, dof)
        while chiSquareCDF(hi, dof: dof) < p { hi *= 2; if hi > 1e12 { return .infinity } }
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if chiSquareCDF(mid, dof: dof) < p { lo = mid } else { hi = mid }
            if hi - lo <= 1e-12 * max(1, mid) { break }
        }
        return 0.5 * (lo + hi)
    }

    /// P(F ≤ f) for Fisher's F with (`dof1`, `dof2`) degrees of freedom:
    /// I_{d₁f/(d₁f + d₂)}(d₁/2, d₂/2).
    public static func fCDF(_ f: Double, dof1: Double, dof2: Double) -> Double {
        guard dof1 > 0, dof2 > 0, !f.isNaN else { return .nan }
        guard f > 0 else { return 0 }
        guard f.isFinite else { return 1 }
        return incompleteBeta(dof1 * f / (dof1 * f + dof2), dof1 / 2, dof2 / 2)
    }

    /// I_x(a, b), the regularised incomplete beta function, 0 ≤ x ≤ 1, a, b > 0.
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let front = exp(logBeta + a * log(x) + b * log(1 - x))
        // The continued fraction converges quickly for x < (a + 1)/(a + b + 2).
        if x < (a + 1) / (a + b + 2) { return front * betaFraction(x, a, b) / a }
        return 1 - front * betaFraction(1 - x, b, a) / b
    }

    /// The continued fraction of I_x(a, b) (Numerical Recipes `betacf`), modified Lentz.
    private static func betaFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300, eps = 1e-15
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0, d = 1 - qab * x / qap
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let m2 = Double(2 * m), md = Double(m)
            var aa = md * (b - md) * x / ((qam + m2) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + md) * (qab + md) * x / ((a + m2) * (qap + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < eps { break }
        }
        return h
    }

    /// P(a, x), the regularised lower incomplete gamma function, a > 0, x ≥ 0.
    static func incompleteGamma(_ a: Double, _ x: Double) -> Double {
        guard x > 0 else { return 0 }
        let logFront = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            // Series: Σ xⁿ / (a (a+1) … (a+n)).
            var term = 1 / a, sum = term, ap = a
            for _ in 0..<10_000 {
                ap += 1; term *= x / ap; sum += term
                if abs(term) < abs(sum) * 1e-16 { break }
            }
            return min(1, sum * exp(logFront))
        }
        // Continued fraction for Q(a, x), modified Lentz.
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if abs(d) < tiny { d = tiny }
            c = b + an / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return max(0, 1 - exp(logFront) * h)
    }
}
