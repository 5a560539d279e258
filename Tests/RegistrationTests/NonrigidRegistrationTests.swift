import TestSupport
import Foundation
import Testing
import FrameCore
import Registration

/// Non-rigid correction against frames whose raster distortions are known exactly: each
/// frame is rendered by sampling an analytic lattice at the distorted position of every
/// scan pixel (x − ux, y − uy), as a real scan would record it.
@Suite struct NonrigidRegistrationTests {
    static let size = 128

    /// Gaussian columns on an oblique lattice (layers at 25°) plus dimmer in-between sites.
    static func specimen(_ x: Double, _ y: Double) -> Float {
        let a = 25.0 * Double.pi / 180
        let n = SIMD2(-sin(a), cos(a)), t = SIMD2(cos(a), sin(a))
        let p = SIMD2(x, y)
        let d = 9.0, c = 6.0   // layer spacing and in-plane column spacing, px
        let u = (p * n).sum() / d, v = (p * t).sum() / c
        var value = 0.0
        for du in [floor(u), floor(u) + 1] {
            let shift = du.truncatingRemainder(dividingBy: 3) / 3    // ABC stacking
            for dv in [floor(v - shift), floor(v - shift) + 1] {
                let q = n * du * d + t * (dv + shift) * c
                let r2 = ((p - q) * (p - q)).sum()
                value += exp(-r2 / (2 * 1.3 * 1.3))
            }
        }
        return Float(100 * value + 10)
    }

    struct Distortion { var jitter: [Double]; var stretch: Double; var flyback: Double }

    static func render(_ d: Distortion) -> Image {
        Image(width: size, height: size) { x, y in
            let ux = d.jitter[y] + d.flyback * exp(-Double(x) / 10)
            let uy = d.stretch * (Double(y) - Double(size) / 2) / Double(size)
            return specimen(Double(x) - ux, Double(y) - uy)
        }
    }

    static func distortions(_ count: Int, seed: UInt64) -> [Distortion] {
        var state = seed
        func rnd() -> Double {   // SplitMix64 → uniform in [-1, 1)
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 52) - 1
        }
        return (0..<count).map { _ in
            Distortion(jitter: (0..<size).map { _ in 0.6 * rnd() }, stretch: 1.5 * rnd(), flyback: 1.0 * rnd())
        }
    }

    @Test func recoversLineJitterStretchAndFlyback() throws {
        let truth = Self.distortions(8, seed: 7)
        let frames = ImageArray(truth.map(Self.render))
        let shifts = truth.map { _ in FrameShift(dx: 0, dy: 0, score: 1, rejection: nil) }
        var avg = [Float](repeating: 0, count: Self.size * Self.size)
        for f in frames.images { for k in avg.indices { avg[k] += f.pixels[k] / Float(truth.count) } }
        let reference = AlignedAverage(image: Image(width: Self.size, height: Self.size, pixels: avg),
                                       weight: Image(width: Self.size, height: Self.size, fill: Float(truth.count)),
                                       frameCount: truth.count)
        var options = NonrigidOptions()
        options.passes = 2   // noise-free: per-frame fields are measurable to a few hundredths of a pixel
        let result = try NonrigidRegistration.correct(frames, indices: Array(0..<truth.count), shifts: shifts, reference: reference,
                                                      options: options)

        // Absolute truth, away from the edges. The fields include the distortion all frames
        // share (measured on the average from the lattice), up to an affine map, which no
        // reference-free method can tell from the lattice's own parameters: the affine fit of
        // the error's mean over frames is removed before comparing (from the truth too, for the
        // "before" figure).
        func trueField(_ d: Distortion, _ x: Int, _ y: Int) -> SIMD2<Double> {
            SIMD2(d.jitter[y] + d.flyback * exp(-Double(x) / 10), d.stretch * (Double(y) - Double(Self.size) / 2) / Double(Self.size))
        }
        var points: [(x: Int, y: Int)] = []
        for x in stride(from: 12, to: Self.size - 12, by: 3) { for y in 12..<(Self.size - 12) { points.append((x, y)) } }
        func gaugeFreeRMS(_ value: (Int, Int, Int) -> SIMD2<Double>) -> Double {
            let k = truth.count
            let mean = points.map { p in (0..<k).map { value($0, p.x, p.y) }.reduce(SIMD2<Double>.zero, +) / Double(k) }
            // Least-squares plane c0 + c1·x + c2·y through the mean, each component.
            let design = points.flatMap { p -> [Double] in [1, Double(p.x), Double(p.y)] }
            let cx = LeastSquares.linear(design: design, p: 3, y: mean.map(\.x))!
            let cy = LeastSquares.linear(design: design, p: 3, y: mean.map(\.y))!
            var ss = 0.0
            for p in points {
                let px = Double(p.x), py = Double(p.y)
                let planeX: Double = cx[0] + cx[1] * px + cx[2] * py
                let planeY: Double = cy[0] + cy[1] * px + cy[2] * py
                for i in 0..<k {
                    let e: SIMD2<Double> = value(i, p.x, p.y) - SIMD2(planeX, planeY)
                    ss += e.x * e.x + e.y * e.y
                }
            }
            return (ss / Double(points.count * k)).squareRoot()
        }
        let rms = gaugeFreeRMS { i, x, y in
            let e = result.fields[i].displacement(x: x, y: y)
            return SIMD2(Double(e.ux), Double(e.uy)) - trueField(truth[i], x, y)
        }
        let before = gaugeFreeRMS { i, x, y in trueField(truth[i], x, y) }
        #expect(before > 0.3)
        #expect(rms < 0.1)
        #expect(rms < before / 4)
    }

    @Test func undistortedSeriesStaysPut() throws {
        let still = Self.distortions(4, seed: 3).map { _ in Distortion(jitter: [Double](repeating: 0, count: Self.size), stretch: 0, flyback: 0) }
        let frames = ImageArray(still.map(Self.render))
        let shifts = still.map { _ in FrameShift(dx: 0, dy: 0, score: 1, rejection: nil) }
        let reference = AlignedAverage(image: frames.images[0], weight: Image(width: Self.size, height: Self.size, fill: 4), frameCount: 4)
        let result = try NonrigidRegistration.correct(frames, indices: [0, 1, 2, 3], shifts: shifts, reference: reference)
        // Noise-free and undistorted: whatever is estimated is error. The line-to-line estimate
        // has a small lattice-dependent bias on this synthetic crystal (0.05 px RMS measured;
        // 0.01 px on the simulator's, `NonrigidScanPresetTests`), well below the 0.37 px of the
        // distortions above.
        for f in result.fields {
            #expect(f.statistics.rms < 0.06)
            #expect(f.statistics.max < 0.2)
        }
    }
}

private func exp(_ x: Double) -> Double { Foundation.exp(x) }
