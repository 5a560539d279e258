import Foundation
import FrameCore

/// Scan distortions of a single image of a crystal, measured against the crystal's own
/// periodicity: the lattice is straight, so the phase of each strong lattice reflection gives
/// the local displacement along it (u·g = −Δφ/2π), as geometric phase analysis does for
/// strain (Hÿtch, Snoeck & Kilaas, Ultramicroscopy 74, 131, 1998), here with the raster's
/// structure: one (ux, uy) per line, one ux per column (Jones & Nellist, Microsc. Microanal.
/// 19, 1050, 2013, use the same structure for single-image scan correction). The lock-in mask
/// is anisotropic — narrow along the direction summed over, as wide across it as the other
/// reflections allow — so line offsets keep a resolution of a few lines and column offsets
/// of a few pixels; the image is zero-padded so that its edges do not wrap into each other.
///
/// Why: relative registration of a series removes only what differs between frames; the
/// series average keeps what they share — the flyback compression at the line starts, the
/// mean of the per-line jitter and the non-linear part of the mean drift path. Those move
/// columns of the average away from the ideal lattice. Layers at any angle: every reflection
/// found in the power spectrum is used, each weighted by its demodulated power, so a second
/// grain or a rock-salt region simply contributes its own reflections where it has them.
///
/// Affine terms (a constant, a shear or stretch, linear in the line or column index) are left
/// alone: they cannot be told from the lattice's own parameters and do not affect precision.
public enum ScanLatticeCorrection {
    public struct Options: Sendable {
        /// Strongest reflections used.
        public var reflections = 6
        /// Shortest lattice period considered (px).
        public var minPeriodPx = 3.0
        /// Lock-in mask σ (cycles/px) along the direction summed over (≈ 20 px averaging).
        public var lockInNarrowSigmaF = 0.008
        /// Largest lock-in mask σ (cycles/px) across it (resolution ≈ 1/(2π·σ) lines).
        public var lockInWideSigmaF = 0.01
        /// Gaussian σ (lines) of the smoothing of per-line y offsets (slow-scan drift is smooth).
        public var rowYSmoothingLines = 3.0
        /// Gaussian σ (lines) of the smoothing of per-line x offsets: the part `ScanLineCorrection`
        /// high-passes away (its `highPassLines`), so that the two add up without overlap.
        public var rowXSmoothingLines = 4.0
        /// Gaussian σ (px) of the smoothing of the per-column x offsets (flyback is smooth).
        public var columnSmoothingPx = 2.0
        public init() {}
    }

    /// Displacements of the image content (px, +x right, +y down) per line and per column,
    /// affine part removed: row Y shows at (x, Y) what an undistorted image shows at
    /// (x − rowX[Y] − columnX[x], Y − rowY[Y]).
    public struct Offsets: Sendable, Equatable {
        public var rowX: [Double]
        public var rowY: [Double]
        public var columnX: [Double]
    }

    /// A lattice reflection g (cycles/px) and its power in the image's spectrum.
    public struct Reflection: Sendable, Equatable {
        public var g: SIMD2<Double>
        public var power: Double
    }

    /// The strongest local maxima of the windowed power spectrum with periods between
    /// `minPeriodPx` and a sixth of the image, one of each ±g pair, refined to a fraction of a
    /// frequency bin by parabolic interpolation of the log power.
    public static func reflections(in image: Image, valid: Mask, options: Options = Options()) -> [Reflection] {
        let w = image.width, h = image.height
        let fft = FFTWorkspace(width: w, height: h)
        var sum = 0.0, n = 0.0
        for k in 0..<(w * h) where valid.bits[k] { sum += Double(image.pixels[k]); n += 1 }
        guard n > 0 else { return [] }
        let mean = Float(sum / n)
        for y in 0..<h {
            let wy = Float(0.5 - 0.5 * cos(2 * Double.pi * (Double(y) + 0.5) / Double(h)))
            for x in 0..<w {
                let k = y * w + x
                let wx = Float(0.5 - 0.5 * cos(2 * Double.pi * (Double(x) + 0.5) / Double(w)))
                fft.real[k] = valid.bits[k] ? (image.pixels[k] - mean) * wx * wy : 0
            }
        }
        fft.forward()
        let sw = fft.spectrumWidth
        func power(_ kx: Int, _ ky: Int) -> Double {
            let c = fft.spectrum[((ky % h + h) % h) * sw + kx]
            return Double(c.x * c.x + c.y * c.y)
        }
        let fMax = 1 / options.minPeriodPx, fMin = 6.0 / Double(Swift.min(w, h))
        var peaks: [Reflection] = []
        for ky in 0..<h {
            let fy = fft.frequencyY(ky)
            for kx in 1..<(sw - 1) {
                let g = SIMD2(Double(kx) / Double(w), Double(fy) / Double(h))
                let f = (g * g).sum().squareRoot()
                guard f >= fMin, f <= fMax else { continue }
                let p = power(kx, fy)
                var isMax = true
                for dy in -1...1 { for dx in -1...1 where (dx, dy) != (0, 0) && power(kx + dx, fy + dy) > p { isMax = false } }
                guard isMax else { continue }
                // Sub-bin refinement on the log power.
                func vertex(_ a: Double, _ b: Double, _ c: Double) -> Double {
                    let la = log(a + 1e-30), lb = log(b + 1e-30), lc = log(c + 1e-30)
                    let d = la - 2 * lb + lc
                    return d < 0 ? Swift.max(-0.5, Swift.min(0.5, 0.5 * (la - lc) / d)) : 0
                }
                let ox = vertex(power(kx - 1, fy), p, power(kx + 1, fy))
                let oy = vertex(power(kx, fy - 1), p, power(kx, fy + 1))
                peaks.append(Reflection(g: SIMD2((Double(kx) + ox) / Double(w), (Double(fy) + oy) / Double(h)), power: p))
            }
        }
        peaks.sort { $0.power > $1.power }
        return Array(peaks.prefix(options.reflections))
    }

    /// Per-line and per-column displacements of the content, measured on the lattice
    /// reflections (`reflections`). Lines or columns where no reflection is strong enough
    /// get 0.
    public static func offsets(in image: Image, valid: Mask, reflections: [Reflection],
                               options: Options = Options()) -> Offsets {
        let w = image.width, h = image.height
        var result = Offsets(rowX: [Double](repeating: 0, count: h), rowY: [Double](repeating: 0, count: h),
                             columnX: [Double](repeating: 0, count: w))
        guard !reflections.isEmpty else { return result }
        // Per line: complex demodulated sums, one per reflection.
        let (rows, cols) = demodulated(image, valid: valid, reflections: reflections, options: options)

        // b_k = g_k·u per line (px·cycles/px = cycles), from the unwrapped, detrended phase.
        let bRows = reflections.indices.map { detrendedDisplacement(rows[$0]) }
        let bCols = reflections.indices.map { detrendedDisplacement(cols[$0]) }
        // Per line: least squares for (ux, uy) over the reflections, weighted by power.
        for y in 0..<h {
            var a11 = 0.0, a12 = 0.0, a22 = 0.0, r1 = 0.0, r2 = 0.0
            for (k, refl) in reflections.enumerated() {
                let wgt = bRows[k].weight[y], b = bRows[k].value[y], g = refl.g
                a11 += wgt * g.x * g.x; a12 += wgt * g.x * g.y; a22 += wgt * g.y * g.y
                r1 += wgt * g.x * b; r2 += wgt * g.y * b
            }
            let det = a11 * a22 - a12 * a12
            if det > 1e-9 * Swift.max(1e-300, a11 * a22) {
                result.rowX[y] = (a22 * r1 - a12 * r2) / det
                result.rowY[y] = (a11 * r2 - a12 * r1) / det
            } else if a11 > 0 {
                result.rowX[y] = r1 / a11
            }
        }
        // Per column: ux only (the fast-scan non-linearity).
        for x in 0..<w {
            var a = 0.0, r = 0.0
            for (k, refl) in reflections.enumerated() {
                let wgt = bCols[k].weight[x]
                a += wgt * refl.g.x * refl.g.x; r += wgt * refl.g.x * bCols[k].value[x]
            }
            if a > 0 { result.columnX[x] = r / a }
        }
        result.rowX = affineRemoved(smoothed(result.rowX, sigma: options.rowXSmoothingLines))
        result.rowY = affineRemoved(smoothed(result.rowY, sigma: options.rowYSmoothingLines))
        result.columnX = affineRemoved(smoothed(result.columnX, sigma: options.columnSmoothingPx))
        return result
    }

    /// For each reflection, the image demodulated at g by a Gaussian lock-in in Fourier space
    /// (geometric phase analysis), its mask as wide as the distance to the nearest other
    /// reflection allows, then summed along each line and each column over the valid pixels.
    static func demodulated(_ image: Image, valid: Mask, reflections: [Reflection], options: Options)
        -> (rows: [[SIMD2<Double>]], columns: [[SIMD2<Double>]]) {
        let lockIn = LockIn(image, valid: valid, reflections: reflections, options: options)
        // One workspace per reflection (each iteration owns its own).
        let sums = ResultSlots<([SIMD2<Double>], [SIMD2<Double>])>.map(reflections.count) { k in
            let fft = ComplexFFTWorkspace(width: lockIn.pw, height: lockIn.ph)
            return (lockIn.sums(reflections[k], alongX: true, fft: fft), lockIn.sums(reflections[k], alongX: false, fft: fft))
        }
        return (sums.map(\.0), sums.map(\.1))
    }

    /// An image's valid pixels, mean removed, zero-padded by three lock-in widths and
    /// transformed once, and every peak a reflection's lock-in mask must exclude.
    struct LockIn {
        let w: Int, h: Int, m: Int, pw: Int, ph: Int
        let spectrum: [Complex]
        /// DC and ±g of every reflection.
        let others: [SIMD2<Double>]
        /// The valid pixels away from their edge, where the sums are taken.
        let inner: Mask
        let options: Options

        init(_ image: Image, valid: Mask, reflections: [Reflection], options: Options) {
            w = image.width; h = image.height
            var sum = 0.0, n = 0.0
            for k in 0..<(w * h) where valid.bits[k] { sum += Double(image.pixels[k]); n += 1 }
            let mean = Float(n > 0 ? sum / n : 0)
            // The image is not periodic: wrapping its opposite edges into each other would bias
            // the phase near every border.
            m = Int((3 / (2 * Double.pi * options.lockInNarrowSigmaF)).rounded(.up))
            pw = w + 2 * m; ph = h + 2 * m
            let fft = ComplexFFTWorkspace(width: pw, height: ph)
            for k in 0..<(pw * ph) { fft.data[k] = .zero }
            for y in 0..<h {
                for x in 0..<w where valid.bits[y * w + x] {
                    fft.data[(y + m) * pw + x + m] = Complex(image.pixels[y * w + x] - mean, 0)
                }
            }
            fft.forward()
            spectrum = Array(fft.data)
            others = [.zero] + reflections.flatMap { [$0.g, -$0.g] }
            inner = Filters.eroded(valid, radius: 2)
            self.options = options
        }

        /// Lock-in at `r` with an anisotropic Gaussian mask: narrow (σ `narrow`) along the summed
        /// direction, as wide across it as the other peaks allow (full resolution across
        /// lines for `alongX`), then summed along lines (alongX) or columns.
        func sums(_ r: Reflection, alongX: Bool, fft: ComplexFFTWorkspace) -> [SIMD2<Double>] {
            let narrow = options.lockInNarrowSigmaF
            // Other peaks within reach along the narrow axis limit the wide axis.
            var wide = options.lockInWideSigmaF
            for o in others where ((o - r.g) * (o - r.g)).sum() > 1e-12 {
                let dn = abs(alongX ? o.x - r.g.x : o.y - r.g.y), dw = abs(alongX ? o.y - r.g.y : o.x - r.g.x)
                if dn < 4 * narrow { wide = Swift.min(wide, dw / 4) }
            }
            wide = Swift.max(wide, narrow)
            let (sx, sy) = alongX ? (narrow, wide) : (wide, narrow)
            for i in 0..<(pw * ph) { fft.data[i] = .zero }
            let kx0 = Int(floor((r.g.x - 4 * sx) * Double(pw))), kx1 = Int(ceil((r.g.x + 4 * sx) * Double(pw)))
            let ky0 = Int(floor((r.g.y - 4 * sy) * Double(ph))), ky1 = Int(ceil((r.g.y + 4 * sy) * Double(ph)))
            for qy in Swift.max(ky0, -ph / 2 + 1)...Swift.min(ky1, ph / 2) {
                let fy = Double(qy) / Double(ph), ky = ((qy % ph) + ph) % ph
                for qx in Swift.max(kx0, -pw / 2 + 1)...Swift.min(kx1, pw / 2) {
                    let fx = Double(qx) / Double(pw), kx = ((qx % pw) + pw) % pw
                    let ex = (fx - r.g.x) / sx, ey = (fy - r.g.y) / sy
                    fft.data[ky * pw + kx] = spectrum[ky * pw + kx] * Float(exp(-0.5 * (ex * ex + ey * ey)) / Double(pw * ph))
                }
            }
            fft.backward()
            let ex = (0..<w).map { x in SIMD2(cos(-2 * Double.pi * r.g.x * Double(x)), sin(-2 * Double.pi * r.g.x * Double(x))) }
            var out = [SIMD2<Double>](repeating: .zero, count: alongX ? h : w)
            for y in 0..<h {
                let ey = SIMD2(cos(-2 * Double.pi * r.g.y * Double(y)), sin(-2 * Double.pi * r.g.y * Double(y)))
                for x in 0..<w where inner.bits[y * w + x] {
                    let c = fft.data[(y + m) * pw + x + m]
                    // c · e^{−2πi g_x x} · e^{−2πi g_y y}
                    let e = SIMD2(ex[x].x * ey.x - ex[x].y * ey.y, ex[x].x * ey.y + ex[x].y * ey.x)
                    let v = SIMD2(Double(c.x) * e.x - Double(c.y) * e.y, Double(c.x) * e.y + Double(c.y) * e.x)
                    out[alongX ? y : x] += v
                }
            }
            return out
        }
    }

    /// g·u per line (cycles) from the demodulated sums: −φ/2π with the phase's mean slope
    /// along the lines (a slightly different g: the lattice's own parameters) and its mean
    /// removed, wrapped to ±½ cycle — no unwrapping, whose errors would accumulate; the
    /// distortions left after rigid alignment are well below half a period. Weight:
    /// demodulated power, 0 where the reflection is weak (another grain, vacuum).
    static func detrendedDisplacement(_ s: [SIMD2<Double>]) -> (value: [Double], weight: [Double]) {
        let n = s.count
        let power = s.map { ($0 * $0).sum() }
        let strong = power.sorted()[n / 2 + n / 4]
        var weight = power.map { $0 >= 0.05 * strong && $0 > 0 ? $0 : 0 }
        var value = [Double](repeating: 0, count: n)
        // Mean phase increment per line, from neighbours' products (no unwrapping).
        var inc = SIMD2<Double>(0, 0)
        for i in 1..<n where weight[i] > 0 && weight[i - 1] > 0 {
            let p = s[i], q = s[i - 1]
            inc += SIMD2(p.x * q.x + p.y * q.y, p.y * q.x - p.x * q.y)
        }
        let slope = atan2(inc.y, inc.x)
        var mean = SIMD2<Double>(0, 0)
        var rotated = [SIMD2<Double>](repeating: .zero, count: n)
        for i in 0..<n where weight[i] > 0 {
            let a = -slope * Double(i), c = cos(a), sn = sin(a)
            rotated[i] = SIMD2(s[i].x * c - s[i].y * sn, s[i].x * sn + s[i].y * c)
            mean += rotated[i]
        }
        guard (mean * mean).sum() > 0 else { weight = weight.map { _ in 0 }; return (value, weight) }
        let m = atan2(mean.y, mean.x)
        for i in 0..<n where weight[i] > 0 {
            var d = atan2(rotated[i].y, rotated[i].x) - m
            d -= 2 * Double.pi * (d / (2 * Double.pi)).rounded()
            value[i] = -d / (2 * Double.pi)
        }
        return (value, weight)
    }

    static func smoothed(_ v: [Double], sigma: Double) -> [Double] {
        guard sigma > 0 else { return v }
        let k = Filters.gaussianKernel(sigma: sigma), r = k.count / 2, n = v.count
        return (0..<n).map { i in
            var s = 0.0
            for (j, kv) in k.enumerated() { s += kv * v[Swift.min(n - 1, Swift.max(0, i + j - r))] }
            return s
        }
    }

    /// `v` minus its least-squares line over the non-zero entries.
    public static func affineRemoved(_ v: [Double]) -> [Double] {
        var sw = 0.0, st = 0.0, sv = 0.0, stt = 0.0, stv = 0.0
        for (i, x) in v.enumerated() where x != 0 {
            let t = Double(i)
            sw += 1; st += t; sv += x; stt += t * t; stv += t * x
        }
        let den = sw * stt - st * st
        guard sw > 2, den > 0 else { return v }
        let slope = (sw * stv - st * sv) / den, icpt = (sv - slope * st) / sw
        return v.enumerated().map { $0.element == 0 ? 0 : $0.element - icpt - slope * Double($0.offset) }
    }
}
