import Dispatch
import Foundation
import FrameCore

/// Each frame's rigid shift as the mean, over its scan lines, of where its content lies:
/// the drift path during the frame measured in bands of scan lines against the run's
/// average, smoothed in time, averaged uniformly over the lines.
///
/// Why: a raster frame is not rigid when the drift wanders (a random walk of the holder
/// moves the content by tenths of a pixel between the first and the last line). A
/// correlation over the whole frame then returns a mean of the lines' displacements
/// weighted by where the frame has information (lattice against amorphous material, the
/// window's taper), not the mean over its lines that the frame's shift stands for (run
/// contract §3). At the dose floor with 0.6–1.4 px of random walk per frame that difference
/// is 0.1–0.2 px RMS; measured band by band and averaged uniformly it is not.
///
/// Method, `iterations` times: the used frames are averaged at their current shifts
/// (`StackAverage`), lightly blurred (`referenceBlurPx`) as the noise-free model of the
/// specimen; each frame is compared with the average of the *others* (its own contribution
/// removed, so its own noise does not pull the estimate toward no change) in bands of
/// scan lines, each band's translation, gain and offset fitted by Gauss–Newton with
/// noise-aware weights (the variance of each pixel a linear function of its expected value,
/// fitted per frame: Poisson counts plus read noise, so at a few counts per column the
/// estimate is close to maximum likelihood). The band displacements of one frame are then
/// smoothed as a random walk with a steady velocity (a Kalman–Rauch–Tung–Striebel smoother
/// in closed form: penalised least squares whose step variance is fitted to the data), so
/// bands with little content (amorphous material, the frame edge) follow their neighbours
/// instead of their noise, and the frame's new shift is their mean over the lines. The mean
/// correction over the frames is removed (the reference's gauge is kept). Cf. the
/// time-continuous drift model of non-rigid registration of scan series (Jones et al., Adv.
/// Struct. Chem. Imaging 1:8, 2015; Berkels et al., Ultramicroscopy 138, 46, 2014) and the
/// joint refinement against leave-one-out averages (Savitzky et al., Ultramicroscopy 191,
/// 56, 2018).
public enum DriftPathRefinement {
    public struct Options: Sendable {
        /// Scan lines per band (at least 16; the last band takes the remainder).
        public var bandLines = 64
        /// Rounds of average → measure → correct.
        public var iterations = 2
        /// Gauss–Newton steps per band and round.
        public var steps = 3
        /// Gaussian blur (px) of the reference before its gradients are taken.
        public var referenceBlurPx = 1.0
        /// Pixels of the reference used: covered by at least this share of the frames.
        public var minCoverage = 0.5
        public init() {}
    }

    /// One band's measured displacement (px, relative to the frame's current shift) and its
    /// inverse covariance (the Gauss–Newton information for x and y).
    struct BandMeasurement {
        var delta: SIMD2<Double>
        var information: (xx: Double, xy: Double, yy: Double)
    }

    /// The refined shifts (same order as `shifts`; rejected frames are returned unchanged).
    public static func refine(_ frames: some ImageSequence, shifts: [FrameShift],
                              options: Options = Options()) throws -> [FrameShift] {
        let used = shifts.indices.filter { shifts[$0].isUsed }
        guard used.count >= 3, frames.height >= 2 * Swift.max(16, options.bandLines) else { return shifts }
        var current = shifts
        for _ in 0..<Swift.max(1, options.iterations) {
            let average = try StackAverage.average(frames, indices: used, shifts: used.map { current[$0] },
                                                   interpolation: .bicubic)
            let reference = Reference(average, blur: options.referenceBlurPx, minCoverage: options.minCoverage)
            let frozen = current
            let bands = try ResultSlots<[BandMeasurement]?>.map(used.count) { k in
                let i = used[k]
                return measure(try frames.image(at: i), shift: frozen[i], reference: reference, options: options)
            }
            let q = stepVariance(bands.compactMap { $0 })
            // In frame order: the mean is summed in one fixed order, so runs are reproducible.
            let corrections: [(frame: Int, shift: SIMD2<Double>)] = used.indices.compactMap { k in
                bands[k].map { (used[k], smoothedMean($0, stepVariance: q)) }
            }
            guard !corrections.isEmpty else { return current }
            let mean = corrections.map(\.shift).reduce(SIMD2<Double>.zero, +) / Double(corrections.count)
            for (i, c) in corrections {
                current[i].dx += c.x - mean.x
                current[i].dy += c.y - mean.y
            }
        }
        return current
    }

    /// The average as the specimen model: blurred image, its gradients and the pixels it is
    /// trusted at, with the sum and weight to take one frame's contribution out again.
    struct Reference: Sendable {
        let image: Image
        let gx: [Float]
        let gy: [Float]
        let weight: [Float]
        let trusted: Mask

        init(_ average: AlignedAverage, blur: Double, minCoverage: Double) {
            image = average.image
            weight = average.weight.pixels
            let need = Float(Swift.max(2, minCoverage * Double(average.frameCount)))
            let covered = Mask(width: image.width, height: image.height, bits: weight.map { $0 >= need })
            trusted = Filters.eroded(covered, radius: 3)
            (gx, gy) = Filters.gradients(Filters.gaussianBlur(image, sigma: blur))
        }
    }

    /// The bands' displacements of one frame against the average of the other frames, nil
    /// when no band could be measured.
    static func measure(_ frame: Image, shift: FrameShift, reference r: Reference, options: Options) -> [BandMeasurement]? {
        let w = frame.width, h = frame.height
        guard w == r.image.width, h == r.image.height else { return nil }
        // The others' average on the reference grid: (n·mean − own)/(n − 1), then moved onto
        // the frame (model(x) = reference(x − shift)); its gradients moved the same way.
        let (own, ownValid) = Resampling.shifted(frame, by: -shift.dx, -shift.dy, interpolation: .bicubic)
        var others = r.image
        for k in others.pixels.indices where r.weight[k] > 1.5 && ownValid.bits[k] {
            let n = r.weight[k]
            others.pixels[k] = (n * r.image.pixels[k] - own.pixels[k]) / (n - 1)
        }
        let model = Resampling.shifted(others, by: shift.dx, shift.dy, interpolation: .bicubic).image
        let gx = Resampling.shifted(Image(width: w, height: h, pixels: r.gx), by: shift.dx, shift.dy, interpolation: .bicubic).image
        let gy = Resampling.shifted(Image(width: w, height: h, pixels: r.gy), by: shift.dx, shift.dy, interpolation: .bicubic).image
        // Frame pixels whose reference position is trusted.
        var valid = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            let ry = Int((Double(y) - shift.dy).rounded())
            guard ry >= 0, ry < h else { continue }
            for x in 0..<w {
                let rx = Int((Double(x) - shift.dx).rounded())
                if rx >= 0, rx < w, r.trusted.bits[ry * w + rx] { valid[y * w + x] = true }
            }
        }
        guard let noise = NoiseModel.fit(frame: frame.pixels, model: model.pixels, valid: valid) else { return nil }
        let lines = Swift.max(16, options.bandLines)
        let count = Swift.max(1, h / lines)
        var out: [BandMeasurement] = []
        for b in 0..<count {
            let y0 = b * lines, y1 = b == count - 1 ? h : y0 + lines
            out.append(bandShift(frame, model: model, gx: gx, gy: gy, valid: valid, rows: y0..<y1, noise: noise,
                                 reference: others, shift: shift, steps: options.steps))
        }
        return out.contains { $0.information.xx + $0.information.yy > 0 } ? out : nil
    }

    /// The variance of a pixel as a linear function of its expected value, fitted to the
    /// squared residuals of the frame against the model (shot noise grows with the signal,
    /// read noise does not).
    struct NoiseModel {
        var a: Double, b: Double
        func variance(_ expected: Double) -> Double { Swift.max(a + b * expected, 0.05 * (a + b * typical)) }
        var typical: Double
        /// The frame ≈ gain·model + offset fit the variances refer to.
        var gainOffset: (gain: Double, offset: Double)

        static func fit(frame: [Float], model: [Float], valid: [Bool]) -> NoiseModel? {
            // Gain and offset of the frame against the model first.
            var n = 0.0, sm = 0.0, sf = 0.0, smm = 0.0, smf = 0.0
            for k in frame.indices where valid[k] {
                let m = Double(model[k]), f = Double(frame[k])
                n += 1; sm += m; sf += f; smm += m * m; smf += m * f
            }
            let den = n * smm - sm * sm
            guard n > 100, den > 0 else { return nil }
            let gain = (n * smf - sm * sf) / den, offset = (sf - gain * sm) / n
            var s1 = 0.0, se = 0.0, see = 0.0, sr = 0.0, ser = 0.0
            for k in frame.indices where valid[k] {
                let e = gain * Double(model[k]) + offset, r = Double(frame[k]) - e
                s1 += 1; se += e; see += e * e; sr += r * r; ser += e * r * r
            }
            let d = s1 * see - se * se
            var b = d > 0 ? (s1 * ser - se * sr) / d : 0
            b = Swift.max(0, b)
            let a = (sr - b * se) / s1
            let typical = se / s1
            guard a + b * typical > 0 else { return nil }
            return NoiseModel(a: a, b: b, typical: typical, gainOffset: (gain, offset))
        }
    }

    /// Gauss–Newton for one band: translation δ, gain g and offset c with
    /// frame ≈ g·model(x − δ) + c, weighted by the inverse noise variance. The model is
    /// linearised around the current δ; after the first step the band's model is resampled
    /// at the new δ (the steps are a fraction of the column width, but not always small).
    static func bandShift(_ frame: Image, model: Image, gx: Image, gy: Image, valid: [Bool], rows: Range<Int>,
                          noise: NoiseModel, reference: Image, shift: FrameShift, steps: Int) -> BandMeasurement {
        let w = frame.width
        var delta = SIMD2<Double>(0, 0)
        var m = model.pixels, ax = gx.pixels, ay = gy.pixels
        var info = (xx: 0.0, xy: 0.0, yy: 0.0)
        for step in 0..<Swift.max(1, steps) {
            if step > 0 {
                // The band's model at the shift plus δ (rows of the reference around the band).
                let band = resampledRows(reference, rows: rows, by: SIMD2(shift.dx, shift.dy) + delta)
                m = band.value; (ax, ay) = (band.gx, band.gy)
            }
            // Normal equations of [δx, δy, g, c]: model ≈ g·m − g·∇m·δ + c.
            var a = [Double](repeating: 0, count: 16), rhs = [Double](repeating: 0, count: 4)
            var g = 1.0, c = 0.0
            // Gain and offset from the band itself first (weighted).
            var sw = 0.0, swm = 0.0, swf = 0.0, swmm = 0.0, swmf = 0.0
            for y in rows { for x in 0..<w {
                let k = y * w + x, j = (y - rows.lowerBound) * w + x
                guard valid[k] else { continue }
                let mv = Double(step > 0 ? m[j] : m[k]), f = Double(frame.pixels[k])
                let wt = 1 / noise.variance(mv * 1)
                sw += wt; swm += wt * mv; swf += wt * f; swmm += wt * mv * mv; swmf += wt * mv * f
            } }
            let den = sw * swmm - swm * swm
            guard sw > 0, den > 0 else { break }
            g = (sw * swmf - swm * swf) / den; c = (swf - g * swm) / sw
            guard g > 0 else { break }
            // Σ wt·v·vᵀ and Σ wt·v·r with v = (−g·∂x m, −g·∂y m, m, 1), in SIMD4 rows.
            var r0 = SIMD4<Double>(repeating: 0), r1 = r0, r2 = r0, r3 = r0, rv = r0
            for y in rows { for x in 0..<w {
                let k = y * w + x, j = step > 0 ? (y - rows.lowerBound) * w + x : k
                guard valid[k] else { continue }
                let mv = Double(m[j]), e = g * mv + c
                let wt = 1 / noise.variance(e)
                let v = SIMD4(-g * Double(ax[j]), -g * Double(ay[j]), mv, 1)
                let wv = wt * v
                rv += wv * (Double(frame.pixels[k]) - e)
                r0 += wv * v.x; r1 += wv * v.y; r2 += wv * v.z; r3 += wv
            } }
            for q in 0..<4 { a[q] = r0[q]; a[4 + q] = r1[q]; a[8 + q] = r2[q]; a[12 + q] = r3[q]; rhs[q] = rv[q] }
            guard let solution = LeastSquares.solve(a, rhs, n: 4) else { break }
            let d = SIMD2(solution[0], solution[1])
            // Information of δ with gain and offset profiled out (Schur complement).
            info = schurInformation(a)
            delta += d
            if (d * d).sum() < 1e-6 { break }
        }
        if !(delta.x.isFinite && delta.y.isFinite) || (delta * delta).sum() > 9 {
            return BandMeasurement(delta: .zero, information: (0, 0, 0))
        }
        return BandMeasurement(delta: delta, information: info)
    }

    /// Rows `rows` of `reference` moved by `t` (value and gradients), as a band image.
    static func resampledRows(_ reference: Image, rows: Range<Int>, by t: SIMD2<Double>) -> (value: [Float], gx: [Float], gy: [Float]) {
        let w = reference.width, h = reference.height
        let pad = 4
        let top = Swift.max(0, rows.lowerBound - Int(t.y.rounded(.up)) - pad)
        let bottom = Swift.min(h, rows.upperBound - Int(t.y.rounded(.down)) + pad)
        guard bottom > top else {
            let n = rows.count * w
            return ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
        }
        let crop = reference.cropped(x0: 0, y0: top, x1: w, y1: bottom)
        // out(x, y) = reference(x − t) on the crop's own rows: crop row y − top.
        let moved = Resampling.shifted(crop, by: t.x, t.y, interpolation: .bicubic).image
        let blurred = Filters.gaussianBlur(moved, sigma: 1.0)
        let (gxAll, gyAll) = Filters.gradients(blurred)
        var value = [Float](repeating: 0, count: rows.count * w), gx = value, gy = value
        for y in rows {
            let cy = y - top
            guard cy >= 0, cy < crop.height else { continue }
            for x in 0..<w {
                value[(y - rows.lowerBound) * w + x] = moved.pixels[cy * w + x]
                gx[(y - rows.lowerBound) * w + x] = gxAll[cy * w + x]
                gy[(y - rows.lowerBound) * w + x] = gyAll[cy * w + x]
            }
        }
        return (value, gx, gy)
    }

    /// Information matrix of the first two parameters with the other two profiled out.
    static func schurInformation(_ a: [Double]) -> (xx: Double, xy: Double, yy: Double) {
        // A = [P Q; Qᵀ S]: information of (δx, δy) = P − Q S⁻¹ Qᵀ.
        let s00 = a[10], s01 = a[11], s11 = a[15]
        let det = s00 * s11 - s01 * s01
        guard det > 0 else { return (a[0], a[1], a[5]) }
        let i00 = s11 / det, i01 = -s01 / det, i11 = s00 / det
        func q(_ r: Int, _ c: Int) -> Double { a[r * 4 + 2 + c] }
        func corr(_ r: Int, _ c: Int) -> Double {
            q(r, 0) * (i00 * q(c, 0) + i01 * q(c, 1)) + q(r, 1) * (i01 * q(c, 0) + i11 * q(c, 1))
        }
        return (a[0] - corr(0, 0), a[1] - corr(0, 1), a[5] - corr(1, 1))
    }

    /// Variance (px², per axis) of the drift's random walk from one band to the next: the
    /// median over all frames of the squared band-to-band change beyond the frame's steady
    /// velocity, less what the measurement noise contributes.
    static func stepVariance(_ frames: [[BandMeasurement]]) -> Double {
        var excess: [Double] = []
        for bands in frames where bands.count >= 3 {
            let measured = bands.filter { $0.information.xx > 0 && $0.information.yy > 0 }
            guard measured.count >= 3 else { continue }
            let v = (measured.last!.delta - measured.first!.delta) / Double(measured.count - 1)
            for (a, b) in zip(measured, measured.dropFirst()) {
                let d = b.delta - a.delta - v
                let noise = 1 / a.information.xx + 1 / b.information.xx + 1 / a.information.yy + 1 / b.information.yy
                excess.append(((d * d).sum() - noise) / 2)
            }
        }
        guard !excess.isEmpty else { return 1e-4 }
        excess.sort()
        return Swift.max(1e-4, excess[excess.count / 2])
    }

    /// The band displacements smoothed as a random walk around a steady velocity (penalised
    /// least squares: Σ (δ_b − D_b)ᵀ I_b (δ_b − D_b) + Σ |D_{b+1} − D_b − v|² / q), and the
    /// mean of D over the bands: the frame's correction.
    static func smoothedMean(_ bands: [BandMeasurement], stepVariance q: Double) -> SIMD2<Double> {
        let n = bands.count
        // Unknowns: D_0x, D_0y, …, D_{n−1}x, D_{n−1}y, vx, vy.
        let m = 2 * n + 2
        var a = [Double](repeating: 0, count: m * m), rhs = [Double](repeating: 0, count: m)
        for (b, band) in bands.enumerated() {
            let i = band.information
            let (x, y) = (2 * b, 2 * b + 1)
            a[x * m + x] += i.xx; a[x * m + y] += i.xy; a[y * m + x] += i.xy; a[y * m + y] += i.yy
            rhs[x] += i.xx * band.delta.x + i.xy * band.delta.y
            rhs[y] += i.xy * band.delta.x + i.yy * band.delta.y
        }
        let p = 1 / q
        for b in 0..<(n - 1) {
            for axis in 0..<2 {
                // (D_{b+1} − D_b − v)²/q.
                let idx = [2 * (b + 1) + axis, 2 * b + axis, 2 * n + axis], s = [1.0, -1.0, -1.0]
                for u in 0..<3 { for t in 0..<3 { a[idx[u] * m + idx[t]] += p * s[u] * s[t] } }
            }
        }
        // A weak pull of v toward zero keeps the system regular when no band is measured.
        a[(2 * n) * m + 2 * n] += 1e-9; a[(2 * n + 1) * m + 2 * n + 1] += 1e-9
        for k in 0..<(2 * n) { a[k * m + k] += 1e-12 }
        guard let factor = LeastSquares.choleskyFactor(a, n: m) else { return .zero }
        let d = LeastSquares.choleskySolve(factor: factor, rhs, n: m)
        var sum = SIMD2<Double>(0, 0)
        for b in 0..<n { sum += SIMD2(d[2 * b], d[2 * b + 1]) }
        return sum / Double(n)
    }
}

extension DriftPathRefinement {

    /// The expected RMS deviation (px) of a frame's content from its mean position during
    /// the frame, from the drift's random walk measured between frames: each frame's
    /// departure from the straight line through its neighbours in time (a Brownian bridge of
    /// variance D·Δ₁Δ₂/(Δ₁ + Δ₂) per axis) gives the diffusion D (median over the frames,
    /// robust to a few mismeasured ones), and a random walk wanders by √(D·T/6) RMS about its
    /// mean over a frame of duration T. nil with fewer than three frames with times.
    public static func expectedWanderPx(positions: [SIMD2<Double>?], times: [Double], frameDurationS: Double) -> Double? {
        guard positions.count == times.count, frameDurationS > 0 else { return nil }
        let known = positions.indices.filter { positions[$0] != nil }
        guard known.count >= 3 else { return nil }
        var d: [Double] = []
        for k in 1..<(known.count - 1) {
            let (a, i, b) = (known[k - 1], known[k], known[k + 1])
            let d1 = times[i] - times[a], d2 = times[b] - times[i]
            guard d1 > 0, d2 > 0 else { continue }
            let line = positions[a]! + (positions[b]! - positions[a]!) * (d1 / (d1 + d2))
            let e = positions[i]! - line
            d.append((e * e).sum() / 2 / (d1 * d2 / (d1 + d2)))
        }
        guard !d.isEmpty else { return nil }
        d.sort()
        // The median of a χ²₂/2-distributed quantity is ln 2 of its mean.
        let diffusion = d[d.count / 2] / log(2.0)
        return (diffusion * frameDurationS / 6).squareRoot()
    }
}

extension DriftPathRefinement {
    /// Expected RMS (px) over the frames of the difference between a whole-frame correlation's
    /// shift and the mean over the lines, for a drift wandering by `wander` px RMS within each
    /// frame (`expectedWanderPx`). The correlation weights each line by its information: here the
    /// gradient energy of the average over the frame's footprint on that line, times the
    /// correlation window's taper squared. For a random walk of variance s²·t over the lines,
    /// the weighted mean departs from the plain mean by a variance s²·Σ_k (Σ_{i≥k} (ω_i − 1/n))²
    /// (ω the normalised weights; min(i, j) summed over k), and the wander is s·√(n/6). Computed
    /// on the average binned to about 256 rows, so it costs a few milliseconds.
    public static func expectedBiasPx(wander: Double, average: AlignedAverage, shifts: [FrameShift]) -> Double {
        let w = average.image.width, h = average.image.height
        let b = Swift.max(1, Swift.min(w, h) / 256)
        let wb = w / b, hb = h / b
        guard wb >= 16, hb >= 16, wander > 0 else { return 0 }
        var binned = Image(width: wb, height: hb)
        for y in 0..<hb { for x in 0..<wb {
            var s: Float = 0
            for dy in 0..<b { for dx in 0..<b { s += average.image.pixels[(y * b + dy) * w + x * b + dx] } }
            binned.pixels[y * wb + x] = s / Float(b * b)
        } }
        let (gx, gy) = Filters.gradients(Filters.gaussianBlur(binned, sigma: 1))
        // Row prefix sums of the gradient energy, where the average is covered.
        var prefix = [Double](repeating: 0, count: hb * (wb + 1))
        for y in 0..<hb {
            for x in 0..<wb {
                let k = y * wb + x
                let covered = average.weight.pixels[Swift.min(h - 1, y * b) * w + Swift.min(w - 1, x * b)] > 0
                let e = covered ? Double(gx[k] * gx[k] + gy[k] * gy[k]) : 0
                prefix[y * (wb + 1) + x + 1] = prefix[y * (wb + 1) + x] + e
            }
        }
        let taper = CorrelationGeometry.tukey(hb, taper: 0.1)
        var sum = 0.0, count = 0.0
        for s in shifts where s.isUsed {
            let ox = Int((s.dx / Double(b)).rounded()), oy = Int((s.dy / Double(b)).rounded())
            // Frame line y lies on reference row y − oy; its columns on x − ox.
            let x0 = Swift.max(0, -ox), x1 = Swift.min(wb, wb - ox)
            guard x1 > x0 else { continue }
            var omega = [Double](repeating: 0, count: hb)
            for y in 0..<hb {
                let r = y - oy
                guard r >= 0, r < hb else { continue }
                omega[y] = (prefix[r * (wb + 1) + x1] - prefix[r * (wb + 1) + x0]) * Double(taper[y] * taper[y])
            }
            let total = omega.reduce(0, +)
            guard total > 0 else { continue }
            var tail = 0.0, v = 0.0
            for y in stride(from: hb - 1, through: 0, by: -1) { tail += omega[y] / total - 1 / Double(hb); v += tail * tail }
            sum += v / (Double(hb) / 6); count += 1
        }
        return count > 0 ? wander * (sum / count).squareRoot() : 0
    }

    /// Expected bias (px, `expectedBiasPx`) from which rigid registration refines its shifts:
    /// below it the bands' refinement (about 0.15 s of CPU per 1024² frame) would move the
    /// shifts by a few hundredths of a pixel; above it the rigid shifts miss by up to 0.25 px.
    public static let biasThresholdPx = 0.035
}
