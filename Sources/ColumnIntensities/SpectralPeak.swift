import FrameCore
import Foundation

/// A Hann-windowed, mean-free copy of an image whose Fourier transform can be evaluated at any
/// (non-integer) frequency, for sub-bin location of lattice reflections.
///
/// Peak refinement follows the matrix-multiply DFT zoom of Guizar-Sicairos, Thurman & Fienup,
/// Opt. Lett. 33 (2008) 156: the transform is evaluated on a small, finely spaced grid around
/// the FFT peak (separably: row sums first, then the column sum), twice at decreasing step, and
/// the last grid's maximum is refined by a parabola. For a windowed finite lattice the maximum
/// of |F| lies at the true reciprocal vector, so the result is unbiased, unlike parabolic
/// interpolation of the coarse FFT bins.
struct WindowedSpectrum {
    let width: Int
    let height: Int
    /// (I − mean) · Hann(x) · Hann(y), row-major.
    let values: [Double]

    init(_ image: Image) {
        width = image.width
        height = image.height
        values = PowerSpectrum.hannWindowed(image)
    }

    /// F(f) = Σ v(r) exp(−2πi f·r) on the grid f = centre + (i − n/2, j − n/2) · step.
    /// Returns |F|² row-major (index j * n + i; i along x).
    func powerGrid(centre: SIMD2<Double>, step: SIMD2<Double>, n: Int) -> [Double] {
        // Row sums R_i(y) = Σ_x v(x, y) e^{−2πi fx_i x}.
        // One frequency per iteration, on all cores (each writes its own slice).
        var rowRe = [Double](repeating: 0, count: n * height)
        var rowIm = [Double](repeating: 0, count: n * height)
        let half = Double(n - 1) / 2
        let (width, height) = (self.width, self.height)
        values.withUnsafeBufferPointer { v in
        rowRe.withUnsafeMutableBufferPointer { reOut in
        rowIm.withUnsafeMutableBufferPointer { imOut in
            let (v, reOut, imOut) = (UncheckedSendable(v), UncheckedSendable(reOut), UncheckedSendable(imOut))
            DispatchQueue.concurrentPerform(iterations: n) { i in
                let fx = centre.x + (Double(i) - half) * step.x
                var c = [Double](repeating: 0, count: width), s = [Double](repeating: 0, count: width)
                for x in 0..<width {
                    let phase = -2 * Double.pi * fx * Double(x)
                    c[x] = cos(phase); s[x] = sin(phase)
                }
                for y in 0..<height {
                    var re = 0.0, im = 0.0
                    let base = y * width
                    for x in 0..<width {
                        let p = v.value[base + x]
                        re += p * c[x]; im += p * s[x]
                    }
                    reOut.value[i * height + y] = re; imOut.value[i * height + y] = im
                }
            }
        }}}
        var out = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            let fy = centre.y + (Double(j) - half) * step.y
            var cy = [Double](repeating: 0, count: height), sy = [Double](repeating: 0, count: height)
            for y in 0..<height {
                let phase = -2 * Double.pi * fy * Double(y)
                cy[y] = cos(phase); sy[y] = sin(phase)
            }
            for i in 0..<n {
                var re = 0.0, im = 0.0
                for y in 0..<height {
                    let a = rowRe[i * height + y], b = rowIm[i * height + y]
                    re += a * cy[y] - b * sy[y]
                    im += a * sy[y] + b * cy[y]
                }
                out[j * n + i] = re * re + im * im
            }
        }
        return out
    }

    /// The complex transform at one frequency.
    func transform(at f: SIMD2<Double>) -> (re: Double, im: Double) {
        var re = 0.0, im = 0.0
        var cx = [Double](repeating: 0, count: width), sx = [Double](repeating: 0, count: width)
        for x in 0..<width {
            let phase = -2 * Double.pi * f.x * Double(x)
            cx[x] = cos(phase); sx[x] = sin(phase)
        }
        for y in 0..<height {
            var rr = 0.0, ri = 0.0
            let base = y * width
            for x in 0..<width { rr += values[base + x] * cx[x]; ri += values[base + x] * sx[x] }
            let phase = -2 * Double.pi * f.y * Double(y)
            let cy = cos(phase), sy = sin(phase)
            re += rr * cy - ri * sy
            im += rr * sy + ri * cy
        }
        return (re, im)
    }

    /// Refines a reflection found at FFT bin precision to ≈ 0.005 bin.
    func refinePeak(_ f0: SIMD2<Double>) -> SIMD2<Double> {
        let bin = SIMD2(1 / Double(width), 1 / Double(height))
        var f = f0
        // Coarse (0.2 bin over ±1 bin), then fine (0.02 bin over ±0.1 bin).
        for stepBins in [0.2, 0.02] {
            let n = 11
            let step = bin * stepBins
            let grid = powerGrid(centre: f, step: step, n: n)
            var best = 0
            for k in 1..<grid.count where grid[k] > grid[best] { best = k }
            let bi = best % n, bj = best / n
            var di = 0.0, dj = 0.0
            if bi > 0 && bi < n - 1 {
                di = parabolicOffset(grid[bj * n + bi - 1], grid[bj * n + bi], grid[bj * n + bi + 1])
            }
            if bj > 0 && bj < n - 1 {
                dj = parabolicOffset(grid[(bj - 1) * n + bi], grid[bj * n + bi], grid[(bj + 1) * n + bi])
            }
            let half = Double(n - 1) / 2
            f += SIMD2((Double(bi) - half + di) * step.x, (Double(bj) - half + dj) * step.y)
        }
        return f
    }
}

/// Vertex offset of a parabola through three equally spaced samples, in sample steps (|·| ≤ ½).
@inline(__always) func parabolicOffset(_ a: Double, _ b: Double, _ c: Double) -> Double {
    let d = a - 2 * b + c
    guard d < 0 else { return 0 }
    return max(-0.5, min(0.5, 0.5 * (a - c) / d))
}

