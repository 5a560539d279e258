import Foundation

/// The project's one place for small dense linear algebra, shared by every stage: a linear
/// solve (Gaussian elimination with partial pivoting), weighted linear least squares through
/// the normal equations, Levenberg–Marquardt for a handful of parameters (Marquardt,
/// J. SIAM 11 (1963) 431), and the order statistics the robust fits use. Sizes here are
/// ≤ a few tens of parameters and ≤ a few thousand residuals, so plain elimination is
/// enough and LAPACK would add a dependency without a gain.
public enum LeastSquares {
    /// Solves `a·x = b` (n×n, row-major) by Gaussian elimination with partial pivoting;
    /// nil when the matrix is singular to working precision. `pivoting: false` eliminates in
    /// the given order, which is stable for symmetric positive-definite matrices such as
    /// normal equations (Golub & Van Loan, Matrix Computations, §4.2).
    public static func solve(_ a: [Double], _ b: [Double], n: Int, pivoting: Bool = true) -> [Double]? {
        guard n > 0, a.count == n * n, b.count == n else { return nil }
        var m = a, v = b
        let scale = max(m.map(abs).max() ?? 0, 1e-300)
        for col in 0..<n {
            var pivot = col
            for r in col..<n where pivoting && abs(m[r * n + col]) > abs(m[pivot * n + col]) { pivot = r }
            guard abs(m[pivot * n + col]) > 1e-14 * scale else { return nil }
            if pivot != col {
                for c in 0..<n { m.swapAt(col * n + c, pivot * n + c) }
                v.swapAt(col, pivot)
            }
            let d = m[col * n + col]
            for r in (col + 1)..<n {
                let f = m[r * n + col] / d
                if f == 0 { continue }
                for c in col..<n { m[r * n + c] -= f * m[col * n + c] }
                v[r] -= f * v[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = v[r]
            for c in (r + 1)..<n { s -= m[r * n + c] * x[c] }
            x[r] = s / m[r * n + r]
        }
        return x.allSatisfy(\.isFinite) ? x : nil
    }

    /// The Cholesky factor L of a symmetric positive-definite `a = L·Lᵀ` (n×n, row-major;
    /// the lower triangle of the result holds L). A pivot at or below zero gives nil, or with
    /// `pivotFloor` is raised to it (a semi-definite system, regularised). Golub & Van Loan,
    /// Matrix Computations (4th ed., 2013), §4.2.
    public static func choleskyFactor(_ a: [Double], n: Int, pivotFloor: Double? = nil) -> [Double]? {
        var l = a
        for j in 0..<n {
            var d = l[j * n + j]
            for k in 0..<j { d -= l[j * n + k] * l[j * n + k] }
            if let floor = pivotFloor { d = max(d, floor) } else if !(d > 0) { return nil }
            d = d.squareRoot()
            l[j * n + j] = d
            for i in (j + 1)..<max(n, j + 1) {
                var s = l[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = s / d
            }
        }
        return l
    }

    /// Solves `L·Lᵀ·x = b` given the factor from `choleskyFactor`: forward, then back substitution.
    public static func choleskySolve(factor l: [Double], _ b: [Double], n: Int) -> [Double] {
        var y = b
        for i in 0..<n {
            for k in 0..<i { y[i] -= l[i * n + k] * y[k] }
            y[i] /= l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            for k in (i + 1)..<max(n, i + 1) { y[i] -= l[k * n + i] * y[k] }
            y[i] /= l[i * n + i]
        }
        return y
    }

    /// Ordinary (optionally weighted) linear least squares: the coefficients minimising
    /// Σ w·(y − X·c)², X row-major with `p` columns. Normal equations with a tiny ridge so
    /// a degenerate column cannot blow up the solve.
    public static func linear(design x: [Double], p: Int, y: [Double], weights: [Double]? = nil) -> [Double]? {
        guard x.count == y.count * p else { return nil }
        return LinearDesign(design: x, p: p, weights: weights)?.solve(y)
    }

    /// One design's normal matrix XᵀWX (with `linear`'s ridge), formed once for solving with
    /// many right-hand sides y — the same numbers as `linear` for each.
    public struct LinearDesign: Sendable {
        public let design: [Double]
        public let p: Int
        let weights: [Double]?
        let normal: [Double]

        /// nil with fewer rows than columns or a design that is not rows × `p`.
        public init?(design x: [Double], p: Int, weights: [Double]? = nil) {
            guard p > 0, x.count % p == 0 else { return nil }
            let n = x.count / p
            guard n >= p, weights.map({ $0.count == n }) ?? true else { return nil }
            var ata = [Double](repeating: 0, count: p * p)
            for i in 0..<n {
                let w = weights?[i] ?? 1
                for a in 0..<p {
                    let xa = x[i * p + a] * w
                    for b in a..<p { ata[a * p + b] += xa * x[i * p + b] }
                }
            }
            for a in 0..<p { for b in 0..<a { ata[a * p + b] = ata[b * p + a] } }
            let trace = (0..<p).reduce(0.0) { $0 + ata[$1 * p + $1] }
            for a in 0..<p { ata[a * p + a] += 1e-12 * trace / Double(p) }
            (design, self.p, self.weights, normal) = (x, p, weights, ata)
        }

        /// The coefficients for `y` (one value per design row); nil when singular.
        public func solve(_ y: [Double]) -> [Double]? {
            guard y.count * p == design.count else { return nil }
            var aty = [Double](repeating: 0, count: p)
            design.withUnsafeBufferPointer { x in
                if let weights {
                    for i in y.indices { for a in 0..<p { aty[a] += x[i * p + a] * weights[i] * y[i] } }
                } else {
                    // x·1 is x exactly: the same sums as with unit weights.
                    for i in y.indices { for a in 0..<p { aty[a] += x[i * p + a] * y[i] } }
                }
            }
            return LeastSquares.solve(normal, aty, n: p)
        }
    }

    public struct Fit: Sendable {
        public var parameters: [Double]
        public var cost: Double
        public var converged: Bool
    }

    /// Levenberg–Marquardt on `residuals(parameters)` with a forward-difference Jacobian.
    /// Returns nil when the residuals are not finite at the start. `concurrent`: the
    /// Jacobian's columns are evaluated on all cores (the same numbers; `residuals` must then
    /// be safe to call from several threads at once — it only reads what it captures).
    public static func levenbergMarquardt(start: [Double], maxIterations: Int = 200, concurrent: Bool = false,
                                   residuals: ([Double]) -> [Double]) -> Fit? {
        var p = start
        var r = residuals(p)
        guard !r.isEmpty, r.allSatisfy(\.isFinite) else { return nil }
        var cost = r.reduce(0) { $0 + $1 * $1 }
        let np = p.count, nr = r.count
        var lambda = 1e-3
        var converged = false
        for _ in 0..<maxIterations {
            let jac = jacobian(p, r, concurrent: concurrent, residuals: residuals)
            var jtj = [Double](repeating: 0, count: np * np), jtr = [Double](repeating: 0, count: np)
            for i in 0..<nr {
                for a in 0..<np {
                    let ja = jac[i * np + a]
                    jtr[a] -= ja * r[i]
                    for b in 0..<np { jtj[a * np + b] += ja * jac[i * np + b] }
                }
            }
            var improved = false
            while lambda < 1e12 {
                var m = jtj
                for a in 0..<np { m[a * np + a] += lambda * max(jtj[a * np + a], 1e-12) }
                guard let step = solve(m, jtr, n: np) else { lambda *= 10; continue }
                let q = zip(p, step).map { $0 + $1 }
                let rq = residuals(q)
                let cq = rq.reduce(0) { $0 + $1 * $1 }
                if cq.isFinite, cq <= cost {
                    let relative = (cost - cq) / max(cost, 1e-300)
                    p = q; r = rq; cost = cq
                    lambda = max(lambda / 10, 1e-12)
                    improved = true
                    if relative < 1e-12 { converged = true }
                    break
                }
                lambda *= 10
            }
            if !improved { converged = true }
            if converged { break }
        }
        return Fit(parameters: p, cost: cost, converged: converged)
    }

    /// Forward-difference Jacobian (row-major, `r.count × p.count`) of `residuals` at p, whose
    /// residuals are r.
    static func jacobian(_ p: [Double], _ r: [Double], concurrent: Bool,
                         residuals: ([Double]) -> [Double]) -> [Double] {
        let np = p.count, nr = r.count
        var jac = [Double](repeating: 0, count: nr * np)
        @Sendable func column(_ j: Int, into jac: UnsafeMutableBufferPointer<Double>, _ residuals: ([Double]) -> [Double]) {
            let h = 1e-6 * max(abs(p[j]), 1e-2)
            var q = p; q[j] += h
            let rq = residuals(q)
            for i in 0..<nr { jac[i * np + j] = (rq[i] - r[i]) / h }
        }
        jac.withUnsafeMutableBufferPointer { out in
            guard concurrent, np > 1 else {
                for j in 0..<np { column(j, into: out, residuals) }
                return
            }
            withoutActuallyEscaping(residuals) { residuals in
                // Each column writes only its own entries.
                let shared = UncheckedSendable((out, residuals))
                DispatchQueue.concurrentPerform(iterations: np) { j in column(j, into: shared.value.0, shared.value.1) }
            }
        }
        return jac
    }

    /// Median of finite values (nil when none).
    public static func median(_ values: [Double]) -> Double? {
        var v = values.filter(\.isFinite)
        guard !v.isEmpty else { return nil }
        let n = v.count
        if n % 2 == 1 { return select(&v, n / 2) }
        let a = select(&v, n / 2 - 1)
        return 0.5 * (a + v[(n / 2)...].min()!)
    }

    /// The `q`-quantile (0…1) of finite values by linear interpolation (nil when none).
    public static func quantile(_ values: [Double], _ q: Double) -> Double? {
        var v = values.filter(\.isFinite)
        guard !v.isEmpty else { return nil }
        let pos = min(max(q, 0), 1) * Double(v.count - 1)
        let i = Int(pos), f = pos - Double(i)
        let a = select(&v, i)
        return i + 1 < v.count ? a * (1 - f) + v[(i + 1)...].min()! * f : a
    }

    /// The `k`-th smallest value (0-based), `v` partly reordered so that every later
    /// element is ≥ it: Hoare's selection (quickselect, median-of-three pivots), O(n) on
    /// average against O(n log n) for sorting, for one or two quantiles of a sample; many of
    /// one sample come from a `SortedSample` instead.
    public static func select(_ v: inout [Double], _ k: Int) -> Double {
        var lo = 0, hi = v.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            let (a, b, c) = (v[lo], v[mid], v[hi])
            let pivot = max(min(a, b), min(max(a, b), c))
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return v[k]
    }
}
