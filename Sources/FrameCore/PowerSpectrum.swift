import Foundation

/// |FFT|² of an image on FFTW's half plane (r2c layout), with frequencies in cycles/px, and
/// the searches lattice finders run on it: the strongest bin of a band, a band's median
/// power (its noise floor) and the band's local maxima.
public struct PowerSpectrum: Sendable {
    public let width: Int, height: Int, spectrumWidth: Int
    /// Row-major, `spectrumWidth = width / 2 + 1` bins per row.
    public let power: [Double]

    /// The spectrum of already windowed, mean-free values (row-major, `width × height`).
    public init(windowed values: [Double], width: Int, height: Int) {
        self.width = width; self.height = height
        let ws = FFTWorkspace(width: width, height: height)
        for k in 0..<values.count { ws.real[k] = Float(values[k]) }
        ws.forward()
        spectrumWidth = ws.spectrumWidth
        power = ws.spectrum.map { c in Double(c.x) * Double(c.x) + Double(c.y) * Double(c.y) }
    }

    /// The spectrum of `image` made mean-free and Hann-windowed in x and y (so the frame
    /// edges add no streaks through the origin).
    public init(hannWindowed image: Image) {
        self.init(windowed: Self.hannWindowed(image), width: image.width, height: image.height)
    }

    /// (I − mean) · Hann(x) · Hann(y), row-major, in double precision.
    public static func hannWindowed(_ image: Image) -> [Double] {
        let mean = image.mean
        let wx = hann(image.width), wy = hann(image.height)
        var v = [Double](repeating: 0, count: image.count)
        for y in 0..<image.height {
            for x in 0..<image.width {
                v[y * image.width + x] = (Double(image.pixels[y * image.width + x]) - mean) * wx[x] * wy[y]
            }
        }
        return v
    }

    public static func hann(_ n: Int) -> [Double] {
        guard n > 1 else { return [Double](repeating: 1, count: n) }
        return (0..<n).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n - 1)) }
    }

    /// The frequency (cycles/px) of bin (kx, ky).
    @inline(__always) public func frequency(_ kx: Int, _ ky: Int) -> SIMD2<Double> {
        let fy = ky <= height / 2 ? ky : ky - height
        return SIMD2(Double(kx) / Double(width), Double(fy) / Double(height))
    }

    public func strongest(where band: (SIMD2<Double>) -> Bool) -> (f: SIMD2<Double>, power: Double)? {
        var best: (SIMD2<Double>, Double)? = nil
        for ky in 0..<height {
            for kx in 0..<spectrumWidth {
                let f = frequency(kx, ky)
                guard band(f) else { continue }
                let p = power[ky * spectrumWidth + kx]
                if best == nil || p > best!.1 { best = (f, p) }
            }
        }
        return best.map { (f: $0.0, power: $0.1) }
    }

    public func median(where band: (SIMD2<Double>) -> Bool) -> Double {
        var values = [Double]()
        for ky in 0..<height {
            for kx in 0..<spectrumWidth where band(frequency(kx, ky)) {
                values.append(power[ky * spectrumWidth + kx])
            }
        }
        guard !values.isEmpty else { return 0 }
        values.sort()
        return values[values.count / 2]
    }

    /// Bins in the band that exceed their 8 neighbours (wrapping in y; kx = 0 compares with itself).
    public func localMaxima(where band: (SIMD2<Double>) -> Bool) -> [(f: SIMD2<Double>, power: Double)] {
        var out = [(f: SIMD2<Double>, power: Double)]()
        for ky in 0..<height {
            for kx in 1..<(spectrumWidth - 1) {
                let f = frequency(kx, ky)
                guard band(f) else { continue }
                let p = power[ky * spectrumWidth + kx]
                var isMax = true
                for dy in -1...1 {
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let yy = (ky + dy + height) % height
                        if power[yy * spectrumWidth + kx + dx] > p { isMax = false }
                    }
                }
                if isMax { out.append((f, p)) }
            }
        }
        return out
    }
}
