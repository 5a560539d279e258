import Foundation

/// A small, fixed pseudo-random generator: SplitMix64 (Steele, Lea & Flood, OOPSLA 2014).
///
/// The simulator promises the same bytes for the same seed on every machine and Swift
/// version, so it never uses `SystemRandomNumberGenerator` or Foundation's generators.
/// Independent streams (one per frame, one for the drift path, …) come from `stream(_:_:)`,
/// which mixes the run seed with a stream label through the SplitMix64 finaliser.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for stream `label` (e.g. a frame index) of run `seed`.
    public static func stream(_ seed: UInt64, _ label: UInt64, _ sub: UInt64 = 0) -> SeededRandom {
        SeededRandom(seed: mix(mix(seed ^ 0x5EED_F00D_CAFE_BABE) &+ mix(label &+ 0x9E37_79B9_7F4A_7C15) &+ sub &* 0xD1B5_4A32_D192_ED03))
    }

    /// The SplitMix64 output function: a bijective avalanche of 64 bits.
    static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SeededRandom.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in (0, 1]: safe under a logarithm.
    mutating func uniformPositive() -> Double { Double((next() >> 11) + 1) * 0x1.0p-53 }

    /// Standard normal deviate (Box–Muller; one of the pair is discarded so that the
    /// stream stays a pure function of the call count).
    public mutating func gaussian() -> Double {
        let u1 = uniformPositive(), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Poisson deviate of mean `lambda`: Knuth's multiplication method below 12,
    /// Hörmann's transformed rejection with squeeze (PTRS, Insurance: Math. Econ. 1993) above.
    public mutating func poisson(_ lambda: Double) -> Int {
        guard lambda > 0, lambda.isFinite else { return 0 }
        if lambda < 12 {
            let limit = exp(-lambda)
            var k = 0
            var p = uniformPositive()
            while p > limit { k += 1; p *= uniformPositive() }
            return k
        }
        let slam = lambda.squareRoot(), loglam = Foundation.log(lambda)
        let b = 0.931 + 2.53 * slam
        let a = -0.059 + 0.02483 * b
        let invalpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = uniform() - 0.5
            let v = uniformPositive()
            let us = 0.5 - abs(u)
            let k = floor((2 * a / us + b) * u + lambda + 0.43)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if Foundation.log(v) + Foundation.log(invalpha) - Foundation.log(a / (us * us) + b)
                <= -lambda + k * loglam - lgamma(k + 1) {
                return Int(k)
            }
        }
    }
}
