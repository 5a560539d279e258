/// The finite values of a sample in ascending order, for many order statistics of it and of
/// its parts below and above a cut: each quantile or median is then a lookup, with the same
/// value `LeastSquares.quantile` and `median` give (they select the same order statistics and
/// interpolate them the same way). A phase map's segmentation takes about ten of them per
/// frame.
///
/// Sorted by least-significant-digit radix sort on the values' bit patterns, flipped so that
/// their unsigned order is the numeric order (Knuth, *The Art of Computer Programming* 3,
/// §5.2.5): three 11-bit passes when every value is a Float (order-parameter maps are), else
/// Swift's comparison sort.
public struct SortedSample: Sendable {
    /// Ascending.
    public let values: [Double]

    public init(_ sample: [Double]) {
        let finite = sample.filter(\.isFinite)
        values = finite.allSatisfy { Double(Float($0)) == $0 } ? Self.radixSorted(finite) : finite.sorted()
    }

    public var count: Int { values.count }

    /// The indices of the values below `cut` (the rest lie at or above it).
    public func below(_ cut: Double) -> Range<Int> {
        var lo = 0, hi = values.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if values[mid] < cut { lo = mid + 1 } else { hi = mid }
        }
        return 0..<lo
    }

    /// The indices of the values at or above `cut`.
    public func atOrAbove(_ cut: Double) -> Range<Int> { below(cut).upperBound..<values.count }

    /// The `q`-quantile (0…1) of the values in `range`, by linear interpolation between order
    /// statistics; nil when the range is empty.
    public func quantile(_ q: Double, in range: Range<Int>? = nil) -> Double? {
        let r = range ?? values.indices
        guard !r.isEmpty else { return nil }
        let pos = min(max(q, 0), 1) * Double(r.count - 1)
        let i = Int(pos), f = pos - Double(i)
        let a = values[r.lowerBound + i]
        return i + 1 < r.count ? a * (1 - f) + values[r.lowerBound + i + 1] * f : a
    }

    /// The median of the values in `range`; nil when it is empty.
    public func median(in range: Range<Int>? = nil) -> Double? {
        let r = range ?? values.indices
        guard !r.isEmpty else { return nil }
        let n = r.count, m = r.lowerBound + n / 2
        return n % 2 == 1 ? values[m] : 0.5 * (values[m - 1] + values[m])
    }

    /// Float-representable values in ascending order: the sign bit set on positives and every
    /// bit flipped on negatives makes the bit patterns' unsigned order the numeric order.
    static func radixSorted(_ v: [Double]) -> [Double] {
        var keys = v.map { d -> UInt32 in
            let b = Float(d).bitPattern
            return b & 0x8000_0000 != 0 ? ~b : b | 0x8000_0000
        }
        var scratch = [UInt32](repeating: 0, count: keys.count)
        for shift: UInt32 in [0, 11, 22] {
            var start = [Int](repeating: 0, count: 2049)
            for k in keys { start[Int((k >> shift) & 0x7FF) + 1] += 1 }
            for i in 1..<2049 { start[i] += start[i - 1] }
            for k in keys {
                let digit = Int((k >> shift) & 0x7FF)
                scratch[start[digit]] = k
                start[digit] += 1
            }
            swap(&keys, &scratch)
        }
        return keys.map { k in Double(Float(bitPattern: k & 0x8000_0000 != 0 ? k & 0x7FFF_FFFF : ~k)) }
    }
}
