import Foundation
import FrameCore

/// Parameters of the non-rigid scan-distortion correction (docs/algorithms.md explains them).
public struct NonrigidOptions: Sendable {
    /// Reference-free relative passes: each pass's corrected average is the next pass's
    /// reference. Off by default: column positions in an average are the frames' mean
    /// positions, which relative registration cannot move, and at low dose its per-line
    /// estimates add more noise than they remove (docs/benchmarks.md); the common rounds below
    /// do the work. Noise-free or high-dose series gain sharper averages from 1–2 passes.
    public var passes = 0
    /// Gauss–Newton iterations per blur level.
    public var iterations = 4
    /// Coarse-to-fine blur levels (Gaussian σ, px) applied to frame and reference.
    public var blurSigmas: [Double] = [2.0, 1.0, 0.5]
    /// Half-width (lines) of the window over which the slow-scan y offset is taken as smooth.
    public var lineWindow = 6
    /// Pull of each line's x offset toward its neighbours' mean (0 = free per-line jitter),
    /// relative to the typical per-line information; guards dark lines against noise.
    public var jitterRegularization = 0.1
    /// Smoothness of the flyback term along the fast-scan axis (Gaussian σ, px).
    public var flybackSmoothingPx = 12.0
    /// Levenberg–Marquardt damping of each Gauss–Newton step, relative to the mean curvature.
    public var damping = 0.1
    /// Estimate a flyback term per frame in the relative passes. Off by default: the flyback
    /// repeats identically in every frame, so per-frame estimates are noise; its common part
    /// is measured on the average (`ScanLatticeCorrection`).
    public var relativeFlyback = false
    public var interpolation: Interpolation = .bicubic
    /// Rounds of correction of the distortion all frames share, measured on the average
    /// itself (`ScanLatticeCorrection` for the smooth terms, `ScanLineCorrection` for the
    /// per-line jitter); each round re-averages the frames (0 = off).
    public var commonRounds = 3
    public var lineCorrection = ScanLineCorrection.Options()
    public var latticeCorrection = ScanLatticeCorrection.Options()
    /// The shared distortion measured line by line against the average's own ideal lattice
    /// (`LatticeModelCorrection`) instead of by its lattice phase and line smoothness
    /// (`latticeCorrection`, `lineCorrection`, used when nil or no reflection is found).
    public var latticeModel: LatticeModelCorrection.Options? = LatticeModelCorrection.Options()
    /// Per-line displacements of every frame fitted jointly against the series average, with
    /// a flyback shared by all frames (`ScanLineFit`), before the common rounds; nil = off.
    public var lineFit: ScanLineFit.Options? = ScanLineFit.Options()

    public init() {}
}

/// Result of correcting one group of frames (a temperature step).
public struct NonrigidResult: Sendable {
    /// One field per frame of the group, in the order given.
    public var fields: [ScanDistortionField]
    /// The group's average with rigid shifts and fields applied, on the run's reference frame.
    public var average: AlignedAverage
}

/// Non-rigid correction of scan distortions in a frame series, Smart Align-style
/// (Jones et al., Adv. Struct. Chem. Imaging 1:8, 2015; Berkels et al., Ultramicroscopy 138,
/// 46–56, 2014), with the series' common distortion then measured on the average itself.
///
/// 1. Relative: after rigid alignment, each frame's remaining displacement is modelled as a
///    `ScanDistortionField` (per-line offsets along the fast axis, a smooth slow-scan offset,
///    a smooth flyback term) and estimated by regularised Gauss–Newton (Lucas & Kanade 1981)
///    against the series average, coarse to fine over Gaussian-blurred copies. Reference-free
///    and multi-pass: the average of the corrected frames is the next reference, and the mean
///    field over the series (on the reference grid) is removed at each pass, so the reference
///    is not dragged by any one frame.
/// 2. Common: relative registration cannot see what every frame shares — the flyback, the
///    mean of the per-line jitter (≈ σ/√N per line), the non-linear part of the mean drift
///    path — and column positions in the average are exactly the frames' mean positions, so
///    this part, not the frame-to-frame differences, limits column precision. It is measured
///    on the average: smooth per-line (x, y) and per-column x offsets from the lattice's
///    straightness (`ScanLatticeCorrection`), per-line x offsets from line-to-line smoothness
///    (`ScanLineCorrection`), then added to every frame's field on the reference grid; a few
///    rounds, each re-averaging the frames.
///
/// Capture range is about a quarter of the lattice period: run it after rigid registration.
/// Memory: one frame per thread plus the reference; frames are decoded again at each pass
/// rather than kept.
public enum NonrigidRegistration {
    public static func correct(_ frames: some ImageSequence, indices: [Int], shifts: [FrameShift],
                               reference: AlignedAverage, options: NonrigidOptions = NonrigidOptions()) throws -> NonrigidResult {
        let w = frames.width, h = frames.height
        var fields = indices.map { _ in ScanDistortionField(width: w, height: h) }
        var average = reference
        let used = indices.indices.filter { shifts[indices[$0]].rejection == nil }
        guard !used.isEmpty else { return NonrigidResult(fields: fields, average: reference) }
        for pass in 0..<options.passes {
            // Coarse-to-fine on the first pass; later passes refine against the sharper average.
            let sigmas = pass == 0 ? options.blurSigmas : Array(options.blurSigmas.suffix(1))
            let levels = sigmas.map { ReferenceLevel(average.image, sigma: $0) }
            let current = fields
            let estimated = try ResultSlots<ScanDistortionField>.map(used.count) { j in
                let i = used[j], s = shifts[indices[i]]
                return estimate(try frames.image(at: indices[i]), shift: (s.dx, s.dy), start: current[i],
                                levels: levels, options: options)
            }
            for (j, i) in used.enumerated() { fields[i] = estimated[j] }
            removeMeanField(&fields, over: used, shifts: used.map { shifts[indices[$0]] })
            average = try correctedAverage(frames, indices: indices, used: used, shifts: shifts, fields: fields,
                                           interpolation: options.interpolation)
        }
        // Like the lattice model below, the joint fit is for frames of 256 px or more: on
        // smaller ones its coarse levels leave a bias of a few tenths of a pixel at the edges.
        if let lineFit = options.lineFit, Swift.min(w, h) >= 256 {
            fields = try ScanLineFit.fit(frames, indices: indices, shifts: shifts, fields: fields, options: lineFit)
            average = try correctedAverage(frames, indices: indices, used: used, shifts: shifts, fields: fields,
                                           interpolation: options.interpolation)
        }
        var reflections: [ScanLatticeCorrection.Reflection]?
        for _ in 0..<options.commonRounds {
            let common = commonOffsets(of: average, reflections: &reflections, options: options)
            // Reference row Y is frame line Y + dy, reference column X frame column X + dx.
            for i in used {
                let s = shifts[indices[i]]
                for y in 0..<h {
                    fields[i].lineShiftX[y] += Float(interpolated(common.rowX, Double(y) - s.dy))
                    fields[i].lineShiftY[y] += Float(interpolated(common.rowY, Double(y) - s.dy))
                }
                for x in 0..<w { fields[i].flybackShiftX[x] += Float(interpolated(common.columnX, Double(x) - s.dx)) }
            }
            average = try correctedAverage(frames, indices: indices, used: used, shifts: shifts, fields: fields,
                                           interpolation: options.interpolation)
        }
        return NonrigidResult(fields: fields, average: average)
    }

    /// The distortion every frame shares, measured on the corrected average over the area
    /// all frames cover: the lattice model where the image has room for it, else the
    /// lattice's straightness and line-to-line smoothness. `reflections`: found on the first
    /// call, reused after.
    static func commonOffsets(of average: AlignedAverage, reflections: inout [ScanLatticeCorrection.Reflection]?,
                              options: NonrigidOptions) -> ScanLatticeCorrection.Offsets {
        let w = average.image.width, h = average.image.height
        let covered = Mask(width: w, height: h, bits: average.weight.pixels.map { $0 >= Float(average.frameCount) - 0.5 })
        let full = Filters.eroded(covered, radius: 2)
        var lookFor = options.latticeCorrection
        if let model = options.latticeModel { lookFor.reflections = model.reflections }
        let found = reflections ?? ScanLatticeCorrection.reflections(in: average.image, valid: full, options: lookFor)
        reflections = found
        // The lattice model needs room for its Bragg masks (σ = 1.5/size) to separate the
        // lattice from its distortions: on smaller images the phase and line smoothness.
        if let model = options.latticeModel, !found.isEmpty, Swift.min(w, h) >= 256 {
            return LatticeModelCorrection.offsets(in: average.image, valid: full, reflections: found, options: model)
        }
        var common = ScanLatticeCorrection.offsets(in: average.image, valid: full,
                                                   reflections: Array(found.prefix(options.latticeCorrection.reflections)),
                                                   options: options.latticeCorrection)
        let jitter = ScanLineCorrection.rowOffsets(in: average.image, valid: full, options: options.lineCorrection)
        for y in 0..<h { common.rowX[y] += jitter[y] }
        return common
    }

    /// The frame resampled onto the reference: out(X, Y) = frame(X + dx + ux, Y + dy + uy).
    /// Raster-aware: the interpolation across lines takes each contributing scan line at its
    /// own fast-scan offset (line j is sampled at X + dx + ux_j), since neighbouring lines were
    /// displaced independently; interpolating across lines at one offset would mix their
    /// jitter back in whenever the rigid shift is fractional. uy and the flyback term are
    /// taken at the frame pixel nearest the sample (both are smooth). `valid` marks output
    /// pixels whose sample lies inside the frame.
    ///
    /// A line's samples along the fast axis depend on the line alone, so each line is
    /// resampled once (`resampledLines`) and the output rows, four of which read every line
    /// (two in bilinear mode), combine them: the same arithmetic in the same order as sampling
    /// every tap of every output pixel.
    public static func apply(_ field: ScanDistortionField?, shift: (dx: Double, dy: Double), to frame: Image,
                             interpolation: Interpolation) -> (image: Image, valid: Mask) {
        let w = frame.width, h = frame.height
        let cubic = interpolation == .bicubic
        let (lines, lineInside) = resampledLines(frame, field: field, dx: shift.dx, cubic: cubic)
        var out = [Float](repeating: 0, count: w * h)
        var valid = [Bool](repeating: false, count: w * h)
        out.withUnsafeMutableBufferPointer { outBuf in
            valid.withUnsafeMutableBufferPointer { validBuf in
                let o = UncheckedSendable(outBuf.baseAddress!), v = UncheckedSendable(validBuf.baseAddress!)
                // Rows are independent: each iteration writes only its own row.
                DispatchQueue.concurrentPerform(iterations: h) { y in
                    var fy = Double(y) + shift.dy
                    if let field { fy += Double(field.lineShiftY[Swift.min(h - 1, Swift.max(0, Int(fy.rounded())))]) }
                    guard fy >= 0, fy <= Double(h - 1) else { return }
                    let yi = Swift.min(Int(fy), h - 2), ty = Float(fy - Double(yi))
                    let taps = cubic ? 4 : 2, first = cubic ? yi - 1 : yi
                    let wy: SIMD4<Float> = cubic ? Sampler.keys(ty) : SIMD4(1 - ty, ty, 0, 0)
                    var rowStarts = SIMD4<Int>(repeating: 0)
                    for j in 0..<taps { rowStarts[j] = Swift.min(h - 1, Swift.max(0, first + j)) * w }
                    for x in 0..<w {
                        var acc: Float = 0, inside = true
                        for j in 0..<taps {
                            guard lineInside[rowStarts[j] + x] else { inside = false; break }
                            acc += wy[j] * lines[rowStarts[j] + x]
                        }
                        if inside { o.value[y * w + x] = acc; v.value[y * w + x] = true }
                    }
                }
            }
        }
        return (Image(width: w, height: h, pixels: out), Mask(width: w, height: h, bits: valid))
    }

    /// Every frame line resampled along the fast axis at its own offset (X + dx + ux_j + flyback),
    /// with whether the sample lies inside the line.
    static func resampledLines(_ frame: Image, field: ScanDistortionField?, dx: Double,
                               cubic: Bool) -> (values: [Float], inside: [Bool]) {
        let w = frame.width, h = frame.height
        let flybacks = (0..<w).map { x -> Double in
            field.map { Double($0.flybackShiftX[Swift.min(w - 1, Swift.max(0, Int((Double(x) + dx).rounded())))]) } ?? 0
        }
        var values = [Float](repeating: 0, count: w * h)
        var inside = [Bool](repeating: false, count: w * h)
        values.withUnsafeMutableBufferPointer { valueBuf in
            inside.withUnsafeMutableBufferPointer { insideBuf in
                frame.pixels.withUnsafeBufferPointer { src in
                    let o = UncheckedSendable(valueBuf.baseAddress!), v = UncheckedSendable(insideBuf.baseAddress!)
                    let s = UncheckedSendable(src.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: h) { row in
                        let lineShift = Double(field?.lineShiftX[row] ?? 0)
                        let base = s.value + row * w
                        for x in 0..<w {
                            let fx = Double(x) + dx + flybacks[x] + lineShift
                            guard fx >= 0, fx <= Double(w - 1) else { continue }
                            let xi = Swift.min(Int(fx), w - 2), tx = Float(fx - Double(xi))
                            var value: Float
                            if cubic {
                                let wx = Sampler.keys(tx)
                                value = 0
                                if xi >= 1 && xi + 2 < w {
                                    for i in 0..<4 { value += wx[i] * base[xi - 1 + i] }
                                } else {
                                    for i in 0..<4 { value += wx[i] * base[Swift.min(w - 1, Swift.max(0, xi - 1 + i))] }
                                }
                            } else {
                                value = base[xi] + (base[xi + 1] - base[xi]) * tx
                            }
                            o.value[row * w + x] = value; v.value[row * w + x] = true
                        }
                    }
                }
            }
        }
        return (values, inside)
    }

    // MARK: - Estimation

    /// The reference blurred to one level, with its gradients.
    struct ReferenceLevel: Sendable {
        let sigma: Double
        let image: Image
        let gx: [Float]
        let gy: [Float]

        init(_ reference: Image, sigma: Double) {
            self.sigma = sigma
            image = Filters.gaussianBlur(reference, sigma: sigma)
            (gx, gy) = Filters.gradients(image)
        }
    }

    static func estimate(_ frame: Image, shift: (Double, Double), start: ScanDistortionField,
                         levels: [ReferenceLevel], options: NonrigidOptions) -> ScanDistortionField {
        var field = start
        let w = frame.width, h = frame.height
        for level in levels {
            for it in 0..<options.iterations {
                // Warp the raw frame, then blur: blurring first would mix lines whose jitter
                // differs, so the coarse levels see only the field's smooth part, as they should.
                let interp: Interpolation = level.sigma >= 1 ? .bilinear : .bicubic
                let (raw, rawValid) = apply(field, shift: shift, to: frame, interpolation: interp)
                let warped = Filters.gaussianBlur(raw, sigma: level.sigma)
                let valid = Filters.eroded(rawValid, radius: Int((3 * level.sigma).rounded(.up)) + 1)
                // Gain and offset between frame and reference (dose and detector drift differ).
                let (gain, offset) = Filters.linearFit(warped.pixels, level.image.pixels, valid.bits)
                guard gain.isFinite, abs(gain) > 1e-6 else { return field }
                var residual = [Float](repeating: 0, count: w * h)
                for k in residual.indices where valid.bits[k] {
                    residual[k] = (warped.pixels[k] - offset) / gain - level.image.pixels[k]
                }
                if it % 2 == 0 || !options.relativeFlyback {
                    updateLines(&field, residual: residual, valid: valid.bits, level: level, shift: shift, options: options)
                } else {
                    updateFlyback(&field, residual: residual, valid: valid.bits, level: level, shift: shift, options: options)
                }
            }
        }
        return field
    }

    /// Gauss–Newton step for the per-line terms: a 2×2 normal system per line; the y offset is
    /// smoothed over `lineWindow` lines, each line's x offset is kept (jitter) but pulled toward
    /// its neighbours in proportion to how little the line itself says.
    static func updateLines(_ field: inout ScanDistortionField, residual: [Float], valid: [Bool], level: ReferenceLevel,
                            shift: (Double, Double), options: NonrigidOptions) {
        let w = field.width, h = field.height
        // Sums per output row, then mapped to the frame line they sample (row + dy).
        var sxx = [Double](repeating: 0, count: h), sxy = sxx, syy = sxx, sxr = sxx, syr = sxx
        for y in 0..<h {
            var a = 0.0, b = 0.0, c = 0.0, d = 0.0, e = 0.0
            for x in 0..<w {
                let k = y * w + x
                guard valid[k] else { continue }
                let gx = Double(level.gx[k]), gy = Double(level.gy[k]), r = Double(residual[k])
                a += gx * gx; b += gx * gy; c += gy * gy; d += gx * r; e += gy * r
            }
            sxx[y] = a; sxy[y] = b; syy[y] = c; sxr[y] = d; syr[y] = e
        }
        let win = options.lineWindow
        func box(_ v: [Double]) -> [Double] {
            var prefix = [0.0]; prefix.reserveCapacity(h + 1)
            for x in v { prefix.append(prefix.last! + x) }
            return (0..<h).map { y in prefix[Swift.min(h, y + win + 1)] - prefix[Swift.max(0, y - win)] }
        }
        let wxx = box(sxx), wxy = box(sxy), wyy = box(syy), wxr = box(sxr), wyr = box(syr)
        let typical = sxx.sorted()[h / 2]
        let lambda = options.jitterRegularization * Swift.max(typical, 1e-12)
        var dX = [Double](repeating: 0, count: h), dY = dX
        for y in 0..<h {
            // Smooth solution over the window, Levenberg–Marquardt damped: along the layers a
            // blurred lattice constrains little, and undamped steps there drift.
            let mu = options.damping * 0.5 * (wxx[y] + wyy[y])
            let a = wxx[y] + mu, c = wyy[y] + mu, b = wxy[y]
            let det = a * c - b * b
            guard det > 1e-12 * Swift.max(1, a * c) else { continue }
            let ux = -(c * wxr[y] - b * wyr[y]) / det
            let uy = -(a * wyr[y] - b * wxr[y]) / det
            // This line's own x offset given the smooth y offset, regularised toward the window's.
            let own = -(sxr[y] + sxy[y] * uy)
            dX[y] = (own + lambda * ux) / (sxx[y] + lambda)
            dY[y] = uy
        }
        // Output row y samples frame line ≈ y + dy: add the update to that line.
        let dy = Int(shift.1.rounded())
        for y in 0..<h {
            let line = y + dy
            guard line >= 0, line < h else { continue }
            field.lineShiftX[line] += Float(dX[y])
            field.lineShiftY[line] += Float(dY[y])
        }
    }

    /// Gauss–Newton step for the flyback term: per column, over all lines, smoothed along x;
    /// its mean belongs to the line terms, so it is moved there.
    static func updateFlyback(_ field: inout ScanDistortionField, residual: [Float], valid: [Bool], level: ReferenceLevel,
                              shift: (Double, Double), options: NonrigidOptions) {
        let w = field.width, h = field.height
        var sxx = [Double](repeating: 0, count: w), sxr = sxx
        for y in 0..<h {
            for x in 0..<w {
                let k = y * w + x
                guard valid[k] else { continue }
                let gx = Double(level.gx[k])
                sxx[x] += gx * gx
                sxr[x] += gx * Double(residual[k])
            }
        }
        let kernel = Filters.gaussianKernel(sigma: options.flybackSmoothingPx)
        let r = kernel.count / 2
        var du = [Double](repeating: 0, count: w)
        for x in 0..<w {
            var num = 0.0, den = 0.0
            for (j, kv) in kernel.enumerated() {
                let xx = x + j - r
                guard xx >= 0, xx < w else { continue }
                num += kv * sxr[xx]; den += kv * sxx[xx]
            }
            du[x] = den > 0 ? -num / den : 0
        }
        let dx = Int(shift.0.rounded())
        var moved = [Double](repeating: 0, count: w), n = 0.0
        for x in 0..<w {
            let col = x + dx
            guard col >= 0, col < w else { continue }
            moved[col] = du[x]; n += 1
        }
        let mean = n > 0 ? moved.reduce(0, +) / n : 0
        for x in 0..<w { field.flybackShiftX[x] += Float(moved[x] - mean) }
        for y in 0..<h { field.lineShiftX[y] += Float(mean) }
    }

    /// Removes the series' mean field (Jones 2015): registration against the series' own
    /// average measures only what differs between frames. The mean is taken where the frames
    /// overlap on the reference (frame line y of frame i lies on reference row y − dy_i), not
    /// line by line in frame coordinates, which would mix rows the drift has moved apart.
    static func removeMeanField(_ fields: inout [ScanDistortionField], over used: [Int], shifts: [FrameShift]) {
        guard let first = used.first else { return }
        let h = fields[first].height, w = fields[first].width
        // Reference rows / columns range over the frame's plus the largest shift.
        let my = shifts.map { Int($0.dy.rounded()) }, mxs = shifts.map { Int($0.dx.rounded()) }
        let lo = (my.min() ?? 0), hi = (my.max() ?? 0), loX = (mxs.min() ?? 0), hiX = (mxs.max() ?? 0)
        let rows = h + hi - lo, cols = w + hiX - loX
        var sx = [Float](repeating: 0, count: rows), sy = sx, n = sx
        var sf = [Float](repeating: 0, count: cols), nf = sf
        for (k, i) in used.enumerated() {
            for y in 0..<h {
                let r = y - my[k] + hi
                sx[r] += fields[i].lineShiftX[y]; sy[r] += fields[i].lineShiftY[y]; n[r] += 1
            }
            for x in 0..<w {
                let c = x - mxs[k] + hiX
                sf[c] += fields[i].flybackShiftX[x]; nf[c] += 1
            }
        }
        for (k, i) in used.enumerated() {
            for y in 0..<h {
                let r = y - my[k] + hi
                fields[i].lineShiftX[y] -= sx[r] / n[r]; fields[i].lineShiftY[y] -= sy[r] / n[r]
            }
            for x in 0..<w {
                let c = x - mxs[k] + hiX
                fields[i].flybackShiftX[x] -= sf[c] / nf[c]
            }
        }
    }

    /// Linear interpolation of `v` at fractional index `t`; 0 outside.
    static func interpolated(_ v: [Double], _ t: Double) -> Double {
        guard t > -1, t < Double(v.count) else { return 0 }
        let i = Int(floor(t)), f = t - floor(t)
        let a = i >= 0 ? v[i] : 0, b = i + 1 < v.count ? v[i + 1] : 0
        return a * (1 - f) + b * f
    }

    /// Average of the corrected frames over their common overlap, summed in frame order so
    /// the result does not depend on thread timing.
    static func correctedAverage(_ frames: some ImageSequence, indices: [Int], used: [Int], shifts: [FrameShift],
                                 fields: [ScanDistortionField], interpolation: Interpolation) throws -> AlignedAverage {
        let w = frames.width, h = frames.height
        var sum = [Double](repeating: 0, count: w * h), weight = [Float](repeating: 0, count: w * h)
        let chunk = 2 * ProcessInfo.processInfo.activeProcessorCount
        var start = 0
        while start < used.count {
            let part = Array(used[start..<Swift.min(used.count, start + chunk)])
            let warped = try ResultSlots<(image: Image, valid: Mask)>.map(part.count) { j in
                let i = part[j], s = shifts[indices[i]]
                return apply(fields[i], shift: (s.dx, s.dy), to: try frames.image(at: indices[i]), interpolation: interpolation)
            }
            for j in part.indices {
                let (img, valid) = warped[j]
                for k in sum.indices where valid.bits[k] { sum[k] += Double(img.pixels[k]); weight[k] += 1 }
            }
            start += chunk
        }
        let pixels = (0..<(w * h)).map { weight[$0] > 0 ? Float(sum[$0] / Double(weight[$0])) : 0 }
        return AlignedAverage(image: Image(width: w, height: h, pixels: pixels),
                              weight: Image(width: w, height: h, pixels: weight), frameCount: used.count)
    }
}
