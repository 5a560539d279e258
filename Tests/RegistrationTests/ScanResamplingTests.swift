import TestSupport
import Testing
import Foundation
import FrameCore
import Registration

/// `NonrigidRegistration.apply` resamples each scan line once and lets the output rows share
/// it; its numbers must be those of sampling every tap of every output pixel directly.
@Suite("Non-rigid resampling: per-pixel sampling's numbers")
struct ScanResamplingTests {
    /// Keys' cubic weights (a = −0.5), as the resampler evaluates them.
    static func keys(_ t: Float) -> [Float] {
        let t2 = t * t, t3 = t2 * t
        return [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
    }

    /// The raster-aware resampling pixel by pixel: each of the output pixel's taps samples its
    /// own scan line at that line's fast-scan offset.
    static func direct(_ field: ScanDistortionField, shift: (dx: Double, dy: Double), frame: Image,
                       cubic: Bool) -> (pixels: [Float], valid: [Bool]) {
        let w = frame.width, h = frame.height
        var out = [Float](repeating: 0, count: w * h), valid = [Bool](repeating: false, count: w * h)
        func clamp(_ v: Int, _ n: Int) -> Int { min(n - 1, max(0, v)) }
        for y in 0..<h {
            let fy = Double(y) + shift.dy + Double(field.lineShiftY[clamp(Int((Double(y) + shift.dy).rounded()), h)])
            guard fy >= 0, fy <= Double(h - 1) else { continue }
            let yi = min(Int(fy), h - 2), ty = Float(fy - Double(yi))
            let taps = cubic ? 4 : 2, first = cubic ? yi - 1 : yi
            let wy = cubic ? keys(ty) : [1 - ty, ty]
            for x in 0..<w {
                let flyback = Double(field.flybackShiftX[clamp(Int((Double(x) + shift.dx).rounded()), w)])
                var acc: Float = 0, inside = true
                for j in 0..<taps {
                    let row = clamp(first + j, h)
                    let fx = Double(x) + shift.dx + flyback + Double(field.lineShiftX[row])
                    guard fx >= 0, fx <= Double(w - 1) else { inside = false; break }
                    let xi = min(Int(fx), w - 2), tx = Float(fx - Double(xi))
                    var value: Float = 0
                    if cubic {
                        let wx = keys(tx)
                        for i in 0..<4 { value += wx[i] * frame.pixels[row * w + clamp(xi - 1 + i, w)] }
                    } else {
                        value = frame.pixels[row * w + xi] + (frame.pixels[row * w + xi + 1] - frame.pixels[row * w + xi]) * tx
                    }
                    acc += wy[j] * value
                }
                if inside { out[y * w + x] = acc; valid[y * w + x] = true }
            }
        }
        return (out, valid)
    }

    @Test("apply equals per-pixel sampling bit for bit, with jitter, a slow-scan offset and a flyback",
          arguments: [Interpolation.bicubic, .bilinear])
    func applyEqualsDirectSampling(interpolation: Interpolation) {
        var rng = SplitMix64(seed: 11)
        let w = 97, h = 83
        let frame = Image(width: w, height: h, pixels: (0..<(w * h)).map { _ in Float(rng.uniform() * 100) })
        var field = ScanDistortionField(width: w, height: h)
        for y in 0..<h {
            field.lineShiftX[y] = Float(rng.uniform() * 3 - 1.5)          // jitter, some lines past the edge
            field.lineShiftY[y] = Float(0.8 * sin(Double(y) / 9))
        }
        for x in 0..<w { field.flybackShiftX[x] = Float(2 * exp(-Double(x) / 6)) }
        for shift in [(dx: 0.37, dy: -1.62), (dx: -4.5, dy: 3.25), (dx: 0, dy: 0)] {
            let (image, valid) = NonrigidRegistration.apply(field, shift: shift, to: frame, interpolation: interpolation)
            let expected = Self.direct(field, shift: shift, frame: frame, cubic: interpolation == .bicubic)
            #expect(valid.bits == expected.valid)
            let mismatches = zip(image.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(mismatches == 0, "\(mismatches) pixels differ at shift \(shift)")
            // The test covers both kinds of pixel: inside, and outside the frame for some tap.
            #expect(valid.bits.contains(true) && valid.bits.contains(false))
        }
    }
}
