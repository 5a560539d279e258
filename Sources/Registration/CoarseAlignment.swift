import Foundation
import FrameCore

/// A frame low-passed below the lattice and sampled on a coarse grid, with a mask of
/// the pixels that hold valid data (for averages: covered by their frames).
struct CoarseImage: Sendable {
    var pixels: [Float]
    var mask: [Float]
    /// FFTs of `pixels·mask`, `pixels²·mask` and `mask` on the padded grid of
    /// `MaskedCorrelator`, cached for frames (each is correlated with several others).
    var spectra: [[Complex]]? = nil
}

/// Coarse, lattice-free stage of large-drift registration: masked normalised
/// cross-correlation of low-passed, downsampled frames.
///
/// Periodic lattices alias by a unit cell, so large shifts are first measured on the
/// non-periodic content only (boundaries, thickness, contamination): the *unwindowed*
/// frame is Gaussian low-passed well below the lowest lattice reflection and resampled on
/// a coarse grid by cropping its spectrum. The shift is the maximum of the masked NCC of
/// D. Padfield, "Masked object registration in the Fourier domain", IEEE Trans. Image
/// Process. 21, 2706 (2012): mean and norm are computed over the actual overlap of the
/// two masks at every shift, so content near the frame edges is not biased toward zero
/// shift as a taper window would bias it. The mask leaves out a border of 2σ where the
/// FFT's wrap-around mixes opposite edges.
struct CoarseGeometry: Sendable {
    let width: Int
    let height: Int
    /// Block-averaging factor applied before the FFT, and the binned size.
    let binning: Int
    let binnedWidth: Int
    let binnedHeight: Int
    let gridWidth: Int
    let gridHeight: Int
    /// Gaussian low-pass σ (cycles/px) and its spatial σ (px).
    let sigma: Double
    var spatialSigma: Double { 1 / (2 * Double.pi * sigma) }
    /// Pixels spanned by the binned frame (≤ the frame: remainder rows/columns dropped).
    var spanX: Double { Double(binnedWidth * binning) }
    var spanY: Double { Double(binnedHeight * binning) }
    var stepX: Double { spanX / Double(gridWidth) }
    var stepY: Double { spanY / Double(gridHeight) }
    let mask: [Float]

    init(width: Int, height: Int, sigma: Double) {
        self.width = width
        self.height = height
        self.sigma = sigma
        // Grid covering ±8σ of the spectrum (2× oversampled), between 24 and 96 samples.
        func size(_ n: Int) -> Int {
            let cap = Swift.min(96, n - n % 2)
            return Swift.min(cap, Swift.max(24, CorrelationGeometry.gridSize(needed: 16 * sigma * Double(n), limit: n)))
        }
        let gw = size(width), gh = size(height)
        // Block averaging first (cheap) keeps the FFT small. The box filter's zeros sit at
        // the multiples of the binned sampling frequency, exactly where lattice reflections
        // would alias onto the low frequencies kept, and the Gaussian stays far below the
        // binned Nyquist frequency (8σ·b ≤ 1/2).
        let b = Swift.max(1, Swift.min(4, Int(1 / (16 * sigma)), width / gw, height / gh))
        binning = b
        binnedWidth = width / b
        binnedHeight = height / b
        gridWidth = Swift.min(gw, binnedWidth - binnedWidth % 2)
        gridHeight = Swift.min(gh, binnedHeight - binnedHeight % 2)
        let stepX = Double(binnedWidth * b) / Double(gridWidth), stepY = Double(binnedHeight * b) / Double(gridHeight)
        let bx = Int((2 / (2 * Double.pi * sigma) / stepX).rounded(.up))
        let by = Int((2 / (2 * Double.pi * sigma) / stepY).rounded(.up))
        var m = [Float](repeating: 0, count: gridWidth * gridHeight)
        for y in 0..<gridHeight where y >= by && y < gridHeight - by {
            for x in 0..<gridWidth where x >= bx && x < gridWidth - bx { m[y * gridWidth + x] = 1 }
        }
        mask = m
    }

    /// Low-passed coarse image of `image` (mean-subtracted, unwindowed): block-averaged
    /// into `binned` (binned size), Gaussian low-passed and resampled on the coarse grid by
    /// cropping its spectrum into `small` (grid size).
    func image(of image: Image, binned ws: FFTWorkspace, small: FFTWorkspace, mean knownMean: Double? = nil) -> CoarseImage {
        let mean = Float(knownMean ?? fastMean(image.pixels))
        let bw = binnedWidth, b = binning
        let norm = 1 / Float(b * b)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<binnedHeight {
                let out = ws.real.baseAddress! + y * bw
                for x in 0..<bw { out[x] = 0 }
                for dy in 0..<b {
                    let row = src.baseAddress! + (y * b + dy) * width
                    var x = 0
                    if b == 4 {
                        // Eight binned pixels at a time: lane l sums pixels 4l…4l+3 in order,
                        // the same additions as one pixel at a time.
                        while x + 8 <= bw {
                            let v = UnsafeRawPointer(row + 4 * x).loadUnaligned(as: SIMD32<Float>.self)
                            let (even, odd) = (v.evenHalf, v.oddHalf)
                            var s = SIMD8<Float>(repeating: 0)
                            s += even.evenHalf; s += odd.evenHalf; s += even.oddHalf; s += odd.oddHalf
                            let o = UnsafeRawPointer(out + x).loadUnaligned(as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(out + x).storeBytes(of: o + s, as: SIMD8<Float>.self)
                            x += 8
                        }
                    }
                    while x < bw {
                        var s: Float = 0
                        for dx in 0..<b { s += row[x * b + dx] }
                        out[x] += s
                        x += 1
                    }
                }
                for x in 0..<bw { out[x] = out[x] * norm - mean }
            }
        }
        ws.forward(columns: gridWidth / 2 + 1)
        let hw = gridWidth / 2 + 1, columns = ws.columnSpectrum
        let scale = Float(1 / Double(bw * binnedHeight))
        for r in 0..<gridHeight {
            let ky = r <= gridHeight / 2 ? r : r - gridHeight
            let sr = ky >= 0 ? ky : ky + binnedHeight
            let fy = Double(ky) / spanY
            for c in 0..<hw {
                let fx = Double(c) / spanX
                let g = Float(exp(-(fx * fx + fy * fy) / (2 * sigma * sigma)))
                small.spectrum[r * hw + c] = columns[c * binnedHeight + sr] * (g * scale)
            }
        }
        small.inverse()
        return CoarseImage(pixels: Array(small.real), mask: mask)
    }

    /// `out += image` moved by `(−p)` px (bilinear) with its mask, for averages.
    func accumulate(_ image: CoarseImage, movedBy p: SIMD2<Double>, into out: inout CoarseImage) {
        let w = gridWidth, h = gridHeight
        let px = Image(width: w, height: h, pixels: image.pixels)
        let mk = Image(width: w, height: h, pixels: image.mask)
        let (a, va) = Resampling.shifted(px, by: -p.x / stepX, -p.y / stepY, interpolation: .bilinear)
        let (b, _) = Resampling.shifted(mk, by: -p.x / stepX, -p.y / stepY, interpolation: .bilinear)
        for i in 0..<(w * h) where va.bits[i] && b.pixels[i] > 0.999 {
            out.pixels[i] += a.pixels[i]
            out.mask[i] += 1
        }
    }

    /// Turns an accumulated sum into a mean image with a 0/1 mask (pixels covered by at
    /// least half of the contributing frames).
    func finishAverage(_ sum: CoarseImage, contributors: Int) -> CoarseImage {
        var out = sum
        let need = Float(Swift.max(1, contributors / 2))
        for i in out.pixels.indices {
            if sum.mask[i] >= need { out.pixels[i] = sum.pixels[i] / sum.mask[i]; out.mask[i] = 1 } else {
                out.pixels[i] = 0; out.mask[i] = 0
            }
        }
        return out
    }
}

/// Per-thread buffers of the masked NCC (one padded-size FFT workspace).
final class MaskedCorrelator {
    let geometry: CoarseGeometry
    private let fft: FFTWorkspace
    private let padW: Int
    private let padH: Int

    init(geometry: CoarseGeometry) {
        self.geometry = geometry
        padW = CorrelationGeometry.gridSize(needed: Double(2 * geometry.gridWidth), limit: 4 * geometry.gridWidth)
        padH = CorrelationGeometry.gridSize(needed: Double(2 * geometry.gridHeight), limit: 4 * geometry.gridHeight)
        fft = FFTWorkspace(width: padW, height: padH)
    }

    private func spectrum(_ values: [Float], _ weight: [Float], power: Int) -> [Complex] {
        let w = geometry.gridWidth, h = geometry.gridHeight
        for i in 0..<fft.real.count { fft.real[i] = 0 }
        for y in 0..<h {
            for x in 0..<w {
                let m = weight[y * w + x]
                guard m > 0 else { continue }
                let v = values[y * w + x]
                fft.real[y * padW + x] = power == 0 ? m : (power == 1 ? v * m : v * v * m)
            }
        }
        fft.forward()
        return Array(fft.spectrum)
    }

    /// `(a ⋆ b)(s) = Σ_x a(x) b(x + s)` on the padded grid.
    private func correlate(_ a: [Complex], _ b: [Complex]) -> [Float] {
        for i in 0..<a.count {
            let p = a[i], q = b[i]
            fft.spectrum[i] = Complex(p.x * q.x + p.y * q.y, p.x * q.y - p.y * q.x)
        }
        fft.inverse()
        let s = Float(1 / Double(padW * padH))
        return fft.real.map { $0 * s }
    }

    /// The three padded spectra the masked NCC needs of one image.
    func spectra(of image: CoarseImage) -> [[Complex]] {
        image.spectra ?? [spectrum(image.pixels, image.mask, power: 1), spectrum(image.pixels, image.mask, power: 2),
                          spectrum(image.pixels, image.mask, power: 0)]
    }

    /// Shift (px) of `moving` relative to `reference` at the maximum of the masked NCC
    /// times √overlap (its significance, so that small overlaps cannot win by chance) over
    /// shifts whose overlap holds at least `minOverlap` of the smaller mask, with the NCC
    /// there and its significance (NCC × √(independent samples in the overlap)).
    func measure(_ moving: CoarseImage, against reference: CoarseImage,
                 minOverlap: Double = 0.25) -> CorrelationPeak? {
        let f = reference, g = moving
        let fs = spectra(of: f), gs = spectra(of: g)
        let (f1, f2, mf) = (fs[0], fs[1], fs[2]), (g1, g2, mg) = (gs[0], gs[1], gs[2])
        let n = correlate(mf, mg), sf = correlate(f1, mg), sg = correlate(mf, g1)
        let sff = correlate(f2, mg), sgg = correlate(mf, g2), sfg = correlate(f1, g1)
        let areaF = f.mask.reduce(0, +), areaG = g.mask.reduce(0, +)
        let need = Float(minOverlap) * Swift.min(areaF, areaG)
        guard need > 0 else { return nil }
        var ncc = [Float](repeating: -.infinity, count: padW * padH)
        var best = -Float.infinity, bi = -1
        for i in 0..<ncc.count where n[i] >= need {
            let cnt = n[i].rounded()
            let num = sfg[i] - sf[i] * sg[i] / cnt
            let da = sff[i] - sf[i] * sf[i] / cnt, db = sgg[i] - sg[i] * sg[i] / cnt
            guard da > 0, db > 0 else { continue }
            // Ranked by significance NCC·√overlap: tiny overlaps reach high NCC by chance.
            let v = num / (da * db).squareRoot() * n[i].squareRoot()
            ncc[i] = v
            if v > best { best = v; bi = i }
        }
        guard bi >= 0 else { return nil }
        let ix = bi % padW, iy = bi / padW
        // Parabolic sub-sample refinement along each axis.
        func at(_ x: Int, _ y: Int) -> Float { ncc[((y + padH) % padH) * padW + (x + padW) % padW] }
        func vertex(_ l: Float, _ c: Float, _ r: Float) -> Double {
            guard l.isFinite, r.isFinite else { return 0 }
            let d = Double(l - 2 * c + r)
            return d < 0 ? Swift.min(0.5, Swift.max(-0.5, 0.5 * Double(l - r) / d)) : 0
        }
        let ox = vertex(at(ix - 1, iy), best, at(ix + 1, iy))
        let oy = vertex(at(ix, iy - 1), best, at(ix, iy + 1))
        let sx = Double(ix <= padW / 2 ? ix : ix - padW) + ox
        let sy = Double(iy <= padH / 2 ? iy : iy - padH) + oy
        let overlapPx = Double(n[bi]) * geometry.stepX * geometry.stepY
        let independent = overlapPx / (4 * Double.pi * geometry.spatialSigma * geometry.spatialSigma)
        let value = Double(best) / Double(n[bi]).squareRoot()
        return CorrelationPeak(dx: sx * geometry.stepX, dy: sy * geometry.stepY, ncc: value,
                               significance: value * independent.squareRoot())
    }
}
