import Foundation
import FrameCore

/// Per-line fast-scan offsets of a single image, estimated from the image alone: the scan-line
/// correction of Jones & Nellist (Microsc. Microanal. 19, 1050–1060, 2013), posed as one
/// least-squares problem over all lines.
///
/// Why it is needed: registering frames to their own average (`NonrigidRegistration`) can only
/// remove what differs between frames. What they share stays in the average — in particular
/// the mean of the per-line jitter over N frames (≈ σ/√N per line), which moves whole rows of
/// the average along the fast-scan axis and is the largest error left in column positions.
/// A specimen has no line-to-line discontinuities, so that part is measurable from the average
/// itself: each row, moved by its offset, should be predicted by the mean of its neighbours.
///
/// Method: with C_r the row r moved by the current offsets and g_r its fast-scan gradient,
/// minimise over the updates δ
///     Σ_r Σ_x [C_r − ½(C_{r−1} + C_{r+1}) + g_r δ_r − ½ g_{r−1} δ_{r−1} − ½ g_{r+1} δ_{r+1}]²
/// (Gauss–Newton on the second difference across lines, a pentadiagonal normal system solved
/// by banded Cholesky), a few iterations. The curvature of the columns across lines is even
/// about each column and the gradient odd, so it does not bias the estimate. Offsets that vary
/// slowly from line to line (a shear or bend) cannot be told from the specimen's own geometry
/// and are left to the lattice: the result is high-passed across lines.
public enum ScanLineCorrection {
    public struct Options: Sendable {
        /// Gauss–Newton iterations (each resamples the rows by the current offsets).
        public var iterations = 3
        /// Offsets smoother than this (Gaussian σ, lines) are removed from the estimate.
        public var highPassLines = 4.0
        /// Gaussian σ (px) of the copy the gradients are taken on (noise in the gradient biases
        /// least squares toward zero).
        public var gradientSigma = 0.8
        /// Gaussian σ (px) of a blur along each line (never across lines, so each line's
        /// offset is kept): a matched filter against shot noise, about half a column's width.
        public var alongLineSigmaPx = 1.0
        /// Ridge on each offset, relative to the median per-line curvature.
        public var ridge = 0.02
        public init() {}
    }

    /// Offset e[r] (px) of each row's content along +x (row r shows what an undistorted image
    /// shows at x − e[r]), for rows whose `valid` pixels allow it; 0 elsewhere.
    public static func rowOffsets(in image: Image, valid: Mask, options: Options = Options()) -> [Double] {
        let w = image.width, h = image.height
        var offsets = [Double](repeating: 0, count: h)
        guard h >= 5, w >= 8 else { return offsets }
        for _ in 0..<options.iterations {
            let moved = blurredAlongLines(shiftedRows(image, by: offsets), sigma: options.alongLineSigmaPx)
            let smooth = Filters.gaussianBlur(moved, sigma: options.gradientSigma)
            let g = Filters.gradients(smooth).gx
            let c = moved.pixels, v = valid.bits
            // Normal equations: band 2 (entries (r, r), (r, r+1), (r, r+2)) and right-hand side.
            var d0 = [Double](repeating: 0, count: h), d1 = d0, d2 = d0, rhs = d0
            for r in 1..<(h - 1) {
                let a = (r - 1) * w, b = r * w, e = (r + 1) * w
                var gmm = 0.0, g00 = 0.0, gpp = 0.0, gm0 = 0.0, g0p = 0.0, gmp = 0.0
                var rm = 0.0, r0 = 0.0, rp = 0.0
                for x in 0..<w where v[a + x] && v[b + x] && v[e + x] {
                    // Coefficients of δ_{r−1}, δ_r, δ_{r+1} in this pixel's residual.
                    let cm = -0.5 * Double(g[a + x]), c0 = Double(g[b + x]), cp = -0.5 * Double(g[e + x])
                    let res = Double(c[b + x]) - 0.5 * Double(c[a + x] + c[e + x])
                    gmm += cm * cm; g00 += c0 * c0; gpp += cp * cp
                    gm0 += cm * c0; g0p += c0 * cp; gmp += cm * cp
                    rm += cm * res; r0 += c0 * res; rp += cp * res
                }
                d0[r - 1] += gmm; d0[r] += g00; d0[r + 1] += gpp
                d1[r - 1] += gm0; d1[r] += g0p; d2[r - 1] += gmp
                rhs[r - 1] -= rm; rhs[r] -= r0; rhs[r + 1] -= rp
            }
            let typical = d0.filter { $0 > 0 }.sorted()
            guard !typical.isEmpty else { return offsets }
            let ridge = options.ridge * typical[typical.count / 2]
            for r in 0..<h { d0[r] += ridge }
            guard let delta = solvePentadiagonal(d0, d1, d2, rhs) else { return offsets }
            for r in 0..<h { offsets[r] += delta[r] }
            // A shear (linear in the line index) is nearly invisible to the second difference,
            // so the solution carries an arbitrary one; removed before the high-pass, whose
            // clamped edges would otherwise turn it into offsets at the first and last lines.
            offsets = highPassed(ScanLatticeCorrection.affineRemoved(offsets), sigma: options.highPassLines)
        }
        // Lines near the ends of the measured band have neighbours on one side only: their
        // estimates are faded out over one high-pass width.
        let measured = (1..<(h - 1)).filter { r in (0..<w).contains { valid.bits[(r - 1) * w + $0] && valid.bits[r * w + $0] && valid.bits[(r + 1) * w + $0] } }
        guard let first = measured.first, let last = measured.last else { return [Double](repeating: 0, count: h) }
        let fade = Swift.max(1, 2 * options.highPassLines)
        for r in 0..<h {
            let d = Double(Swift.min(r - first, last - r))
            offsets[r] *= d < 0 ? 0 : Swift.min(1, d / fade)
        }
        return offsets
    }

    /// The image with row r resampled at x + offsets[r] (cubic along x, edges clamped): the
    /// content offsets measured by `rowOffsets` removed.
    public static func shiftedRows(_ image: Image, by offsets: [Double]) -> Image {
        let w = image.width, h = image.height
        var out = [Float](repeating: 0, count: w * h)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                let s = offsets[y], row = y * w
                if s == 0 { for x in 0..<w { out[row + x] = src[row + x] }; continue }
                let base = Int(floor(s)), t = Float(s - floor(s))
                let k = Sampler.keys(t)
                for x in 0..<w {
                    var acc: Float = 0
                    for j in 0..<4 {
                        let xx = Swift.min(w - 1, Swift.max(0, x + base - 1 + j))
                        acc += k[j] * src[row + xx]
                    }
                    out[row + x] = acc
                }
            }
        }
        return Image(width: w, height: h, pixels: out)
    }

    /// Gaussian blur of each line along x only (edges clamped).
    static func blurredAlongLines(_ image: Image, sigma: Double) -> Image {
        guard sigma > 0 else { return image }
        let k = Filters.gaussianKernel(sigma: sigma).map(Float.init), r = k.count / 2
        let w = image.width, h = image.height
        var out = [Float](repeating: 0, count: w * h)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                let row = y * w
                for x in 0..<w {
                    var acc: Float = 0
                    for j in 0..<k.count { acc += k[j] * src[row + Swift.min(w - 1, Swift.max(0, x + j - r))] }
                    out[row + x] = acc
                }
            }
        }
        return Image(width: w, height: h, pixels: out)
    }

    /// `v` minus its Gaussian-smoothed copy (edges clamped).
    static func highPassed(_ v: [Double], sigma: Double) -> [Double] {
        guard sigma > 0 else { return v }
        let k = Filters.gaussianKernel(sigma: sigma), r = k.count / 2, n = v.count
        return (0..<n).map { i in
            var s = 0.0
            for (j, kv) in k.enumerated() { s += kv * v[Swift.min(n - 1, Swift.max(0, i + j - r))] }
            return v[i] - s
        }
    }

    /// Per-line offsets, δu along the fast scan and δv along the slow, from each line's normal
    /// equations (I_uu, I_uv, I_vv; b_u, b_v) with a second-difference smoothness penalty on δv:
    /// three alternations of v given u, (I_vv + penalty·D²ᵀD²) δv = b_v − I_uv δu (one
    /// pentadiagonal solve), and u given v, line by line with the ridge `ridgeU`. Lines with
    /// I_uu = 0 get δu = 0 with `unmeasuredAsZero`.
    static func smoothLineOffsets(iuu: [Double], iuv: [Double], ivv: [Double], bu: [Double], bv: [Double],
                                  penalty: Double, diagonalFloor: Double, ridgeU: Double,
                                  unmeasuredAsZero: Bool) -> (du: [Double], dv: [Double]) {
        let h = iuu.count
        var du = [Double](repeating: 0, count: h), dv = du
        for _ in 0..<3 {
            var d0 = [Double](repeating: 0, count: h), d1 = d0, d2 = d0, rhs = d0
            for y in 0..<h { d0[y] = ivv[y] + diagonalFloor * penalty; rhs[y] = bv[y] - iuv[y] * du[y] }
            for y in 1..<Swift.max(1, h - 1) {
                // (δv[y−1] − 2δv[y] + δv[y+1])² · penalty.
                let idx = [y - 1, y, y + 1], s = [1.0, -2.0, 1.0]
                for p in 0..<3 {
                    d0[idx[p]] += penalty * s[p] * s[p]
                    if p + 1 < 3 { d1[idx[p]] += penalty * s[p] * s[p + 1] }
                    if p + 2 < 3 { d2[idx[p]] += penalty * s[p] * s[p + 2] }
                }
            }
            if let v = solvePentadiagonal(d0, d1, d2, rhs) { dv = v }
            for y in 0..<h {
                du[y] = unmeasuredAsZero && !(iuu[y] > 0) ? 0 : (bu[y] - iuv[y] * dv[y]) / (iuu[y] + ridgeU)
            }
        }
        return (du, dv)
    }

    /// Solves the symmetric positive definite system with diagonal `d0`, first and second
    /// off-diagonals `d1`, `d2` by banded LDLᵀ; nil if it is not positive definite.
    static func solvePentadiagonal(_ d0: [Double], _ d1: [Double], _ d2: [Double], _ b: [Double]) -> [Double]? {
        let n = d0.count
        // L has unit diagonal and two sub-diagonals l1[i] = L[i+1][i], l2[i] = L[i+2][i].
        var d = [Double](repeating: 0, count: n), l1 = d, l2 = d
        for i in 0..<n {
            var di = d0[i]
            if i >= 1 { di -= l1[i - 1] * l1[i - 1] * d[i - 1] }
            if i >= 2 { di -= l2[i - 2] * l2[i - 2] * d[i - 2] }
            guard di > 0, di.isFinite else { return nil }
            d[i] = di
            if i + 1 < n {
                var a = d1[i]
                if i >= 1 { a -= l1[i - 1] * l2[i - 1] * d[i - 1] }
                l1[i] = a / di
            }
            if i + 2 < n { l2[i] = d2[i] / di }
        }
        var y = b
        for i in 0..<n {
            if i >= 1 { y[i] -= l1[i - 1] * y[i - 1] }
            if i >= 2 { y[i] -= l2[i - 2] * y[i - 2] }
        }
        for i in 0..<n { y[i] /= d[i] }
        for i in stride(from: n - 1, through: 0, by: -1) {
            if i + 1 < n { y[i] -= l1[i] * y[i + 1] }
            if i + 2 < n { y[i] -= l2[i] * y[i + 2] }
        }
        return y
    }
}
