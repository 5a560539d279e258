import TestSupport
import Foundation
import FrameCore
import Registration
import Testing

/// Spectra kept in a temporary file (`spectraMemoryMB = 0`) give the same shifts as in memory.
@Suite("Registration spectra on disk")
struct SpectrumSpillTests {
    @Test func spilledSpectraGiveIdenticalShifts() throws {
        var rng = SplitMix64(seed: 41)
        let specimen = SyntheticSpecimen()
        let truth = (0..<8).map { k in SIMD2(1.7 * Double(k) + rng.uniform(), -1.1 * Double(k) + rng.uniform()) }
        let frames = ImageArray(truth.map { specimen.frame(width: 160, height: 160, shift: $0, dose: 4, rng: &rng) })
        let inMemory = try RigidRegistration.align(frames, options: RigidOptions())
        var options = RigidOptions()
        options.spectraMemoryMB = 0
        let onDisk = try RigidRegistration.align(frames, options: options)
        #expect(inMemory == onDisk)
        let (rms, _) = gaugeFreeRMS(measured: onDisk.map { SIMD2($0.dx, $0.dy) }, truth: truth)
        #expect(rms < 0.1, "RMS \(rms) px")
    }
}
