import Foundation
import FrameCore

/// Interpolating samplers over a row-major float buffer; nil outside the image.
enum Sampler {
    @inline(__always)
    static func bilinear(_ p: UnsafeMutablePointer<Float>, _ w: Int, _ h: Int, _ x: Double, _ y: Double) -> Float? {
        Row(y: y, width: w, height: h)?.bilinear(UnsafePointer(p), x)
    }

    /// Keys' cubic convolution (a = −0.5, IEEE Trans. ASSP 29, 1981): sharper than bilinear,
    /// so averaged columns are not blurred by resampling. Edges clamp.
    @inline(__always)
    static func bicubic(_ p: UnsafeMutablePointer<Float>, _ w: Int, _ h: Int, _ x: Double, _ y: Double) -> Float? {
        Row(y: y, width: w, height: h)?.bicubic(UnsafePointer(p), x)
    }

    /// Sampling at one row position y, for many x along it: the vertical taps and weights
    /// are worked out once. nil when y lies outside the image.
    struct Row {
        let width: Int
        /// Offsets of the cubic taps' rows (clamped at the edges) and their weights.
        let cubicRows: SIMD4<Int>
        let wy: SIMD4<Float>
        /// Offset of the upper bilinear row and the fraction toward the lower one.
        let linearRow: Int
        let fy: Float

        @inline(__always)
        init?(y: Double, width w: Int, height h: Int) {
            guard y >= 0, y <= Double(h - 1) else { return nil }
            let yi = Int(y), y0 = Swift.min(yi, h - 2)
            var rows = SIMD4<Int>()
            for j in 0..<4 { rows[j] = Swift.min(h - 1, Swift.max(0, yi + j - 1)) * w }
            width = w; cubicRows = rows; wy = Sampler.keys(Float(y - Double(yi)))
            linearRow = y0 * w; fy = Float(y - Double(y0))
        }

        @inline(__always)
        func bicubic(_ p: UnsafePointer<Float>, _ x: Double) -> Float? {
            let w = width
            guard x >= 0, x <= Double(w - 1) else { return nil }
            let xi = Int(x), wx = Sampler.keys(Float(x - Double(xi)))
            var acc: Float = 0
            for j in 0..<4 {
                var r: Float = 0
                if xi >= 1 && xi + 2 < w {
                    for i in 0..<4 { r += wx[i] * p[cubicRows[j] + xi - 1 + i] }
                } else {
                    for i in 0..<4 { r += wx[i] * p[cubicRows[j] + Swift.min(w - 1, Swift.max(0, xi + i - 1))] }
                }
                acc += wy[j] * r
            }
            return acc
        }

        @inline(__always)
        func bilinear(_ p: UnsafePointer<Float>, _ x: Double) -> Float? {
            let w = width
            guard x >= 0, x <= Double(w - 1) else { return nil }
            let x0 = Swift.min(Int(x), w - 2), fx = Float(x - Double(x0))
            let i = linearRow + x0
            let top = p[i] + (p[i + 1] - p[i]) * fx
            let bottom = p[i + w] + (p[i + w + 1] - p[i + w]) * fx
            return top + (bottom - top) * fy
        }
    }

    @inline(__always)
    static func keys(_ t: Float) -> SIMD4<Float> {
        let t2 = t * t, t3 = t2 * t
        return SIMD4(-0.5 * t3 + t2 - 0.5 * t,
                     1.5 * t3 - 2.5 * t2 + 1,
                     -1.5 * t3 + 2 * t2 + 0.5 * t,
                     0.5 * t3 - 0.5 * t2)
    }
}

/// Small image filters the registration stages share.
enum Filters {
    static func gaussianKernel(sigma: Double) -> [Double] {
        guard sigma > 0 else { return [1] }
        let r = Int((3 * sigma).rounded(.up))
        let k = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let s = k.reduce(0, +)
        return k.map { $0 / s }
    }

    /// Separable Gaussian blur with clamped edges (clamping only in the border strips, so the
    /// interior loop vectorises).
    static func gaussianBlur(_ image: Image, sigma: Double) -> Image {
        guard sigma > 0 else { return image }
        let k = gaussianKernel(sigma: sigma).map(Float.init), r = k.count / 2
        let w = image.width, h = image.height
        guard w > 2 * r, h > 2 * r else { return image }
        var tmp = [Float](repeating: 0, count: w * h), out = tmp
        image.pixels.withUnsafeBufferPointer { src in
            tmp.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w {
                        var acc: Float = 0
                        if x >= r && x < w - r {
                            for j in 0..<k.count { acc += k[j] * src[row + x + j - r] }
                        } else {
                            for j in 0..<k.count { acc += k[j] * src[row + Swift.min(w - 1, Swift.max(0, x + j - r))] }
                        }
                        dst[row + x] = acc
                    }
                }
            }
        }
        tmp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let row = y * w
                    // Row-wise accumulation: each tap adds a whole source row (contiguous, vectorised).
                    for j in 0..<k.count {
                        let sy = Swift.min(h - 1, Swift.max(0, y + j - r)) * w
                        let kj = k[j]
                        for x in 0..<w { dst[row + x] += kj * src[sy + x] }
                    }
                }
            }
        }
        return Image(width: w, height: h, pixels: out)
    }

    /// `mask` with every pixel within `radius` (Chebyshev distance) of an unset pixel or the
    /// border cleared: separable running minimum, O(pixels).
    static func eroded(_ mask: Mask, radius: Int) -> Mask {
        let w = mask.width, h = mask.height
        func erode1D(_ get: (Int) -> Bool, _ n: Int) -> [Bool] {
            // Distance to the nearest unset element on each side.
            var left = [Int](repeating: 0, count: n), right = left
            var last = -1
            for i in 0..<n { if !get(i) { last = i }; left[i] = i - last }
            last = n
            for i in stride(from: n - 1, through: 0, by: -1) { if !get(i) { last = i }; right[i] = last - i }
            return (0..<n).map { left[$0] > radius && right[$0] > radius }
        }
        var rows = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            let e = erode1D({ mask.bits[y * w + $0] }, w)
            for x in 0..<w { rows[y * w + x] = e[x] }
        }
        var out = [Bool](repeating: false, count: w * h)
        for x in 0..<w {
            let e = erode1D({ rows[$0 * w + x] }, h)
            for y in 0..<h { out[y * w + x] = e[y] }
        }
        return Mask(width: w, height: h, bits: out)
    }

    /// Central-difference gradients (one-sided at the edges).
    static func gradients(_ image: Image) -> (gx: [Float], gy: [Float]) {
        let w = image.width, h = image.height, p = image.pixels
        var gx = [Float](repeating: 0, count: w * h), gy = gx
        for y in 0..<h {
            for x in 0..<w {
                let xm = Swift.max(0, x - 1), xp = Swift.min(w - 1, x + 1)
                let ym = Swift.max(0, y - 1), yp = Swift.min(h - 1, y + 1)
                gx[y * w + x] = (p[y * w + xp] - p[y * w + xm]) / Float(Swift.max(1, xp - xm))
                gy[y * w + x] = (p[yp * w + x] - p[ym * w + x]) / Float(Swift.max(1, yp - ym))
            }
        }
        return (gx, gy)
    }

    /// Least-squares gain and offset with a ≈ gain·b + offset over the masked pixels.
    static func linearFit(_ a: [Float], _ b: [Float], _ mask: [Bool]) -> (gain: Float, offset: Float) {
        var n = 0.0, sa = 0.0, sb = 0.0, sbb = 0.0, sab = 0.0
        for k in a.indices where mask[k] {
            let x = Double(b[k]), y = Double(a[k])
            n += 1; sa += y; sb += x; sbb += x * x; sab += x * y
        }
        let den = n * sbb - sb * sb
        guard n > 2, den > 0 else { return (1, 0) }
        let gain = (n * sab - sa * sb) / den
        return (Float(gain), Float((sa - gain * sb) / n))
    }
}
