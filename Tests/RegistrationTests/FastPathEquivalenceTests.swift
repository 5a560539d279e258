import TestSupport
import Testing
import Foundation
import FrameCore
import Registration

/// The fast paths of the rigid chain give the same numbers as the plain ones they replace.
@Suite("Fast paths: the plain paths' numbers")
struct FastPathEquivalenceTests {
    /// Frames of the synthetic specimen at known sub-pixel drifts (low dose).
    static func frames(_ count: Int, size: Int = 128, seed: UInt64 = 7) -> (ImageArray, [SIMD2<Double>]) {
        var rng = SplitMix64(seed: seed)
        let specimen = SyntheticSpecimen()
        var truth: [SIMD2<Double>] = []
        for k in 0..<count {
            let t = Double(k)
            let x: Double = 0.37 * t - 1.1
            let y: Double = 0.6 - 0.23 * t
            truth.append(SIMD2(x, y))
        }
        return (ImageArray(truth.map { specimen.frame(width: size, height: size, shift: $0, dose: 20, rng: &rng) }), truth)
    }

    @Test("StackAverage equals the sum of Resampling.shifted frames over their valid masks, bit for bit",
          arguments: [Interpolation.bicubic, .bilinear])
    func averageEqualsShiftedSum(interpolation: Interpolation) throws {
        let (frames, _) = Self.frames(6, size: 100)
        // Fractional, integer and large shifts; one rejected frame.
        let shifts = [FrameShift(dx: 0.37, dy: -1.62, score: 1), FrameShift(dx: 3, dy: -2, score: 1),
                      FrameShift(dx: -7.91, dy: 0.5, score: 1), FrameShift(dx: 0, dy: 0, score: 1),
                      FrameShift(dx: 1.2, dy: 1.2, score: 0, rejection: "noise"), FrameShift(dx: 40.25, dy: -33.75, score: 1)]
        let avg = try StackAverage.average(frames, indices: Array(0..<6), shifts: shifts, interpolation: interpolation)
        // StackAverage sums the used frames in two interleaved chunks (0, 2, 4… and 1, 3…),
        // then adds the chunk sums: the same order here.
        let used = shifts.indices.filter { shifts[$0].isUsed }
        var sum = [Float](repeating: 0, count: 100 * 100), weight = sum
        for c in 0..<2 {
            var s = [Float](repeating: 0, count: 100 * 100), wt = s
            for k in stride(from: c, to: used.count, by: 2) {
                let f = shifts[used[k]]
                let (moved, valid) = Resampling.shifted(try frames.image(at: used[k]), by: -f.dx, -f.dy,
                                                        interpolation: interpolation)
                for p in 0..<(100 * 100) where valid.bits[p] { s[p] += moved.pixels[p]; wt[p] += 1 }
            }
            for p in 0..<(100 * 100) { sum[p] += s[p]; weight[p] += wt[p] }
        }
        let expected = (0..<(100 * 100)).map { weight[$0] > 0 ? sum[$0] / weight[$0] : 0 }
        #expect(avg.frameCount == 5)
        #expect(avg.weight.pixels == weight)
        let mismatches = zip(avg.image.pixels, expected).filter { $0 != $1 }.count
        #expect(mismatches == 0, "\(mismatches) pixels differ")
        #expect(weight.contains(5) && weight.contains(1))
    }

    @Test("alignRunShifts gives alignRun's shifts, and both recover the drift")
    func shiftsWithoutAverages() throws {
        let (frames, truth) = Self.frames(8)
        var options = RigidOptions()
        options.maxShiftPx = 20
        let groups = [Array(0..<4), Array(4..<8)]
        let full = try RigidRegistration.alignRun(frames, groups: groups, options: options)
        let shifts = try RigidRegistration.alignRunShifts(frames, groups: groups, options: options)
        #expect(shifts == full.shifts)
        // Relative to frame 0 (the gauge is the first group's average).
        var worst = 0.0
        for k in 1..<8 {
            let d = SIMD2(shifts[k].dx - shifts[0].dx, shifts[k].dy - shifts[0].dy) - (truth[k] - truth[0])
            worst = max(worst, (d * d).sum().squareRoot())
        }
        #expect(worst < 0.1)
        #expect(full.groupAverages.count == 2)
    }
}
