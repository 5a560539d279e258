import FrameCore

/// A measured relative shift: content of frame `j` displaced by `shift` relative to frame `i`
/// (so `p_j − p_i ≈ shift`).
struct PairShift: Sendable {
    var i: Int
    var j: Int
    var shift: SIMD2<Double>
}

/// Joint least-squares solution of frame positions from many pairwise shifts, with
/// iterative removal of inconsistent pairs.
///
/// Method of rigidRegistration (B. H. Savitzky et al., Ultramicroscopy 191, 56 (2018)):
/// minimise Σ |p_j − p_i − s_ij|² over all measured pairs (the graph Laplacian normal
/// equations, one node fixed at 0 to remove the common-translation gauge), then drop the
/// pair with the largest residual while it exceeds `max(threshold, 4·1.4826·median)` and
/// solve again. Only the largest connected component is positioned; its first node is 0.
enum JointShifts {
    static func solve(count n: Int, pairs input: [PairShift], threshold: Double) -> [SIMD2<Double>?] {
        var pairs = input
        while true {
            let component = largestComponent(count: n, pairs: pairs)
            guard component.count > 1 else {
                var out = [SIMD2<Double>?](repeating: nil, count: n)
                if let only = component.first { out[only] = .zero }
                return out
            }
            let inComponent = Set(component)
            let used = pairs.filter { inComponent.contains($0.i) && inComponent.contains($0.j) }
            let positions = leastSquares(nodes: component, pairs: used, count: n)
            // Residuals of the pairs inside the component.
            var worst = -1, worstResidual = 0.0
            var residuals: [Double] = []
            for (k, p) in pairs.enumerated() where inComponent.contains(p.i) && inComponent.contains(p.j) {
                let r = positions[p.j]! - positions[p.i]! - p.shift
                let e = (r.x * r.x + r.y * r.y).squareRoot()
                residuals.append(e)
                if e > worstResidual { worstResidual = e; worst = k }
            }
            residuals.sort()
            let median = residuals.isEmpty ? 0 : residuals[residuals.count / 2]
            let limit = Swift.max(threshold, 4 * 1.4826 * median)
            if worst >= 0 && worstResidual > limit {
                pairs.remove(at: worst)
                continue
            }
            return positions
        }
    }

    /// Nodes of the largest connected component (ties: the one with the lowest node), sorted.
    static func largestComponent(count n: Int, pairs: [PairShift]) -> [Int] {
        guard n > 0 else { return [] }
        var parent = Array(0..<n)
        func find(_ a: Int) -> Int {
            var a = a
            while parent[a] != a { parent[a] = parent[parent[a]]; a = parent[a] }
            return a
        }
        for p in pairs {
            let a = find(p.i), b = find(p.j)
            if a != b { parent[Swift.max(a, b)] = Swift.min(a, b) }
        }
        var members: [Int: [Int]] = [:]
        for k in 0..<n { members[find(k), default: []].append(k) }
        let best = members.values.max { a, b in a.count != b.count ? a.count < b.count : a[0] > b[0] }!
        return best.sorted()
    }

    /// Solves the reduced Laplacian system (first node fixed at 0) by Cholesky factorisation.
    static func leastSquares(nodes: [Int], pairs: [PairShift], count n: Int) -> [SIMD2<Double>?] {
        var local = [Int: Int]()
        for (k, node) in nodes.enumerated() { local[node] = k - 1 }   // node 0 → −1 (fixed)
        let m = nodes.count - 1
        var a = [Double](repeating: 0, count: m * m)
        var bx = [Double](repeating: 0, count: m), by = bx
        for p in pairs {
            let i = local[p.i]!, j = local[p.j]!
            if i >= 0 { a[i * m + i] += 1; bx[i] -= p.shift.x; by[i] -= p.shift.y }
            if j >= 0 { a[j * m + j] += 1; bx[j] += p.shift.x; by[j] += p.shift.y }
            if i >= 0 && j >= 0 { a[i * m + j] -= 1; a[j * m + i] -= 1 }
        }
        // Cholesky A = L Lᵀ (A is SPD for a connected graph with one node fixed).
        let factor = LeastSquares.choleskyFactor(a, n: m, pivotFloor: 1e-12)!
        func solve(_ b: [Double]) -> [Double] { LeastSquares.choleskySolve(factor: factor, b, n: m) }
        let x = solve(bx), y = solve(by)
        var out = [SIMD2<Double>?](repeating: nil, count: n)
        for (k, node) in nodes.enumerated() { out[node] = k == 0 ? .zero : SIMD2(x[k - 1], y[k - 1]) }
        return out
    }
}
