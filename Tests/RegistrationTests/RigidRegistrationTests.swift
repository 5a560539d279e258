import TestSupport
import Foundation
import FrameCore
import Registration
import Testing

@Suite("Rigid registration")
struct RigidRegistrationTests {
    let specimen = SyntheticSpecimen()

    func shifts(_ result: [FrameShift]) -> [SIMD2<Double>] { result.map { SIMD2($0.dx, $0.dy) } }

    @Test("Sub-pixel shifts recovered to ≤ 0.05 px RMS at moderate dose")
    func subPixelAccuracy() throws {
        var rng = SplitMix64(seed: 11)
        let truth = (0..<10).map { _ in SIMD2(rng.uniform() * 6 - 3, rng.uniform() * 6 - 3) }
        let dose = 4.0   // ≈ 49 counts per column
        let frames = truth.map { specimen.frame(width: 192, height: 192, shift: $0, dose: dose, rng: &rng) }
        let result = try RigidRegistration.align(ImageArray(frames), options: RigidOptions())
        #expect(result.allSatisfy { $0.rejection == nil })
        let (rms, worst) = gaugeFreeRMS(measured: shifts(result), truth: truth)
        #expect(rms <= 0.05, "max \(worst) px, counts/column \(specimen.countsPerColumn(dose: dose))")
        // Reference-free gauge: the group average is the reference, so shifts sum to ~0.
        let mean = shifts(result).reduce(SIMD2<Double>.zero, +) / Double(result.count)
        #expect(abs(mean.x) < 1e-9 && abs(mean.y) < 1e-9)
        #expect(result.allSatisfy { $0.score > 0.2 && $0.score <= 1 })
    }

    @Test("Sign convention: content moved right/down gives positive dx/dy")
    func signConvention() throws {
        var rng = SplitMix64(seed: 5)
        let moved = SIMD2<Double>(5.25, 2.5)
        let frames = [specimen.frame(width: 160, height: 160, shift: .zero, dose: 6, rng: &rng),
                      specimen.frame(width: 160, height: 160, shift: moved, dose: 6, rng: &rng)]
        let result = try RigidRegistration.align(ImageArray(frames), options: RigidOptions())
        let d = SIMD2(result[1].dx - result[0].dx, result[1].dy - result[0].dy)
        #expect(abs(d.x - moved.x) < 0.1 && abs(d.y - moved.y) < 0.1, "measured \(d)")
        // Moving frame 1 by (−dx, −dy) relative to frame 0 aligns it.
        let back = Resampling.shifted(frames[1], by: -d.x, -d.y, interpolation: .bicubic).image
        let ref = specimen.clean(width: 160, height: 160, shift: .zero)
        var num = 0.0, den = 0.0
        for y in 40..<120 { for x in 40..<120 {
            let e = Double(back[x, y]) / 6 - Double(ref[x, y]); num += e * e; den += Double(ref[x, y] * ref[x, y])
        } }
        #expect(num / den < 0.2)
    }

    @Test("Large drift: a lattice period plus tens of px, and ~100 px over a stack, without unit-cell aliasing")
    func largeDrift() throws {
        var rng = SplitMix64(seed: 23)
        // Pair: one lattice vector (a1 ≈ 9 px) plus (31.3, −17.6) px.
        let big = specimen.a1 + SIMD2(31.3, -17.6)
        let pair = [specimen.frame(width: 256, height: 256, shift: .zero, dose: 3, rng: &rng),
                    specimen.frame(width: 256, height: 256, shift: big, dose: 3, rng: &rng)]
        let r2 = try RigidRegistration.align(ImageArray(pair), options: RigidOptions())
        let e2 = gaugeFreeRMS(measured: shifts(r2), truth: [.zero, big])
        #expect(e2.maxError < 0.15)

        // Stack drifting ~100 px in x and 40 px in y over 9 frames, with jitter.
        let truth = (0..<9).map { k in
            SIMD2(-50 + 12.5 * Double(k) + rng.gaussian() * 0.7, 20 - 5 * Double(k) + rng.gaussian() * 0.7)
        }
        let stack = truth.map { specimen.frame(width: 256, height: 256, shift: $0, dose: 3, rng: &rng) }
        let result = try RigidRegistration.align(ImageArray(stack), options: RigidOptions())
        #expect(result.allSatisfy { $0.rejection == nil })
        let e = gaugeFreeRMS(measured: shifts(result), truth: truth)
        #expect(e.maxError < 0.15)
    }

    @Test("Perfect lattice without non-periodic content: continuity in time avoids aliasing")
    func latticeOnly() throws {
        var rng = SplitMix64(seed: 31)
        var bare = specimen
        bare.blobs = []
        bare.boundaryOffset = 1e6   // boundary far outside the field of view
        let truth = (0..<8).map { _ in SIMD2(rng.uniform() * 3 - 1.5, rng.uniform() * 3 - 1.5) }
        let frames = truth.map { bare.frame(width: 192, height: 192, shift: $0, dose: 3, rng: &rng) }
        let result = try RigidRegistration.align(ImageArray(frames), options: RigidOptions())
        #expect(result.allSatisfy { $0.rejection == nil })
        let e = gaugeFreeRMS(measured: shifts(result), truth: truth)
        #expect(e.maxError < 0.15)
    }

    @Test("Pure-noise frames are rejected; good frames never")
    func noiseRejected() throws {
        var rng = SplitMix64(seed: 99)
        var frames: [Image] = []
        var truth: [SIMD2<Double>] = []
        for k in 0..<10 {
            if k == 3 || k == 7 {
                // Same mean counts, no specimen: pure shot noise.
                frames.append(Image(width: 160, height: 160, pixels: (0..<(160 * 160)).map { _ in Float(rng.poisson(1.2)) }))
                truth.append(.zero)
            } else {
                let s = SIMD2(rng.uniform() * 4 - 2, rng.uniform() * 4 - 2)
                truth.append(s)
                frames.append(specimen.frame(width: 160, height: 160, shift: s, dose: 2, rng: &rng))
            }
        }
        let result = try RigidRegistration.align(ImageArray(frames), options: RigidOptions())
        for k in 0..<10 {
            if k == 3 || k == 7 {
                #expect(result[k].rejection == "noise", "frame \(k): \(result[k])")
            } else {
                #expect(result[k].rejection == nil, "frame \(k): \(result[k])")
            }
        }
        let good = (0..<10).filter { $0 != 3 && $0 != 7 }
        let e = gaugeFreeRMS(measured: good.map { SIMD2(result[$0].dx, result[$0].dy) }, truth: good.map { truth[$0] })
        #expect(e.rms < 0.1)
    }

    @Test("Frames of another size or with NaN pixels are rejected, the rest aligned")
    func wrongSizeRejected() throws {
        struct Mixed: ImageSequence {
            let images: [Image]
            var count: Int { images.count }
            var width: Int { 128 }
            var height: Int { 128 }
            func image(at index: Int) throws -> Image { images[index] }
        }
        var rng = SplitMix64(seed: 3)
        let frames = [specimen.frame(width: 128, height: 128, shift: .zero, dose: 4, rng: &rng),
                      specimen.frame(width: 96, height: 128, shift: .zero, dose: 4, rng: &rng),
                      specimen.frame(width: 128, height: 128, shift: SIMD2(1.5, -0.5), dose: 4, rng: &rng)]
        let result = try RigidRegistration.align(Mixed(images: frames), options: RigidOptions())
        #expect(result[1].rejection == "size")
        var poisoned = frames
        poisoned[1] = frames[0]
        poisoned[1][5, 5] = .nan
        let r2 = try RigidRegistration.align(Mixed(images: poisoned), options: RigidOptions())
        #expect(r2[1].rejection == "nonfinite" && r2[0].rejection == nil && r2[2].rejection == nil)
        #expect(result[0].rejection == nil && result[2].rejection == nil)
        #expect(abs(result[2].dx - result[0].dx - 1.5) < 0.1 && abs(result[2].dy - result[0].dy + 0.5) < 0.1)
    }

    @Test("Shift beyond maxShiftPx is rejected as overlap")
    func overlapRejected() throws {
        var rng = SplitMix64(seed: 8)
        var options = RigidOptions()
        options.maxShiftPx = 40
        let truth: [SIMD2<Double>] = [.zero, SIMD2(1, 0), SIMD2(2, 1), SIMD2(3, 0), SIMD2(1, 1), SIMD2(2, 2), SIMD2(0, 0), SIMD2(95, 10)]
        let frames = truth.map { specimen.frame(width: 192, height: 192, shift: $0, dose: 3, rng: &rng) }
        let result = try RigidRegistration.align(ImageArray(frames), options: options)
        #expect(result[7].rejection != nil, "\(result[7])")
        #expect(result[0..<7].allSatisfy { $0.rejection == nil })
    }

    @Test("alignRun: two groups and a ramp frame, all relative to one reference")
    func alignRunTwoGroups() throws {
        var rng = SplitMix64(seed: 42)
        // Group 0: frames 0–4, ramp frame 5, group 1: frames 6–10 after a 40 px jump.
        let truth: [SIMD2<Double>] = (0..<11).map { k in
            let jump = k >= 5 ? SIMD2(37.3, -21.6) : .zero
            return SIMD2(rng.uniform() * 4 - 2, rng.uniform() * 4 - 2) + jump
        }
        let frames = truth.map { specimen.frame(width: 192, height: 192, shift: $0, dose: 3, rng: &rng) }
        let groups = [[0, 1, 2, 3, 4], [6, 7, 8, 9, 10]]
        let run = try RigidRegistration.alignRun(ImageArray(frames), groups: groups, options: RigidOptions())
        #expect(run.shifts.count == 11 && run.groupAverages.count == 2)
        #expect(run.shifts.allSatisfy { $0.rejection == nil })
        // Reference = group 0's average: its frames' shifts sum to zero.
        let ref = groups[0].map { truth[$0] }.reduce(SIMD2<Double>.zero, +) / 5
        var worst = 0.0, sum2 = 0.0
        for k in 0..<11 {
            let e = SIMD2(run.shifts[k].dx, run.shifts[k].dy) - (truth[k] - ref)
            worst = max(worst, (e * e).sum().squareRoot())
            sum2 += (e * e).sum()
        }
        let rms = (sum2 / 11).squareRoot()
        #expect(worst < 0.15 && rms < 0.06, "error against the group-0 reference")
        for (g, avg) in run.groupAverages.enumerated() {
            #expect(avg.frameCount == 5, "group \(g)")
            #expect(avg.image.width == 192 && avg.image.height == 192)
        }
        // Both group averages sit on the same reference frame: they correlate well as they
        // are, and much worse displaced by half a lattice vector (≈ (4, 2) px).
        func ncc(_ a: Image, _ b: Image, _ ox: Int, _ oy: Int) -> Double {
            var num = 0.0, na = 0.0, nb = 0.0, ma = 0.0, mb = 0.0
            for y in 60..<130 { for x in 60..<130 { ma += Double(a[x, y]); mb += Double(b[x + ox, y + oy]) } }
            ma /= 4900; mb /= 4900
            for y in 60..<130 { for x in 60..<130 {
                let u = Double(a[x, y]) - ma, v = Double(b[x + ox, y + oy]) - mb
                num += u * v; na += u * u; nb += v * v
            } }
            return num / (na * nb).squareRoot()
        }
        let aligned = ncc(run.groupAverages[0].image, run.groupAverages[1].image, 0, 0)
        let displaced = ncc(run.groupAverages[0].image, run.groupAverages[1].image, 4, 2)
        #expect(aligned > 0.6 && aligned > displaced + 0.3)
    }

    @Test("Partial phase correlation (p = 0.5) still recovers shifts; a single frame is its own reference")
    func partialPhaseCorrelationAndSingleFrame() throws {
        var rng = SplitMix64(seed: 77)
        let truth = (0..<6).map { _ in SIMD2(rng.uniform() * 6 - 3, rng.uniform() * 6 - 3) }
        let frames = truth.map { specimen.frame(width: 160, height: 160, shift: $0, dose: 6, rng: &rng) }
        var options = RigidOptions()
        options.phaseCorrelationWeight = 0.5
        let result = try RigidRegistration.align(ImageArray(frames), options: options)
        #expect(result.allSatisfy { $0.rejection == nil && $0.score > 0.2 })
        let e = gaugeFreeRMS(measured: shifts(result), truth: truth)
        #expect(e.rms < 0.1)   // whitening amplifies the shot noise: worse than p = 0, as expected
        let single = try RigidRegistration.align(ImageArray([frames[0]]), options: RigidOptions())
        #expect(single == [FrameShift(dx: 0, dy: 0, score: 1)])
    }

    @Test("Bad input throws a typed error")
    func badInput() {
        let tiny = ImageArray([Image(width: 8, height: 8)])
        #expect(throws: RegistrationError.self) { try RigidRegistration.align(tiny, options: RigidOptions()) }
        let frames = ImageArray([Image(width: 32, height: 32), Image(width: 32, height: 32)])
        #expect(throws: RegistrationError.groupIndexOutOfRange(group: 0, index: 5, count: 2)) {
            try RigidRegistration.alignRun(frames, groups: [[0, 5]], options: RigidOptions())
        }
        #expect(throws: RegistrationError.frameInTwoGroups(index: 1)) {
            try RigidRegistration.alignRun(frames, groups: [[0, 1], [1]], options: RigidOptions())
        }
        // Blank frames: nothing to correlate, rejected rather than crashing.
        let blank = try? RigidRegistration.align(ImageArray([Image(width: 32, height: 32), Image(width: 32, height: 32)]),
                                                 options: RigidOptions())
        #expect(blank?.allSatisfy { $0.rejection != nil } == true)
        // Odd and minimal sizes: no crash, one shift per frame.
        var rng = SplitMix64(seed: 4)
        for (w, h) in [(17, 23), (16, 16), (33, 64)] {
            let odd = ImageArray((0..<3).map { _ in Image(width: w, height: h, pixels: (0..<(w * h)).map { _ in Float(rng.poisson(3)) }) })
            let r = try? RigidRegistration.alignRun(odd, groups: [[0, 1], [2]], options: RigidOptions())
            #expect(r?.shifts.count == 3 && r?.groupAverages.count == 2, "\(w)×\(h)")
        }
    }
}
