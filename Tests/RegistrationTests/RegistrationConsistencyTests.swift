import Foundation
import Registration
import Testing

/// Per-frame registration consistency: a frame whose score collapses against its
/// neighbours', or that sits a lattice vector off the drift through them, is found; a clean
/// drift, a jerky one and a slow decline of the scores are not.
@Suite("Registration consistency")
struct RegistrationConsistencyTests {
    static let a = SIMD2<Double>(9.5, -2.0), b = SIMD2<Double>(0.8, 19.2)

    /// 40 frames drifting about (1.5, −0.7) px per frame with 0.3 px of noise, scores 0.9
    /// declining to 0.8, in holds of 10 frames with a gap between them.
    static func run(seed: UInt64) -> (positions: [SIMD2<Double>?], scores: [Double], times: [Double]) {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        func gaussian() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
        let times = (0..<40).map { Double($0) * 4.4 + Double($0 / 10) * 30 }
        let positions: [SIMD2<Double>?] = times.map { t in SIMD2(0.34 * t, -0.16 * t) + 0.3 * SIMD2(gaussian(), gaussian()) }
        let scores = (0..<40).map { 0.9 - 0.0025 * Double($0) + 0.01 * gaussian() }
        return (positions, scores, times)
    }

    @Test("clean runs: no frame rejected")
    func clean() {
        for seed in 1...20 as ClosedRange<UInt64> {
            let r = Self.run(seed: seed)
            let found = RegistrationConsistency.outliers(positions: r.positions, scores: r.scores, times: r.times,
                                                        latticeVectors: [Self.a, Self.b])
            #expect(found.isEmpty, "seed \(seed): \(found)")
        }
    }

    @Test("a collapsed score and a frame one lattice vector off are rejected, each alone")
    func outliers() {
        var r = Self.run(seed: 3)
        r.scores[12] = 0.048
        r.positions[12] = r.positions[12]! + SIMD2(7.2, 5.4)
        r.positions[27] = r.positions[27]! + Self.a
        let found = RegistrationConsistency.outliers(positions: r.positions, scores: r.scores, times: r.times,
                                                    latticeVectors: [Self.a, Self.b])
        #expect(found.map(\.index) == [12, 27], "\(found)")
        // The first frame of a hold (extrapolated from the next two) is tested too.
        var first = Self.run(seed: 4)
        first.positions[20] = first.positions[20]! - Self.b
        #expect(RegistrationConsistency.outliers(positions: first.positions, scores: first.scores, times: first.times,
                                                 latticeVectors: [Self.a, Self.b]).map(\.index) == [20])
    }

    @Test("a jerky drift that is no lattice vector, and unused frames, are left alone")
    func jerkyDrift() {
        var r = Self.run(seed: 5)
        r.positions[15] = r.positions[15]! + SIMD2(4, 4)     // half-way between lattice vectors
        r.positions[16] = nil
        let found = RegistrationConsistency.outliers(positions: r.positions, scores: r.scores, times: r.times,
                                                    latticeVectors: [Self.a, Self.b])
        #expect(found.isEmpty, "\(found)")
        // Without a lattice only the score is tested.
        #expect(RegistrationConsistency.outliers(positions: r.positions, scores: r.scores, times: r.times,
                                                 latticeVectors: []).isEmpty)
    }
}
