import Foundation
import FrameCore
import Simulation

/// Options for physics tests: small frames, 0.025 nm pixels (σ_probe = 1.8 px).
func physicsOptions(_ preset: SimulationPreset = .boundaryFront, size: Int = 192, pixel: Double = 0.025) -> SimulationOptions {
    var o = SimulationOptions(preset: preset, size: size)
    o.pixelSizeNm = pixel
    o.framesPerStep = 4
    return o
}

/// Model intensity (TM column peak = 1) from an expected-value render.
func modelIntensity(_ img: Image, _ sim: HeatingRunSimulator) -> Image {
    let d = sim.detector
    let k = Float(1 / (d.gainADUPerElectron * d.electronsPerUnitIntensity))
    var out = img
    for i in 0..<out.pixels.count { out.pixels[i] = (img.pixels[i] - Float(d.offsetADU)) * k }
    return out
}

/// Signed distance (nm) of a pixel from the boundary along the propagation direction.
func boundaryDistanceNm(_ p: SIMD2<Double>, _ truth: RunTruth) -> Double {
    let b = SIMD2(truth.boundary.x0, truth.boundary.y0)
    let u = SIMD2(truth.propagationDirection[0], truth.propagationDirection[1])
    return ((p - b) * u).sum() * truth.pixelSizeNm
}

/// Sub-pixel peak by 3-point parabolas on the logarithm (exact for a Gaussian).
func gaussianPeak(_ img: Image, near p: SIMD2<Double>, search: Int = 2) -> SIMD2<Double>? {
    var bx = Int(p.x.rounded()), by = Int(p.y.rounded())
    var best = -Float.infinity
    let cx = bx, cy = by
    for y in (cy - search)...(cy + search) { for x in (cx - search)...(cx + search) {
        guard x > 0, y > 0, x < img.width - 1, y < img.height - 1 else { continue }
        if img[x, y] > best { best = img[x, y]; bx = x; by = y }
    } }
    guard bx > 0, by > 0, bx < img.width - 1, by < img.height - 1 else { return nil }
    func vertex(_ a: Float, _ b: Float, _ c: Float) -> Double? {
        guard a > 0, b > 0, c > 0 else { return nil }
        let la = log(Double(a)), lb = log(Double(b)), lc = log(Double(c))
        let den = la - 2 * lb + lc
        guard den < 0 else { return nil }
        return 0.5 * (la - lc) / den
    }
    guard let dx = vertex(img[bx - 1, by], img[bx, by], img[bx + 1, by]),
          let dy = vertex(img[bx, by - 1], img[bx, by], img[bx, by + 1]) else { return nil }
    return SIMD2(Double(bx) + dx, Double(by) + dy)
}

/// Integer + parabolic peak of the cross-correlation of `b` against `a` (Hann-windowed),
/// i.e. the displacement of b's content relative to a's.
func crossCorrelationShift(_ a: Image, _ b: Image) -> SIMD2<Double> {
    let w = a.width, h = a.height
    let ws = FFTWorkspace(width: w, height: h)
    func windowed(_ img: Image) -> Image {
        let m = img.mean
        return Image(width: w, height: h) { x, y in
            let wx = 0.5 - 0.5 * cos(2 * Double.pi * Double(x) / Double(w - 1))
            let wy = 0.5 - 0.5 * cos(2 * Double.pi * Double(y) / Double(h - 1))
            return Float((Double(img[x, y]) - m) * wx * wy)
        }
    }
    ws.load(windowed(a)); ws.forward()
    let fa = Array(ws.spectrum)
    ws.load(windowed(b)); ws.forward()
    for k in 0..<fa.count {
        let p = fa[k], q = ws.spectrum[k]
        // conj(A)·B: peak at the displacement of b relative to a.
        ws.spectrum[k] = Complex(p.x * q.x + p.y * q.y, p.x * q.y - p.y * q.x)
    }
    ws.inverse()
    let cc = ws.realImage()
    var bi = 0
    for i in 0..<cc.pixels.count where cc.pixels[i] > cc.pixels[bi] { bi = i }
    let px = bi % w, py = bi / w
    func at(_ x: Int, _ y: Int) -> Double { Double(cc[(x + w) % w, (y + h) % h]) }
    func vertex(_ l: Double, _ c: Double, _ r: Double) -> Double { let d = l - 2 * c + r; return d < 0 ? 0.5 * (l - r) / d : 0 }
    var sx = Double(px) + vertex(at(px - 1, py), at(px, py), at(px + 1, py))
    var sy = Double(py) + vertex(at(px, py - 1), at(px, py), at(px, py + 1))
    if sx > Double(w) / 2 { sx -= Double(w) }
    if sy > Double(h) / 2 { sy -= Double(h) }
    return SIMD2(sx, sy)
}
