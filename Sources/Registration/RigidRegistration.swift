import Dispatch
import Foundation
import FrameCore

/// Reference-free rigid registration of frame stacks and whole heating runs.
///
/// Method, per group (e.g. one temperature hold):
/// 1. Each frame → mean-subtracted, Tukey-windowed spectrum cropped to the band-pass
///    support (`BandSpectrum`), and a low-passed coarse image of the unwindowed frame
///    (`CoarseGeometry`).
/// 2. A chain in time order (`timeChain`): each frame against the sum of the last four
///    linked frames, the first frame of a segment again against the four after it. Then
///    every frame is correlated with its next `neighbours` frames around the chain's
///    prediction (`Correlator`: coarse masked NCC on the non-periodic content (Padfield
///    2012) when a lattice is present, then band-pass cross-correlation searched within
///    0.45 of the shortest lattice vector of the estimate, upsampled-DFT refinement to
///    1/U px, Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)); pairs whose peak does not
///    stand `minSignificance` σ above the correlation noise are dropped. On a lattice the
///    alias is chosen by the correlation of the non-periodic content (lattice reflections
///    notched out, `ReflectionNotch`).
/// 3. Positions solved jointly by least squares over all pairs, inconsistent pairs removed
///    iteratively (`JointShifts`, as in Savitzky et al., Ultramicroscopy 191, 56 (2018)).
/// 4. Up to `iterations` rounds, two more while frames still change lattice alias (fewer
///    once no frame moves by more than half the sub-pixel grid): the shifted-spectrum
///    average of the used frames is built, each frame re-measured against the average of
///    the *others* (no single noisy frame is the reference; frames without a position get a
///    full coarse-to-fine search); on a lattice, a frame moves to another alias within 2.2
///    lattice vectors where the non-periodic content correlates better by
///    `Correlator.minAliasMargin` σ; frames whose peak is not significant are rejected
///    (`"noise"`). Then, at the chain's links whose alias was unclear (at least its three
///    least certain), the frames after the link are measured together against those before
///    it (`moveSlippedBlocks`), and the rounds repeat if a block moved, now with aliases
///    the non-periodic content cannot tell apart decided by the frame's neighbours in time.
/// 5. Positions re-referenced to the group average (mean of used positions = 0);
///    shifts beyond `maxShiftPx` or with less than `minOverlapFraction` common area are
///    rejected (`"overlap"`).
/// The score is the band-passed normalised cross-correlation with the average of the
/// other frames at the final position.
public enum RigidRegistration {
    /// Measures shifts of the frames of one group (e.g. one temperature step) reference-free,
    /// relative to the group's aligned average.
    ///
    /// Memory: per frame one band spectrum, `gh × (gw/2+1)` complex floats with
    /// `gw ≈ 2·bandPassHigh·width` (≈ 1.2 MB per 1024² frame with the defaults), and one
    /// coarse image (≤ 96² floats + mask) with its three padded masked-NCC spectra
    /// (≤ 0.45 MB), held in memory up to `options.spectraMemoryMB` and beyond that in a
    /// temporary file (`SpectrumStore`); per thread one decoded frame, one full-size and a
    /// few small FFT workspaces.
    public static func align(_ frames: some ImageSequence, options: RigidOptions) throws -> [FrameShift] {
        guard frames.count > 0 else { throw RegistrationError.emptySequence }
        let engine = try RigidEngine(frames, options: options, latticeFrom: Array(0..<Swift.min(frames.count, 8)))
        let members = Array(0..<frames.count)
        let group = try engine.alignGroup(members)
        return members.indices.map { k in engine.finalShift(group.shift(k), offset: .zero) }
    }

    /// Registers a whole run onto one reference: the aligned average of the first non-empty
    /// group (frames of each group aligned reference-free, then group averages aligned to
    /// one another by a joint solution over consecutive pairs of groups). Frames in no group
    /// (ramp frames) are measured against the average of the nearest group in frame order.
    /// An empty `groups` treats the whole run as one group.
    ///
    /// Memory (frames are streamed from `frames`, never all held): the band spectra and
    /// coarse images of one group at a time, up to `options.spectraMemoryMB` (see `align`),
    /// one of each per group average, ramp frames in batches of 16, and per
    /// thread one decoded frame and the FFT workspaces. The group averages are then built
    /// by `StackAverage`, which streams the frames again (one accumulator per thread).
    public static func alignRun(_ frames: some ImageSequence, groups: [[Int]],
                                options: RigidOptions) throws -> RunAlignment {
        let (shifts, groups) = try runShifts(frames, groups: groups, options: options)
        // 5. Group averages on the run reference.
        var groupAverages: [AlignedAverage] = []
        for members in groups {
            groupAverages.append(try StackAverage.average(frames, indices: members, shifts: members.map { shifts[$0] },
                                                          interpolation: options.interpolation))
        }
        return RunAlignment(shifts: shifts, groupAverages: groupAverages)
    }

    /// The shifts of `alignRun` without its group averages (steps 1–4): for callers that
    /// average other groupings of the frames themselves, which saves one decoding and
    /// resampling pass over every frame. Same shifts as `alignRun`.
    public static func alignRunShifts(_ frames: some ImageSequence, groups: [[Int]],
                                      options: RigidOptions) throws -> [FrameShift] {
        try runShifts(frames, groups: groups, options: options).shifts
    }

    /// Steps 1–4 of `alignRun`: the shifts, and the groups used (an empty grouping made one).
    static func runShifts(_ frames: some ImageSequence, groups: [[Int]],
                          options: RigidOptions) throws -> (shifts: [FrameShift], groups: [[Int]]) {
        let n = frames.count
        guard n > 0 else { throw RegistrationError.emptySequence }
        let (groups, owner) = try checkedGroups(groups, frameCount: n)
        let first = groups.first { !$0.isEmpty } ?? []
        let engine = try RigidEngine(frames, options: options, latticeFrom: Array(first.prefix(8)))

        // 1. Each group on its own, keeping only its average spectrum.
        var groupShifts: [[Measured]] = []
        var averages: [BandSpectrum?] = []
        for members in groups {
            if members.isEmpty { groupShifts.append([]); averages.append(nil); continue }
            let solution = try engine.alignGroup(members)
            groupShifts.append(members.indices.map { solution.shift($0) })
            averages.append(solution.usedCount > 0 ? solution.average : nil)
        }

        // 2. Group averages to one another.
        let placed = averages.indices.filter { averages[$0] != nil }
        let notch = engine.filters.aliasRadius.isFinite
            ? ReflectionNotch(placed.map { averages[$0]!.values }, geometry: engine.geometry) : nil
        let offsets = try groupOffsets(engine, averages: averages, notch: notch)

        // 3. Compose: frame shift = position in its group + the group's offset.
        var shifts = [FrameShift](repeating: FrameShift(dx: 0, dy: 0, score: 0, rejection: "noise"), count: n)
        for (g, members) in groups.enumerated() {
            for (k, i) in members.enumerated() {
                if let o = offsets[g] {
                    shifts[i] = engine.finalShift(groupShifts[g][k], offset: o)
                } else {
                    var m = groupShifts[g][k]
                    if m.rejection == nil { m.rejection = "noise" }
                    shifts[i] = engine.finalShift(m, offset: .zero)
                }
            }
        }

        // 4. Ramp frames: against the nearest placed group's average.
        let ramp = (0..<n).filter { owner[$0] == nil }
        try measureRamp(ramp, into: &shifts, engine: engine, groups: groups, averages: averages, offsets: offsets, notch: notch)
        return (shifts, groups)
    }

    /// `groups` checked (indices in range, no frame in two groups), an empty grouping made
    /// one group of every frame; with each frame's group (nil: a ramp frame).
    static func checkedGroups(_ groups: [[Int]], frameCount n: Int) throws -> (groups: [[Int]], owner: [Int?]) {
        var groups = groups
        if groups.allSatisfy(\.isEmpty) && groups.count <= 1 { groups = [Array(0..<n)] }
        var owner = [Int?](repeating: nil, count: n)
        for (g, members) in groups.enumerated() {
            for i in members {
                guard i >= 0 && i < n else { throw RegistrationError.groupIndexOutOfRange(group: g, index: i, count: n) }
                guard owner[i] == nil else { throw RegistrationError.frameInTwoGroups(index: i) }
                owner[i] = g
            }
        }
        return (groups, owner)
    }

    /// Each group average's offset on the run reference (the first placed group's average):
    /// consecutive and next-but-one averages correlated, positions solved jointly
    /// (`JointShifts`); averages the pairs could not chain are measured directly against the
    /// reference. Nil for a group without an average or one that could not be placed.
    static func groupOffsets<Frames>(_ engine: RigidEngine<Frames>, averages: [BandSpectrum?],
                                     notch: ReflectionNotch?) throws -> [SIMD2<Double>?] {
        let options = engine.options
        let placed = averages.indices.filter { averages[$0] != nil }
        var pairs: [(Int, Int)] = []
        for (k, g) in placed.enumerated() {
            for h in placed.dropFirst(k + 1).prefix(2) { pairs.append((g, h)) }
        }
        let measured = try engine.parallelMap(pairs.count) { p, correlator in
            correlator.measure(averages[pairs[p].1]!, against: averages[pairs[p].0]!, notch: notch)
        }
        var edges: [PairShift] = []
        for (p, m) in measured.enumerated() {
            if let m, m.significance >= options.minSignificance {
                edges.append(PairShift(i: pairs[p].0, j: pairs[p].1, shift: SIMD2(m.dx, m.dy)))
            }
        }
        var offsets = JointShifts.solve(count: averages.count, pairs: edges, threshold: options.outlierThresholdPx)
        // Gauge: the first placed group's average is the run reference.
        guard let ref = placed.first else { return offsets }
        if offsets[ref] == nil {
            // Reference outside the largest component: keep only its own component.
            offsets = [SIMD2<Double>?](repeating: nil, count: averages.count)
            offsets[ref] = .zero
        }
        let origin = offsets[ref]!
        for g in offsets.indices { offsets[g] = offsets[g].map { $0 - origin } }
        // Groups that could not be chained: measured directly against the reference average.
        let unplaced = placed.filter { offsets[$0] == nil }
        let direct = try engine.parallelMap(unplaced.count) { k, correlator in
            correlator.measure(averages[unplaced[k]]!, against: averages[ref]!, notch: notch)
        }
        for (k, g) in unplaced.enumerated() {
            if let m = direct[k], m.significance >= options.minSignificance { offsets[g] = SIMD2(m.dx, m.dy) }
        }
        return offsets
    }

    /// Ramp frames (in no group), each against the average of the nearest placed group in
    /// frame order, in batches of 16 (their spectra are not kept).
    static func measureRamp<Frames>(_ ramp: [Int], into shifts: inout [FrameShift], engine: RigidEngine<Frames>,
                                    groups: [[Int]], averages: [BandSpectrum?], offsets: [SIMD2<Double>?],
                                    notch: ReflectionNotch?) throws {
        let options = engine.options
        let candidates = groups.indices.filter { offsets[$0] != nil && averages[$0] != nil }
        for batch in stride(from: 0, to: ramp.count, by: 16) {
            let frameIndices = Array(ramp[batch..<Swift.min(batch + 16, ramp.count)])
            let results = try engine.parallelMap(frameIndices.count) { k, correlator -> Measured in
                let i = frameIndices[k]
                guard let g = nearestGroup(i, groups: groups, candidates: candidates) else {
                    return Measured(position: nil, score: 0, rejection: "noise")
                }
                guard let spectrum = try engine.spectrum(of: i, correlator: correlator) else {
                    return Measured(position: nil, score: 0, rejection: engine.lastRejection(i))
                }
                guard let m = correlator.measure(spectrum, against: averages[g]!, notch: notch),
                      m.significance >= options.minSignificance, m.ncc >= options.minScore else {
                    return Measured(position: nil, score: 0, rejection: "noise")
                }
                return Measured(position: SIMD2(m.dx, m.dy) + offsets[g]!, score: m.ncc, rejection: nil)
            }
            for (k, i) in frameIndices.enumerated() { shifts[i] = engine.finalShift(results[k], offset: .zero) }
        }
    }

    /// The group (among `candidates`) with a member closest to frame `i` in frame order.
    static func nearestGroup(_ i: Int, groups: [[Int]], candidates: [Int]) -> Int? {
        var best: Int?, bestDistance = Int.max
        for g in candidates {
            for m in groups[g] where abs(m - i) < bestDistance { bestDistance = abs(m - i); best = g }
        }
        return best
    }
}

/// A frame's position (content displacement, px) in some gauge, its score and rejection.
struct Measured: Sendable {
    var position: SIMD2<Double>?
    var score: Double
    var rejection: String?
}

/// Result of aligning one group: positions relative to the group's average.
struct GroupSolution {
    var positions: [SIMD2<Double>?]
    var scores: [Double]
    var rejections: [String?]
    /// Sum of the used frames' spectra moved onto the group reference.
    var average: BandSpectrum
    var usedCount: Int

    func shift(_ k: Int) -> Measured {
        Measured(position: positions[k], score: scores[k], rejection: rejections[k])
    }
}

/// Shared state of one registration call: geometry, filters, one `Correlator` per thread.
final class RigidEngine<Frames: ImageSequence>: @unchecked Sendable {
    let frames: Frames
    let options: RigidOptions
    let geometry: CorrelationGeometry
    let filters: CorrelationFilters
    let coarseGeometry: CoarseGeometry
    private let correlators: [Correlator]
    private let workspaces: [FFTWorkspace]
    private let coarseWorkspaces: [FFTWorkspace]
    private let binnedWorkspaces: [FFTWorkspace]
    private let rejectionLock = NSLock()
    private var rejectionReasons: [Int: String] = [:]
    /// Fine spectra of the lattice sample frames, reused once by `spectrum(of:)`.
    private let sampleCache: [Int: [Complex]]

    init(_ frames: Frames, options: RigidOptions, latticeFrom sample: [Int]) throws {
        guard frames.width >= 16, frames.height >= 16 else {
            throw RegistrationError.frameTooSmall(width: frames.width, height: frames.height)
        }
        guard options.upsampleFactor >= 1, options.bandPassHigh > 0, options.bandPassLow >= 0,
              options.bandPassLow < options.bandPassHigh, options.maxShiftPx > 0,
              options.phaseCorrelationWeight >= 0, options.phaseCorrelationWeight <= 1 else {
            throw RegistrationError.invalidOption("need upsampleFactor ≥ 1, 0 ≤ bandPassLow < bandPassHigh, "
                + "maxShiftPx > 0, 0 ≤ phaseCorrelationWeight ≤ 1")
        }
        self.frames = frames
        self.options = options
        geometry = CorrelationGeometry(width: frames.width, height: frames.height, options: options)
        let threads = Swift.max(1, Swift.min(ProcessInfo.processInfo.activeProcessorCount, 8))
        workspaces = (0..<threads).map { _ in FFTWorkspace(width: frames.width, height: frames.height) }
        // The lattice estimate needs spectra; a provisional correlator-free pass on the sample,
        // one workspace per thread. The spectra are kept for the group pass (the same frames'
        // spectra would be computed again there, identically).
        let g0 = geometry, ws0 = UncheckedSendable(workspaces)
        let slots = ResultSlots<[Complex]?>(count: sample.count)
        DispatchQueue.concurrentPerform(iterations: Swift.min(threads, Swift.max(1, sample.count))) { t in
            for k in stride(from: t, to: sample.count, by: Swift.min(threads, Swift.max(1, sample.count))) {
                guard let image = try? frames.image(at: sample[k]), image.width == frames.width,
                      image.height == frames.height else { slots.set(k, .success(nil)); continue }
                slots.set(k, .success(g0.spectrum(of: image, workspace: ws0.value[t])))
            }
        }
        var sampleSpectra: [[Complex]] = []
        var cached: [Int: [Complex]] = [:]
        for k in sample.indices {
            guard case .success(let s?)? = slots.get(k) else { continue }
            sampleSpectra.append(s)
            cached[sample[k]] = s
        }
        sampleCache = cached
        let lattice = LatticeEstimate.estimate(sampleSpectra, geometry: geometry, options: options)
        filters = CorrelationFilters(geometry: geometry, options: options, lattice: lattice)
        coarseGeometry = CoarseGeometry(width: frames.width, height: frames.height, sigma: filters.coarseSigma)
        let (g, f, cg) = (geometry, filters, coarseGeometry)
        correlators = (0..<threads).map { _ in Correlator(geometry: g, filters: f, coarse: cg, options: options) }
        coarseWorkspaces = (0..<threads).map { _ in FFTWorkspace(width: cg.gridWidth, height: cg.gridHeight) }
        binnedWorkspaces = (0..<threads).map { _ in FFTWorkspace(width: cg.binnedWidth, height: cg.binnedHeight) }
    }

    /// `body(k, correlator)` for k in 0..<count on all threads; each thread owns one correlator.
    func parallelMap<T>(_ count: Int, _ body: (Int, Correlator) throws -> T) throws -> [T] {
        guard count > 0 else { return [] }
        let chunks = Swift.min(count, correlators.count)
        let slots = ResultSlots<[T]>(count: chunks)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                var out: [T] = []
                do {
                    for k in stride(from: c, to: count, by: chunks) { out.append(try box.value(k, self.correlators[c])) }
                    slots.set(c, .success(out))
                } catch { slots.set(c, .failure(error)) }
            }
        }
        var parts: [[T]] = []
        for c in 0..<chunks { parts.append(try slots.get(c)!.get()) }
        return (0..<count).map { k in parts[k % chunks][k / chunks] }
    }

    /// Band spectrum of frame `i` using the thread's workspace; `nil` (and a remembered
    /// reason: `"unreadable"`, `"size"`, `"nonfinite"`) when the frame cannot be used.
    func spectrum(of i: Int, correlator: Correlator) throws -> BandSpectrum? {
        let t = correlators.firstIndex { $0 === correlator }!
        let ws = workspaces[t]
        let image: Image
        do { image = try frames.image(at: i) } catch {
            setRejection(i, "unreadable"); return nil
        }
        guard image.width == geometry.width, image.height == geometry.height else {
            setRejection(i, "size"); return nil
        }
        // NaN/∞ pixels would poison every spectrum they touch. (A Double sum of Floats cannot
        // overflow, so the mean is finite exactly when every pixel is.)
        let mean = fastMean(image.pixels)
        guard mean.isFinite else {
            setRejection(i, "nonfinite"); return nil
        }
        return BandSpectrum(values: sampleCache[i] ?? geometry.spectrum(of: image, workspace: ws, mean: mean),
                            coarse: correlator.preparedCoarse(coarseGeometry.image(of: image, binned: binnedWorkspaces[t],
                                                                                  small: coarseWorkspaces[t], mean: mean)))
    }

    private func setRejection(_ i: Int, _ reason: String) {
        rejectionLock.lock(); rejectionReasons[i] = reason; rejectionLock.unlock()
    }

    func lastRejection(_ i: Int) -> String {
        rejectionLock.lock(); defer { rejectionLock.unlock() }
        return rejectionReasons[i] ?? "unreadable"
    }

    /// The positions, scores and rejections of a group's frames while it is aligned.
    struct GroupState {
        var positions: [SIMD2<Double>?]
        var scores: [Double]
        var rejections: [String?]
    }

    /// Aligns the frames `members` to one another (steps 1–5 of `RigidRegistration`).
    func alignGroup(_ members: [Int]) throws -> GroupSolution {
        let n = members.count
        let spectra = SpectrumStore(count: n, memoryBudgetBytes: Swift.max(0, options.spectraMemoryMB) << 20)
        _ = try parallelMap(n) { k, c in spectra.set(k, try self.spectrum(of: members[k], correlator: c)) }
        var state = GroupState(positions: [], scores: [Double](repeating: 0, count: n),
                               rejections: (0..<n).map { spectra.has($0) ? nil : lastRejection(members[$0]) })
        let valid = (0..<n).filter { spectra.has($0) }

        // A chain in time order first: each frame is linked to the last frame already in the
        // chain (skipping up to two frames that could not be linked, e.g. noise
        // frames). Where the frames hold too little non-periodic content for the coarse
        // stage to tell lattice aliases apart, the fine search is also centred on a
        // constant-velocity prediction, so a steady drift faster than half a lattice vector
        // per frame does not alias by a unit cell.
        let notch = filters.aliasRadius.isFinite
            ? ReflectionNotch(valid.compactMap { spectra[$0]?.values }, geometry: geometry) : nil
        // Then each frame with its next `neighbours` readable frames, measured while the
        // chain is still being linked (`chainWithPairs`).
        let (chain, pairs, pairPeaks) = chainWithPairs(valid, spectra, notch: notch)
        var edges: [PairShift] = []
        for (p, m) in pairPeaks.enumerated() {
            if let m, m.significance >= options.minSignificance {
                edges.append(PairShift(i: pairs[p].0, j: pairs[p].1, shift: SIMD2(m.dx, m.dy)))
            }
        }
        state.positions = JointShifts.solve(count: n, pairs: edges, threshold: options.outlierThresholdPx)
        for k in 0..<n where !spectra.has(k) { state.positions[k] = nil }
        if state.positions.allSatisfy({ $0 == nil }), let k = valid.first { state.positions[k] = .zero }

        // Re-measure every frame against the average of the others.
        try refine(&state, spectra: spectra, valid: valid, notch: notch)
        // A block of frames that slipped by a lattice vector at an uncertain link of the
        // chain: the frames after the link, summed, against those before it.
        if let notch, moveSlippedBlocks(&state.positions, chain: chain, valid: valid, spectra: spectra, notch: notch,
                                        radius: localRadius) {
            try refine(&state, spectra: spectra, valid: valid, notch: notch, continuity: true)
        }
        // Gauge: the group average is the reference (mean used position = 0).
        var positions = state.positions
        let used = positions.compactMap { $0 }
        if !used.isEmpty {
            let mean = used.reduce(SIMD2<Double>.zero, +) / Double(used.count)
            for k in positions.indices { positions[k] = positions[k].map { $0 - mean } }
        }
        return GroupSolution(positions: positions, scores: state.scores, rejections: state.rejections,
                             average: sum(spectra, positions), usedCount: used.count)
    }

    /// Rounds of "average of the others → re-measure each frame against it" (step 4 of
    /// `RigidRegistration`) until no frame moves by half the sub-pixel grid.
    /// `continuity`: in the rounds after a block of frames moved, a frame whose aliases the
    /// non-periodic content cannot tell apart (within `Correlator.minAliasMargin` σ of the
    /// best) takes the one nearest where its neighbours in time put it. Single frames that
    /// went with a slipped block stay there otherwise: against the average, their own
    /// content may favour neither alias.
    func refine(_ state: inout GroupState, spectra: SpectrumStore, valid: [Int], notch: ReflectionNotch?,
                continuity: Bool = false) throws {
        let tolerance = 0.5 / Double(Swift.max(1, options.upsampleFactor))
        // Aliases are checked in the first round and again after a round that moved a frame
        // to another alias (which then earns up to two extra rounds).
        var checkAliases = true
        for round in 1...(Swift.max(1, options.iterations) + 2) {
            let results = try remeasure(state.positions, spectra: spectra, valid: valid, notch: notch,
                                        aliasNotch: checkAliases ? notch : nil, continuity: continuity)
            if valid.count == 1 {
                // A lone frame is its own reference.
                state.scores[valid[0]] = 1; state.positions[valid[0]] = .zero
                break
            }
            let before = state.positions
            for (v, k) in valid.enumerated() {
                if let m = results[v], m.significance >= options.minSignificance, m.ncc >= options.minScore {
                    state.positions[k] = SIMD2(m.dx, m.dy); state.scores[k] = m.ncc; state.rejections[k] = nil
                } else {
                    state.positions[k] = nil; state.scores[k] = Swift.max(0, results[v]?.ncc ?? 0); state.rejections[k] = "noise"
                }
            }
            excludeFarFrames(&state.positions, &state.rejections)
            // Converged (no frame moved by half the refinement grid, the same frames used):
            // a further round would reproduce the same positions.
            var converged = true
            checkAliases = false
            for k in valid {
                switch (before[k], state.positions[k]) {
                case let (a?, b?):
                    if abs(a.x - b.x) > tolerance || abs(a.y - b.y) > tolerance { converged = false }
                    if ((a - b) * (a - b)).sum() > filters.aliasRadius * filters.aliasRadius { checkAliases = true }
                case (nil, nil): break
                default: converged = false
                }
            }
            if converged || (!checkAliases && round >= Swift.max(1, options.iterations)) { break }
        }
    }

    /// One round of `refine`: each valid frame against the average of the others, around its
    /// position (`aliasNotch`: its alias checked) or, without one, by a full search.
    func remeasure(_ positions: [SIMD2<Double>?], spectra: SpectrumStore, valid: [Int], notch: ReflectionNotch?,
                   aliasNotch: ReflectionNotch?, continuity: Bool) throws -> [CorrelationPeak?] {
        let average = sum(spectra, positions)
        let contributors = positions.indices.filter { positions[$0] != nil }.count
        let expected = aliasNotch != nil && continuity
            ? Self.expectedPositions(positions) : [SIMD2<Double>?](repeating: nil, count: positions.count)
        return try parallelMap(valid.count) { v, c in
            let k = valid[v]
            guard let s = spectra[k] else { return nil }
            var reference = average
            var others = contributors
            if let p = positions[k] {
                self.subtractShifted(s, by: p, from: &reference)
                others -= 1
            }
            guard others > 0 else { return nil }
            if let p = positions[k] {
                return c.measure(s, against: reference, prediction: p, radius: localRadius, notch: aliasNotch,
                                 expected: expected[k])
            }
            reference.coarse = self.coarseAverage(spectra, positions, excluding: k)
            return c.measure(s, against: reference, notch: notch)
        }
    }

    /// At every chain link whose alias was unclear (margin below `Correlator.minAliasMargin`),
    /// and at least at the `slipChecks` least clear ones, the positioned frames
    /// after the link are summed and measured against those before it (around zero, with
    /// the alias chosen by the non-periodic content); when another alias wins, every frame
    /// after the link moves by it. Two sums of many frames decide an alias that one frame
    /// against the average of all others cannot: there, a slipped block nearly as large as
    /// the rest pulls its own frames back. Returns whether a block moved.
    func moveSlippedBlocks(_ positions: inout [SIMD2<Double>?], chain: TimeChain, valid: [Int], spectra: SpectrumStore,
                           notch: ReflectionNotch, radius: Double) -> Bool {
        let margins = valid.compactMap { k in chain.linkMargin[k].map { (k: k, margin: $0) } }
            .sorted { $0.margin < $1.margin }
        let unclear = margins.filter { $0.margin < Correlator.minAliasMargin }.count
        let links = margins.prefix(Swift.max(Self.slipChecks, unclear))
        var moved = false
        for link in links {
            var before = positions, after = positions
            for k in positions.indices { if k < link.k { after[k] = nil } else { before[k] = nil } }
            guard before.compactMap({ $0 }).count >= 2, after.compactMap({ $0 }).count >= 2 else { continue }
            let empty = CoarseImage(pixels: [], mask: [])
            // The two sums at once, one per core.
            let sums = ResultSlots<[Complex]>(count: 2)
            let sides = [before, after]
            DispatchQueue.concurrentPerform(iterations: 2) { side in
                sums.set(side, .success(self.bandSum(spectra, sides[side])))
            }
            guard case .success(let sumBefore)? = sums.get(0), case .success(let sumAfter)? = sums.get(1) else { continue }
            let a = BandSpectrum(values: sumBefore, coarse: empty)
            let b = BandSpectrum(values: sumAfter, coarse: empty)
            guard let m = correlators[0].measure(b, against: a, prediction: .zero, radius: radius, notch: notch,
                                                 aliasReach: 3) else { continue }
            let d = SIMD2(m.dx, m.dy)
            guard (d * d).sum() > filters.aliasRadius * filters.aliasRadius else { continue }
            for k in positions.indices where k >= link.k { positions[k] = positions[k].map { $0 + d } }
            moved = true
        }
        return moved
    }

    /// Where its neighbours in time put each frame: the positions of the nearest positioned
    /// frames before and after it, interpolated in frame order (nil at either end).
    static func expectedPositions(_ positions: [SIMD2<Double>?]) -> [SIMD2<Double>?] {
        var before = [Int?](repeating: nil, count: positions.count), after = before
        var last: Int? = nil
        for k in positions.indices { before[k] = last; if positions[k] != nil { last = k } }
        last = nil
        for k in positions.indices.reversed() { after[k] = last; if positions[k] != nil { last = k } }
        return positions.indices.map { k in
            guard let a = before[k], let b = after[k] else { return nil }
            return positions[a]! + Double(k - a) / Double(b - a) * (positions[b]! - positions[a]!)
        }
    }

    /// Chain links checked for a slipped block of frames, at least.
    static var slipChecks: Int { 3 }

    /// Search radius (px) around a position already known to the right lattice alias: below
    /// the alias radius, at least one grid step.
    var localRadius: Double { Swift.max(Swift.min(filters.aliasRadius, 3), Swift.max(geometry.stepX, geometry.stepY)) }

    /// Frames of the chain's segment summed into the reference of its next link.
    static var chainReference: Int { 4 }

    /// The time chain (`timeChain`) and each frame measured against its next `neighbours`
    /// readable frames. Within one chain segment a pair is searched only around the chain's
    /// prediction: the fine correlation cannot tell lattice aliases apart, and a prediction
    /// from small consecutive increments is more reliable than a coarse estimate over a
    /// longer time (which may be ill-conditioned along a straight boundary).
    ///
    /// The chain links one frame after another on this thread; a pair is measured on the
    /// other threads as soon as the chain positions of both its frames are final (every
    /// frame the chain has passed, except its current segment's first, which `relinkFirst`
    /// may still move), the rest on all threads once the chain is done. Each pair's result
    /// depends only on its frames and prediction, so the order of work does not change it.
    /// Returns the pairs as frame indices, with their peaks.
    func chainWithPairs(_ valid: [Int], _ spectra: SpectrumStore, notch: ReflectionNotch?)
        -> (chain: TimeChain, pairs: [(Int, Int)], peaks: [CorrelationPeak?]) {
        var pairs: [(Int, Int)] = []
        var byLater = [[Int]](repeating: [], count: valid.count)   // pairs by their later frame's place
        for a in valid.indices {
            for b in (a + 1)..<Swift.min(valid.count, a + 1 + Swift.max(1, options.neighbours)) {
                byLater[b].append(pairs.count)
                pairs.append((valid[a], valid[b]))
            }
        }
        // The coarse peaks of consecutive frames (the chain's usual links), on all threads first.
        let consecutive = (try? parallelMap(valid.count) { i, c -> CorrelationPeak? in
            guard i > 0, let s = spectra[valid[i]], let r = spectra[valid[i - 1]] else { return nil }
            return c.coarsePeak(s, r)
        }) ?? []
        let peaks = ResultSlots<CorrelationPeak?>(count: pairs.count)
        let queue = WorkQueue<(pair: Int, prediction: SIMD2<Double>?)>()
        let (allPairs, radius) = (pairs, filters.aliasRadius)
        let measure: @Sendable (Int, SIMD2<Double>?, Correlator) -> Void = { p, prediction, c in
            let (i, j) = allPairs[p]
            peaks.set(p, .success(prediction.map {
                c.measure(spectra[j]!, against: spectra[i]!, prediction: $0, radius: radius)
            } ?? c.measure(spectra[j]!, against: spectra[i]!)))
        }
        let workers = DispatchGroup()
        for t in 1..<correlators.count {
            let c = UncheckedSendable(correlators[t])
            workers.enter()
            Thread {
                while let item = queue.take() { measure(item.pair, item.prediction, c.value) }
                workers.leave()
            }.start()
        }
        var waiting: [Int] = [], passedSoFar = 0
        func release(_ chain: TimeChain, passed: Int, pending: Int?) {
            while passedSoFar < passed { waiting += byLater[passedSoFar]; passedSoFar += 1 }
            var ready: [(pair: Int, prediction: SIMD2<Double>?)] = []
            waiting.removeAll { p in
                let (i, j) = pairs[p]
                guard i != pending && j != pending else { return false }
                ready.append((p, chain.relative(i, j)))
                return true
            }
            queue.push(ready)
        }
        let chain = timeChain(valid, spectra, notch: notch, consecutive: consecutive, settled: release)
        release(chain, passed: valid.count, pending: nil)
        queue.close()
        while let item = queue.take() { measure(item.pair, item.prediction, correlators[0]) }
        workers.wait()
        return (chain, pairs, (0..<pairs.count).map { (try? peaks.get($0)?.get()) ?? nil })
    }

    /// Positions of frames linked one after another in time order (`TimeChain`).
    ///
    /// Frame `k` is measured against the chain's last frame (its coarse image, and the sum
    /// of the segment's last `chainReference` band spectra on its gauge) around the coarse
    /// estimate and, once the drift has proved steady, also around a constant-velocity
    /// prediction (the higher fine peak wins: the coarse stage can lock onto content fixed
    /// to the scan); with a lattice, the alias is chosen by the non-periodic content
    /// (`Correlator.measure`, `notch`).
    /// Steady means the last increments were predicted by the velocity before them to within
    /// a quarter of the alias radius, RMS; otherwise (frame-to-frame jumps) the prediction
    /// would only add a lattice alias to choose from. A frame that does not link
    /// significantly is left out (the next frame tries the same last frame again) unless
    /// the last frame is the segment's only one (then the new frame starts over in its
    /// place) or the gap reached three frames (then a new segment starts).
    func timeChain(_ order: [Int], _ spectra: SpectrumStore, notch: ReflectionNotch?, consecutive: [CorrelationPeak?],
                   settled: (_ chain: TimeChain, _ passed: Int, _ pending: Int?) -> Void) -> TimeChain {
        var chain = TimeChain(count: spectra.count)
        let maxGap = 3
        var last: Int? = nil, segmentLength = 0
        var velocity: SIMD2<Double>? = nil   // px per frame
        var misses: [Double] = []            // |increment − prediction|² of the segment's links
        var recent: [Int] = []               // the segment's frames, in order
        for (i, k) in order.enumerated() {
            defer { settled(chain, i + 1, recent.first) }
            guard let a = last else {
                chain.start(k); last = k; segmentLength = 1; velocity = nil; misses = []; recent = [k]; continue
            }
            let gap = Double(k - a)
            let lastMisses = misses.suffix(4)
            let steady = lastMisses.count >= 2
                && (lastMisses.reduce(0, +) / Double(lastMisses.count)).squareRoot() <= 0.25 * filters.aliasRadius
            // The reference: the segment's last `chainReference` frames on frame `a`'s
            // gauge. Their sum correlates with the new frame's non-periodic content with
            // less noise than one frame does, which decides the lattice alias at low dose.
            var onA = [SIMD2<Double>?](repeating: nil, count: spectra.count)
            for j in recent.suffix(Self.chainReference) { onA[j] = chain.relative(a, j) }
            var reference = spectra[a]!
            if recent.count > 1 { reference.values = bandSum(spectra, onA) }
            let m = correlators[0].measure(spectra[k]!, against: reference,
                                           fallback: steady ? velocity.map { $0 * gap } : nil, notch: notch,
                                           coarse: i > 0 && i < consecutive.count && order[i - 1] == a ? consecutive[i] : nil)
            if let m, m.significance >= options.minSignificance {
                let step = SIMD2(m.dx, m.dy)
                if let v = velocity { let e = step - v * gap; misses.append((e * e).sum()) }
                chain.link(k, to: a, by: step, aliasMargin: m.aliasMargin)
                velocity = step / gap; last = k; segmentLength += 1; recent.append(k)
            } else if segmentLength == 1 || k - a >= maxGap {
                relinkFirst(recent, &chain, spectra, notch: notch)
                chain.start(k); last = k; segmentLength = 1; velocity = nil; misses = []; recent = [k]
            }
        }
        relinkFirst(recent, &chain, spectra, notch: notch)
        return chain
    }

    /// The first frame of a segment was linked against one frame, the others against the
    /// sum of several: it is measured again against the sum of the `chainReference` frames
    /// after it (around its chain position, aliases within three lattice vectors compared
    /// by the non-periodic content) and moved when another alias wins.
    func relinkFirst(_ segment: [Int], _ chain: inout TimeChain, _ spectra: SpectrumStore, notch: ReflectionNotch?) {
        guard let notch, segment.count > Self.chainReference else { return }
        let f = segment[0], b = segment[1]
        var onB = [SIMD2<Double>?](repeating: nil, count: spectra.count)
        for j in segment[1...Self.chainReference] { onB[j] = chain.relative(b, j) }
        guard let current = chain.relative(b, f), var reference = spectra[b] else { return }
        reference.values = bandSum(spectra, onB)
        if let m = correlators[0].measure(spectra[f]!, against: reference, prediction: current, radius: localRadius,
                                          notch: notch, aliasReach: 3),
           m.significance >= options.minSignificance {
            chain.move(f, by: SIMD2(m.dx, m.dy) - current)
        }
    }

    /// Frames more than `maxShiftPx` (either axis) from the median position cannot share
    /// enough of the reference: rejected (`"overlap"`) and kept out of the average, so they
    /// do not bias the group reference either.
    func excludeFarFrames(_ positions: inout [SIMD2<Double>?], _ rejections: inout [String?]) {
        let used = positions.compactMap { $0 }
        guard used.count > 2 else { return }
        let xs = used.map(\.x).sorted(), ys = used.map(\.y).sorted()
        let median = SIMD2(xs[xs.count / 2], ys[ys.count / 2])
        for k in positions.indices {
            guard let p = positions[k] else { continue }
            if abs(p.x - median.x) > options.maxShiftPx || abs(p.y - median.y) > options.maxShiftPx {
                positions[k] = nil; rejections[k] = "overlap"
            }
        }
    }

    /// Σ of the spectra with a position, each moved by −position (content onto the
    /// reference), with the mean of their coarse images.
    func sum(_ spectra: SpectrumStore, _ positions: [SIMD2<Double>?]) -> BandSpectrum {
        let cg = coarseGeometry, m = cg.gridWidth * cg.gridHeight
        var coarse = CoarseImage(pixels: [Float](repeating: 0, count: m), mask: [Float](repeating: 0, count: m))
        var out = BandSpectrum(values: [Complex](repeating: .zero, count: geometry.gridHeight * geometry.halfWidth),
                               coarse: coarse)
        var contributors = 0
        for k in 0..<spectra.count {
            guard let p = positions[k], let s = spectra[k] else { continue }
            addShifted(s, by: p, sign: 1, to: &out)
            cg.accumulate(s.coarse, movedBy: p, into: &coarse)
            contributors += 1
        }
        out.coarse = cg.finishAverage(coarse, contributors: contributors)
        return out
    }

    /// The band spectra of `sum` without the coarse images.
    func bandSum(_ spectra: SpectrumStore, _ positions: [SIMD2<Double>?]) -> [Complex] {
        var out = BandSpectrum(values: [Complex](repeating: .zero, count: geometry.gridHeight * geometry.halfWidth),
                               coarse: CoarseImage(pixels: [], mask: []))
        for k in 0..<spectra.count {
            guard let p = positions[k], let s = spectra[k] else { continue }
            addShifted(s, by: p, sign: 1, to: &out)
        }
        return out.values
    }

    /// Mean coarse image of the positioned frames (except `excluding`) on the reference.
    func coarseAverage(_ spectra: SpectrumStore, _ positions: [SIMD2<Double>?], excluding: Int?) -> CoarseImage {
        let cg = coarseGeometry, n = cg.gridWidth * cg.gridHeight
        var acc = CoarseImage(pixels: [Float](repeating: 0, count: n), mask: [Float](repeating: 0, count: n))
        var count = 0
        for k in 0..<spectra.count where k != excluding {
            guard let p = positions[k], let s = spectra[k] else { continue }
            cg.accumulate(s.coarse, movedBy: p, into: &acc)
            count += 1
        }
        return cg.finishAverage(acc, contributors: count)
    }

    func subtractShifted(_ s: BandSpectrum, by p: SIMD2<Double>, from out: inout BandSpectrum) {
        addShifted(s, by: p, sign: -1, to: &out)
    }

    /// `out += sign · S · exp(+2πi k·p)`: the spectrum of the frame moved by −p (Fourier shift
    /// theorem), over the band's disc (`CorrelationFilters.bandColumns`; every use of a sum
    /// weights it by the band-pass, which is zero beyond).
    private func addShifted(_ s: BandSpectrum, by p: SIMD2<Double>, sign: Float, to out: inout BandSpectrum) {
        let g = geometry, hw = g.halfWidth
        // Column twiddles split into real and imaginary parts, so the loop below runs on
        // plain floats, eight bins at a time (each bin with the same operations as one at a time).
        var exRe = [Float](repeating: 0, count: hw), exIm = exRe
        for c in 0..<hw {
            let a = 2 * Double.pi * Double(c) * p.x / Double(g.width)
            exRe[c] = Float(cos(a)); exIm[c] = Float(sin(a))
        }
        s.values.withUnsafeBytes { src in
        out.values.withUnsafeMutableBytes { dst in
        exRe.withUnsafeBufferPointer { er in
        exIm.withUnsafeBufferPointer { ei in
        filters.bandColumns.withUnsafeBufferPointer { columns in
            let v = src.bindMemory(to: Float.self), o = dst.bindMemory(to: Float.self)
            let sign8 = SIMD8<Float>(repeating: sign)
            for r in 0..<g.gridHeight {
                let end = columns[r]
                guard end > 0 else { continue }
                let ky = r <= g.gridHeight / 2 ? r : r - g.gridHeight
                let a = 2 * Double.pi * Double(ky) * p.y / Double(g.height)
                let (yr, yi) = (Float(cos(a)), Float(sin(a)))
                let (yr8, yi8) = (SIMD8<Float>(repeating: yr), SIMD8<Float>(repeating: yi))
                let base = 2 * r * hw
                var c = 0
                while c + 8 <= end {
                    let xr = UnsafeRawPointer(er.baseAddress! + c).loadUnaligned(as: SIMD8<Float>.self)
                    let xi = UnsafeRawPointer(ei.baseAddress! + c).loadUnaligned(as: SIMD8<Float>.self)
                    let eRe = xr * yr8 - xi * yi8, eIm = xr * yi8 + xi * yr8
                    let at = base + 2 * c
                    let z = UnsafeRawPointer(v.baseAddress! + at).loadUnaligned(as: SIMD16<Float>.self)
                    var w = UnsafeRawPointer(o.baseAddress! + at).loadUnaligned(as: SIMD16<Float>.self)
                    let (vr, vi) = (z.evenHalf, z.oddHalf)
                    w.evenHalf = w.evenHalf + sign8 * (vr * eRe - vi * eIm)
                    w.oddHalf = w.oddHalf + sign8 * (vr * eIm + vi * eRe)
                    UnsafeMutableRawPointer(o.baseAddress! + at).storeBytes(of: w, as: SIMD16<Float>.self)
                    c += 8
                }
                while c < end {
                    let eRe = er[c] * yr - ei[c] * yi, eIm = er[c] * yi + ei[c] * yr
                    let (vr, vi) = (v[base + 2 * c], v[base + 2 * c + 1])
                    o[base + 2 * c] += sign * (vr * eRe - vi * eIm)
                    o[base + 2 * c + 1] += sign * (vr * eIm + vi * eRe)
                    c += 1
                }
            }
        }}}}}
    }

    /// A measured position offset into the run gauge, as a contract `FrameShift`, with the
    /// overlap test applied.
    func finalShift(_ m: Measured, offset: SIMD2<Double>) -> FrameShift {
        guard let p = m.position, m.rejection == nil else {
            return FrameShift(dx: 0, dy: 0, score: Swift.min(1, Swift.max(0, m.score)), rejection: m.rejection ?? "noise")
        }
        let d = p + offset
        let score = Swift.min(1, Swift.max(0, m.score))
        let w = Double(geometry.width), h = Double(geometry.height)
        let overlap = Swift.max(0, w - abs(d.x)) * Swift.max(0, h - abs(d.y)) / (w * h)
        let outside = abs(d.x) > options.maxShiftPx || abs(d.y) > options.maxShiftPx || overlap < options.minOverlapFraction
        return FrameShift(dx: d.x, dy: d.y, score: score, rejection: outside ? "overlap" : nil)
    }
}

/// Frame positions from consecutive links, comparable only within one segment.
struct TimeChain {
    private var position: [SIMD2<Double>?]
    private var segment: [Int?]
    private var segments = 0

    init(count: Int) {
        position = [SIMD2<Double>?](repeating: nil, count: count)
        segment = [Int?](repeating: nil, count: count)
        linkMargin = [Double?](repeating: nil, count: count)
    }

    /// Frame `k` starts a new segment.
    mutating func start(_ k: Int) { position[k] = .zero; segment[k] = segments; segments += 1 }

    /// Frame `k` sits at `step` from frame `a` (already in the chain).
    mutating func link(_ k: Int, to a: Int, by step: SIMD2<Double>, aliasMargin: Double? = nil) {
        position[k] = position[a]! + step; segment[k] = segment[a]
        linkMargin[k] = aliasMargin
    }

    /// Frame `k` moves by `d` (its links keep their margins).
    mutating func move(_ k: Int, by d: SIMD2<Double>) { position[k] = position[k].map { $0 + d } }

    /// How clearly the link into each frame chose its lattice alias (`CorrelationPeak.aliasMargin`).
    private(set) var linkMargin: [Double?]

    /// `p_j − p_i` when both frames are in the same segment.
    func relative(_ i: Int, _ j: Int) -> SIMD2<Double>? {
        guard let si = segment[i], si == segment[j], let a = position[i], let b = position[j] else { return nil }
        return b - a
    }
}

/// Items handed from one thread to workers: `take` waits until an item is ready, and returns
/// nil once the queue is closed and empty.
final class WorkQueue<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Item] = []
    private var next = 0
    private var closed = false

    func push(_ new: [Item]) {
        guard !new.isEmpty else { return }
        condition.lock(); items += new; condition.broadcast(); condition.unlock()
    }

    func close() {
        condition.lock(); closed = true; condition.broadcast(); condition.unlock()
    }

    func take() -> Item? {
        condition.lock(); defer { condition.unlock() }
        while next == items.count && !closed { condition.wait() }
        guard next < items.count else { return nil }
        next += 1
        return items[next - 1]
    }
}
