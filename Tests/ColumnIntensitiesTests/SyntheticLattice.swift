import FrameCore
import Foundation
import TestSupport

/// An analytic HAADF image of layered LiMO2 seen edge-on along [100], for tests.
///
/// Close-packed layers (O and cation) are d/4 apart along the layer normal; layer m is shifted
/// sideways by −m·a/3 (ABC stacking of the rock-salt-type O3 structure), TM planes are the
/// layers m ≡ 0 (mod 4), Li planes m ≡ 2, O layers the odd ones. Each column is a circular
/// Gaussian: TM of height `tmHeight`, Li sites of height `liRatio(x, y) · tmHeight`, O of
/// height `oxygenRatio · tmHeight`, on a flat `background`.
struct SyntheticLattice {
    var width = 256
    var height = 256
    var pixelSizeNm = 0.025
    var layerSpacingNm = 0.468
    var columnSpacingNm = 0.2439
    /// Angle of the layers from the scan (+x) axis, degrees, counter-clockwise on screen (y down).
    var angleDegrees = 27.0
    var sigmaPx = 1.8
    var tmHeight = 100.0
    var oxygenRatio = 0.12
    var background = 10.0
    /// A TM column position, px.
    var origin = SIMD2(101.3, 97.6)
    var liRatio: @Sendable (Double, Double) -> Double = { _, _ in 0.05 }
    /// Weak broad probe tail: a second Gaussian of `tailSigmaPx` holding this fraction of each
    /// column's peak height.
    var tailFraction = 0.0
    var tailSigmaPx = 6.0
    /// Mass-thickness contrast: column heights × (1 + thicknessGradient · (x − width/2) / width).
    var thicknessGradient = 0.0
    /// Smooth displacement of every column (scan distortion, strain), px.
    var displacement: @Sendable (SIMD2<Double>) -> SIMD2<Double> = { _ in .zero }

    var along: SIMD2<Double> { SIMD2(cos(angleDegrees * .pi / 180), -sin(angleDegrees * .pi / 180)) }
    var normal: SIMD2<Double> { SIMD2(-along.y, along.x) }
    var layerSpacingPx: Double { layerSpacingNm / pixelSizeNm }
    var columnSpacingPx: Double { columnSpacingNm / pixelSizeNm }

    enum Kind { case tm, li, o }

    /// Every column whose centre lies within `margin` px of the image.
    func columns(margin: Double = 10) -> [(position: SIMD2<Double>, kind: Kind)] {
        let d4 = layerSpacingPx / 4, a = columnSpacingPx
        let diag = Double(width + height)
        let mMax = Int(diag / d4) + 2, kMax = Int(diag / a) + 2
        var out = [(position: SIMD2<Double>, kind: Kind)]()
        for m in -mMax...mMax {
            let kind: Kind = m % 2 != 0 ? .o : ((m % 4 + 4) % 4 == 0 ? .tm : .li)
            let shift = -Double(m) * a / 3
            for k in -kMax...kMax {
                let ideal = origin + (Double(k) * a + shift) * along + Double(m) * d4 * normal
                let p = ideal + displacement(ideal)
                if p.x >= -margin && p.y >= -margin && p.x <= Double(width - 1) + margin && p.y <= Double(height - 1) + margin {
                    out.append((p, kind))
                }
            }
        }
        return out
    }

    func render() -> Image {
        var pix = [Double](repeating: background, count: width * height)
        let reach = 5 * max(sigmaPx, tailFraction > 0 ? tailSigmaPx : 0)
        let inv = 1 / (2 * sigmaPx * sigmaPx), invTail = 1 / (2 * tailSigmaPx * tailSigmaPx)
        for c in columns() {
            let h: Double
            switch c.kind {
            case .tm: h = tmHeight
            case .li: h = tmHeight * liRatio(c.position.x, c.position.y)
            case .o: h = tmHeight * oxygenRatio
            }
            if h == 0 { continue }
            let thick = 1 + thicknessGradient * (c.position.x - Double(width) / 2) / Double(width)
            let x0 = max(0, Int(c.position.x - reach)), x1 = min(width - 1, Int(c.position.x + reach) + 1)
            let y0 = max(0, Int(c.position.y - reach)), y1 = min(height - 1, Int(c.position.y + reach) + 1)
            guard x1 >= x0, y1 >= y0 else { continue }
            for y in y0...y1 {
                for x in x0...x1 {
                    let dx = Double(x) - c.position.x, dy = Double(y) - c.position.y
                    let d2 = dx * dx + dy * dy
                    pix[y * width + x] += thick * h * (exp(-d2 * inv) + tailFraction * exp(-d2 * invTail))
                }
            }
        }
        return Image(width: width, height: height, pixels: pix.map { Float($0) })
    }

    /// TM column positions inside the image.
    var tmPositions: [SIMD2<Double>] {
        columns(margin: 0).filter { $0.kind == .tm }.map { $0.position }
    }
}


extension Image {
    /// Poisson counts with mean `dose × pixel`.
    func withPoissonNoise(dose: Double, seed: UInt64) -> Image {
        var rng = SplitMix64(seed: seed)
        return Image(width: width, height: height, pixels: pixels.map { Float(rng.poisson(Double($0) * dose)) })
    }
}

/// Smallest difference between two line angles (degrees, modulo 180).
func angleDifference(_ a: Double, _ b: Double) -> Double {
    var d = (a - b).truncatingRemainder(dividingBy: 180)
    if d > 90 { d -= 180 }
    if d < -90 { d += 180 }
    return abs(d)
}
