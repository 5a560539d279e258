import FrameCore
import Foundation

/// The analysed crystal: where the image shows the lattice's fringes.
///
/// Method: lock-in (geometric-phase-analysis) amplitudes, Hÿtch, Snoeck & Kilaas,
/// Ultramicroscopy 74 (1998) 131: the spectrum is masked by a Gaussian of real-space width
/// 0.75 layer spacings around a reflection and transformed back, giving its local amplitude.
/// The strength A(g)² + A(2g)·A(gColumn ∓ g) — the layer reflection for the layered phase, the
/// geometric mean of the half-spacing and a column reflection that survive in rock salt — is
/// high in the crystal (either phase) and low in vacuum, amorphous material and grains of
/// other orientation. Otsu's threshold
/// (Otsu, IEEE SMC 9 (1979) 62) splits it, unless the two classes are not distinct (lower
/// class mean above 35 % of the upper), in which case the whole image is crystal.
public enum CrystalRegion {
    public static func detect(in image: Image, lattice: Lattice) -> Mask {
        let w = image.width, h = image.height
        guard w >= 8, h >= 8, lattice.isUsable else { return Mask(width: w, height: h, fill: true) }
        guard let spectrum = meanFreeSpectrum(image) else { return Mask(width: w, height: h, fill: false) }
        let sigmaReal = 0.75 * lattice.layerSpacingPx
        let demodulator = Demodulator(spectrum, width: w, height: h, sigmaF: 1 / (2 * Double.pi * sigmaReal))
        // Layered: the layer reflection g, unique to this grain (nothing else of either phase
        // or of other grains' lattices sits at its spacing unless they are nearly parallel).
        // Rock salt: 2g and, when resolved, the column reflection gColumn ∓ g (the one
        // LatticeFinder reports is extinct in cation-mixed rock salt), combined as a geometric
        // mean, since another grain's reflections may fall on one of them but rarely on both.
        var coarse = demodulator.localPower(lattice.gLayer)
        let half = demodulator.localPower(2 * lattice.gLayer)
        if let gc = lattice.gColumn {
            let a = gc - lattice.gLayer, b = gc + lattice.gLayer
            let rockSalt = demodulator.localPower(norm(a) < norm(b) ? a : b)
            for k in coarse.indices { coarse[k] += (half[k] * rockSalt[k]).squareRoot() }
        } else {
            for k in coarse.indices { coarse[k] += half[k] }
        }
        var strength = demodulator.interpolated(coarse)
        clampBorders(&strength, width: w, height: h, margin: Int((1.5 * sigmaReal).rounded(.up)))
        return split(strength, width: w, height: h)
    }

    /// The spectrum of the image minus its mean, NaN/∞ pixels (dead detector lines) counted
    /// as the mean; nil without a finite pixel.
    static func meanFreeSpectrum(_ image: Image) -> ComplexFFTWorkspace? {
        var sum = 0.0, n = 0
        for p in image.pixels where p.isFinite { sum += Double(p); n += 1 }
        guard n > 0 else { return nil }
        let mean = Float(sum / Double(n))
        let ws = ComplexFFTWorkspace(width: image.width, height: image.height)
        for k in 0..<(image.width * image.height) {
            let p = image.pixels[k]; ws.data[k] = Complex(p.isFinite ? p - mean : 0, 0)
        }
        ws.forward()
        return ws
    }

    /// Local power of one reflection: the demodulated amplitude is band-limited to a few σ_f
    /// around g, so only a block of ±5 σ_f of the spectrum is transformed back: a small
    /// inverse FFT gives the amplitude on a coarse grid (x = i·w/bx), which is then
    /// interpolated to full size.
    struct Demodulator {
        let spectrum: ComplexFFTWorkspace
        let w: Int, h: Int, bx: Int, by: Int
        let sigmaF: Double
        let small: ComplexFFTWorkspace

        init(_ spectrum: ComplexFFTWorkspace, width: Int, height: Int, sigmaF: Double) {
            self.spectrum = spectrum
            w = width
            h = height
            self.sigmaF = sigmaF
            bx = min(w, 8 * max(2, Int((10 * sigmaF * Double(w) / 8).rounded(.up))))
            by = min(h, 8 * max(2, Int((10 * sigmaF * Double(h) / 8).rounded(.up))))
            small = ComplexFFTWorkspace(width: bx, height: by)
        }

        /// |z|² on the coarse grid for reflection g (zero beyond Nyquist).
        func localPower(_ g: SIMD2<Double>) -> [Double] {
            var out = [Double](repeating: 0, count: bx * by)
            guard abs(g.x) < 0.5, abs(g.y) < 0.5 else { return out }
            let cx = Int((g.x * Double(w)).rounded()), cy = Int((g.y * Double(h)).rounded())
            for r in 0..<by {
                let dr = r < by / 2 ? r : r - by             // offset from the centre bin
                let ky = ((cy + dr) % h + h) % h
                let fy = Double(cy + dr) / Double(h)
                let my = exp(-(fy - g.y) * (fy - g.y) / (2 * sigmaF * sigmaF))
                for q in 0..<bx {
                    let dq = q < bx / 2 ? q : q - bx
                    let kx = ((cx + dq) % w + w) % w
                    let fx = Double(cx + dq) / Double(w)
                    let m = Float(my * exp(-(fx - g.x) * (fx - g.x) / (2 * sigmaF * sigmaF)))
                    small.data[r * bx + q] = spectrum.data[ky * w + kx] * m
                }
            }
            small.backward()
            for k in 0..<(bx * by) {
                let c = small.data[k]
                out[k] = Double(c.x) * Double(c.x) + Double(c.y) * Double(c.y)
            }
            return out
        }

        /// Periodic bilinear interpolation of a coarse-grid map to the image grid.
        func interpolated(_ coarse: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: w * h)
            for y in 0..<h {
                let v = Double(y) * Double(by) / Double(h)
                let j0 = Int(v) % by, j1 = (j0 + 1) % by, fy = v - Double(Int(v))
                for x in 0..<w {
                    let u = Double(x) * Double(bx) / Double(w)
                    let i0 = Int(u) % bx, i1 = (i0 + 1) % bx, fx = u - Double(Int(u))
                    out[y * w + x] = (coarse[j0 * bx + i0] * (1 - fx) + coarse[j0 * bx + i1] * fx) * (1 - fy)
                        + (coarse[j1 * bx + i0] * (1 - fx) + coarse[j1 * bx + i1] * fx) * fy
                }
            }
            return out
        }
    }

    /// The FFT wraps the image around: within ~1.5 σ of its borders the amplitude mixes with
    /// the opposite border (another grain, or fringes out of phase). Those strips take the
    /// value just inside them instead.
    static func clampBorders(_ strength: inout [Double], width w: Int, height h: Int, margin m: Int) {
        guard w > 2 * m + 1, h > 2 * m + 1 else { return }
        let inner = strength
        for y in 0..<h {
            let yy = min(max(y, m), h - 1 - m)
            for x in 0..<w where y != yy || x < m || x > w - 1 - m {
                let xx = min(max(x, m), w - 1 - m)
                strength[y * w + x] = inner[yy * w + xx]
            }
        }
    }

    /// Otsu's split of the strength, or the whole image when the classes are not distinct.
    static func split(_ strength: [Double], width w: Int, height h: Int) -> Mask {
        guard let t = otsuThreshold(strength) else { return Mask(width: w, height: h, fill: true) }
        var lo = 0.0, hi = 0.0, nLo = 0, nHi = 0
        for s in strength { if s > t { hi += s; nHi += 1 } else { lo += s; nLo += 1 } }
        guard nLo > 0, nHi > 0 else { return Mask(width: w, height: h, fill: true) }
        // Amplitudes, not powers, compared: √ of the class means.
        if (lo / Double(nLo)).squareRoot() > 0.35 * (hi / Double(nHi)).squareRoot() {
            return Mask(width: w, height: h, fill: true)
        }
        return Mask(width: w, height: h, bits: strength.map { $0 > t })
    }

    /// Otsu's between-class-variance threshold over a 256-bin histogram of √values.
    static func otsuThreshold(_ values: [Double]) -> Double? {
        let amps = values.map { $0.squareRoot() }.filter { $0.isFinite }
        guard let lo = amps.min(), let hi = amps.max(), hi > lo else { return nil }
        let bins = 256
        var hist = [Double](repeating: 0, count: bins)
        for a in amps { hist[min(bins - 1, Int((a - lo) / (hi - lo) * Double(bins)))] += 1 }
        let total = Double(amps.count)
        var sumAll = 0.0
        for i in 0..<bins { sumAll += Double(i) * hist[i] }
        var wB = 0.0, sumB = 0.0, best = -1.0, bestI = 0
        for i in 0..<bins {
            wB += hist[i]
            if wB == 0 { continue }
            let wF = total - wB
            if wF == 0 { break }
            sumB += Double(i) * hist[i]
            let mB = sumB / wB, mF = (sumAll - sumB) / wF
            let between = wB * wF * (mB - mF) * (mB - mF)
            if between > best { best = between; bestI = i }
        }
        let a = lo + (Double(bestI) + 1) / Double(bins) * (hi - lo)
        return a * a
    }
}
