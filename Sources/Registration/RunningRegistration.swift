import Foundation
import FrameCore

/// Rigid registration of frames one at a time, as an acquisition writes them: each frame is
/// measured against the running reference of its group (a temperature step), the sum of the
/// group's registered frames' band spectra moved onto the run reference.
///
/// Method: the correlation of `RigidRegistration` for one pair (`Correlator`: band-pass
/// cross-correlation of Tukey-windowed spectra, the lattice-alias guard with the
/// non-periodic content deciding between aliases, upsampled-DFT refinement to 1/U px,
/// Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)), searched first around the previous
/// frame's position (continuity in time) and, where no significant peak is found there,
/// over the whole map. The first frame of a group, which has no reference of its own yet,
/// is measured against the sum of the last `recentFrames` registered frames (neighbours in
/// time, so the contrast change of a moving front between groups does not matter). The run
/// reference is the first frame. Frames whose peak is not significant are rejected
/// (`"noise"`), frames too far out (`"overlap"`), as in `RigidRegistration`.
///
/// These shifts are provisional: `RigidRegistration.alignRun` on the finished run solves all
/// frames jointly, each against the average of all others, which a frame-by-frame
/// registration cannot. Memory: per group one band spectrum sum and one coarse image sum
/// (groups before the previous one are dropped), and `recentFrames` band spectra.
public final class RunningRegistration: @unchecked Sendable {
    /// Registered frames whose sum references the first frame of a new group.
    public static let recentFrames = 4

    private struct Reference {
        var band: BandSpectrum
        var coarseSum: CoarseImage
        var count = 0
    }

    private let options: RigidOptions
    private let frames = LiveFrames()
    private var engine: RigidEngine<LiveFrames>?
    private var references: [Int: Reference] = [:]
    private var recent: [(spectrum: BandSpectrum, position: SIMD2<Double>)] = []
    private var last: SIMD2<Double>?
    private var notch: ReflectionNotch?
    private var sinceNotch = 0
    private var currentGroup: Int?

    public init(options: RigidOptions) { self.options = options }

    /// The shift of `image` (content displacement relative to the run reference, as
    /// `FrameShift`) in group `group`; the frame joins the group's reference when used.
    /// Frames of one run must have one size (the first frame's).
    public func register(_ image: Image, group: Int) throws -> FrameShift {
        let index = frames.put(image)
        defer { frames.remove(index) }
        if engine == nil {
            engine = try RigidEngine(frames, options: options, latticeFrom: [index])
        }
        let engine = engine!
        guard image.width == engine.geometry.width, image.height == engine.geometry.height else {
            return FrameShift(dx: 0, dy: 0, score: 0, rejection: "size")
        }
        return try engine.parallelMap(1) { _, correlator -> FrameShift in
            guard let spectrum = try engine.spectrum(of: index, correlator: correlator) else {
                return FrameShift(dx: 0, dy: 0, score: 0, rejection: engine.lastRejection(index))
            }
            if group != currentGroup { startGroup(group, engine: engine) }
            guard let last else {
                add(spectrum, at: .zero, group: group, engine: engine)
                return FrameShift(dx: 0, dy: 0, score: 1)
            }
            let reference = referenceSpectrum(group, engine: engine)
            var peak = correlator.measure(spectrum, against: reference, prediction: last,
                                          radius: engine.localRadius, notch: notch)
            if (peak?.significance ?? 0) < options.minSignificance {
                // A jump beyond the local radius (a stage move, a drift burst): the whole map.
                peak = correlator.measure(spectrum, against: reference, notch: notch)
            }
            guard let m = peak, m.significance >= options.minSignificance, m.ncc >= options.minScore else {
                return FrameShift(dx: 0, dy: 0, score: Swift.min(1, Swift.max(0, peak?.ncc ?? 0)), rejection: "noise")
            }
            let position = SIMD2(m.dx, m.dy)
            let shift = engine.finalShift(Measured(position: position, score: m.ncc, rejection: nil), offset: .zero)
            if shift.isUsed { add(spectrum, at: position, group: group, engine: engine) }
            return shift
        }[0]
    }

    /// A new group: references of groups before the previous one are dropped, and the
    /// reflection notch is made again from the latest frames (reflections change with the phase).
    private func startGroup(_ group: Int, engine: RigidEngine<LiveFrames>) {
        if let previous = currentGroup { references = references.filter { $0.key == previous || $0.key == group } }
        currentGroup = group
        updateNotch(engine: engine)
    }

    private func updateNotch(engine: RigidEngine<LiveFrames>) {
        sinceNotch = 0
        guard engine.filters.aliasRadius.isFinite, !recent.isEmpty else { return }
        notch = ReflectionNotch(recent.map { $0.spectrum.values }, geometry: engine.geometry)
    }

    /// The group's running reference; for a group without frames yet, the recent frames' sum.
    private func referenceSpectrum(_ group: Int, engine: RigidEngine<LiveFrames>) -> BandSpectrum {
        if let r = references[group], r.count > 0 { return r.band }
        var sum = Reference(band: emptyBand(engine), coarseSum: emptyCoarse(engine))
        for (s, p) in recent { accumulate(s, at: p, into: &sum, engine: engine) }
        sum.band.coarse = engine.coarseGeometry.finishAverage(sum.coarseSum, contributors: sum.count)
        return sum.band
    }

    private func add(_ spectrum: BandSpectrum, at position: SIMD2<Double>, group: Int, engine: RigidEngine<LiveFrames>) {
        var r = references[group] ?? Reference(band: emptyBand(engine), coarseSum: emptyCoarse(engine))
        accumulate(spectrum, at: position, into: &r, engine: engine)
        r.band.coarse = engine.coarseGeometry.finishAverage(r.coarseSum, contributors: r.count)
        references[group] = r
        last = position
        recent.append((BandSpectrum(values: spectrum.values, coarse: CoarseImage(pixels: spectrum.coarse.pixels,
                                                                                 mask: spectrum.coarse.mask)), position))
        if recent.count > Self.recentFrames { recent.removeFirst() }
        sinceNotch += 1
        if notch == nil || sinceNotch >= 8 { updateNotch(engine: engine) }
    }

    /// `r += spectrum` moved by −position (the Fourier shift theorem, as the group sums of
    /// `RigidRegistration`), and its coarse image likewise.
    private func accumulate(_ s: BandSpectrum, at p: SIMD2<Double>, into r: inout Reference, engine: RigidEngine<LiveFrames>) {
        var negated = s
        negated.values = s.values.map { -$0 }
        engine.subtractShifted(negated, by: p, from: &r.band)
        engine.coarseGeometry.accumulate(s.coarse, movedBy: p, into: &r.coarseSum)
        r.count += 1
    }

    private func emptyBand(_ engine: RigidEngine<LiveFrames>) -> BandSpectrum {
        BandSpectrum(values: [Complex](repeating: .zero, count: engine.geometry.gridHeight * engine.geometry.halfWidth),
                     coarse: CoarseImage(pixels: [], mask: []))
    }

    private func emptyCoarse(_ engine: RigidEngine<LiveFrames>) -> CoarseImage {
        let n = engine.coarseGeometry.gridWidth * engine.coarseGeometry.gridHeight
        return CoarseImage(pixels: [Float](repeating: 0, count: n), mask: [Float](repeating: 0, count: n))
    }
}

/// The frames in flight of a `RunningRegistration`: each is held only while it is registered.
final class LiveFrames: ImageSequence, @unchecked Sendable {
    private let lock = NSLock()
    private var images: [Int: Image] = [:]
    private var next = 0
    private var size = (width: 0, height: 0)

    var count: Int { lock.lock(); defer { lock.unlock() }; return next }
    var width: Int { lock.lock(); defer { lock.unlock() }; return size.width }
    var height: Int { lock.lock(); defer { lock.unlock() }; return size.height }

    func put(_ image: Image) -> Int {
        lock.lock(); defer { lock.unlock() }
        if next == 0 { size = (image.width, image.height) }
        images[next] = image
        next += 1
        return next - 1
    }

    func remove(_ index: Int) { lock.lock(); images[index] = nil; lock.unlock() }

    func image(at index: Int) throws -> Image {
        lock.lock(); defer { lock.unlock() }
        guard let image = images[index] else { throw RegistrationError.emptySequence }
        return image
    }
}
