import Foundation
import FrameCore

/// Cross-correlation evaluated at arbitrary sub-pixel positions by matrix-multiply DFT.
///
/// Follows Guizar-Sicairos, Thurman & Fienup, "Efficient subpixel image registration
/// algorithms", Opt. Lett. 33, 156 (2008): instead of zero-padding the whole spectrum,
/// the inverse DFT is evaluated only on a small grid around the peak, as two matrix
/// products (columns contracted first, then rows), costing O(n·K) rather than
/// O(U²·N log N). Spectra are in FFTW's half-complex (r2c) layout; the correlation of
/// real images is real, so each column `kx` of the half spectrum stands for itself and
/// its conjugate mirror (weight 2, except `kx = 0` and the even-size Nyquist column).
public enum UpsampledDFT {
    /// `c(x, y) = Σ_k P(k) exp(+2πi (kx·x/frameWidth + ky·y/frameHeight))` at every pair
    /// of `xs` × `ys`; returns `ys.count × xs.count` values, row-major.
    ///
    /// `spectrum` holds `gridHeight × (gridWidth/2 + 1)` values in FFTW's r2c layout for a
    /// `gridWidth × gridHeight` transform, whose integer frequencies (cycles per frame) are
    /// those of the original `frameWidth × frameHeight` image: a grid smaller than the frame
    /// is a band-limited crop of its spectrum. With `grid == frame` and integer positions
    /// the result equals FFTW's unnormalised c2r inverse.
    ///
    /// `rowLengths`, when given, holds per grid row the number of leading columns that may
    /// be non-zero (a band-pass disc): the rest of the row is skipped.
    public static func evaluate(_ spectrum: UnsafeBufferPointer<Complex>, gridWidth: Int, gridHeight: Int,
                                frameWidth: Int, frameHeight: Int, xs: [Double], ys: [Double],
                                rowLengths: [Int]? = nil) -> [Double] {
        let hw = gridWidth / 2 + 1
        precondition(spectrum.count >= gridHeight * hw && (rowLengths?.count ?? gridHeight) == gridHeight)
        let nx = xs.count, ny = ys.count
        guard nx > 0, ny > 0 else { return [] }
        // x positions in SIMD8 lanes (padded); column twiddles m·exp(2πi kx x / W), with
        // the Hermitian multiplicity m folded in. Each spectrum row is contracted in Float
        // (a few hundred terms, all in phase near the peak: relative error ~1e-6) and the
        // rows are summed in Double, which keeps the ~1e-4 curvature of the peak at
        // 1/50 px well resolved while running 8 columns per vector.
        let chunks = (nx + 7) / 8
        let (cx, sx) = columnTwiddles(xs, columns: hw, chunks: chunks, gridWidth: gridWidth, frameWidth: frameWidth)
        let (rowCos, rowSin) = rowTwiddles(ys, frequencies: gridHeight / 2 + 1, frameHeight: frameHeight)
        var out = [Double](repeating: 0, count: nx * ny)
        var rowRe = [SIMD8<Float>](repeating: .zero, count: chunks), rowIm = rowRe
        var rowReD = [Double](repeating: 0, count: nx), rowImD = rowReD
        rowReD.withUnsafeMutableBufferPointer { rd in
        rowImD.withUnsafeMutableBufferPointer { id in
        cx.withUnsafeBufferPointer { cxp in
        sx.withUnsafeBufferPointer { sxp in
        rowRe.withUnsafeMutableBufferPointer { re in
        rowIm.withUnsafeMutableBufferPointer { im in
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<gridHeight {
                // Contract the columns of this spectrum row: R(ky, x) = Σ_kx m P e^{iθx}.
                let end = rowLengths.map { Swift.min($0[r], hw) } ?? hw
                guard end > 0 else { continue }
                contractRow(spectrum.baseAddress! + r * hw, columns: end, chunks: chunks, cos: cxp, sin: sxp, re: re, im: im)
                // Re(R · e^{iθy}) accumulated into the output grid, in Double.
                let ky = r <= gridHeight / 2 ? r : r - gridHeight
                let t = abs(ky) * ny, sign: Double = ky < 0 ? -1 : 1
                for j in 0..<nx { rd[j] = Double(re[j / 8][j % 8]); id[j] = Double(im[j / 8][j % 8]) }
                for i in 0..<ny {
                    let c = rowCos[t + i], s = sign * rowSin[t + i]
                    let orow = o.baseAddress! + i * nx
                    for j in 0..<nx { orow[j] += rd[j] * c - id[j] * s }
                }
            }
        }}}}}}}
        return out
    }

    /// Column twiddles m·exp(2πi kx x / W) for every column `kx` and position `x`, the
    /// Hermitian multiplicity m folded in, in SIMD8 lanes of x (padded): index `kx·chunks + x/8`.
    /// By the angle-addition recurrence e^{i(k+1)θ} = e^{ikθ}·e^{iθ} in Double (one sin/cos
    /// per position instead of one per frequency; error ~k·1e-16).
    static func columnTwiddles(_ xs: [Double], columns hw: Int, chunks: Int, gridWidth: Int,
                               frameWidth: Int) -> (cos: [SIMD8<Float>], sin: [SIMD8<Float>]) {
        var cx = [SIMD8<Float>](repeating: .zero, count: hw * chunks), sx = cx
        for j in xs.indices {
            let theta = 2 * Double.pi * xs[j] / Double(frameWidth)
            let (c1, s1) = (cos(theta), sin(theta))
            var (c, s) = (1.0, 0.0)
            for k in 0..<hw {
                let m: Double = (k == 0 || (gridWidth % 2 == 0 && k == gridWidth / 2)) ? 1 : 2
                cx[k * chunks + j / 8][j % 8] = Float(m * c)
                sx[k * chunks + j / 8][j % 8] = Float(m * s)
                (c, s) = (c * c1 - s * s1, c * s1 + s * c1)
            }
        }
        return (cx, sx)
    }

    /// Row twiddles e^{i ky φ} for ky = 0..<`frequencies` and every position of `ys`: index
    /// `ky·ys.count + i`. The same recurrence; negative frequencies are the conjugates.
    static func rowTwiddles(_ ys: [Double], frequencies: Int, frameHeight: Int) -> (cos: [Double], sin: [Double]) {
        let ny = ys.count
        var rowCos = [Double](repeating: 0, count: frequencies * ny), rowSin = rowCos
        for i in 0..<ny {
            let phi = 2 * Double.pi * ys[i] / Double(frameHeight)
            let (c1, s1) = (cos(phi), sin(phi))
            var (c, s) = (1.0, 0.0)
            for ky in 0..<frequencies {
                rowCos[ky * ny + i] = c; rowSin[ky * ny + i] = s
                (c, s) = (c * c1 - s * s1, c * s1 + s * c1)
            }
        }
        return (rowCos, rowSin)
    }

    /// One spectrum row's columns contracted: R(x) = Σ_kx m P(kx) e^{iθx kx} over its first
    /// `columns` values, into `re`/`im` (SIMD8 chunks of positions), in Float.
    @inline(__always)
    private static func contractRow(_ row: UnsafePointer<Complex>, columns end: Int, chunks: Int,
                                    cos cxp: UnsafeBufferPointer<SIMD8<Float>>, sin sxp: UnsafeBufferPointer<SIMD8<Float>>,
                                    re: UnsafeMutableBufferPointer<SIMD8<Float>>,
                                    im: UnsafeMutableBufferPointer<SIMD8<Float>>) {
        for c in 0..<chunks { re[c] = .zero; im[c] = .zero }
        if chunks == 1 {
            // The usual case (≤ 8 positions): accumulators held in registers.
            var accRe = SIMD8<Float>.zero, accIm = SIMD8<Float>.zero
            for k in 0..<end {
                let p = row[k]
                let pr = SIMD8<Float>(repeating: p.x), pi = SIMD8<Float>(repeating: p.y)
                accRe += pr * cxp[k] - pi * sxp[k]
                accIm += pr * sxp[k] + pi * cxp[k]
            }
            re[0] = accRe; im[0] = accIm
        } else {
            for k in 0..<end {
                let p = row[k]
                let pr = SIMD8<Float>(repeating: p.x), pi = SIMD8<Float>(repeating: p.y)
                let base = k * chunks
                for c in 0..<chunks {
                    let co = cxp[base + c], si = sxp[base + c]
                    re[c] += pr * co - pi * si
                    im[c] += pr * si + pi * co
                }
            }
        }
    }

    /// Refines a correlation maximum near `(x0, y0)` (px), first known to within
    /// ±`initialStep` px, to 1/`upsampleFactor` px by successive small upsampled-DFT grids,
    /// each 3–5× finer than the last (Guizar-Sicairos 2008, applied coarse-to-fine). Once a
    /// grid is at most 25/U px fine and its maximum lies inside it, the parabola vertex
    /// through its neighbours along each axis (on a peak as smooth as a band-passed
    /// correlation, within a few hundredths of a pixel) centres the last grid, ±3/U px at
    /// 1/U, which saves grids of the plain sequence (two instead of four for 1024² frames);
    /// a last grid whose maximum lies on its edge is repeated around it.
    /// The maximised quantity is the correlation divided by `divideBy(x, y)` when given
    /// (e.g. an overlap normalisation). Returns the position and the (undivided)
    /// correlation value there.
    public static func refinePeak(_ spectrum: UnsafeBufferPointer<Complex>, gridWidth: Int, gridHeight: Int,
                                  frameWidth: Int, frameHeight: Int, x0: Double, y0: Double,
                                  initialStep: Double, upsampleFactor: Int, rowLengths: [Int]? = nil,
                                  divideBy: ((Double, Double) -> Double)? = nil) -> (x: Double, y: Double, value: Double) {
        var bx = x0, by = y0
        var raw = -Double.infinity, best = -Double.infinity
        let finest = 1 / Double(Swift.max(1, upsampleFactor))
        var range = initialStep
        var recentred = 0
        while range > finest * 1.0001 {
            // 7×7 grids shrinking 3× per level; the last level jumps to 1/U when it can
            // (11×11 at most), which keeps the number of DFT columns evaluated small.
            var step = Swift.max(range / 3, finest)
            if range / 5 <= finest * 1.0001 { step = finest }
            let n = Int((range / step).rounded(.up))
            let offsets = (-n...n).map { Double($0) * step }
            let xs = offsets.map { bx + $0 }, ys = offsets.map { by + $0 }
            let values = evaluate(spectrum, gridWidth: gridWidth, gridHeight: gridHeight,
                                  frameWidth: frameWidth, frameHeight: frameHeight, xs: xs, ys: ys, rowLengths: rowLengths)
            var bi = -1
            var q = [Double](repeating: 0, count: values.count)
            for (i, v) in values.enumerated() {
                q[i] = v / (divideBy?(xs[i % xs.count], ys[i / xs.count]) ?? 1)
                if q[i] > best { best = q[i]; bi = i }
            }
            if bi >= 0 { bx = xs[bi % xs.count]; by = ys[bi / xs.count]; raw = values[bi] }
            range = step
            let side = xs.count, (i, j) = (bi % side, bi / side)
            let inside = bi >= 0 && i > 0 && i < side - 1 && j > 0 && j < side - 1
            if step <= finest * 1.0001, bi >= 0, !inside, recentred < 2 {
                // The last grid's maximum on its edge: once or twice more around it.
                range = 3 * finest; recentred += 1
            } else if step > finest * 1.0001, step <= 25 * finest, inside {
                func vertex(_ l: Double, _ c: Double, _ r: Double) -> Double {
                    let d = l - 2 * c + r
                    return d < 0 ? Swift.max(-0.5, Swift.min(0.5, 0.5 * (l - r) / d)) : 0
                }
                bx += step * vertex(q[bi - 1], q[bi], q[bi + 1])
                by += step * vertex(q[bi - side], q[bi], q[bi + side])
                range = 3 * finest
                best = -.infinity   // the last grid's maximum is the answer (the vertex is its centre)
            }
        }
        return (bx, by, raw)
    }
}
