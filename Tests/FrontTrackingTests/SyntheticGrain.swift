import Foundation
import TestSupport
import FrameCore

/// An analytic HAADF image of one layered grain turning into rock salt behind a tanh front,
/// built for these tests (independent of the Simulation module).
///
/// Geometry: TM planes `layerSpacingNm` apart at `angleDeg` to the scan rows, TM columns
/// `columnSpacingNm` apart along each plane with ABC stacking (each plane shifted by a third),
/// Li-site columns midway between planes. A boundary line across the layers through
/// `boundaryPoint`; behind it (s < 0, s the distance along the layers) vacuum or amorphous
/// material. The occupancy change P(s) = ½(1 − tanh((s − D)/w)) with 10–90 % width
/// W = 2·atanh(0.8)·w. A multiplicative thickness ramp 1 → `thicknessRamp` along x.
struct SyntheticGrain {
    enum Mixing {
        /// TM and Li exchange sites (TM conserved): m = P/2 of each site swaps.
        case swap
        /// TM fills the Li sites (TM site unchanged): Li site gains P·Z_TM.
        case fill
    }
    enum Beyond: Equatable {
        case vacuum, amorphous
        /// Another layered grain, rotated by this many degrees.
        case grain(Double)
    }

    var size = 256
    var pixelNm = 0.05
    var layerSpacingNm = 0.468
    var columnSpacingNm = 0.244
    var angleDeg = 25.0
    var columnSigmaNm = 0.05
    var boundaryPoint = SIMD2<Double>(40, 128)
    /// Front midpoint distance from the boundary (nm); nil = no transformation at all;
    /// a huge negative value = all layered, huge positive = all rock salt.
    var frontNm: Double? = 4
    var widthNm = 3.0
    var mixing = Mixing.swap
    var beyond = Beyond.vacuum
    var thicknessRamp = 2.0
    /// Counts per unit intensity for Poisson noise; nil = noiseless.
    var dose: Double? = nil
    var seed: UInt64 = 1

    static let zTM = 271.0, zLi = 6.5

    var layerSpacingPx: Double { layerSpacingNm / pixelNm }
    var along: SIMD2<Double> { let a = angleDeg * .pi / 180; return SIMD2(cos(a), sin(a)) }
    var across: SIMD2<Double> { SIMD2(-along.y, along.x) }
    /// The layer reflection in cycles/px.
    var gLayer: SIMD2<Double> { across / layerSpacingPx }
    var frontPx: Double? { frontNm.map { $0 / pixelNm } }
    var widthPx: Double { widthNm / pixelNm }
    /// The boundary line, longer than the image (only its part over the crystal matters).
    var boundary: LineSegment {
        let a = boundaryPoint - 400 * across, b = boundaryPoint + 400 * across
        return LineSegment(x0: a.x, y0: a.y, x1: b.x, y1: b.y)
    }

    func distanceAlongLayers(_ x: Double, _ y: Double) -> Double { ((SIMD2(x, y) - boundaryPoint) * along).sum() }

    /// Progress of the transformation at distance s (1 rock salt, 0 layered).
    func progress(_ s: Double) -> Double {
        guard let f = frontPx else { return 0 }
        let w = widthPx / (2 * atanh(0.8))
        return 0.5 * (1 - tanh((s - f) / w))
    }

    /// Fraction of the crystal (pixel centres with s ≥ 0) past the front midpoint.
    var trueRocksaltFraction: Double {
        guard let f = frontPx else { return 0 }
        var crystal = 0, rs = 0
        for y in 0..<size { for x in 0..<size {
            let s = distanceAlongLayers(Double(x), Double(y))
            if s >= 0 { crystal += 1; if s < f { rs += 1 } }
        } }
        return Double(rs) / Double(crystal)
    }

    func render() -> Image {
        var pixels = [Double](repeating: 0, count: size * size)
        let d = layerSpacingPx, a = columnSpacingNm / pixelNm, sigma = columnSigmaNm / pixelNm
        let radius = Int((4 * sigma).rounded(.up))
        func thickness(_ x: Double) -> Double { 1 + (thicknessRamp - 1) * max(0, min(1, x / Double(size - 1))) }
        func add(_ c: SIMD2<Double>, _ height: Double, _ sig: Double, _ rad: Int) {
            let cx = Int(c.x.rounded()), cy = Int(c.y.rounded())
            let y0 = max(0, cy - rad), y1 = min(size - 1, cy + rad), x0 = max(0, cx - rad), x1 = min(size - 1, cx + rad)
            guard y0 <= y1, x0 <= x1 else { return }
            for y in y0...y1 {
                for x in x0...x1 {
                    let dx = Double(x) - c.x, dy = Double(y) - c.y
                    pixels[y * size + x] += height * exp(-(dx * dx + dy * dy) / (2 * sig * sig))
                }
            }
        }
        // Lattice index ranges covering the image.
        let corners = [SIMD2(0.0, 0), SIMD2(Double(size), 0), SIMD2(0, Double(size)), SIMD2(Double(size), Double(size))]
        let ks = corners.map { ($0 * across).sum() / d }, us = corners.map { ($0 * along).sum() / a }
        let kRange = Int(ks.min()!.rounded(.down)) - 2...Int(ks.max()!.rounded(.up)) + 2
        let iRange = Int(us.min()!.rounded(.down)) - 4...Int(us.max()!.rounded(.up)) + 4
        for k in kRange {
            for i in iRange {
                for li in [false, true] {
                    let z = Double(k) + (li ? 0.5 : 0)
                    let shift = Double(k) / 3 + (li ? 0.5 : 0)
                    let c = z * d * across + (Double(i) + shift) * a * along
                    guard c.x > -5, c.y > -5, c.x < Double(size) + 5, c.y < Double(size) + 5 else { continue }
                    let s = distanceAlongLayers(c.x, c.y)
                    guard s >= 0 else { continue }
                    let p = progress(s)
                    let height: Double
                    switch mixing {
                    case .swap:
                        let m = p / 2
                        height = li ? m * Self.zTM + (1 - m) * Self.zLi : (1 - m) * Self.zTM + m * Self.zLi
                    case .fill:
                        height = li ? Self.zLi + p * Self.zTM : Self.zTM
                    }
                    add(c, height * thickness(c.x), sigma, radius)
                }
            }
        }
        if case .grain(let rotation) = beyond {
            let angle = (angleDeg + rotation) * .pi / 180
            let u = SIMD2(cos(angle), sin(angle)), n = SIMD2(-u.y, u.x)
            let ks2 = corners.map { ($0 * n).sum() / d }, us2 = corners.map { ($0 * u).sum() / a }
            for k in (Int(ks2.min()!.rounded(.down)) - 2)...(Int(ks2.max()!.rounded(.up)) + 2) {
                for i in (Int(us2.min()!.rounded(.down)) - 4)...(Int(us2.max()!.rounded(.up)) + 4) {
                    for li in [false, true] {
                        let z = Double(k) + (li ? 0.5 : 0), shift = Double(k) / 3 + (li ? 0.5 : 0)
                        let c = z * d * n + (Double(i) + shift) * a * u + SIMD2(1.7, 2.9)
                        guard c.x > -5, c.y > -5, c.x < Double(size) + 5, c.y < Double(size) + 5,
                              distanceAlongLayers(c.x, c.y) < -0.5 * a else { continue }
                        add(c, (li ? Self.zLi : Self.zTM) * thickness(c.x), sigma, radius)
                    }
                }
            }
        }
        var rng = SplitMix64(seed: seed)
        if beyond == .amorphous {
            // Random atoms at the crystal's mean density and weight, no order.
            let count = Int(Double(size * size) / (a * d) * 2)
            for _ in 0..<count {
                let c = SIMD2(rng.uniform() * Double(size), rng.uniform() * Double(size))
                guard distanceAlongLayers(c.x, c.y) < -0.5 * a else { continue }
                add(c, 0.5 * (Self.zTM + Self.zLi) * thickness(c.x), sigma, radius)
            }
        }
        if let dose {
            for i in pixels.indices { pixels[i] = Double(rng.poisson(pixels[i] * dose)) }
        }
        return Image(width: size, height: size, pixels: pixels.map { Float($0) })
    }
}

