import Foundation

/// Lattice-alias slips found by the continuity of the drift in time.
///
/// On a lattice, a frame registered one lattice vector off correlates almost as well as at
/// its true shift; its non-periodic content decides, and at low dose or with little such
/// content it can decide wrongly. The specimen's drift, however, is continuous: between two
/// frames it moves by about what it moved between their neighbours. So at every link of the
/// time-ordered frames, the change of position beyond the local drift (the velocity of the
/// links around it, median of up to `window` on each side) is compared with the lattice
/// vectors: a jump that lies near a lattice vector (within `tolerance` of the shortest
/// one) and stands out of the drift's own irregularity (`minSigma` robust σ of all links'
/// jumps, and half the shortest vector at least) is a slip of the frames after the link
/// relative to those before it. A single frame off shows as two opposite slips in a row.
/// Cf. the temporal smoothness of drift used to decide aliases in Smart Align (Jones et al.,
/// Adv. Struct. Chem. Imaging 1:8, 2015) and in joint drift estimation (Savitzky et al.,
/// Ultramicroscopy 191, 56, 2018).
public enum AliasContinuity {
    public struct Slip: Sendable, Equatable {
        /// Position (in the given order) of the first frame after the jump.
        public var after: Int
        /// The lattice vector (px) the frames after the link sit off by, relative to those before.
        public var vector: SIMD2<Double>
        /// The jump in units of the links' robust σ.
        public var sigma: Double
    }

    public static let window = 3
    public static let tolerance = 0.3
    public static let minSigma = 5.0

    /// Slips between consecutive positioned frames (nil positions are skipped). `times` in any
    /// unit (frame index when no times are known); `latticeVectors` the lattice's vectors (px),
    /// any set that contains the short ones. The clearest slip (most σ) is taken first and
    /// its frames moved back by its vector before the links are judged again, so that where
    /// many links slipped, their jumps do not inflate σ (the median jump) or the local drift
    /// and hide one another; the shifts themselves are not changed.
    public static func slips(positions: [SIMD2<Double>?], times: [Double], latticeVectors: [SIMD2<Double>]) -> [Slip] {
        let known = positions.indices.filter { positions[$0] != nil }
        guard known.count >= 4, positions.count == times.count, !latticeVectors.isEmpty else { return [] }
        let shortest = latticeVectors.map { ($0 * $0).sum().squareRoot() }.filter { $0 > 0 }.min() ?? 0
        guard shortest > 0 else { return [] }
        var track = known.map { positions[$0]! }
        let trackTimes = known.map { times[$0] }
        var found: [Slip] = []
        for _ in 0..<known.count {
            // A link already taken out is not taken again: what is left of its jump is noise.
            let taken = Set(found.map(\.after))
            let candidates = linkSlips(track, times: trackTimes, latticeVectors: latticeVectors, shortest: shortest)
                .filter { !taken.contains(known[$0.after]) }
            guard let clearest = candidates.max(by: { $0.sigma < $1.sigma }) else { break }
            for j in clearest.after..<track.count { track[j] -= clearest.vector }
            found.append(Slip(after: known[clearest.after], vector: clearest.vector, sigma: clearest.sigma))
        }
        return found.sorted { $0.after < $1.after }
    }

    /// The links of one track (positions in time order) whose jump beyond the local drift is a
    /// lattice vector and stands out of all links' jumps; `after` is a position in the track.
    static func linkSlips(_ track: [SIMD2<Double>], times: [Double], latticeVectors: [SIMD2<Double>],
                          shortest: Double) -> [Slip] {
        // Velocity of each link (px per time unit).
        let links = (0..<(track.count - 1)).map { j -> (d: SIMD2<Double>, dt: Double) in
            (track[j + 1] - track[j], times[j + 1] - times[j])
        }
        var jumps: [SIMD2<Double>] = []
        for j in links.indices {
            let around = (Swift.max(0, j - window)..<Swift.min(links.count, j + window + 1)).filter { $0 != j && links[$0].dt > 0 }
            guard !around.isEmpty, links[j].dt > 0 else { jumps.append(.zero); continue }
            let vx = median(around.map { links[$0].d.x / links[$0].dt }), vy = median(around.map { links[$0].d.y / links[$0].dt })
            jumps.append(links[j].d - SIMD2(vx, vy) * links[j].dt)
        }
        let sizes = jumps.map { ($0 * $0).sum().squareRoot() }
        let sigma = Swift.max(1e-3, 1.4826 * median(sizes) / 1.1774)   // median of a 2-D Rayleigh ≈ 1.1774 σ
        var out: [Slip] = []
        for (j, jump) in jumps.enumerated() {
            let size = sizes[j]
            guard size >= Swift.max(minSigma * sigma, 0.5 * shortest) else { continue }
            guard let vector = nearestLatticeVector(jump, latticeVectors), ((jump - vector) * (jump - vector)).sum().squareRoot()
                    <= tolerance * shortest else { continue }
            out.append(Slip(after: j + 1, vector: vector, sigma: size / sigma))
        }
        return out
    }

    /// The non-zero lattice vector nearest `v`: among the given vectors, their negatives and
    /// sums of two of them, and the lattice points around `v` in the basis of the first two
    /// independent vectors, so that a jump of several vectors (a whole block registered
    /// several cells off) is one too.
    static func nearestLatticeVector(_ v: SIMD2<Double>, _ vectors: [SIMD2<Double>]) -> SIMD2<Double>? {
        var candidates = vectors + vectors.map { -$0 }
        let base = candidates
        for a in base { for b in base { candidates.append(a + b) } }
        func cross(_ u: SIMD2<Double>, _ w: SIMD2<Double>) -> Double { u.x * w.y - u.y * w.x }
        func length(_ u: SIMD2<Double>) -> Double { (u * u).sum().squareRoot() }
        if let a = vectors.first, let b = vectors.dropFirst().first(where: { abs(cross(a, $0)) > 0.1 * length(a) * length($0) }) {
            let det = cross(a, b)
            let m = (cross(v, b) / det).rounded(), n = (cross(a, v) / det).rounded()
            for i in -1...1 { for j in -1...1 { candidates.append((m + Double(i)) * a + (n + Double(j)) * b) } }
        }
        return candidates.filter { ($0 * $0).sum() > 1e-6 }.min { (($0 - v) * ($0 - v)).sum() < (($1 - v) * ($1 - v)).sum() }
    }

    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }
}
