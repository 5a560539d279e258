import Foundation

/// Frames whose registration disagrees with their neighbours in time, rejected rather than
/// kept: a correlation that failed (its score collapsed against its neighbours') or a
/// position off the drift's path by half a lattice vector or more — a frame registered to a
/// wrong peak, often one lattice vector off, which would otherwise enter its step's average
/// and its Li/TM and front.
///
/// Score: each frame's normalised correlation against the median of up to `window` used
/// frames on each side. The deviations' robust σ (1.4826 × their median absolute value,
/// Hampel's MAD; Iglewicz & Hoaglin, *How to Detect and Handle Outliers*, 1993) sets the
/// scale; a frame is an outlier when it lies `minSigma` σ or more below its neighbours'
/// median and below half of it (a gross drop, not a slow decline of contrast).
///
/// Position: the specimen drifts smoothly between neighbouring frames, so each frame's
/// shift is predicted by the line through its two neighbours in time (at a segment's ends,
/// extrapolated from the next two). Segments are split at gaps longer than twice the median
/// frame interval (a ramp between holds, where drift may change), and a segment of fewer
/// than three frames is not tested. A frame departs when its distance from the prediction
/// is at least half the shortest lattice vector and `minSigma` robust σ of all departures
/// (σ from their median, that of a 2-D Rayleigh distribution, 1.1774 σ), and lies within
/// `aliasTolerance` of the shortest vector from a lattice vector — the signature of a
/// lattice alias, off by a whole vector give or take the registration's own error; a jerky
/// drift (several px between frames, as on the registration-stress preset) departs by
/// arbitrary amounts and stays (at 0.3 one such frame of 110 simulated runs was taken for
/// an alias). The largest
/// departure is rejected first and the rest re-predicted without it, so a single frame off
/// does not drag its neighbours (each half as far off the line through it) along. Cf. the
/// drift's continuity in Smart Align (Jones et al., Adv. Struct. Chem. Imaging 1:8, 2015);
/// `AliasContinuity` finds the frames after a lasting slip.
public enum RegistrationConsistency {
    public struct Outlier: Sendable, Equatable {
        /// Position in the given order.
        public var index: Int
        /// Why, for the warning: the score against its neighbours', or the departure.
        public var detail: String
    }

    /// The reason written as `rejected:<reason>`.
    public static let reason = "registration-outlier"
    public static let window = 3
    public static let minSigma = 5.0
    public static let aliasTolerance = 0.2

    /// `positions`: each frame's registered shift (nil: not used); `scores`: their
    /// correlation scores; `times` in any increasing unit; `latticeVectors` the lattice's
    /// vectors (px), empty to skip the position test.
    public static func outliers(positions: [SIMD2<Double>?], scores: [Double], times: [Double],
                                latticeVectors: [SIMD2<Double>]) -> [Outlier] {
        guard positions.count == scores.count, positions.count == times.count else { return [] }
        var out = scoreOutliers(positions: positions, scores: scores)
        var remaining = positions
        for o in out { remaining[o.index] = nil }
        out += positionOutliers(positions: remaining, times: times, latticeVectors: latticeVectors)
        return out.sorted { $0.index < $1.index }
    }

    static func scoreOutliers(positions: [SIMD2<Double>?], scores: [Double]) -> [Outlier] {
        let used = positions.indices.filter { positions[$0] != nil && scores[$0].isFinite }
        guard used.count >= 5 else { return [] }
        let local = used.indices.map { j -> Double in
            let around = (max(0, j - window)..<min(used.count, j + window + 1)).filter { $0 != j }.map { scores[used[$0]] }
            return AliasContinuity.median(around)
        }
        let deviations = used.indices.map { scores[used[$0]] - local[$0] }
        let sigma = max(1e-3, 1.4826 * AliasContinuity.median(deviations.map(abs)))
        return used.indices.compactMap { j in
            let s = scores[used[j]]
            guard deviations[j] <= -minSigma * sigma, s < 0.5 * local[j] else { return nil }
            return Outlier(index: used[j], detail: String(format: "registration score %.3f against %.3f for its neighbours (%.0f σ below)",
                                                          s, local[j], -deviations[j] / sigma))
        }
    }

    static func positionOutliers(positions: [SIMD2<Double>?], times: [Double], latticeVectors: [SIMD2<Double>]) -> [Outlier] {
        let shortest = latticeVectors.map { ($0 * $0).sum().squareRoot() }.filter { $0 > 0 }.min() ?? 0
        guard shortest > 0 else { return [] }
        var kept = positions
        var out: [Outlier] = []
        while true {
            let d = departures(kept, times: times)
            guard d.count >= 5 else { break }
            let sigma = max(1e-3, AliasContinuity.median(d.map(\.size)) / 1.1774)
            let threshold = max(0.5 * shortest, minSigma * sigma)
            guard let worst = d.max(by: { $0.size < $1.size }), worst.size >= threshold else { break }
            kept[worst.index] = nil
            guard let alias = AliasContinuity.nearestLatticeVector(worst.offset, latticeVectors),
                  ((worst.offset - alias) * (worst.offset - alias)).sum().squareRoot() <= aliasTolerance * shortest
            else { continue }
            out.append(Outlier(index: worst.index, detail: String(format: "registered %.1f px off the drift through its neighbours "
                                                                  + "(about the lattice vector (%.1f, %.1f) px)", worst.size, alias.x, alias.y)))
        }
        return out
    }

    /// Each testable frame's offset (and its length) from the position its neighbours predict.
    static func departures(_ positions: [SIMD2<Double>?], times: [Double]) -> [(index: Int, offset: SIMD2<Double>, size: Double)] {
        let used = positions.indices.filter { positions[$0] != nil && times[$0].isFinite }.sorted { times[$0] < times[$1] }
        guard used.count >= 3 else { return [] }
        let gaps = zip(used.dropFirst(), used).map { times[$0] - times[$1] }
        let limit = 2 * AliasContinuity.median(gaps.filter { $0 > 0 })
        var segments: [[Int]] = [[used[0]]]
        for (j, gap) in gaps.enumerated() {
            if gap > limit { segments.append([]) }
            segments[segments.count - 1].append(used[j + 1])
        }
        var out: [(index: Int, offset: SIMD2<Double>, size: Double)] = []
        for segment in segments where segment.count >= 3 {
            for (j, i) in segment.enumerated() {
                let (a, b) = j == 0 ? (segment[1], segment[2])
                    : j == segment.count - 1 ? (segment[j - 2], segment[j - 1]) : (segment[j - 1], segment[j + 1])
                guard times[b] != times[a] else { continue }
                let f = (times[i] - times[a]) / (times[b] - times[a])
                let predicted = positions[a]! + f * (positions[b]! - positions[a]!)
                let e = positions[i]! - predicted
                out.append((i, e, (e * e).sum().squareRoot()))
            }
        }
        return out
    }
}
