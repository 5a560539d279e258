import Dispatch
import Foundation
import FrameCore

/// Per-line displacements of every frame of a series, estimated jointly over the frames
/// against their evolving average, with the flyback shared by all frames: the relative part
/// of Smart Align-style non-rigid registration (Jones et al., Adv. Struct. Chem. Imaging 1:8,
/// 2015; Berkels et al., Ultramicroscopy 138, 46, 2014), posed for the raster's structure.
///
/// Model: frame i's pixel (x, y) shows the specimen point that the reference shows at
/// (x − sx − u_i(y) − F(x), y − sy − v_i(y)): s the rigid shift, u_i one fast-scan offset per
/// scan line (line jitter, vibration along the fast scan, drift within the frame), v_i a
/// smooth slow-scan offset per line (vibration along the slow scan, drift), F one fast-scan
/// offset per column *of the frame*, the same in every frame (the flyback's decaying
/// compression of each line's start). Because the frames drift, F sits at different
/// reference columns in different frames, so the average shows it smeared and the frames'
/// disagreement measures it; a rigidly aligned average alone could not.
///
/// Method, coarse to fine (`levels`, Gaussian σ of the reference): the used frames are
/// averaged with their current fields; each frame is compared with that average, resampled
/// through its field, by one Gauss–Newton step per round: per line a 2×2 system for (u, v),
/// the v's coupled by a second-difference smoothness penalty (a pentadiagonal system), the
/// u's free (jitter is white) up to a small ridge; per column the same residuals summed over
/// all lines of all frames give F's update, smoothed over a few columns, its affine part left
/// to the rigid shifts and the lattice. Pixels are weighted by their noise (variance linear
/// in the expected value: shot plus read noise). After each round the frames' mean offset on
/// every reference row is removed: what all frames share cannot be seen against their own
/// average and is measured on the average itself afterwards (`ScanLatticeCorrection`,
/// `ScanLineCorrection`).
public enum ScanLineFit {
    public struct Options: Sendable {
        /// Gaussian σ (px) of the reference at each level, coarse to fine.
        public var levels: [Double] = [2, 1, 0.5]
        /// Rounds (average → one Gauss–Newton step per frame) at each level.
        public var roundsPerLevel = 2
        /// Smoothness of the slow-scan offsets: penalty on their second difference across
        /// lines, relative to the median per-line information (≈ (penalty)^¼ lines of smoothing).
        public var slowScanSmoothing = 80.0
        /// Ridge on each line's fast-scan update, relative to the median per-line information.
        public var fastScanRidge = 0.02
        /// Gaussian σ (px) of the smoothing of the flyback update along the line.
        public var flybackSmoothingPx = 1.5
        /// Spread (px) of the frames' x shifts from which the shared flyback is fitted.
        public var minFlybackSpreadPx = 4.0
        /// Largest update (px) of one line in one step.
        public var maxStepPx = 1.0
        public init() {}
    }

    /// Fits the fields of the used frames (`shifts[indices[k]]`), starting from `fields`.
    public static func fit(_ frames: some ImageSequence, indices: [Int], shifts: [FrameShift],
                           fields start: [ScanDistortionField], options: Options = Options()) throws -> [ScanDistortionField] {
        var fields = start
        let used = indices.indices.filter { shifts[indices[$0]].isUsed }
        guard used.count >= 3 else { return fields }
        let w = frames.width, h = frames.height
        // A flyback shared by all frames shows against their average only where the frames
        // sit at different columns: without that spread it is left to the common correction.
        let xs = used.map { shifts[indices[$0]].dx }
        let flybackObservable = (xs.max() ?? 0) - (xs.min() ?? 0) >= options.minFlybackSpreadPx
        for sigma in options.levels {
            for _ in 0..<Swift.max(1, options.roundsPerLevel) {
                let average = try NonrigidRegistration.correctedAverage(frames, indices: indices, used: used, shifts: shifts,
                                                                       fields: fields, interpolation: .bicubic)
                let reference = LevelReference(average, sigma: sigma)
                let current = fields
                let steps = try ResultSlots<FrameStep?>.map(used.count) { k in
                    let i = used[k], s = shifts[indices[i]]
                    return step(try frames.image(at: indices[i]), shift: s, field: current[i], reference: reference,
                                options: options)
                }
                // Per-line updates, and the flyback's from every frame's columns together.
                var columnInfo = [Double](repeating: 0, count: w), columnGrad = columnInfo
                for (k, i) in used.enumerated() {
                    guard let st = steps[k] else { continue }
                    for y in 0..<h {
                        fields[i].lineShiftX[y] += Float(st.du[y])
                        fields[i].lineShiftY[y] += Float(st.dv[y])
                    }
                    for x in 0..<w { columnInfo[x] += st.columnInfo[x]; columnGrad[x] += st.columnGrad[x] }
                }
                if flybackObservable {
                    let df = flybackUpdate(info: columnInfo, grad: columnGrad, options: options)
                    for i in used { for x in 0..<w { fields[i].flybackShiftX[x] += Float(df[x]) } }
                }
                removeMeanOffsets(&fields, used: used, shifts: used.map { shifts[indices[$0]] })
            }
        }
        return fields
    }

    /// The average at one level: blurred values, their gradients and the trusted pixels.
    struct LevelReference: Sendable {
        let value: Image
        let gx: [Float]
        let gy: [Float]
        let trusted: Mask

        init(_ average: AlignedAverage, sigma: Double) {
            value = sigma > 0 ? Filters.gaussianBlur(average.image, sigma: sigma) : average.image
            (gx, gy) = Filters.gradients(sigma > 0 ? value : Filters.gaussianBlur(average.image, sigma: 0.5))
            let need = Float(Swift.max(2, average.frameCount / 2))
            trusted = Filters.eroded(Mask(width: value.width, height: value.height,
                                          bits: average.weight.pixels.map { $0 >= need }), radius: 3)
        }
    }

    /// One frame's Gauss–Newton step: per-line updates and its per-column sums for the flyback.
    struct FrameStep {
        var du: [Double]
        var dv: [Double]
        var columnInfo: [Double]
        var columnGrad: [Double]
    }

    /// The reference at every frame pixel through the current field, its gradients there, and
    /// whether the pixel maps into the reference's trusted area. A frame line samples one
    /// reference row position, so its vertical taps are worked out once per line.
    static func sampledModel(shift: FrameShift, field: ScanDistortionField, reference r: LevelReference)
        -> (model: [Float], ax: [Float], ay: [Float], valid: [Bool]) {
        let w = r.value.width, h = r.value.height
        var model = [Float](repeating: 0, count: w * h), ax = model, ay = model
        var valid = [Bool](repeating: false, count: w * h)
        model.withUnsafeMutableBufferPointer { model in
        ax.withUnsafeMutableBufferPointer { ax in
        ay.withUnsafeMutableBufferPointer { ay in
        valid.withUnsafeMutableBufferPointer { valid in
        r.value.pixels.withUnsafeBufferPointer { rv in
        r.gx.withUnsafeBufferPointer { pgx in
        r.gy.withUnsafeBufferPointer { pgy in
        r.trusted.bits.withUnsafeBufferPointer { trusted in
        field.flybackShiftX.withUnsafeBufferPointer { flyback in
            for y in 0..<h {
                let ry = Double(y) - shift.dy - Double(field.lineShiftY[y])
                guard let line = Sampler.Row(y: ry, width: w, height: h) else { continue }
                let trustedRow = Int(ry.rounded()) * w
                let lineX = shift.dx + Double(field.lineShiftX[y])
                for x in 0..<w {
                    let rx = Double(x) - lineX - Double(flyback[x])
                    guard rx >= 0, rx <= Double(w - 1), trusted[trustedRow + Int(rx.rounded())],
                          let v = line.bicubic(rv.baseAddress!, rx) else { continue }
                    let k = y * w + x
                    model[k] = v
                    ax[k] = line.bilinear(pgx.baseAddress!, rx) ?? 0
                    ay[k] = line.bilinear(pgy.baseAddress!, rx) ?? 0
                    valid[k] = true
                }
            }
        }}}}}}}}}
        return (model, ax, ay, valid)
    }

    /// One frame's Gauss–Newton step through `field`; nil where its noise model cannot be fitted.
    static func step(_ frame: Image, shift: FrameShift, field: ScanDistortionField, reference r: LevelReference,
                     options: Options) -> FrameStep? {
        let w = frame.width, h = frame.height
        guard w == r.value.width, h == r.value.height else { return nil }
        let (model, ax, ay, valid) = sampledModel(shift: shift, field: field, reference: r)
        guard let noise = DriftPathRefinement.NoiseModel.fit(frame: frame.pixels, model: model, valid: valid) else { return nil }
        let (g, c) = noise.gainOffset
        guard g > 0 else { return nil }
        // Per line: information and gradient sums of (u, v); per column: of F.
        var iuu = [Double](repeating: 0, count: h), iuv = iuu, ivv = iuu, bu = iuu, bv = iuu
        var columnInfo = [Double](repeating: 0, count: w), columnGrad = columnInfo
        for y in 0..<h {
            var suu = 0.0, suv = 0.0, svv = 0.0, su = 0.0, sv = 0.0
            let row = y * w
            for x in 0..<w where valid[row + x] {
                let k = row + x
                let e = g * Double(model[k]) + c
                let wt = 1 / noise.variance(e)
                let a = g * Double(ax[k]), b = g * Double(ay[k])
                let res = Double(frame.pixels[k]) - e
                suu += wt * a * a; suv += wt * a * b; svv += wt * b * b
                su += wt * a * res; sv += wt * b * res
                columnInfo[x] += wt * a * a; columnGrad[x] -= wt * a * res
            }
            iuu[y] = suu; iuv[y] = suv; ivv[y] = svv; bu[y] = su; bv[y] = sv
        }
        // The residual after a step δ is res + a·δu + b·δv (a larger offset samples the
        // reference further left: model(u + δ) ≈ model − ∂x·δ): δ = −(JᵀWJ)⁻¹ JᵀW res per
        // line, v coupled across lines by its smoothness penalty.
        for y in 0..<h { bu[y] = -bu[y]; bv[y] = -bv[y] }
        let typicalU = median(iuu.filter { $0 > 0 }), typicalV = median(ivv.filter { $0 > 0 })
        guard typicalU > 0 else { return nil }
        let ridgeU = options.fastScanRidge * typicalU
        let penalty = options.slowScanSmoothing * Swift.max(typicalV, 1e-12)
        var (du, dv) = ScanLineCorrection.smoothLineOffsets(iuu: iuu, iuv: iuv, ivv: ivv, bu: bu, bv: bv, penalty: penalty,
                                                             diagonalFloor: 1e-9, ridgeU: ridgeU, unmeasuredAsZero: false)
        let cap = options.maxStepPx
        for y in 0..<h { du[y] = Swift.max(-cap, Swift.min(cap, du[y])); dv[y] = Swift.max(-cap, Swift.min(cap, dv[y])) }
        // The frame's lines sample reference rows; its columns keep their frame index for F.
        return FrameStep(du: du, dv: dv, columnInfo: columnInfo, columnGrad: columnGrad)
    }

    /// F's update from the columns' sums: per column, smoothed along the line, affine part
    /// removed (weighted by the columns' information), ridge for columns no frame measured.
    static func flybackUpdate(info: [Double], grad: [Double], options: Options) -> [Double] {
        let w = info.count
        let typical = median(info.filter { $0 > 0 })
        guard typical > 0 else { return [Double](repeating: 0, count: w) }
        // Smooth the sums (not the ratios): columns with little information borrow from
        // their neighbours.
        let k = Filters.gaussianKernel(sigma: options.flybackSmoothingPx), r = k.count / 2
        var d = [Double](repeating: 0, count: w), weight = d
        for x in 0..<w {
            var si = 0.0, sg = 0.0
            for (j, kv) in k.enumerated() {
                let xx = Swift.min(w - 1, Swift.max(0, x + j - r))
                si += kv * info[xx]; sg += kv * grad[xx]
            }
            d[x] = sg / (si + 0.01 * typical)
            weight[x] = si
        }
        // Weighted affine part removed: a constant or a linear stretch along the line belongs
        // to the rigid shifts and the lattice.
        var sw = 0.0, sx = 0.0, sxx = 0.0, sd = 0.0, sxd = 0.0
        for x in 0..<w {
            let t = Double(x)
            sw += weight[x]; sx += weight[x] * t; sxx += weight[x] * t * t; sd += weight[x] * d[x]; sxd += weight[x] * t * d[x]
        }
        let den = sw * sxx - sx * sx
        if den > 0 {
            let slope = (sw * sxd - sx * sd) / den, icpt = (sd - slope * sx) / sw
            for x in 0..<w { d[x] -= icpt + slope * Double(x) }
        }
        let cap = options.maxStepPx
        return d.map { Swift.max(-cap, Swift.min(cap, $0)) }
    }

    /// Removes the frames' mean line offsets on every reference row (frame line y of frame i
    /// lies on reference row y − dy_i), which relative registration cannot see.
    static func removeMeanOffsets(_ fields: inout [ScanDistortionField], used: [Int], shifts: [FrameShift]) {
        guard let first = used.first else { return }
        let h = fields[first].height
        let dy = shifts.map { Int($0.dy.rounded()) }
        let lo = dy.min() ?? 0, hi = dy.max() ?? 0
        let rows = h + hi - lo
        var sx = [Double](repeating: 0, count: rows), sy = sx, n = sx
        for (k, i) in used.enumerated() {
            for y in 0..<h {
                let r = y - dy[k] + hi
                sx[r] += Double(fields[i].lineShiftX[y]); sy[r] += Double(fields[i].lineShiftY[y]); n[r] += 1
            }
        }
        for (k, i) in used.enumerated() {
            for y in 0..<h {
                let r = y - dy[k] + hi
                fields[i].lineShiftX[y] -= Float(sx[r] / n[r]); fields[i].lineShiftY[y] -= Float(sy[r] / n[r])
            }
        }
    }

    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        return v.sorted()[v.count / 2]
    }
}
