import Dispatch
import Foundation
import FrameCore

/// Scan distortions of one image of a crystal measured line by line against the crystal's
/// own ideal lattice: the image Bragg-filtered through narrow masks around its strong
/// reflections (Kilaas, J. Microsc. 190, 45, 1998) is the undistorted lattice (its peaks
/// average every distortion shorter than about a third of the image), and each scan line,
/// then each column, of the image is registered to it by Gauss–Newton (Lucas & Kanade 1981):
/// one (x, y) offset per line, one x offset per column, the raster's structure (Jones &
/// Nellist, Microsc. Microanal. 19, 1050, 2013).
///
/// Why beside `ScanLatticeCorrection`: geometric phase analysis resolves a line offset only
/// over the width of its lock-in mask, about 16 lines when reflections lie close together,
/// and the line-to-line smoothness of `ScanLineCorrection` sees only offsets that change
/// within a few lines. What the frames of a series share after their relative correction,
/// the mean of 2–12 Hz vibration over the frames (periods of 20–150 lines) and of their line
/// jitter, falls between the two. Against the ideal lattice every line is measured on its
/// own, so nothing in between is lost.
///
/// Only pixels inside the crystal (where the lattice's local amplitude is at least a
/// quarter of its median) count; the affine part of the offsets is left to the lattice's
/// own parameters. Lines or columns without crystal get 0.
public enum LatticeModelCorrection {
    public struct Options: Sendable {
        /// Strongest reflections in the ideal lattice (with their harmonics, so that little
        /// periodic content is left out of the model: along one line, a reflection left out
        /// can share the frequency of one kept and bias the line's offset).
        public var reflections = 12
        /// Bragg mask σ (cycles/px) as a multiple of 1/size: the ideal lattice averages
        /// distortions over ≈ size/(2π·multiple) px.
        public var braggSigmaPerSize = 1.5
        /// Mask σ (cycles/px) of the lattice content whose local amplitude marks the crystal.
        public var envelopeSigmaF = 0.03
        /// Gauss–Newton rounds (rows, then columns, each resampling the model).
        public var rounds = 3
        /// Smoothness penalty of the per-line y offsets (second difference), relative to the
        /// median per-line information.
        public var rowYSmoothing = 20.0
        /// Gaussian σ (px) of the smoothing of the per-column x offsets.
        public var columnSmoothingPx = 1.0
        /// Lines (columns) over which the offsets fade out toward the ends of the measured band.
        public var edgeFade = 12.0
        public init() {}
    }

    /// The ideal lattice of the image: its Bragg-filtered copy, and the crystal mask.
    struct IdealLattice {
        var image: Image
        var crystal: Mask
    }

    public static func offsets(in image: Image, valid: Mask, reflections: [ScanLatticeCorrection.Reflection],
                               options: Options = Options()) -> ScanLatticeCorrection.Offsets {
        let w = image.width, h = image.height
        var out = ScanLatticeCorrection.Offsets(rowX: [Double](repeating: 0, count: h), rowY: [Double](repeating: 0, count: h),
                                                columnX: [Double](repeating: 0, count: w))
        guard !reflections.isEmpty, let ideal = idealLattice(image, valid: valid, reflections: reflections, options: options)
        else { return out }
        let use = Mask(width: w, height: h, bits: (0..<(w * h)).map { valid.bits[$0] && ideal.crystal.bits[$0] })
        guard use.setCount > w * 4 else { return out }
        for _ in 0..<Swift.max(1, options.rounds) {
            let (dx, dy) = rowStep(image, ideal: ideal.image, use: use, offsets: out, options: options)
            for y in 0..<h { out.rowX[y] += dx[y]; out.rowY[y] += dy[y] }
            let dc = columnStep(image, ideal: ideal.image, use: use, offsets: out, options: options)
            for x in 0..<w { out.columnX[x] += dc[x] }
        }
        // The affine part over the measured lines and columns only (the others stay 0), then
        // faded out toward the ends of the measured band: there the Bragg-filtered lattice
        // has neighbours on one side only and is biased.
        out.rowX = faded(ScanLatticeCorrection.affineRemoved(out.rowX), over: options.edgeFade)
        out.rowY = faded(ScanLatticeCorrection.affineRemoved(out.rowY), over: options.edgeFade)
        out.columnX = faded(ScanLatticeCorrection.affineRemoved(out.columnX), over: options.edgeFade)
        return out
    }

    /// `v` (0 where unmeasured) scaled by min(1, distance to the first or last measured entry / `n`).
    static func faded(_ v: [Double], over n: Double) -> [Double] {
        guard let first = v.firstIndex(where: { $0 != 0 }), let last = v.lastIndex(where: { $0 != 0 }), n > 0 else { return v }
        return v.indices.map { i in
            let d = Double(Swift.min(i - first, last - i))
            return d < 0 ? 0 : v[i] * Swift.min(1, d / n)
        }
    }

    /// Bragg-filtered image (narrow masks at ±g of every reflection) and the crystal mask
    /// (local amplitude of the image's content near the reflections).
    static func idealLattice(_ image: Image, valid: Mask, reflections: [ScanLatticeCorrection.Reflection],
                             options: Options) -> IdealLattice? {
        let w = image.width, h = image.height
        var sum = 0.0, n = 0.0
        for k in 0..<(w * h) where valid.bits[k] { sum += Double(image.pixels[k]); n += 1 }
        guard n > 0 else { return nil }
        let mean = Float(sum / n)
        let m = Swift.min(w, h) / 8
        let pw = w + 2 * m, ph = h + 2 * m
        let fft = ComplexFFTWorkspace(width: pw, height: ph)
        for k in 0..<(pw * ph) { fft.data[k] = .zero }
        for y in 0..<h { for x in 0..<w where valid.bits[y * w + x] {
            fft.data[(y + m) * pw + x + m] = Complex(image.pixels[y * w + x] - mean, 0)
        } }
        fft.forward()
        let spectrum = Array(fft.data)
        let peaks = reflections.flatMap { [$0.g, -$0.g] }
        func filtered(sigma: Double) -> [Complex] {
            for qy in 0..<ph {
                let fy = Double(qy <= ph / 2 ? qy : qy - ph) / Double(ph)
                for qx in 0..<pw {
                    let fx = Double(qx <= pw / 2 ? qx : qx - pw) / Double(pw)
                    var g = 0.0
                    for p in peaks {
                        let dx = fx - p.x, dy = fy - p.y
                        let e = (dx * dx + dy * dy) / (2 * sigma * sigma)
                        if e < 20 { g += exp(-e) }
                    }
                    fft.data[qy * pw + qx] = spectrum[qy * pw + qx] * Float(Swift.min(1, g) / Double(pw * ph))
                }
            }
            fft.backward()
            return Array(fft.data)
        }
        let bragg = filtered(sigma: options.braggSigmaPerSize / Double(Swift.min(w, h)))
        var ideal = Image(width: w, height: h)
        for y in 0..<h { for x in 0..<w { ideal.pixels[y * w + x] = bragg[(y + m) * pw + x + m].x } }
        let broad = filtered(sigma: options.envelopeSigmaF)
        var power = Image(width: w, height: h)
        for y in 0..<h { for x in 0..<w { let v = broad[(y + m) * pw + x + m].x; power.pixels[y * w + x] = v * v } }
        power = Filters.gaussianBlur(power, sigma: 6)
        let inside = (0..<(w * h)).filter { valid.bits[$0] }.map { power.pixels[$0] }.sorted()
        guard !inside.isEmpty else { return nil }
        let limit = 0.25 * inside[inside.count / 2]
        let crystal = Mask(width: w, height: h, bits: (0..<(w * h)).map { power.pixels[$0] >= limit })
        return IdealLattice(image: ideal, crystal: Filters.eroded(crystal, radius: 2))
    }

    /// The ideal lattice moved through the current offsets: value and gradients at each pixel
    /// (pixel (x, y) shows the ideal lattice at (x − rowX − columnX, y − rowY)).
    static func model(_ ideal: Image, offsets o: ScanLatticeCorrection.Offsets) -> (value: [Float], gx: [Float], gy: [Float]) {
        let w = ideal.width, h = ideal.height
        var value = [Float](repeating: 0, count: w * h), gx = value, gy = value
        let (dgx, dgy) = Filters.gradients(ideal)
        var (p, px, py) = (ideal.pixels, dgx, dgy)
        p.withUnsafeMutableBufferPointer { pb in
        px.withUnsafeMutableBufferPointer { xb in
        py.withUnsafeMutableBufferPointer { yb in
            for y in 0..<h {
                let sy = Double(y) - o.rowY[y]
                for x in 0..<w {
                    let sx = Double(x) - o.rowX[y] - o.columnX[x]
                    let k = y * w + x
                    value[k] = Sampler.bicubic(pb.baseAddress!, w, h, sx, sy) ?? 0
                    gx[k] = Sampler.bilinear(xb.baseAddress!, w, h, sx, sy) ?? 0
                    gy[k] = Sampler.bilinear(yb.baseAddress!, w, h, sx, sy) ?? 0
                }
            }
        }}}
        return (value, gx, gy)
    }

    /// One Gauss–Newton step of the per-line offsets (gain and offset per line profiled out).
    static func rowStep(_ image: Image, ideal: Image, use: Mask, offsets o: ScanLatticeCorrection.Offsets,
                        options: Options) -> ([Double], [Double]) {
        let w = image.width, h = image.height
        let (m, gx, gy) = model(ideal, offsets: o)
        var iuu = [Double](repeating: 0, count: h), iuv = iuu, ivv = iuu, bu = iuu, bv = iuu
        for y in 0..<h {
            // Per-line gain and offset of the image against the model.
            var n = 0.0, sm = 0.0, sf = 0.0, smm = 0.0, smf = 0.0
            for x in 0..<w where use.bits[y * w + x] {
                let k = y * w + x, mv = Double(m[k]), f = Double(image.pixels[k])
                n += 1; sm += mv; sf += f; smm += mv * mv; smf += mv * f
            }
            let den = n * smm - sm * sm
            guard n > 8, den > 0 else { continue }
            let g = (n * smf - sm * sf) / den, c = (sf - g * sm) / n
            guard g > 0 else { continue }
            var (a11, a12, a22, r1, r2) = (0.0, 0.0, 0.0, 0.0, 0.0)
            var (ma, mb, mr) = (0.0, 0.0, 0.0)   // means, to profile the line's offset out
            for x in 0..<w where use.bits[y * w + x] {
                let k = y * w + x
                ma += g * Double(gx[k]); mb += g * Double(gy[k]); mr += Double(image.pixels[k]) - g * Double(m[k]) - c
            }
            ma /= n; mb /= n; mr /= n
            for x in 0..<w where use.bits[y * w + x] {
                let k = y * w + x
                let a = g * Double(gx[k]) - ma, b = g * Double(gy[k]) - mb
                let r = Double(image.pixels[k]) - g * Double(m[k]) - c - mr
                a11 += a * a; a12 += a * b; a22 += b * b; r1 -= a * r; r2 -= b * r
            }
            iuu[y] = a11; iuv[y] = a12; ivv[y] = a22; bu[y] = r1; bv[y] = r2
        }
        let typU = median(iuu.filter { $0 > 0 }), typV = median(ivv.filter { $0 > 0 })
        guard typU > 0 else { return ([Double](repeating: 0, count: h), [Double](repeating: 0, count: h)) }
        let penalty = options.rowYSmoothing * Swift.max(typV, 1e-12)
        var (du, dv) = ScanLineCorrection.smoothLineOffsets(iuu: iuu, iuv: iuv, ivv: ivv, bu: bu, bv: bv, penalty: penalty,
                                                             diagonalFloor: 1e-6, ridgeU: 0.01 * typU, unmeasuredAsZero: true)
        // Lines without crystal are not measured: no offset (the smoothness would extrapolate one).
        for y in 0..<h where iuu[y] == 0 { du[y] = 0; dv[y] = 0 }
        return (du.map { Swift.max(-1, Swift.min(1, $0)) }, dv.map { Swift.max(-1, Swift.min(1, $0)) })
    }

    /// One Gauss–Newton step of the per-column x offsets, smoothed along the line.
    static func columnStep(_ image: Image, ideal: Image, use: Mask, offsets o: ScanLatticeCorrection.Offsets,
                           options: Options) -> [Double] {
        let w = image.width, h = image.height
        let (m, gx, _) = model(ideal, offsets: o)
        // One gain and offset for the whole image (the lines' own were fitted by the rows).
        var n = 0.0, sm = 0.0, sf = 0.0, smm = 0.0, smf = 0.0
        for k in 0..<(w * h) where use.bits[k] {
            let mv = Double(m[k]), f = Double(image.pixels[k])
            n += 1; sm += mv; sf += f; smm += mv * mv; smf += mv * f
        }
        let den = n * smm - sm * sm
        guard n > 8, den > 0 else { return [Double](repeating: 0, count: w) }
        let g = (n * smf - sm * sf) / den, c = (sf - g * sm) / n
        var info = [Double](repeating: 0, count: w), grad = info
        for y in 0..<h { for x in 0..<w where use.bits[y * w + x] {
            let k = y * w + x, a = g * Double(gx[k])
            info[x] += a * a; grad[x] -= a * (Double(image.pixels[k]) - g * Double(m[k]) - c)
        } }
        let k = Filters.gaussianKernel(sigma: options.columnSmoothingPx), r = k.count / 2
        let typical = median(info.filter { $0 > 0 })
        guard typical > 0 else { return [Double](repeating: 0, count: w) }
        return (0..<w).map { x in
            var si = 0.0, sg = 0.0
            for (j, kv) in k.enumerated() {
                let xx = Swift.min(w - 1, Swift.max(0, x + j - r))
                si += kv * info[xx]; sg += kv * grad[xx]
            }
            return si > 0.05 * typical ? Swift.max(-1, Swift.min(1, sg / si)) : 0
        }
    }

    static func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.sorted()[v.count / 2] }
}
