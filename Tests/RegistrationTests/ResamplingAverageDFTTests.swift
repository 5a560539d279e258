import TestSupport
import Foundation
import FrameCore
import Registration
import Testing

@Suite("Upsampled DFT")
struct UpsampledDFTTests {
    /// Cross-power spectrum of two random images of odd size (no Nyquist ambiguity).
    func crossSpectrum(width w: Int, height h: Int) -> [Complex] {
        var rng = SplitMix64(seed: 7)
        let a = Image(width: w, height: h, pixels: (0..<(w * h)).map { _ in Float(rng.uniform()) })
        let b = Image(width: w, height: h, pixels: (0..<(w * h)).map { _ in Float(rng.uniform()) })
        let ws = FFTWorkspace(width: w, height: h)
        ws.load(a); ws.forward(); let fa = Array(ws.spectrum)
        ws.load(b); ws.forward(); let fb = Array(ws.spectrum)
        return zip(fa, fb).map { x, y in Complex(x.x * y.x + x.y * y.y, x.y * y.x - x.x * y.y) }
    }

    @Test("Equals the FFT at integer positions and a brute-force DFT at fractional ones")
    func matchesBruteForce() {
        let w = 21, h = 17, hw = w / 2 + 1
        let p = crossSpectrum(width: w, height: h)
        // Integer positions: FFTW's c2r.
        let ws = FFTWorkspace(width: w, height: h)
        for i in 0..<p.count { ws.spectrum[i] = p[i] }
        ws.inverse()
        let xs = [0.0, 3, 20], ys = [0.0, 5, 16]
        let v = p.withUnsafeBufferPointer {
            UpsampledDFT.evaluate($0, gridWidth: w, gridHeight: h, frameWidth: w, frameHeight: h, xs: xs, ys: ys)
        }
        var scale = 0.0
        for q in 0..<(w * h) { scale = max(scale, abs(Double(ws.real[q]))) }
        for (i, y) in ys.enumerated() { for (j, x) in xs.enumerated() {
            #expect(abs(v[i * xs.count + j] - Double(ws.real[Int(y) * w + Int(x)])) < 1e-4 * scale)
        } }
        // Fractional positions: Σ over the symmetric full spectrum, Hermitian-extended.
        let fx = [0.37, -2.81, 4.02], fy = [1.5, -0.23]
        let u = p.withUnsafeBufferPointer {
            UpsampledDFT.evaluate($0, gridWidth: w, gridHeight: h, frameWidth: w, frameHeight: h, xs: fx, ys: fy)
        }
        for (i, y) in fy.enumerated() { for (j, x) in fx.enumerated() {
            var re = 0.0
            for ky in -(h / 2)...(h / 2) { for kx in -(w / 2)...(w / 2) {
                let c: Complex = kx >= 0 ? p[((ky % h + h) % h) * hw + kx]
                                         : { let m = p[(((-ky) % h + h) % h) * hw - kx]; return Complex(m.x, -m.y) }()
                let a = 2 * Double.pi * (Double(kx) * x / Double(w) + Double(ky) * y / Double(h))
                re += Double(c.x) * cos(a) - Double(c.y) * sin(a)
            } }
            #expect(abs(u[i * fx.count + j] - re) < 1e-4 * scale, "(\(x), \(y)): \(u[i * fx.count + j]) vs \(re)")
        } }
    }

    @Test("refinePeak finds a known fractional shift of a band-limited image to 1/U px")
    func refineFindsShift() {
        // A periodic, band-limited image (random cosines with integer frequencies) sampled
        // twice, the second time with its content moved by (2.37, −1.62): exact shift.
        let w = 64, h = 64
        var rng = SplitMix64(seed: 17)
        let waves = (0..<12).map { _ in (kx: Double(Int(rng.uniform() * 17) - 8), ky: Double(Int(rng.uniform() * 17) - 8),
                                         amp: rng.uniform() + 0.2, phase: rng.uniform() * 2 * Double.pi) }
        func sample(_ d: SIMD2<Double>) -> Image {
            Image(width: w, height: h) { x, y in
                Float(waves.reduce(0.0) { s, wv in
                    s + wv.amp * cos(2 * Double.pi * (wv.kx * (Double(x) - d.x) / Double(w) + wv.ky * (Double(y) - d.y) / Double(h)) + wv.phase)
                })
            }
        }
        let a = sample(.zero), b = sample(SIMD2(2.37, -1.62))
        let ws = FFTWorkspace(width: w, height: h)
        ws.load(b); ws.forward(); let fb = Array(ws.spectrum)
        ws.load(a); ws.forward(); let fa = Array(ws.spectrum)
        let p = zip(fb, fa).map { x, y in Complex(x.x * y.x + x.y * y.y, x.y * y.x - x.x * y.y) }
        let r = p.withUnsafeBufferPointer {
            UpsampledDFT.refinePeak($0, gridWidth: w, gridHeight: h, frameWidth: w, frameHeight: h,
                                    x0: 2, y0: -2, initialStep: 1, upsampleFactor: 50)
        }
        // Exact up to the 1/50 px grid (and float rounding).
        #expect(abs(r.x - 2.37) <= 0.0101 && abs(r.y + 1.62) <= 0.0101, "\(r)")
    }
}

@Suite("Resampling")
struct ResamplingTests {
    @Test("Integer shift moves content right/down and is exact")
    func integerShift() {
        var img = Image(width: 20, height: 16)
        img[10, 7] = 5
        for interp in [Interpolation.bilinear, .bicubic] {
            let (out, valid) = Resampling.shifted(img, by: 3, 2, interpolation: interp)
            #expect(out[13, 9] == 5)
            #expect(out.pixels.reduce(0, +) == 5)
            #expect(!valid[2, 5] && valid[3, 5] && valid[19, 15] && !valid[5, 1] && valid[5, 2])
        }
    }

    @Test("Round trip +d then −d ≈ identity inside the valid mask")
    func roundTrip() {
        let specimen = SyntheticSpecimen()
        let img = specimen.clean(width: 96, height: 80, shift: SIMD2(0.3, 0.1))
        let peak = Double(img.minMax.max)
        let (d1, d2) = (3.37, -2.61)
        for (interp, tolerance) in [(Interpolation.bicubic, 0.04), (.bilinear, 0.2)] {
            let (a, va) = Resampling.shifted(img, by: d1, d2, interpolation: interp)
            let (b, vb) = Resampling.shifted(a, by: -d1, -d2, interpolation: interp)
            var worst = 0.0, checked = 0
            for y in 0..<80 { for x in 0..<96 where vb[x, y] {
                // The second pass read pixels of `a` around (x + d1, y + d2): all must be valid.
                let xs = Int((Double(x) + d1).rounded(.down)), ys = Int((Double(y) + d2).rounded(.down))
                guard xs - 1 >= 0, ys - 1 >= 0, xs + 2 < 96, ys + 2 < 80,
                      va[xs - 1, ys - 1], va[xs + 2, ys + 2] else { continue }
                worst = max(worst, abs(Double(b[x, y] - img[x, y])))
                checked += 1
            } }
            #expect(checked > 3500, "\(interp)")
            #expect(worst / peak < tolerance, "\(interp)")
        }
        // The fractional shift itself is right: compare with sampling the specimen there.
        let moved = Resampling.shifted(img, by: 0.5, 0.25, interpolation: .bicubic).image
        let truth = specimen.clean(width: 96, height: 80, shift: SIMD2(0.8, 0.35))
        var worst = 0.0
        for y in 4..<76 { for x in 4..<92 { worst = max(worst, abs(Double(moved[x, y] - truth[x, y]))) } }
        #expect(worst / peak < 0.05, "bicubic vs resampled truth: \(worst / peak)")
    }
}

@Suite("Stack average")
struct StackAverageTests {
    @Test("Weight map counts covering frames; rejected frames skipped; uncovered pixels 0")
    func weightMap() throws {
        let w = 40, h = 30
        let frames = ImageArray([Image(width: w, height: h, fill: 1), Image(width: w, height: h, fill: 2),
                                 Image(width: w, height: h, fill: 4), Image(width: w, height: h, fill: 100)])
        let shifts = [FrameShift(dx: 2, dy: 0, score: 1), FrameShift(dx: 5, dy: 0, score: 1),
                      FrameShift(dx: 0, dy: -4, score: 1), FrameShift(dx: 0, dy: 0, score: 0, rejection: "noise")]
        let avg = try StackAverage.average(frames, indices: [0, 1, 2, 3], shifts: shifts, interpolation: .bicubic)
        #expect(avg.frameCount == 3)
        // Aligned frame k = frame moved by (−dx, −dy): frame 0 covers x ≤ w−3, frame 1 x ≤ w−6, frame 2 y ≥ 4.
        #expect(avg.weight[10, 10] == 3 && abs(avg.image[10, 10] - 7.0 / 3) < 1e-5)
        #expect(avg.weight[w - 4, 10] == 2 && abs(avg.image[w - 4, 10] - 2.5) < 1e-5)
        #expect(avg.weight[w - 1, 10] == 1 && avg.image[w - 1, 10] == 4)
        #expect(avg.weight[w - 1, 0] == 0 && avg.image[w - 1, 0] == 0)
        #expect(avg.weight[10, 0] == 2 && abs(avg.image[10, 0] - 1.5) < 1e-5)
        #expect(throws: RegistrationError.self) {
            try StackAverage.average(frames, indices: [0, 1], shifts: [shifts[0]], interpolation: .bilinear)
        }
    }

    @Test("Averaging aligned noisy frames recovers the specimen")
    func averageOfAlignedFrames() throws {
        var rng = SplitMix64(seed: 1)
        let specimen = SyntheticSpecimen()
        let truth: [SIMD2<Double>] = [SIMD2(0, 0), SIMD2(1.3, -0.7), SIMD2(-2.2, 1.9), SIMD2(0.6, 2.4)]
        let frames = truth.map { specimen.frame(width: 96, height: 96, shift: $0, dose: 20, rng: &rng) }
        let avg = try StackAverage.average(ImageArray(frames), indices: [0, 1, 2, 3],
                                           shifts: truth.map { FrameShift(dx: $0.x, dy: $0.y, score: 1) },
                                           interpolation: .bicubic)
        let ref = specimen.clean(width: 96, height: 96, shift: .zero)
        var num = 0.0, den = 0.0
        for y in 8..<88 { for x in 8..<88 {
            let e = Double(avg.image[x, y]) / 20 - Double(ref[x, y]); num += e * e; den += Double(ref[x, y] * ref[x, y])
        } }
        #expect(num / den < 0.02, "relative error \(num / den)")
    }
}
