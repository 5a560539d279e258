import TestSupport
import Foundation
import FrameCore
import Registration
import Testing

@Suite("Correlation band")
struct CorrelationBandTests {
    let specimen = SyntheticSpecimen()

    /// Stripes fixed in the scan, varying from line to line (mains pick-up).
    func withStripes(_ image: Image, amplitude: Float, cyclesPerLine: Double) -> Image {
        var out = image
        for y in 0..<image.height {
            let s = amplitude * Float(sin(2 * Double.pi * cyclesPerLine * Double(y) + 0.3))
            for x in 0..<image.width { out[x, y] += s }
        }
        return out
    }

    @Test("a clean lattice: band from its reflections, nothing notched")
    func cleanLattice() {
        var rng = SplitMix64(seed: 2)
        let frame = specimen.frame(width: 256, height: 256, shift: .zero, dose: 6, rng: &rng)
        let band = CorrelationBand.choose(for: frame)
        #expect(band.source == .lattice)
        #expect(band.notches.isEmpty)
        #expect(band.basis.count == 2)
        let g = try! #require(band.highestReflection)
        #expect(band.high >= 1.5 * g && band.high <= 0.5)
    }

    @Test("scan-interference stripes are notched, lattice reflections are not")
    func stripesNotched() {
        var rng = SplitMix64(seed: 2)
        let frame = withStripes(specimen.frame(width: 256, height: 256, shift: .zero, dose: 6, rng: &rng),
                                amplitude: 4, cyclesPerLine: 0.137)
        let band = CorrelationBand.choose(for: frame)
        #expect(band.notches.count == 1)
        let q = band.notches.first ?? .zero
        #expect(abs(q.x) < 1.0 / 256 && abs(abs(q.y) - 0.137) < 1.5 / 256, "notch at \(q)")
    }

    @Test("with stationary stripes, notched registration keeps its precision; unnotched it follows the stripes")
    func stripesDoNotPullShifts() throws {
        var rng = SplitMix64(seed: 19)
        let truth = (0..<8).map { k in SIMD2(1.7 * Double(k) + rng.gaussian() * 0.3, -0.9 * Double(k) + rng.gaussian() * 0.3) }
        let frames = truth.map {
            withStripes(specimen.frame(width: 256, height: 256, shift: $0, dose: 6, rng: &rng), amplitude: 4, cyclesPerLine: 0.137)
        }
        let band = CorrelationBand.choose(for: frames[0])
        var notched = RigidOptions()
        notched.bandPassHigh = band.high
        notched.notches = band.notches
        notched.notchWidth = band.notchWidth
        var plain = notched
        plain.notches = []
        func rms(_ options: RigidOptions) throws -> Double {
            let r = try RigidRegistration.align(ImageArray(frames), options: options)
            return gaugeFreeRMS(measured: r.map { SIMD2($0.dx, $0.dy) }, truth: truth).rms
        }
        let (with, without) = (try rms(notched), try rms(plain))
        #expect(with < 0.05, "notched: \(with) px")
        #expect(without > 2 * with, "unnotched \(without) px against notched \(with) px")
    }
}
