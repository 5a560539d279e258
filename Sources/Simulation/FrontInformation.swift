import FrameCore
import Foundation

/// How precisely a run's frames can locate the front at all: the Cramér–Rao lower bound
/// (Cramér, *Mathematical Methods of Statistics*, 1946; Rao, Bull. Calcutta Math. Soc. 37,
/// 81, 1945) on the front position of one frame and on a hold's velocity, as used for
/// electron-microscope images by den Dekker et al. (Ultramicroscopy 104, 83, 2005).
///
/// Every other property of the specimen, the scan and the detector is taken as known and
/// the frame as ideally acquired (no jitter, flyback or drift within it), so the bound is
/// what no estimator of the front can beat, not what one can reach. Each pixel contributes
/// (∂μ/∂x)²/σ², μ its expected value and σ² = gain²·λ + read noise² + 1/12 ADU² its
/// variance (λ expected electrons): for shot noise alone this is the Poisson information
/// (∂λ/∂x)²/λ exactly; the read noise and rounding enter as Gaussian.
extension HeatingRunSimulator {
    /// Fisher information (nm⁻²) of frame `i` about its front position, from the expected
    /// detector values with the front moved `deltaNm` either side of its true place; nil
    /// where the frame has no front.
    public func frontPositionInformation(frame i: Int, deltaNm: Double = 0.01) -> Double? {
        guard let pixels = frontSlopes(frame: i, deltaNm: deltaNm) else { return nil }
        var information = 0.0
        for k in pixels.slope.indices { information += pixels.slope[k] * pixels.slope[k] / pixels.variance[k] }
        return information
    }

    /// Per pixel of frame `i`, the expected detector value's derivative with respect to the
    /// front position (ADU/nm, from the front moved `deltaNm` either side of its true place)
    /// and the value's variance; nil where the frame has no front.
    func frontSlopes(frame i: Int, deltaNm: Double) -> (slope: [Double], variance: [Double], width: Int)? {
        guard let front = frameTruth(i).frontPositionNm else { return nil }
        let sides = expectedValues(deltaNm) { idealIntensity(frame: i, frontNm: front + $0) }
        let gain = detector.gainADUPerElectron, floor = detector.readNoiseADU * detector.readNoiseADU + 1.0 / 12
        let variance = zip(sides.minus, sides.plus).map { gain * (0.5 * ($0 + $1) - detector.offsetADU) + floor }
        return (Self.centralDifference(sides, deltaNm), variance, options.size)
    }

    /// The derivative (ADU per unit) from a central difference's two sides, `delta` either side.
    static func centralDifference(_ sides: (minus: [Double], plus: [Double]), _ delta: Double) -> [Double] {
        zip(sides.minus, sides.plus).map { ($1 - $0) / (2 * delta) }
    }

    /// The expected detector values (ADU) of the model intensities `render(−delta)` and
    /// `render(+delta)`: a central difference's two sides.
    func expectedValues(_ delta: Double, _ render: (Double) -> Image) -> (minus: [Double], plus: [Double]) {
        (expectedValues(render(-delta)), expectedValues(render(delta)))
    }

    /// The expected detector values (ADU) of a model intensity.
    func expectedValues(_ image: Image) -> [Double] {
        image.pixels.map { detector.expectedValue(intensity: Double($0)) }
    }

    /// Model intensity of frame `i` as the ideal acquisition sees it (no jitter, flyback or
    /// drift within the frame), with the front at `frontNm` instead of its true place.
    public func idealIntensity(frame i: Int, frontNm: Double) -> Image {
        intensity(frame: i, distortions: false, jitter: nil, frontNm: frontNm)
    }

    /// The bound on a hold's velocity (nm/s) fitted, with the position at the hold's mean
    /// time, to frames at `timesS` carrying `information` (nm⁻²) each: the (v, v) element of
    /// the inverse of Σ I_f·[1, t_f; t_f, t_f²]. Nil with fewer than two frames or no spread.
    public static func velocityBound(timesS: [Double], information: [Double]) -> Double? {
        guard timesS.count == information.count, timesS.count >= 2 else { return nil }
        let total = information.reduce(0, +)
        guard total > 0 else { return nil }
        let mean = zip(timesS, information).map { $0 * $1 }.reduce(0, +) / total
        let spread = zip(timesS, information).map { ($0 - mean) * ($0 - mean) * $1 }.reduce(0, +)
        return spread > 0 ? 1 / spread.squareRoot() : nil
    }
}

/// What a hold's velocity bound takes as unknown besides the front's position and velocity
/// (`holdVelocityBound`).
public struct FrontNuisances: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// The front's width, one for the hold.
    public static let width = FrontNuisances(rawValue: 1)
    /// The layered grain's cation mixing (its plateau level), one for the hold.
    public static let mixing = FrontNuisances(rawValue: 2)
    /// Each frame's dose (a gain on its expected counts).
    public static let dose = FrontNuisances(rawValue: 4)
}

extension HeatingRunSimulator {
    /// The Cramér–Rao bound (nm/s) on the velocity of a hold whose `frames` (each with a
    /// front) are fitted with one line x(t) = x̄ + v·(t − t̄), with the `unknown` nuisances
    /// estimated from the same frames: √ of the (v, v) element of the inverse Fisher matrix
    /// over (x̄, v, nuisances) (Kay, *Fundamentals of Statistical Signal Processing:
    /// Estimation Theory*, 1993, §3.7). Nuisances whose effect on the frames resembles the
    /// front's motion raise the bound above `velocityBound`'s, which takes them as known; an
    /// estimator that has to find them can do no better. Nil with fewer than three frames, a
    /// frame without a front or a singular matrix.
    public func holdVelocityBound(frames: [Int], unknown: FrontNuisances, deltaNm: Double = 0.01) -> Double? {
        let times = frames.map { frameTruth($0).timeS }
        guard frames.count >= 3 else { return nil }
        let tMean = times.reduce(0, +) / Double(frames.count)
        let n = 2 + (unknown.contains(.width) ? 1 : 0) + (unknown.contains(.mixing) ? 1 : 0)
            + (unknown.contains(.dose) ? frames.count : 0)
        let perFrame = ResultSlots<[Double]?>.map(frames.count) { j in
            holdFisher(frame: frames[j], slot: j, dt: times[j] - tMean, parameters: n, unknown: unknown, deltaNm: deltaNm)
        }
        guard perFrame.allSatisfy({ $0 != nil }) else { return nil }
        let fisher = perFrame.reduce([Double](repeating: 0, count: n * n)) { zip($0, $1!).map(+) }
        var unit = [Double](repeating: 0, count: n)
        unit[1] = 1
        guard let column = LeastSquares.solve(fisher, unit, n: n), column[1] > 0 else { return nil }
        return column[1].squareRoot()
    }

    /// Frame `i`'s share of `holdVelocityBound`'s Fisher matrix (n × n, row-major) over
    /// (x̄, v, [width], [mixing], [dose of each frame]), the frame `dt` from the hold's mean
    /// time and `slot`-th among its frames; nil where it has no front.
    func holdFisher(frame i: Int, slot: Int, dt: Double, parameters n: Int, unknown: FrontNuisances,
                    deltaNm: Double) -> [Double]? {
        guard let front = frameTruth(i).frontPositionNm, let width = kinetics.widthNm,
              let position = frontSlopes(frame: i, deltaNm: deltaNm) else { return nil }
        // Derivative images of the nuisances, in parameter order after x̄ and v.
        var nuisances = [[Double]]()
        func slope(_ delta: Double, _ render: (Double) -> Image) -> [Double] {
            Self.centralDifference(expectedValues(delta, render), delta)
        }
        if unknown.contains(.width) {
            nuisances.append(slope(deltaNm) { intensity(frame: i, distortions: false, jitter: nil, frontNm: front, widthNm: width + $0) })
        }
        if unknown.contains(.mixing) {
            nuisances.append(slope(1e-3) { intensity(frame: i, distortions: false, jitter: nil, frontNm: front, mixingChange: $0) })
        }
        let dose = unknown.contains(.dose) ? expectedValues(idealIntensity(frame: i, frontNm: front)) : []
        let doseIndex = 2 + nuisances.count + slot
        var fisher = [Double](repeating: 0, count: n * n), g = [Double](repeating: 0, count: n)
        for k in position.slope.indices {
            g[0] = position.slope[k]; g[1] = position.slope[k] * dt
            for (m, d) in nuisances.enumerated() { g[2 + m] = d[k] }
            if !dose.isEmpty { g[doseIndex] = dose[k] - detector.offsetADU }
            let inverse = 1 / position.variance[k]
            for r in 0..<n where g[r] != 0 { for c in 0..<n where g[c] != 0 { fisher[r * n + c] += g[r] * g[c] * inverse } }
        }
        return fisher
    }
}

/// Where a frame's information about its front lies: the Fisher information kept by sums of
/// the detector values over groups of pixels, each group's sum weighted by its own variance,
/// as a share of all of it (`frontPositionInformation`). A group of pixels whose expected
/// values all move with the front, summed, keeps (Σ ∂μ)² / Σ σ² of its pixels' Σ (∂μ)²/σ²;
/// pixels whose changes cancel lose it. Groups, each per 1 px bin of distance from the
/// boundary (the truth's geometry, the frame's mean drift):
/// - `distance`: every pixel of the bin (an intensity profile across the front);
/// - `tmDiscs`, `liDiscs`: pixels within `discPx` of a TM or a Li site (site intensities);
/// - `sites`: both kinds of disc, as separate sums (the two shares together);
/// - `lockIn`: every pixel weighted by cos 2π g·r, +1 on TM planes and −1 on Li planes (the
///   in-phase lock-in amplitude at the layer reflection g, the order parameter's numerator).
public struct FrontInformationShares: Sendable {
    /// All the information (`frontPositionInformation`), nm⁻².
    public var total = 0.0
    public var distance = 0.0, tmDiscs = 0.0, liDiscs = 0.0, lockIn = 0.0
    public var sites: Double { tmDiscs + liDiscs }

    public init() {}

    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.total += b.total; s.distance += b.distance; s.tmDiscs += b.tmDiscs
        s.liDiscs += b.liDiscs; s.lockIn += b.lockIn
        return s
    }
}

extension HeatingRunSimulator {
    /// The shares of frame `i`'s front-position information (`FrontInformationShares`);
    /// nil where the frame has no front.
    public func frontInformationShares(frame i: Int, discPx: Double = 3, deltaNm: Double = 0.01) -> FrontInformationShares? {
        guard let pixels = frontSlopes(frame: i, deltaNm: deltaNm) else { return nil }
        let geometry = SiteGeometry(truth)
        // Frame pixel X shows the specimen at frame 0's X − shift.
        let shift = SIMD2(frameTruth(i).shiftXPx, frameTruth(i).shiftYPx)
        // Per distance bin: slope and variance sums of each group (distance, TM, Li, lock-in).
        var slope = [Int: SIMD4<Double>](), variance = [Int: SIMD4<Double>]()
        var shares = FrontInformationShares()
        let w = pixels.width
        for k in pixels.slope.indices {
            let s = pixels.slope[k], v = pixels.variance[k]
            shares.total += s * s / v
            let r = SIMD2(Double(k % w), Double(k / w)) - shift
            let bin = Int(geometry.distance(r).rounded(.down))
            let tm: Double = geometry.nearestTM(r) < discPx ? 1 : 0, li: Double = tm == 0 && geometry.nearestLi(r) < discPx ? 1 : 0
            let c = geometry.layerPhase(r)
            slope[bin, default: .zero] += SIMD4(s, tm * s, li * s, c * s)
            variance[bin, default: .zero] += SIMD4(v, tm * v, li * v, c * c * v)
        }
        for (bin, s) in slope {
            let v = variance[bin]!
            let kept = SIMD4<Double>((0..<4).map { v[$0] > 0 ? s[$0] * s[$0] / v[$0] : 0 })
            shares.distance += kept[0]; shares.tmDiscs += kept[1]; shares.liDiscs += kept[2]; shares.lockIn += kept[3]
        }
        return shares
    }
}

/// The analysed grain's sites and boundary in frame 0's pixels, from the run's truth.
private struct SiteGeometry {
    let origin, along, across, liOffset, boundaryPoint, direction: SIMD2<Double>
    /// Reciprocal vector of the TM planes: g·along = 0, g·across = 1.
    let g: SIMD2<Double>

    init(_ t: RunTruth) {
        let l = t.tmLattice
        origin = SIMD2(l.originPx[0], l.originPx[1])
        along = SIMD2(l.alongBasisPx[0], l.alongBasisPx[1])
        across = SIMD2(l.acrossBasisPx[0], l.acrossBasisPx[1])
        liOffset = SIMD2(l.liOffsetPx[0], l.liOffsetPx[1])
        boundaryPoint = SIMD2(t.boundary.x0, t.boundary.y0)
        direction = SIMD2(t.propagationDirection[0], t.propagationDirection[1])
        let normal = SIMD2(-along.y, along.x)
        g = normal / (normal * across).sum()
    }

    /// Distance (px) from the boundary along the propagation direction.
    func distance(_ r: SIMD2<Double>) -> Double { ((r - boundaryPoint) * direction).sum() }

    /// cos 2π g·(r − origin): +1 on TM planes, −1 on Li planes.
    func layerPhase(_ r: SIMD2<Double>) -> Double { cos(2 * Double.pi * ((r - origin) * g).sum()) }

    func nearestTM(_ r: SIMD2<Double>) -> Double { nearestNode(r - origin) }
    func nearestLi(_ r: SIMD2<Double>) -> Double { nearestNode(r - origin - liOffset) }

    /// Distance from `q` to the nearest node of the lattice spanned by `along` and `across`.
    private func nearestNode(_ q: SIMD2<Double>) -> Double {
        let det = along.x * across.y - along.y * across.x
        let u = ((q.x * across.y - q.y * across.x) / det).rounded(), v = ((along.x * q.y - along.y * q.x) / det).rounded()
        var best = Double.infinity
        for du in -1...1 {
            for dv in -1...1 {
                let d = q - (u + Double(du)) * along - (v + Double(dv)) * across
                best = min(best, (d * d).sum())
            }
        }
        return best.squareRoot()
    }
}
