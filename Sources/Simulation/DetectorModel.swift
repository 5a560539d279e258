import Foundation
import FrameCore

/// The HAADF detector chain: electrons → counts.
///
/// The expected number of electrons reaching the detector at a pixel is
/// `dose (e⁻/Å²) × pixel area (Å²) × detectorFraction × I`, with I the model intensity in
/// units of a TM column peak at unit thickness. The recorded value is
/// `offset + gain·N + ε`, N ~ Poisson (shot noise), ε ~ Normal(0, readNoise²), rounded and
/// clamped to uint16 — so mean = offset + gain·λ and variance = gain²·λ + readNoise² (+1/12
/// from rounding). At the low doses of in-situ work (Pokle et al. 2021) a single frame holds
/// only a few counts per column.
public struct DetectorModel: Sendable, Equatable {
    /// Expected detected electrons for model intensity 1.
    public let electronsPerUnitIntensity: Double
    public let gainADUPerElectron: Double
    public let offsetADU: Double
    public let readNoiseADU: Double
    /// When set, the detector sees this level minus the model intensity: dark columns on a
    /// bright background (`SimulationOptions.invertedContrastLevel`).
    public let invertedLevel: Double?
    /// Scan interference added to the recorded signal (`SimulationOptions.interference`).
    public let interference: ScanInterference?

    public init(electronsPerUnitIntensity: Double, gainADUPerElectron: Double, offsetADU: Double, readNoiseADU: Double,
                invertedLevel: Double? = nil, interference: ScanInterference? = nil) {
        self.electronsPerUnitIntensity = electronsPerUnitIntensity
        self.gainADUPerElectron = gainADUPerElectron
        self.offsetADU = offsetADU
        self.readNoiseADU = readNoiseADU
        self.invertedLevel = invertedLevel
        self.interference = interference
    }

    init(options o: SimulationOptions) {
        let pixelAreaA2 = (o.pixelSizeNm * 10) * (o.pixelSizeNm * 10)
        self.init(electronsPerUnitIntensity: o.dose * o.doseScale * pixelAreaA2 * o.detectorFraction,
                  gainADUPerElectron: o.gainADUPerElectron, offsetADU: o.offsetADU, readNoiseADU: o.readNoiseADU,
                  invertedLevel: o.invertedContrastLevel, interference: o.interference)
    }

    /// Noise-free detector value for model intensity `i`.
    public func expectedValue(intensity i: Double) -> Double {
        offsetADU + gainADUPerElectron * electronsPerUnitIntensity * max(0, seen(i))
    }

    /// The intensity reaching the detector: the model's, or the inverted level minus it.
    @inline(__always) func seen(_ i: Double) -> Double { invertedLevel.map { $0 - i } ?? i }

    /// One noisy detector value for model intensity `i`.
    public func sample(intensity i: Double, rng: inout SeededRandom) -> Float {
        let n = rng.poisson(electronsPerUnitIntensity * max(0, seen(i)))
        var v = offsetADU + gainADUPerElectron * Double(n)
        if readNoiseADU > 0 { v += readNoiseADU * rng.gaussian() }
        return Float(min(65535, max(0, v.rounded())))
    }

    /// A noisy frame from a map of model intensities. `rng` gives the frame's base seed; each
    /// pixel then draws from its own stream, so a last-bit difference in one expected value
    /// (another libm, another optimiser) can change that pixel only, never the rest of the frame.
    public func record(_ intensity: Image, rng: inout SeededRandom) -> Image {
        let base = rng.next()
        var out = intensity
        for k in 0..<out.pixels.count {
            var pixelRNG = SeededRandom(seed: SeededRandom.mix(base &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15))
            out.pixels[k] = sample(intensity: Double(intensity.pixels[k]), rng: &pixelRNG)
        }
        if let interference {
            for y in 0..<out.height { for x in 0..<out.width {
                let v = Double(out[x, y]) + interference.value(x: x, y: y)
                out[x, y] = Float(min(65535, max(0, v.rounded())))
            } }
        }
        return out
    }
}

/// Electronic pick-up on the detector signal (mains hum, ground loops): a sinusoid in
/// acquisition time, so a stripe pattern fixed in the scan whatever the specimen does.
public struct ScanInterference: Sendable, Equatable {
    /// Amplitude, detector counts (ADU).
    public var amplitudeADU: Double
    /// Cycles per scan line (the pattern's frequency across the lines).
    public var cyclesPerLine: Double
    /// Cycles per pixel along a line (0 for stripes parallel to the lines).
    public var cyclesPerPixel: Double

    public init(amplitudeADU: Double, cyclesPerLine: Double, cyclesPerPixel: Double = 0.0005) {
        self.amplitudeADU = amplitudeADU
        self.cyclesPerLine = cyclesPerLine
        self.cyclesPerPixel = cyclesPerPixel
    }

    func value(x: Int, y: Int) -> Double {
        amplitudeADU * sin(2 * Double.pi * (cyclesPerLine * Double(y) + cyclesPerPixel * Double(x)) + 0.3)
    }
}
