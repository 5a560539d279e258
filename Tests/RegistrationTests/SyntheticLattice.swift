import Foundation
import TestSupport
import FrameCore


/// A HAADF-like specimen evaluated analytically: Gaussian atomic columns on an oblique
/// lattice rotated by ~25°, a grain boundary (smooth step that dims the lattice on one
/// side) and a few smooth contamination blobs. Frames sample it at shifted positions
/// (never by shifting a finished image), then add Poisson shot noise.
struct SyntheticSpecimen {
    var a1 = SIMD2<Double>(9.0 * cos(25 * Double.pi / 180), 9.0 * sin(25 * Double.pi / 180))
    var a2 = SIMD2<Double>(11.0 * cos(97 * Double.pi / 180), 11.0 * sin(97 * Double.pi / 180))
    var columnSigma = 1.4
    /// Expected counts at a column centre (the integrated column holds 2πσ² times this).
    var columnPeak = 1.0
    var background = 0.3
    /// Contamination blobs: (centre, σ, peak counts) in specimen coordinates.
    var blobs: [(center: SIMD2<Double>, sigma: Double, peak: Double)] = [
        (SIMD2(60, 125), 22, 0.8), (SIMD2(170, 40), 12, 0.6), (SIMD2(120, 200), 9, 0.7), (SIMD2(30, 30), 14, 0.5),
        (SIMD2(215, 150), 11, 0.6), (SIMD2(250, 260), 15, 0.6), (SIMD2(-20, 210), 12, 0.6),
    ]
    /// Boundary: the line n·r = c; the lattice is dimmed to 35 % on its far side.
    var boundaryNormal = SIMD2<Double>(cos(-0.3), sin(-0.3))
    var boundaryOffset = 95.0
    var boundaryWidth = 6.0

    /// Expected counts of a `width × height` frame whose content is displaced by `shift`
    /// (content moved right/down for positive components).
    func expected(width: Int, height: Int, shift: SIMD2<Double>) -> [Double] {
        var img = [Double](repeating: background, count: width * height)
        // Lattice columns: splat each column's Gaussian within 4σ.
        let det = a1.x * a2.y - a1.y * a2.x
        let reach = 4 * columnSigma
        let corners = [SIMD2<Double>(-20, -20), SIMD2(Double(width) + 20, -20),
                       SIMD2(-20, Double(height) + 20), SIMD2(Double(width) + 20, Double(height) + 20)]
        var iLo = Int.max, iHi = Int.min, jLo = Int.max, jHi = Int.min
        for c in corners {
            let r = c - shift
            let i = (r.x * a2.y - r.y * a2.x) / det, j = (a1.x * r.y - a1.y * r.x) / det
            iLo = min(iLo, Int(i.rounded(.down)) - 1); iHi = max(iHi, Int(i.rounded(.up)) + 1)
            jLo = min(jLo, Int(j.rounded(.down)) - 1); jHi = max(jHi, Int(j.rounded(.up)) + 1)
        }
        for i in iLo...iHi {
            for j in jLo...jHi {
                let site = Double(i) * a1 + Double(j) * a2   // specimen coordinates
                let p = site + shift                          // frame coordinates
                guard p.x > -reach, p.y > -reach, p.x < Double(width) + reach, p.y < Double(height) + reach else { continue }
                let side = 0.5 * (1 + tanh(((site * boundaryNormal).sum() - boundaryOffset) / boundaryWidth))
                let amp = columnPeak * (1 - 0.65 * side)
                for y in max(0, Int(p.y - reach))...min(height - 1, Int(p.y + reach)) {
                    for x in max(0, Int(p.x - reach))...min(width - 1, Int(p.x + reach)) {
                        let dx = Double(x) - p.x, dy = Double(y) - p.y
                        img[y * width + x] += amp * exp(-(dx * dx + dy * dy) / (2 * columnSigma * columnSigma))
                    }
                }
            }
        }
        for y in 0..<height {
            for x in 0..<width {
                for b in blobs {
                    let r = SIMD2(Double(x), Double(y)) - shift - b.center
                    img[y * width + x] += b.peak * exp(-(r * r).sum() / (2 * b.sigma * b.sigma))
                }
            }
        }
        return img
    }

    /// A noisy frame: Poisson counts of `dose ×` the expected image.
    func frame(width: Int, height: Int, shift: SIMD2<Double>, dose: Double, rng: inout SplitMix64) -> Image {
        let e = expected(width: width, height: height, shift: shift)
        return Image(width: width, height: height, pixels: e.map { Float(rng.poisson($0 * dose)) })
    }

    /// Noise-free frame (for resampling tests).
    func clean(width: Int, height: Int, shift: SIMD2<Double>) -> Image {
        Image(width: width, height: height, pixels: expected(width: width, height: height, shift: shift).map { Float($0) })
    }

    /// Counts per column at `dose`.
    func countsPerColumn(dose: Double) -> Double { dose * columnPeak * 2 * Double.pi * columnSigma * columnSigma }
}

/// RMS of the differences between measured and true shifts after removing the common
/// translation (the gauge of a reference-free solution), over the frames in `used`.
func gaugeFreeRMS(measured: [SIMD2<Double>], truth: [SIMD2<Double>]) -> (rms: Double, maxError: Double) {
    let n = Double(measured.count)
    let offset = zip(measured, truth).map { $0 - $1 }.reduce(SIMD2<Double>.zero, +) / n
    var sum = 0.0, worst = 0.0
    for (m, t) in zip(measured, truth) {
        let e = m - t - offset
        let d2 = (e * e).sum()
        sum += d2; worst = max(worst, d2.squareRoot())
    }
    return ((sum / n).squareRoot(), worst)
}
