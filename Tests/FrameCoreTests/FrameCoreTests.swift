import Testing
import FrameCore
import Foundation

@Suite struct FrameCoreTests {
    @Test func sha256KnownVector() {
        let h = SHA256Hasher()
        h.update(Array("abc".utf8))
        #expect(h.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func manifestFingerprintOf1234() {
        // The corpus manifest's hash of the 2×2 image [[1,2],[3,4]] as little-endian float64.
        let h = SHA256Hasher()
        h.updateFloat64LE([1, 2, 3, 4])
        #expect(h.finalizeHex() == "6bab56d2f81d4b5a2dbf102bf6a6ff7d5211a475fc5f97813f977e8ba714b07d")
    }

    @Test func fftRoundTripAndPeak() {
        let w = 12, h = 10
        let ws = FFTWorkspace(width: w, height: h)
        // A cosine with 3 cycles along x puts its energy at kx = 3, ky = 0.
        let img = Image(width: w, height: h) { x, _ in Float(cos(2 * Double.pi * 3 * Double(x) / Double(w))) }
        ws.load(img)
        ws.forward()
        let peak = ws.spectrum.indices.max { simd_len(ws.spectrum[$0]) < simd_len(ws.spectrum[$1]) }!
        #expect(peak == 3)
        ws.inverse()
        let back = ws.realImage(scale: 1 / Float(w * h))
        for (a, b) in zip(back.pixels, img.pixels) { #expect(abs(a - b) < 1e-5) }
    }

    @Test func bandLimitedForwardMatchesTheFullTransformInItsColumns() {
        let w = 48, h = 30, columns = 7
        let img = Image(width: w, height: h) { x, y in Float(sin(Double(x * x + 3 * y)) + 0.1 * Double(y)) }
        let full = FFTWorkspace(width: w, height: h), band = FFTWorkspace(width: w, height: h)
        full.load(img); full.forward()
        band.load(img); band.forward(columns: columns)
        let hw = w / 2 + 1
        var worst: Float = 0, largest: Float = 0
        for r in 0..<h {
            for c in 0..<columns {
                worst = max(worst, simd_len(full.spectrum[r * hw + c] - band.columnSpectrum[c * h + r]))
                largest = max(largest, simd_len(full.spectrum[r * hw + c]))
            }
        }
        #expect(largest > 10)
        #expect(worst < 1e-5 * largest)
    }

    @Test func rowWiseInverseMatchesTheFullInverse() {
        let w = 48, h = 30
        let img = Image(width: w, height: h) { x, y in Float(sin(Double(x * x + 3 * y)) + 0.1 * Double(y)) }
        let full = FFTWorkspace(width: w, height: h), rows = FFTWorkspace(width: w, height: h)
        full.load(img); full.forward()
        let hw = w / 2 + 1, input = rows.columnInput
        for r in 0..<h { for c in 0..<hw { input[c * h + r] = full.spectrum[r * hw + c] } }
        full.inverse()
        rows.inverseColumns()
        for y in [0, 7, 29] { rows.inverseRow(y) }
        var worst: Float = 0
        for y in [0, 7, 29] {
            for x in 0..<w { worst = max(worst, abs(rows.real[y * w + x] - full.real[y * w + x])) }
        }
        // The round trip gives w·h·image, both ways to rounding.
        #expect(abs(full.real[7 * w + 5] / Float(w * h) - img[5, 7]) < 1e-4)
        #expect(worst <= 1e-5 * Float(w * h))
    }

    @Test func complexFFTRoundTrip() {
        let ws = ComplexFFTWorkspace(width: 8, height: 6)
        for i in 0..<48 { ws.data[i] = Complex(Float(i), Float(-i)) }
        ws.forward(); ws.backward()
        for i in 0..<48 { #expect(abs(ws.data[i].x / 48 - Float(i)) < 1e-4) }
    }

    @Test func bilinearInterpolates() {
        let img = Image(width: 3, height: 3) { x, y in Float(x + 10 * y) }
        #expect(img.bilinear(0.5, 1.5)! == 15.5)
        #expect(img.bilinear(2, 2)! == 22)
        #expect(img.bilinear(-0.1, 0) == nil)
    }
}

private func simd_len(_ c: Complex) -> Float { (c.x * c.x + c.y * c.y).squareRoot() }
