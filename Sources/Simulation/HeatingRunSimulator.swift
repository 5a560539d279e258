import Foundation
import FrameCore

/// A synthetic in-situ STEM heating run with exact ground truth.
///
/// Every frame is rendered by sampling the analytic specimen model (projected layered
/// lattice, front, thickness; see `LayeredLattice`, `FrontKinetics`, `Specimen`) at the
/// specimen position each scan pixel saw: the raster position distorted by flyback and line
/// jitter, minus the specimen drift at that pixel's acquisition time (`ScanModel`,
/// `DriftPath`). Images are never shifted after rendering, so drift, shear and jitter are
/// exact, and the truth values are defined as the outputs they check are (`FrameTruth`).
/// The detector (`DetectorModel`) then adds Poisson shot noise, gain, offset and read noise.
///
/// Rendering is a pure function of (options, frame index): each frame draws from its own
/// random stream, so frames may be rendered in any order and in parallel.
public struct HeatingRunSimulator: Sendable {
    public let options: SimulationOptions
    public let programme: TemperatureProgramme
    public let kinetics: FrontKinetics
    public let scan: ScanModel
    public let drift: DriftPath
    public let vibration: Vibration
    public let detector: DetectorModel
    let specimen: Specimen
    let slots: [FrameSlot]
    let frameTruths: [FrameTruth]
    public let truth: RunTruth

    struct FrameSlot: Sendable {
        var startS: Double
        var hold: Int?
        var indexInHold: Int
        var isNoise: Bool
    }

    /// Builds the run (schedule, drift path, specimen, truth); nothing is rendered yet.
    /// `options` should pass `validate()` (the command line checks it first).
    public init(_ options: SimulationOptions) {
        self.options = options
        let o = options
        programme = TemperatureProgramme(startC: o.startTemperatureC, preHeatS: o.preHeatS,
                                         rampRateCPerS: o.rampRateCPerS, holds: o.holds)
        scan = ScanModel(options: o)
        detector = DetectorModel(options: o)
        kinetics = FrontKinetics(options: o, programme: programme)
        let dur = scan.frameDurationS
        let slots = Self.schedule(o, programme: programme, frameDurationS: dur)
        self.slots = slots
        let t0 = slots.first?.startS ?? 0
        let tEnd = (slots.last?.startS ?? 0) + dur
        drift = DriftPath(options: o, programme: programme, fromS: t0 - 1, toS: tEnd + 1, zeroAtS: t0 + dur / 2)
        vibration = Vibration(options: o, fromS: t0 - 1, toS: tEnd + 1)
        let grain = Self.makeSpecimen(o, slots: slots, drift: drift, vibration: vibration, scan: scan)
        specimen = grain.specimen
        let geometry = TruthGeometry(w: o.size, h: o.height, p: o.pixelSizeNm, drift: drift, vibration: vibration,
                                     scan: scan, specimen: grain.specimen)
        let truths = Self.frameTruths(o, slots: slots, geometry: geometry, lattice: grain.lattice,
                                      programme: programme, kinetics: kinetics, t0: t0)
        frameTruths = truths
        truth = HeatingRunSimulator.runTruth(options: o, lattice: grain.lattice, boundaryPoint: grain.boundaryPoint,
                                             propagation: grain.lattice.along, kinetics: kinetics, frames: truths,
                                             frameDuration: dur, firstFrameEpochS: o.programmeStartEpochS + t0)
    }

    /// Frame schedule: frames spread evenly over each hold (inside its margins), starts
    /// quantised to 1 ms so that file metadata carries them exactly.
    static func schedule(_ o: SimulationOptions, programme: TemperatureProgramme, frameDurationS dur: Double) -> [FrameSlot] {
        func ms(_ t: Double) -> Double { (t * 1000).rounded() / 1000 }
        var slots: [FrameSlot] = []
        for (k, _) in o.holds.enumerated() {
            if o.rampFrameHolds.contains(k), let ramp = programme.rampInto(k), ramp.endS - ramp.startS > 2 * dur {
                slots.append(FrameSlot(startS: ms(0.5 * (ramp.startS + ramp.endS) - dur / 2), hold: nil, indexInHold: 0, isNoise: false))
            }
            guard let seg = programme.holdSegment(k) else { continue }
            let n = max(1, o.framesPerStep)
            let free = max(0, seg.endS - seg.startS - 2 * o.holdMarginS - dur)
            for j in 0..<n {
                let spread = n == 1 ? free / 2 : free * Double(j) / Double(n - 1)
                let t = seg.startS + o.holdMarginS + (o.frameIntervalS.map { $0 * Double(j) } ?? spread)
                // Noise frames keep their hold whatever the frames per step (index taken modulo n).
                let noise = o.noiseFrames.contains { $0.hold == k && $0.frame % n == j }
                slots.append(FrameSlot(startS: ms(t), hold: k, indexInHold: j, isNoise: noise))
            }
        }
        return slots
    }

    /// Specimen geometry, centred on frame 0's field of view: the analysed grain's lattice,
    /// its boundary, the neighbour, thickness and contamination.
    static func makeSpecimen(_ o: SimulationOptions, slots: [FrameSlot], drift: DriftPath, vibration: Vibration,
                             scan: ScanModel) -> (specimen: Specimen, lattice: LayeredLattice, boundaryPoint: SIMD2<Double>) {
        let p = o.pixelSizeNm
        var rng = SeededRandom.stream(o.seed, 0x5BEC1)
        let centre = SIMD2(Double(o.size - 1) / 2 * p, Double(o.height - 1) / 2 * p)
        let origin = centre + SIMD2(rng.uniform() - 0.5, rng.uniform() - 0.5) * o.inPlaneSpacingNm
        let lattice = LayeredLattice(originNm: origin, layerAngleDeg: o.layerAngleDeg,
                                     inPlaneSpacingNm: o.inPlaneSpacingNm, layerSpacingNm: o.layerSpacingNm)
        let propagation = lattice.along
        let boundaryPoint = centre - o.boundaryOffsetNm * propagation
        let thickness = ThicknessField(amplitude: o.thicknessVariation, rng: &rng)
        var neighbourLattice: LayeredLattice?
        var amorphous: AmorphousColumns?
        let box = specimenBox(o, slots: slots, drift: drift, vibration: vibration, scan: scan)
        switch o.neighbour {
        case .grain(let angle):
            neighbourLattice = LayeredLattice(originNm: centre + SIMD2(0.07, -0.05), layerAngleDeg: angle,
                                              inPlaneSpacingNm: o.inPlaneSpacingNm, layerSpacingNm: o.layerSpacingNm)
        case .amorphous:
            let b = boundaryPoint
            amorphous = AmorphousColumns(xMin: box.xMin, xMax: box.xMax, yMin: box.yMin, yMax: box.yMax, cell: 0.33,
                                         densityPerNm2: 18, include: { (($0 - b) * propagation).sum() < -0.1 },
                                         thickness: thickness, rng: &rng)
        case .vacuum:
            break
        }
        let profile = ColumnProfile(coreSigmaNm: o.probeSigmaNm, tailSigmaNm: o.tailSigmaNm, tailFraction: o.tailFraction)
        var grainModel = Specimen(lattice: lattice, profile: profile, liWeight: o.liColumnWeight / o.tmColumnWeight,
                            oWeight: o.oColumnWeight / o.tmColumnWeight, boundaryPointNm: boundaryPoint,
                            propagation: propagation, neighbour: o.neighbour, neighbourLattice: neighbourLattice,
                            amorphous: amorphous, thickness: thickness, backgroundLevel: o.backgroundLevel)
        if o.contaminationBlobs > 0 {
            // Its own stream: adding blobs changes nothing else of the specimen.
            var blobRNG = SeededRandom.stream(o.seed, 0xC017A)
            grainModel.contamination = ContaminationBlobs(count: o.contaminationBlobs, xMin: box.xMin, xMax: box.xMax,
                                                          yMin: box.yMin, yMax: box.yMax, sigmaNm: o.contaminationSigmaNm,
                                                          height: o.contaminationHeight, rng: &blobRNG)
        }
        return (grainModel, lattice, boundaryPoint)
    }

    /// The specimen area any frame sees (nm): the field of view widened by the drift over
    /// the run, the scan's jitter, hum and flyback, and the vibration.
    static func specimenBox(_ o: SimulationOptions, slots: [FrameSlot], drift: DriftPath, vibration: Vibration,
                            scan: ScanModel) -> (xMin: Double, xMax: Double, yMin: Double, yMax: Double) {
        let p = o.pixelSizeNm, dur = scan.frameDurationS
        var dMin = SIMD2<Double>(0, 0), dMax = SIMD2<Double>(0, 0)
        for s in slots {
            for t in [s.startS, s.startS + dur] {
                let d = drift.displacement(at: t)
                dMin = pointwiseMin(dMin, d); dMax = pointwiseMax(dMax, d)
            }
        }
        let vibrationBound = vibration.modes.map { abs($0.amplitude.x) + abs($0.amplitude.y) }.reduce(0, +)
        let margin = 1.0 + 3 * scan.jitterPx * p + 3 * scan.humAmplitudePx * p + scan.flybackAmplitudePx * p + vibrationBound
        return (xMin: -dMax.x - margin, xMax: Double(o.size) * p - dMin.x + margin,
                yMin: -dMax.y - margin, yMax: Double(o.height) * p - dMin.y + margin)
    }

    /// Each frame's truth: time, temperature, step, shift, Li/TM ratio and rock-salt
    /// fraction over the analysed grain inside the frame's own field of view (docs/user-guide.md,
    /// "Outputs", defines the quantities), front position, expected status and file.
    static func frameTruths(_ o: SimulationOptions, slots: [FrameSlot], geometry g: TruthGeometry, lattice: LayeredLattice,
                            programme: TemperatureProgramme, kinetics: FrontKinetics, t0: Double) -> [FrameTruth] {
        let dur = g.scan.frameDurationS
        let views = slots.map { g.view(startS: $0.startS) }
        let cationSites = g.cationSites(lattice, views: views)
        let shifts = g.shifts(slots: slots, views: views)
        let folder = RunLayout(options: o, programme: programme)
        var truths: [FrameTruth] = []
        for (idx, s) in slots.enumerated() {
            let mid = s.startS + dur / 2
            let state = Specimen.State(front: kinetics.position(at: mid),
                                       uniformMixing: kinetics.uniformMixing(atC: programme.temperature(at: mid)))
            let view = views[idx]
            var liSum = 0.0, tmSum = 0.0, liN = 0, tmN = 0
            for site in cationSites where g.inView(site.pos, view) {
                let a = g.specimen.siteAmplitude(site.tm ? .transitionMetal : .lithiumSite, at: site.pos, state: state, kinetics: kinetics)
                if site.tm { tmSum += a; tmN += 1 } else { liSum += a; liN += 1 }
            }
            // Ratio of the two sublattices' mean column intensities.
            let liTm = tmSum > 0 && liN > 0 ? (liSum / Double(liN)) / (tmSum / Double(tmN)) : 0
            var rs = 0.0
            if let f = state.front { rs = g.fractionWithin(f, view) }
            let d = shifts[idx]
            truths.append(FrameTruth(frameIndex: idx, timeS: s.startS - t0, temperatureC: programme.temperature(at: mid),
                                     stepIndex: s.hold ?? -1, shiftXPx: d.x, shiftYPx: d.y,
                                     liTmRatio: liTm, rocksaltFraction: rs,
                                     frontPositionNm: state.front, expectedStatus: s.isNoise ? "rejected:noise" : "ok",
                                     file: folder.relativePath(frame: idx, hold: s.hold, temperatureC: s.hold.map { o.holds[$0].temperatureC })))
        }
        return truths
    }

    /// What the truth is measured against: each frame's view of the specimen and the
    /// motion between frames.
    struct TruthGeometry {
        let w: Int, h: Int, p: Double
        let drift: DriftPath, vibration: Vibration, scan: ScanModel, specimen: Specimen

        /// The specimen's displacement relative to the probe: drift and vibration.
        func motion(_ t: Double) -> SIMD2<Double> { drift.displacement(at: t) + vibration.displacement(at: t) }

        /// Specimen origin of a frame's view: minus its mean displacement over its scan lines
        /// (times at which each line passes the middle of the field).
        func view(startS: Double) -> SIMD2<Double> {
            -(0..<h).map { motion(startS + scan.pixelTime(w / 2, $0)) }
                .reduce(SIMD2<Double>(0, 0), +) / Double(h)
        }

        /// Cation sites of the analysed grain, listed once over the union of the frames' views
        /// (frame i shows the specimen moved by its drift d_i, the region [−d_i, −d_i + size·p]).
        func cationSites(_ lattice: LayeredLattice, views: [SIMD2<Double>]) -> [(tm: Bool, pos: SIMD2<Double>)] {
            let lo = views.reduce(SIMD2<Double>(0, 0)) { SIMD2(min($0.x, $1.x), min($0.y, $1.y)) }
            let hi = views.reduce(SIMD2<Double>(0, 0)) { SIMD2(max($0.x, $1.x), max($0.y, $1.y)) }
            let (mr, ir) = lattice.indexRange(xMin: lo.x, xMax: hi.x + Double(w - 1) * p, yMin: lo.y,
                                              yMax: hi.y + Double(h - 1) * p, margin: 0.5)
            var sites: [(tm: Bool, pos: SIMD2<Double>)] = []
            for m in mr where m & 1 == 1 {
                for i in ir {
                    let pos = lattice.position(layer: m, column: i)
                    guard specimen.boundaryDistance(pos) >= 0 else { continue }
                    sites.append((lattice.species(layer: m) == .transitionMetal, pos))
                }
            }
            return sites
        }

        func inView(_ pos: SIMD2<Double>, _ origin: SIMD2<Double>) -> Bool {
            let r = pos - origin
            return r.x >= -0.5 * p && r.y >= -0.5 * p && r.x <= (Double(w) - 0.5) * p && r.y <= (Double(h) - 0.5) * p
        }

        /// Fraction of the grain's pixels in the view starting at `origin` closer than `front` to the boundary.
        func fractionWithin(_ front: Double, _ origin: SIMD2<Double>) -> Double {
            var inGrain = 0, within = 0
            for y in 0..<h { for x in 0..<w {
                let d = specimen.boundaryDistance(origin + SIMD2(Double(x) * p, Double(y) * p))
                if d >= 0 { inGrain += 1; if d < front { within += 1 } }
            } }
            return inGrain > 0 ? Double(within) / Double(inGrain) : 0
        }

        /// Truth shift: the translation that aligns each frame with the previous one, summed
        /// from frame 0. Without overlap (drift beyond a frame between two frames), the mean drift.
        func shifts(slots: [FrameSlot], views: [SIMD2<Double>]) -> [SIMD2<Double>] {
            var shifts = [SIMD2<Double>(0, 0)]
            for i in slots.indices.dropFirst() {
                shifts.append(shifts[i - 1] + (imageShift(from: slots[i - 1].startS, to: slots[i].startS) ?? (views[i - 1] - views[i]) / p))
            }
            return shifts
        }

        /// Between two frames: where the first one's content appears in the second, in
        /// pixels, averaged over the first's scan lines that the second shows. A specimen
        /// point imaged at pixel q₀ lies in the other frame at the pixel q whose own
        /// acquisition time t(q) satisfies q·p = point + D(t(q)) (fixed-point iteration; the
        /// drift per line is ≪ 1 px). Content that drifted Δ rows is scanned Δ line times later
        /// and has moved on by then: 0.2 % of the drift on the scan-distortion preset, which the
        /// specimen's mean displacement over the scan lines leaves out.
        func imageShift(from a: Double, to b: Double) -> SIMD2<Double>? {
            var sum = SIMD2<Double>(0, 0), n = 0
            for r in 0..<h {
                let q0 = SIMD2(Double(w / 2), Double(r))
                let point = q0 * p - motion(a + scan.pixelTime(w / 2, r))
                var q = q0
                // Fixed point: converges while the motion per line stays well below a pixel
                // (vibration adds a few tenths of a pixel per line at most).
                for _ in 0..<8 {
                    let t = b + q.y * scan.lineTimeS + scan.flybackS + q.x * scan.dwellS
                    q = (point + motion(t)) / p
                }
                // Only lines whose content the other frame shows (a line beyond its edge
                // would be "scanned" after that frame ended).
                guard q.y >= 0, q.y <= Double(h - 1) else { continue }
                sum += q - q0; n += 1
            }
            return n > 0 ? sum / Double(n) : nil
        }
    }

    public var frameCount: Int { slots.count }

    public func frameTruth(_ i: Int) -> FrameTruth { frameTruths[i] }

    /// The analysed crystal (the grain under study) on frame 0's pixels (frame `i`'s
    /// `liTmRatio` and `rocksaltFraction` are defined over the same region in its own view).
    public func analysedCrystalMask() -> Mask {
        let p = options.pixelSizeNm, w = options.size, h = options.height
        var m = Mask(width: w, height: h, fill: false)
        for y in 0..<h { for x in 0..<w where specimen.boundaryDistance(SIMD2(Double(x) * p, Double(y) * p)) >= 0 { m[x, y] = true } }
        return m
    }

    /// Distance (nm) of frame-0 pixel (x, y) from the boundary along the propagation
    /// direction; negative beyond the boundary.
    public func boundaryDistanceNm(x: Double, y: Double) -> Double {
        specimen.boundaryDistance(SIMD2(x, y) * options.pixelSizeNm)
    }

    /// Programme time at which frame `i`'s acquisition starts.
    public func frameStartS(_ i: Int) -> Double { slots[i].startS }

    /// The frame as the detector records it (uint16-valued counts in a float image).
    public func render(frame i: Int) -> Image {
        var rng = SeededRandom.stream(options.seed, UInt64(i) &+ 1)
        if slots[i].isNoise {
            // A pure-noise frame (beam blanked or probe lost): the same mean signal, no structure.
            let mean = intensity(frame: i, distortions: false, jitter: nil, step: 8).mean
            let flat = Image(width: options.size, height: options.height, fill: Float(mean))
            return detector.record(flat, rng: &rng)
        }
        let jitter = scan.lineJitter(frameStartS: slots[i].startS, rng: &rng)
        return detector.record(intensity(frame: i, distortions: true, jitter: jitter), rng: &rng)
    }

    /// The frame as the ideal acquisition would record it: the same dose and detector noise,
    /// without jitter, flyback, vibration or drift within the frame (the whole frame at its
    /// mid-acquisition position): the shot-noise floor of any registration.
    public func renderIdeal(frame i: Int) -> Image {
        var rng = SeededRandom.stream(options.seed, UInt64(i) &+ 1, 1)
        return detector.record(intensity(frame: i, distortions: false, jitter: nil), rng: &rng)
    }

    /// The line jitter (px along the fast scan) frame `i` was rendered with.
    public func lineJitterPx(frame i: Int) -> [Double] {
        var rng = SeededRandom.stream(options.seed, UInt64(i) &+ 1)
        return scan.lineJitter(frameStartS: slots[i].startS, rng: &rng)
    }

    /// The specimen point (nm) that frame `i`'s pixel (c, r) shows: the beam's raster position
    /// with flyback and the line's `jitter` (`lineJitterPx`), less the specimen's drift and
    /// vibration at the pixel's time. Two pixels showing one point show the same content.
    public func specimenPointNm(frame i: Int, x c: Int, y r: Int, jitter: [Double]) -> SIMD2<Double> {
        let p = options.pixelSizeNm, t = slots[i].startS + scan.pixelTime(c, r)
        return SIMD2((Double(c) + scan.flybackOffset(c) + jitter[r]) * p, Double(r) * p)
            - drift.displacement(at: t) - vibration.displacement(at: t)
    }

    /// Where `renderIdeal` places frame `i`'s content: the specimen displacement (nm) at
    /// mid-acquisition, with the vibration's mean over the frame's lines.
    func idealDisplacement(frame i: Int) -> SIMD2<Double> {
        let start = slots[i].startS, h = options.size, w = options.size
        return drift.displacement(at: start + scan.frameDurationS / 2) + (vibration.modes.isEmpty ? .zero
            : (0..<h).map { vibration.displacement(at: start + scan.pixelTime(w / 2, $0)) }.reduce(.zero, +) / Double(h))
    }

    /// The shift (px, as frames.csv states shifts) of frame `i` as `renderIdeal` renders it.
    public func idealShiftPx(frame i: Int) -> SIMD2<Double> {
        (idealDisplacement(frame: i) - idealDisplacement(frame: 0)) / options.pixelSizeNm
    }

    /// Expected detector values (offset + gain × expected electrons) without shot or read
    /// noise; with `distortions == false` also without jitter, flyback and within-frame
    /// drift: the whole frame is taken at its mid-acquisition time, so the content sits
    /// exactly at the truth shift.
    public func renderNoiseless(frame i: Int, distortions: Bool) -> Image {
        var jitter: [Double]?
        if distortions {
            var rng = SeededRandom.stream(options.seed, UInt64(i) &+ 1)
            jitter = scan.lineJitter(frameStartS: slots[i].startS, rng: &rng)
        }
        var img = intensity(frame: i, distortions: distortions, jitter: jitter)
        for k in 0..<img.pixels.count { img.pixels[k] = Float(detector.expectedValue(intensity: Double(img.pixels[k]))) }
        return img
    }

    /// Model intensity (TM column peak at unit thickness = 1) at every scan pixel of frame `i`.
    /// `step > 1` samples every step-th pixel only (a cheap mean estimate); `frontNm` and
    /// `widthNm` put the front there and give it that width instead of what the kinetics
    /// have, and `mixingChange` adds to the layered grain's cation mixing.
    func intensity(frame i: Int, distortions: Bool, jitter: [Double]?, step: Int = 1, frontNm: Double? = nil,
                   widthNm: Double? = nil, mixingChange: Double = 0) -> Image {
        let o = options, p = o.pixelSizeNm
        let w = o.size, h = o.height
        let start = slots[i].startS
        let mid = start + scan.frameDurationS / 2
        let state = Specimen.State(front: frontNm ?? kinetics.position(at: mid),
                                   uniformMixing: kinetics.uniformMixing(atC: programme.temperature(at: mid)) + mixingChange)
        var kinetics = kinetics
        if let widthNm { kinetics.widthNm = widthNm }
        let d0 = drift.displacement(at: start), d1 = drift.displacement(at: start + scan.frameDurationS)
        let dm = idealDisplacement(frame: i)
        let lo = pointwiseMin(pointwiseMin(d0, d1), dm), hi = pointwiseMax(pointwiseMax(d0, d1), dm)
        let shake = distortions ? vibration.modes.map { abs($0.amplitude.x) + abs($0.amplitude.y) }.reduce(0, +) / p : 0
        let jMax = (jitter?.map { abs($0) }.max() ?? 0) + (distortions ? scan.flybackAmplitudePx : 0) + shake
        let margin = (jMax + 2) * p
        let tables = specimen.tables(state: state, kinetics: kinetics,
                                     xMin: -margin - hi.x, xMax: Double(w - 1) * p + margin - lo.x,
                                     yMin: -margin - hi.y, yMax: Double(h - 1) * p + margin - lo.y)
        let ws = (w + step - 1) / step, hs = (h + step - 1) / step
        var pixels = [Float](repeating: 0, count: ws * hs)
        for ry in 0..<hs {
            let r = ry * step
            let jr = jitter?[r] ?? 0
            for cx in 0..<ws {
                let c = cx * step
                let d: SIMD2<Double>
                let xs: Double
                if distortions {
                    let t = start + scan.pixelTime(c, r)
                    d = drift.displacement(at: t) + vibration.displacement(at: t)
                    xs = Double(c) + scan.flybackOffset(c) + jr
                } else {
                    d = dm
                    xs = Double(c)
                }
                let pos = SIMD2(xs * p - d.x, Double(r) * p - d.y)
                pixels[ry * ws + cx] = Float(specimen.intensity(at: pos, tables: tables))
            }
        }
        return Image(width: ws, height: hs, pixels: pixels)
    }

    // MARK: Run truth

    static func runTruth(options o: SimulationOptions, lattice: LayeredLattice, boundaryPoint: SIMD2<Double>,
                         propagation: SIMD2<Double>, kinetics: FrontKinetics, frames: [FrameTruth],
                         frameDuration: Double, firstFrameEpochS: Double) -> RunTruth {
        let p = o.pixelSizeNm
        let steps = stepTruths(o, kinetics: kinetics, frames: frames)
        let onset = onsetTemperature(steps, kinetics: kinetics)
        let spacing = zip(o.holds.dropFirst(), o.holds).map { abs($0.temperatureC - $1.temperatureC) }.min() ?? 25
        let boundary = clippedBoundary(o, boundaryPoint: boundaryPoint, propagation: propagation)
        func px(_ v: SIMD2<Double>) -> [Double] { [TextFormat.r(v.x / p, 6), TextFormat.r(v.y / p, 6)] }
        let tmOrigin = tmOriginNearCentre(o, lattice: lattice)
        let A = lattice.alongBasisNm, B = lattice.acrossBasisNm
        let neighbour: String
        switch o.neighbour {
        case .grain(let angle): neighbour = "grain (layers at \(TextFormat.f(angle, 1)) deg)"
        case .amorphous: neighbour = "amorphous"
        case .vacuum: neighbour = "vacuum"
        }
        let hasFront = o.frontWidthNm != nil
        let date = Date(timeIntervalSince1970: firstFrameEpochS)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return RunTruth(
            preset: o.preset.cliName, seed: o.seed, frameCount: frames.count, width: o.size, height: o.height,
            format: o.format.rawValue, material: o.materialName, pixelSizeNm: TextFormat.r(p, 9),
            layerSpacingNm: o.layerSpacingNm, inPlaneSpacingNm: o.inPlaneSpacingNm, layerAngleDeg: o.layerAngleDeg,
            boundary: boundary, propagationDirection: [TextFormat.r(propagation.x, 9), TextFormat.r(propagation.y, 9)],
            neighbour: neighbour, onsetTemperatureC: onset, onsetToleranceC: spacing / 2,
            modelOnsetTemperatureC: hasFront ? o.frontOnsetTemperatureC : o.uniformMixingOnsetC,
            activationEnergyEV: hasFront ? o.activationEnergyEV : nil,
            v0NmPerS: hasFront ? kinetics.v0NmPerS.rounded() : nil, frontWidthNm: o.frontWidthNm,
            movingStepCount: steps.filter(\.moving).count, steps: steps,
            tmLattice: ColumnLatticeTruth(originPx: px(tmOrigin), alongBasisPx: px(A), acrossBasisPx: px(B), liOffsetPx: px(lattice.liOffsetNm)),
            noiseFrames: frames.filter { $0.expectedStatus != "ok" }.map(\.frameIndex),
            registrationTargetPx: [.registrationStress, .doseFloor, .strongDistortion].contains(o.preset) ? 0.15 : 0.05,
            columnPrecisionTargetPm: [.scanDistortion, .strongDistortion].contains(o.preset) ? 2 : nil,
            frameDurationS: TextFormat.r(frameDuration, 6), firstFrameTime: iso.string(from: date),
            heatingLog: o.heatingLog.rawValue, definitions: RunTruth.fieldDefinitions,
            doseScale: o.doseScale == 1 ? nil : o.doseScale)
    }

    /// Each hold's truth: times, frame counts, mean Li/TM ratio and rock-salt fraction over
    /// the frames expected to be used, front positions and velocity.
    static func stepTruths(_ o: SimulationOptions, kinetics: FrontKinetics, frames: [FrameTruth]) -> [StepTruth] {
        var steps: [StepTruth] = []
        for k in o.holds.indices {
            let fs = frames.filter { $0.stepIndex == k }
            guard let first = fs.first, let last = fs.last else { continue }
            let used = fs.filter { $0.expectedStatus == "ok" }
            let ref = used.isEmpty ? fs : used
            let li = ref.map(\.liTmRatio).reduce(0, +) / Double(ref.count)
            let rs = ref.map(\.rocksaltFraction).reduce(0, +) / Double(ref.count)
            var v: Double?
            if o.frontWidthNm != nil, first.frontPositionNm != nil { v = kinetics.velocity(atC: o.holds[k].temperatureC) }
            let moving = (last.frontPositionNm ?? 0) - (first.frontPositionNm ?? 0) >= 1
            steps.append(StepTruth(stepIndex: k, temperatureC: o.holds[k].temperatureC, tStartS: first.timeS, tEndS: last.timeS,
                                   nFrames: fs.count, nUsed: used.count, liTmRatioMean: TextFormat.r(li, 8),
                                   rocksaltFraction: TextFormat.r(rs, 8),
                                   frontPositionStartNm: first.frontPositionNm.map { TextFormat.r($0, 6) },
                                   frontPositionEndNm: last.frontPositionNm.map { TextFormat.r($0, 6) },
                                   frontVelocityNmPerS: v.map { TextFormat.r($0, 9) }, moving: moving))
        }
        return steps
    }

    /// Onset: the first hold in which the transformation has begun (uniform cation mixing
    /// above zero at its temperature, or a front in any of its frames); nil when the first
    /// hold has already begun or no hold does.
    static func onsetTemperature(_ steps: [StepTruth], kinetics: FrontKinetics) -> Double? {
        func begun(_ st: StepTruth) -> Bool {
            kinetics.uniformMixing(atC: st.temperatureC) > 0 || st.frontPositionStartNm != nil || st.frontPositionEndNm != nil
        }
        guard let s0 = steps.first, !begun(s0) else { return nil }
        return steps.dropFirst().first(where: begun)?.temperatureC
    }

    /// The boundary line clipped to frame 0, px.
    static func clippedBoundary(_ o: SimulationOptions, boundaryPoint: SIMD2<Double>, propagation: SIMD2<Double>) -> LineSegment {
        let w = Double(o.size - 1), hgt = Double(o.height - 1)
        let bPx = boundaryPoint / o.pixelSizeNm
        let dir = SIMD2(-propagation.y, propagation.x)
        var ts: [Double] = []
        if abs(dir.x) > 1e-12 { for x in [0.0, w] { ts.append((x - bPx.x) / dir.x) } }
        if abs(dir.y) > 1e-12 { for y in [0.0, hgt] { ts.append((y - bPx.y) / dir.y) } }
        let inside = ts.filter { t in
            let q = bPx + t * dir
            return q.x >= -1e-9 && q.x <= w + 1e-9 && q.y >= -1e-9 && q.y <= hgt + 1e-9
        }.sorted()
        let a = bPx + (inside.first ?? 0) * dir, b = bPx + (inside.last ?? 0) * dir
        return LineSegment(x0: TextFormat.r(a.x, 4), y0: TextFormat.r(a.y, 4), x1: TextFormat.r(b.x, 4), y1: TextFormat.r(b.y, 4))
    }

    /// The TM site nearest frame 0's centre, nm.
    static func tmOriginNearCentre(_ o: SimulationOptions, lattice: LayeredLattice) -> SIMD2<Double> {
        let centre = SIMD2(Double(o.size - 1) / 2, Double(o.height - 1) / 2) * o.pixelSizeNm
        let A = lattice.alongBasisNm, B = lattice.acrossBasisNm
        let det = A.x * B.y - A.y * B.x
        let dc = centre - lattice.tmOriginNm
        let ii = ((dc.x * B.y - dc.y * B.x) / det).rounded(), jj = ((A.x * dc.y - A.y * dc.x) / det).rounded()
        return lattice.tmOriginNm + ii * A + jj * B
    }
}
