import FrameCore

/// Rigid sub-pixel translation of an image by separable interpolation.
///
/// A rigid shift has the same fractional part at every pixel, so the interpolation
/// weights are computed once per axis and the shift is two 1-D passes (rows combined
/// with 2 or 4 weights, then columns), vectorised with `SIMD8<Float>`: no per-pixel
/// allocation or kernel evaluation. Kernels: bilinear, or Keys cubic convolution with
/// a = −0.5 (R. Keys, IEEE Trans. ASSP 29, 1153 (1981)), which reproduces quadratics.
public enum Resampling {
    /// Moves the content by `(dx, dy)` px: `out(x, y) = in(x − dx, y − dy)`.
    ///
    /// `valid` marks output pixels whose interpolation taps all lie inside the input
    /// (for integer shifts: whose source pixel does); elsewhere taps are clamped to the
    /// border and the value should not be trusted.
    public static func shifted(_ image: Image, by dx: Double, _ dy: Double,
                               interpolation: Interpolation) -> (image: Image, valid: Mask) {
        let w = image.width, h = image.height
        guard w > 0, h > 0, dx.isFinite, dy.isFinite else {
            return (Image(width: w, height: h), Mask(width: w, height: h, fill: false))
        }
        let kx = Kernel(shift: dx, interpolation: interpolation)
        let ky = Kernel(shift: dy, interpolation: interpolation)
        var out = [Float](repeating: 0, count: w * h)
        var row = [Float](repeating: 0, count: w)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                row.withUnsafeMutableBufferPointer { tmp in
                    for y in 0..<h {
                        // Vertical pass: weighted sum of up to 4 source rows (clamped).
                        let base = y + ky.offset
                        for x in 0..<w { tmp[x] = 0 }
                        for t in 0..<ky.taps {
                            let sy = Swift.min(Swift.max(base + t + ky.firstTap, 0), h - 1)
                            accumulate(tmp, src.baseAddress! + sy * w, ky.weights[t], w)
                        }
                        // Horizontal pass: interior columns without clamping, borders clamped.
                        let d = dst.baseAddress! + y * w
                        let lo = Swift.max(0, -(kx.offset + kx.firstTap))
                        let hi = Swift.min(w, w - (kx.offset + kx.firstTap + kx.taps - 1))
                        for x in 0..<w where x < lo || x >= hi {
                            var s: Float = 0
                            for t in 0..<kx.taps {
                                let sx = Swift.min(Swift.max(x + kx.offset + kx.firstTap + t, 0), w - 1)
                                s += kx.weights[t] * tmp[sx]
                            }
                            d[x] = s
                        }
                        if hi > lo {
                            for x in lo..<hi { d[x] = 0 }
                            for t in 0..<kx.taps {
                                accumulate(UnsafeMutableBufferPointer(start: d + lo, count: hi - lo),
                                           tmp.baseAddress! + lo + kx.offset + kx.firstTap + t,
                                           kx.weights[t], hi - lo)
                            }
                        }
                    }
                }
            }
        }
        // Valid where every tap with a non-zero weight lies inside the input.
        let (x0, x1) = kx.validRange(size: w)
        let (y0, y1) = ky.validRange(size: h)
        let bits = [Bool](unsafeUninitializedCapacity: w * h) { b, count in
            b.initialize(repeating: false)
            if x1 > x0, y1 > y0 {
                for y in y0..<y1 { (b.baseAddress! + y * w + x0).update(repeating: true, count: x1 - x0) }
            }
            count = w * h
        }
        return (Image(width: w, height: h, pixels: out), Mask(width: w, height: h, bits: bits))
    }

    /// Adds the image moved by `(dx, dy)` (as `shifted`) to `sum` at the pixels where the
    /// move is valid (all taps inside the input: a rectangle), without building the moved
    /// image or its mask. Each added value is computed with exactly the operations of
    /// `shifted` (same taps, same order), so the sums are identical to adding
    /// `shifted(...).image` where `shifted(...).valid`. `sum` holds `width × height` values.
    /// Returns the valid rectangle `x0..<x1 × y0..<y1`, nil (nothing added) when the shift
    /// is not finite or leaves no valid pixel.
    static func accumulateShifted(_ image: Image, by dx: Double, _ dy: Double, interpolation: Interpolation,
                                  sum: UnsafeMutableBufferPointer<Float>,
                                  row: UnsafeMutableBufferPointer<Float>) -> (x0: Int, x1: Int, y0: Int, y1: Int)? {
        let w = image.width, h = image.height
        guard w > 0, h > 0, dx.isFinite, dy.isFinite, sum.count >= w * h, row.count >= w else { return nil }
        let kx = Kernel(shift: dx, interpolation: interpolation)
        let ky = Kernel(shift: dy, interpolation: interpolation)
        let (x0, x1) = kx.validRange(size: w)
        let (y0, y1) = ky.validRange(size: h)
        guard x1 > x0, y1 > y0 else { return nil }
        let n = x1 - x0
        image.pixels.withUnsafeBufferPointer { src in
            let tmp = row.baseAddress!
            for y in y0..<y1 {
                // Vertical pass over the columns the valid outputs read (no clamping needed:
                // every tap of a valid output lies inside the input).
                let base = y + ky.offset + ky.firstTap
                let c0 = x0 + kx.offset + kx.firstTap, cn = n + kx.taps - 1
                addVertical(tmp + c0, src.baseAddress! + base * w + c0, w, ky, cn)
                // Horizontal pass, each output summed from zero and then added to the sum.
                addHorizontal(sum.baseAddress! + y * w + x0, tmp + c0, kx, n)
            }
        }
        return (x0, x1, y0, y1)
    }

    /// `dst[x] = Σ_t k_t·src[x + t·stride]` for `x < n`, the taps summed from 0 in order (the
    /// values of `shifted`'s vertical pass, which accumulates row by row), in one pass.
    @inline(__always)
    static func addVertical(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ stride: Int,
                            _ k: Kernel, _ n: Int) {
        guard k.taps == 4 || k.taps == 2 else {
            for x in 0..<n { dst[x] = 0 }
            for t in 0..<k.taps {
                accumulate(UnsafeMutableBufferPointer(start: dst, count: n), src + t * stride, k.weights[t], n)
            }
            return
        }
        let four = k.taps == 4
        let w0 = SIMD8(repeating: k.weights[0]), w1 = SIMD8(repeating: k.weights[1])
        let w2 = SIMD8(repeating: four ? k.weights[2] : 0), w3 = SIMD8(repeating: four ? k.weights[3] : 0)
        var i = 0
        while i + 8 <= n {
            var v = SIMD8<Float>(repeating: 0)
            v += w0 * UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
            v += w1 * UnsafeRawPointer(src + stride + i).loadUnaligned(as: SIMD8<Float>.self)
            if four {
                v += w2 * UnsafeRawPointer(src + 2 * stride + i).loadUnaligned(as: SIMD8<Float>.self)
                v += w3 * UnsafeRawPointer(src + 3 * stride + i).loadUnaligned(as: SIMD8<Float>.self)
            }
            UnsafeMutableRawPointer(dst + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            var v: Float = 0
            for t in 0..<k.taps { v += k.weights[t] * src[t * stride + i] }
            dst[i] = v; i += 1
        }
    }

    /// `dst[x] += Σ_t k_t·src[x + t]` for `x < n`, the taps summed from 0 in order (as the
    /// horizontal pass of `shifted`), eight outputs at a time.
    @inline(__always)
    static func addHorizontal(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ k: Kernel, _ n: Int) {
        let taps = k.taps
        let w0 = k.weights[0], w1 = taps > 1 ? k.weights[1] : 0
        let w2 = taps > 2 ? k.weights[2] : 0, w3 = taps > 3 ? k.weights[3] : 0
        var i = 0
        switch taps {
        case 1:
            while i + 8 <= n {
                let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                let d = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self)
                var v = SIMD8<Float>(repeating: 0)
                v += SIMD8(repeating: w0) * a
                UnsafeMutableRawPointer(dst + i).storeBytes(of: d + v, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { var v: Float = 0; v += w0 * src[i]; dst[i] += v; i += 1 }
        case 2:
            while i + 8 <= n {
                let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(src + i + 1).loadUnaligned(as: SIMD8<Float>.self)
                let d = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self)
                var v = SIMD8<Float>(repeating: 0)
                v += SIMD8(repeating: w0) * a
                v += SIMD8(repeating: w1) * b
                UnsafeMutableRawPointer(dst + i).storeBytes(of: d + v, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { var v: Float = 0; v += w0 * src[i]; v += w1 * src[i + 1]; dst[i] += v; i += 1 }
        default:
            while i + 8 <= n {
                let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(src + i + 1).loadUnaligned(as: SIMD8<Float>.self)
                let c = UnsafeRawPointer(src + i + 2).loadUnaligned(as: SIMD8<Float>.self)
                let e = UnsafeRawPointer(src + i + 3).loadUnaligned(as: SIMD8<Float>.self)
                let d = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self)
                var v = SIMD8<Float>(repeating: 0)
                v += SIMD8(repeating: w0) * a
                v += SIMD8(repeating: w1) * b
                v += SIMD8(repeating: w2) * c
                v += SIMD8(repeating: w3) * e
                UnsafeMutableRawPointer(dst + i).storeBytes(of: d + v, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n {
                var v: Float = 0
                v += w0 * src[i]; v += w1 * src[i + 1]; v += w2 * src[i + 2]; v += w3 * src[i + 3]
                dst[i] += v; i += 1
            }
        }
    }

    /// `dst[i] += weight * src[i]` for `n` values, eight at a time.
    @inline(__always)
    static func accumulate(_ dst: UnsafeMutableBufferPointer<Float>, _ src: UnsafePointer<Float>,
                           _ weight: Float, _ n: Int) {
        let d = dst.baseAddress!
        var i = 0
        let wv = SIMD8<Float>(repeating: weight)
        while i + 8 <= n {
            let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(d + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: b + wv * a, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { d[i] += weight * src[i]; i += 1 }
    }

    /// The 1-D interpolation weights of a shift: source position of output `x` is
    /// `x + offset + frac`, taps at `x + offset + firstTap + t`.
    struct Kernel {
        var offset: Int
        var frac: Double
        var firstTap: Int
        var taps: Int
        var weights: [Float]

        init(shift: Double, interpolation: Interpolation) {
            // Source coordinate = x − shift = x + floor(−shift) + frac.
            let s = -shift
            let f = s.rounded(.down)
            offset = Int(f)
            frac = s - f
            if frac < 1e-9 || frac > 1 - 1e-9 {
                // Integer shift (to rounding): a pure copy, one tap.
                if frac > 0.5 { offset += 1 }
                frac = 0
                firstTap = 0; taps = 1; weights = [1]
                return
            }
            switch interpolation {
            case .bilinear:
                firstTap = 0; taps = 2
                weights = [Float(1 - frac), Float(frac)]
            case .bicubic:
                firstTap = -1; taps = 4
                let t = frac
                weights = [Float(Self.keys(1 + t)), Float(Self.keys(t)), Float(Self.keys(1 - t)), Float(Self.keys(2 - t))]
            }
        }

        /// Output indices whose taps all fall inside `0..<size`.
        func validRange(size: Int) -> (Int, Int) {
            let first = offset + firstTap, last = offset + firstTap + taps - 1
            return (Swift.max(0, -first), Swift.min(size, size - last))
        }

        /// Keys (1981) cubic convolution kernel with a = −0.5.
        static func keys(_ x: Double) -> Double {
            let a = -0.5, t = abs(x)
            if t <= 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a }
            return 0
        }
    }
}
