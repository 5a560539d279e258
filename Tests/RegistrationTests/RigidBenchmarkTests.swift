import TestSupport
import Foundation
import FrameCore
import Registration
import Testing

/// `alignRun` on the benchmark's kind of run: 40 low-dose frames of 1024² in two steps,
/// drifting steadily. Its speed is measured by `heatfront-bench rigid` (scripts/bench-rigid.sh).
@Suite("Rigid registration at 1024²")
struct RigidBenchmarkTests {
    @Test("40 frames of 1024² aligned within 0.05 px, none rejected")
    func alignsLargeRun() throws {
        var rng = SplitMix64(seed: 2024)
        var specimen = SyntheticSpecimen()
        specimen.boundaryOffset = 500
        specimen.blobs += [(SIMD2(600, 300), 40, 0.6), (SIMD2(300, 800), 30, 0.6), (SIMD2(850, 700), 50, 0.5)]
        let n = 40
        let truth = (0..<n).map { k in SIMD2(0.8 * Double(k) + rng.gaussian() * 0.5, -0.5 * Double(k) + rng.gaussian() * 0.5) }
        let frames = truth.map { specimen.frame(width: 1024, height: 1024, shift: $0, dose: 2, rng: &rng) }
        let groups = [Array(0..<20), Array(20..<40)]
        let run = try RigidRegistration.alignRun(ImageArray(frames), groups: groups, options: RigidOptions())
        let ref = truth[0..<20].reduce(SIMD2<Double>.zero, +) / 20
        var sum2 = 0.0
        for k in 0..<n {
            let e = SIMD2(run.shifts[k].dx, run.shifts[k].dy) - (truth[k] - ref)
            sum2 += (e * e).sum()
        }
        let rms = (sum2 / Double(n)).squareRoot()
        #expect(rms < 0.05, "RMS error \(rms) px")
        #expect(run.shifts.allSatisfy { $0.rejection == nil })
    }
}
