import Foundation
import FrameCore

/// RGBA pixels for `maps/step_<k>_phase.png`: the step's average image in grey (a given
/// display range, the same for every step of a run, else the image's own 0.5–99.5 % intensity
/// stretch, so hot pixels do not flatten the contrast), layered crystal tinted blue, rock salt
/// tinted orange, the boundary drawn in cyan and the front line in yellow. Pixels without a
/// value (NaN: no frame covers them) are a flat neutral grey, untinted. The pipeline writes
/// the PNG (`PNGWriter.writeRGBA`).
public enum PhaseMapRendering {
    public static let layeredTint: SIMD3<Double> = [40, 120, 255]
    public static let rocksaltTint: SIMD3<Double> = [255, 110, 30]
    public static let boundaryColour: SIMD3<Double> = [0, 230, 230]
    public static let frontColour: SIMD3<Double> = [255, 235, 0]
    public static let uncoveredColour: SIMD3<Double> = [200, 200, 196]

    /// `width·height·4` bytes, row-major RGBA. A phase map of another size is not drawn.
    public static func rgba(average: Image, phase: PhaseMap, front: FrontMeasurement?,
                            displayRange: (lo: Double, hi: Double)? = nil) -> [UInt8] {
        let w = average.width, h = average.height
        var out = [UInt8](repeating: 255, count: w * h * 4)
        guard w > 0, h > 0 else { return out }
        let finite = average.pixels.lazy.filter(\.isFinite).map(Double.init)
        let sample = Array(finite.enumerated().filter { $0.offset % max(1, w * h / 65_536) == 0 }.map(\.element))
        let lo = displayRange?.lo ?? LeastSquares.quantile(sample, 0.005) ?? 0
        let hi = displayRange?.hi ?? LeastSquares.quantile(sample, 0.995) ?? 1
        let span = hi > lo ? hi - lo : 1
        let phaseFits = phase.width == w && phase.height == h && phase.labels.count == w * h
        for i in 0..<(w * h) {
            let v = Double(average.pixels[i])
            let g = min(1, max(0, (v - lo) / span)) * 255
            var c = v.isFinite ? SIMD3(g, g, g) : uncoveredColour
            if phaseFits && v.isFinite {
                switch phase.labels[i] {
                case PhaseMap.layered: c = 0.7 * c + 0.3 * layeredTint
                case PhaseMap.rocksalt: c = 0.6 * c + 0.4 * rocksaltTint
                default: break
                }
            }
            out[4 * i] = UInt8(c.x.rounded()); out[4 * i + 1] = UInt8(c.y.rounded())
            out[4 * i + 2] = UInt8(c.z.rounded()); out[4 * i + 3] = 255
        }
        if let front {
            if front.boundary.length > 0 { draw(front.boundary, colour: boundaryColour, halfWidth: 1, into: &out, w, h) }
            if let line = front.frontLine { draw(line, colour: frontColour, halfWidth: 1.5, into: &out, w, h) }
        }
        return out
    }

    /// Pixels whose centre lies within `halfWidth` of the segment take `colour`.
    static func draw(_ s: LineSegment, colour: SIMD3<Double>, halfWidth: Double, into out: inout [UInt8], _ w: Int, _ h: Int) {
        guard [s.x0, s.y0, s.x1, s.y1].allSatisfy(\.isFinite) else { return }
        let a = SIMD2(s.x0, s.y0), b = SIMD2(s.x1, s.y1), d = b - a
        let len2 = max((d * d).sum(), 1e-12)
        let x0 = max(0, Int((min(a.x, b.x) - halfWidth).rounded(.down))), x1 = min(w - 1, Int((max(a.x, b.x) + halfWidth).rounded(.up)))
        let y0 = max(0, Int((min(a.y, b.y) - halfWidth).rounded(.down))), y1 = min(h - 1, Int((max(a.y, b.y) + halfWidth).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let p = SIMD2(Double(x), Double(y))
                let t = min(1, max(0, ((p - a) * d).sum() / len2))
                let q = a + t * d - p
                guard (q * q).sum() <= halfWidth * halfWidth else { continue }
                let i = 4 * (y * w + x)
                out[i] = UInt8(colour.x); out[i + 1] = UInt8(colour.y); out[i + 2] = UInt8(colour.z); out[i + 3] = 255
            }
        }
    }
}
