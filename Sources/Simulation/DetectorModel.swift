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

    public init(electronsPerUnitIntensity: Double, gainADUPerElectron: Double, offsetADU: Double, readNoiseADU: Double) {
        self.electronsPerUnitIntensity = electronsPerUnitIntensity
        self.gainADUPerElectron = gainADUPerElectron
        self.offsetADU = offsetADU
        self.readNoiseADU = readNoiseADU
    }

    init(options o: SimulationOptions) {
        let pixelAreaA2 = (o.pixelSizeNm * 10) * (o.pixelSizeNm * 10)
        self.init(electronsPerUnitIntensity: o.dose * pixelAreaA2 * o.detectorFraction,
                  gainADUPerElectron: o.gainADUPerElectron, offsetADU: o.offsetADU, readNoiseADU: o.readNoiseADU)
    }

    /// Noise-free detector value for model intensity `i`.
    public func expectedValue(intensity i: Double) -> Double {
        offsetADU + gainADUPerElectron * electronsPerUnitIntensity * max(0, i)
    }

    /// One noisy detector value for model intensity `i`.
    public func sample(intensity i: Double, rng: inout SeededRandom) -> Float {
        let n = rng.poisson(electronsPerUnitIntensity * max(0, i))
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
        return out
    }
}
