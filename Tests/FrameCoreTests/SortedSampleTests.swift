import Testing
import FrameCore

/// Order statistics from one sorted sample equal those `LeastSquares` selects from a copy.
struct SortedSampleTests {
    /// Float-valued (the radix path) and general doubles (the comparison sort), with ties,
    /// negatives and non-finite values mixed in.
    static func samples() -> [[Double]] {
        var state: UInt64 = 9
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        var floats: [Double] = (0..<5000).map { _ -> Double in Double(Float(4 * next() - 1)) }
        floats += [2, 2, 2, .nan, .infinity]
        var doubles: [Double] = (0..<3001).map { _ -> Double in 1e3 * (next() - 0.3) }
        doubles.append(-.infinity)
        let ties: [Double] = (0..<400).map { _ -> Double in Double(Int(10 * next())) }
        return [floats, doubles, ties, [0.5], []]
    }

    @Test func quantilesAndMediansEqualSelection() {
        for sample in Self.samples() {
            let sorted = SortedSample(sample)
            let finite = sample.filter(\.isFinite)
            #expect(sorted.values == finite.sorted())
            for q in [0, 0.005, 0.1, 0.5, 0.75, 0.9, 0.995, 1] {
                #expect(sorted.quantile(q) == LeastSquares.quantile(sample, q))
            }
            #expect(sorted.median() == LeastSquares.median(sample))
            for cut in [-0.5, 0.3, 2, 250, 5] {
                let below = finite.filter { $0 < cut }, above = finite.filter { $0 >= cut }
                #expect(sorted.below(cut).count == below.count && sorted.atOrAbove(cut).count == above.count)
                #expect(sorted.median(in: sorted.below(cut)) == LeastSquares.median(below))
                #expect(sorted.quantile(0.1, in: sorted.below(cut)) == LeastSquares.quantile(below, 0.1))
                #expect(sorted.quantile(0.75, in: sorted.atOrAbove(cut)) == LeastSquares.quantile(above, 0.75))
            }
        }
    }
}
