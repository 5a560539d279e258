import Foundation

/// The kinds of synthetic heating run `heatfront simulate` writes (docs/user-guide.md, "Commands").
public enum SimulationPreset: String, CaseIterable, Sendable, Codable {
    /// Sun et al., Cell Rep. Phys. Sci. 2021: LiCoO2 heated fast to ≈ 500 °C, then four holds
    /// with a layered → rock-salt front moving from a grain boundary along the layers
    /// (Arrhenius kinetics, Ea = 1.5 eV), so an activation energy can be fitted.
    /// TIFF frames in temperature sub-folders (`475C/`), plain `time_s` heating log; a second
    /// grain beyond the boundary.
    case boundaryFront
    /// Pokle et al., ACS AMI 2021: NCM851005 with holds every 25 °C from room temperature;
    /// from ≈ 150 °C TM ions enter the Li sites uniformly (no front). Frames during ramps.
    /// PNG frames with holder temperature in their metadata, in `RT/`, `50C/`, … and `ramp/`;
    /// DENSsolutions Impulse log; vacuum beyond a free surface.
    case gradualOnset
    /// A front run with large specimen drift (≈ 100 px), very low dose, strong line jitter
    /// and injected pure-noise frames that registration must reject. DM4 frames named
    /// `stress_T475C_0000.dm4`, Protochips log with absolute times; amorphous material beyond the boundary.
    case registrationStress
    /// A front run with strong within-frame scan distortions (slow scan, mains hum,
    /// flyback), analysed with non-rigid registration. TIFF frames named `scan_500C_0000.tif`,
    /// plain log with ISO-8601 timestamps; a second grain beyond the boundary.
    case scanDistortion
    /// Registration at the dose floor: 40 frames of 1024² (by default) in one multi-page
    /// TIFF, 3–5 counts at a TM column's peak, 0.8 px line jitter, 1.4–1.9 px of steady drift
    /// per frame plus a random walk, an amorphous region and a few diffuse contamination blobs
    /// as the only non-periodic content; no front. Each seed draws its own dose, drift,
    /// lattice angle and specimen from those ranges.
    case doseFloor
    /// Non-rigid registration under strong scan distortion: 30 frames of 512² at room
    /// temperature, fast drift (1.0–1.6 px/s), flyback of 4–6 px decaying over 12–14 px of each
    /// line, 0.5 px line jitter, ≈ 1 px RMS vibration at 2–12 Hz along the fast scan
    /// (0.3–0.5 px along the slow), an amorphous region at one edge; no front. Each seed draws
    /// its own parameters from those ranges.
    case strongDistortion
    /// Pokle et al., ACS AMI 2021, the first holds after onset: NCM851005 held at 25, 150,
    /// 175, 200, 225 and 250 °C, 12 frames 25 s apart per hold, 1024×512 px. Uniform cation
    /// mixing from about 175 °C; a front nucleates at a grain boundary on the ramp to 200 °C
    /// and creeps 0.6–1.1 nm during the 200 °C hold, 2.4–3.1 nm at 225 °C and about 8 nm at
    /// 250 °C. Front width, activation energy, velocity scale and both onsets are drawn per
    /// seed. 16-bit PNG frames in one folder, plain `time_s` heating log.
    case slowFront

    /// The name used on the command line (`boundary-front`, …).
    public var cliName: String {
        switch self {
        case .boundaryFront: "boundary-front"
        case .gradualOnset: "gradual-onset"
        case .registrationStress: "registration-stress"
        case .scanDistortion: "scan-distortion"
        case .doseFloor: "dose-floor"
        case .strongDistortion: "strong-distortion"
        case .slowFront: "slow-front"
        }
    }

    /// Frame width in pixels (the size the preset's numbers are stated for) when none is asked for.
    public var defaultSize: Int { self == .doseFloor || self == .slowFront ? 1024 : 512 }

    public init?(cliName: String) {
        guard let p = SimulationPreset.allCases.first(where: { $0.cliName == cliName || $0.rawValue == cliName }) else {
            return nil
        }
        self = p
    }
}

/// File format of the simulated frames (all written as uint16 detector counts).
public enum SimulatedFormat: String, Sendable, Codable, CaseIterable {
    case tiff, png, dm4
    public var fileExtension: String { self == .tiff ? "tif" : rawValue }
}

/// What lies on the far side of the boundary the front starts from.
public enum NeighbourRegion: Sendable, Equatable {
    /// Another grain of the same layered phase, its layers at `layerAngleDeg` (it does not transform).
    case grain(layerAngleDeg: Double)
    /// Amorphous material: randomly placed columns.
    case amorphous
    /// Vacuum: the boundary is a free surface.
    case vacuum

    /// From its command-line spelling: `amorphous`, `vacuum` or `grain:ANGLE` (degrees).
    public init?(cliValue: String) {
        switch cliValue.lowercased() {
        case "amorphous": self = .amorphous
        case "vacuum": self = .vacuum
        case let t where t.hasPrefix("grain:"):
            guard let angle = Double(t.dropFirst("grain:".count)), angle.isFinite else { return nil }
            self = .grain(layerAngleDeg: angle)
        default: return nil
        }
    }
}

/// How the heating log is written (docs/user-guide.md, "The run folder": Temperature).
public enum HeatingLogFlavour: String, Sendable, Codable {
    /// `time_s,temperature_C`, log time 0 = the first frame.
    case plainRelative = "plain_time_s"
    /// `timestamp,temperature_C` with absolute ISO-8601 UTC times.
    case plainTimestamp = "plain_timestamp"
    /// Protochips holder log: `Time` in ms since an absolute start given in `Notes` rows.
    case protochips
    /// DENSsolutions Impulse export: `Experiment time` in s since the first frame.
    case densImpulse = "dens_impulse"
}

/// How frames are named and grouped in the run folder.
public enum FolderLayout: Sendable, Equatable {
    /// `frames/frame_0000.ext`.
    case flat
    /// One sub-folder per hold named by its temperature (`RT`, `50C`, …); ramp frames in `ramp/`.
    case temperatureFolders
    /// Flat, with a temperature token in each name (`stress_T475C_0001.ext` with `tPrefix`,
    /// else `scan_500C_0001.ext`); ramp frames get `ramp` instead.
    case fileNameTokens(prefix: String, tPrefix: Bool)
    /// Every frame a page of one multi-page file `name.ext` (TIFF only), in time order.
    case stack(name: String)
}

/// One hold of the temperature programme: a set-point kept for `durationS`.
public struct HoldSpec: Sendable, Equatable {
    public var temperatureC: Double
    public var durationS: Double
    public init(_ temperatureC: Double, _ durationS: Double) {
        self.temperatureC = temperatureC
        self.durationS = durationS
    }
}

/// Every knob of a simulated run. `init(preset:)` fills the preset's defaults; each field may
/// be changed afterwards (tests do, to isolate one effect). Lengths in nm unless named `Px`.
public struct SimulationOptions: Sendable {
    public var preset: SimulationPreset
    public var seed: UInt64 = 1
    /// Frame width in pixels (the fast-scan direction).
    public var size: Int = 512
    /// Frame height over width; the height is `size × aspectRatio`, rounded.
    public var aspectRatio: Double = 1
    /// Frame height in pixels (the slow-scan direction).
    public var height: Int { max(1, Int((Double(size) * aspectRatio).rounded())) }
    public var framesPerStep: Int
    public var format: SimulatedFormat

    // Geometry and material.
    /// Field of view along the frame's width (nm) the default pixel size is chosen for: the
    /// frame spans the same specimen area whatever `size`, so the kinetics stay inside it.
    public var fieldOfViewNm: Double = 12.8
    /// Pixel size; `fieldOfViewNm / size` (0.025 nm at 512 px) unless set explicitly.
    public var pixelSizeNm: Double {
        get { explicitPixelSizeNm ?? fieldOfViewNm / Double(size) }
        set { explicitPixelSizeNm = newValue }
    }
    private var explicitPixelSizeNm: Double?
    /// (003) spacing: distance between TM planes.
    public var layerSpacingNm: Double = 0.468
    /// Projected TM–TM distance inside a plane along hexagonal [100] (a·cos 30°).
    public var inPlaneSpacingNm: Double = 0.244
    /// Angle of the layers from the fast-scan (+x) axis, counter-clockwise on screen.
    public var layerAngleDeg: Double
    /// Z^1.7 column weights (Co 271, Ni 290, Mn 237, O 34, Li 6.5).
    public var tmColumnWeight: Double = 271
    public var liColumnWeight: Double = 6.5
    public var oColumnWeight: Double = 34
    public var materialName = "LiCoO2"
    public var neighbour: NeighbourRegion
    /// Distance of the boundary from the frame centre, against the propagation direction.
    public var boundaryOffsetNm: Double = 4.0
    /// Relative amplitude of the smooth thickness (mass-thickness) variation.
    public var thicknessVariation: Double = 0.12
    /// Diffuse background under the columns, relative to a TM column peak at unit thickness.
    public var backgroundLevel: Double = 0.04
    /// Diffuse contamination (hydrocarbon) blobs on the specimen: count, Gaussian σ (nm) and
    /// peak height relative to a TM column peak, each blob drawn from the ranges.
    public var contaminationBlobs = 0
    public var contaminationSigmaNm: ClosedRange<Double> = 0.8...2.0
    public var contaminationHeight: ClosedRange<Double> = 0.1...0.3

    // Probe.
    public var probeSigmaNm: Double = 0.045
    public var tailSigmaNm: Double = 0.10
    /// Fraction of a column's integrated intensity in the broad tail.
    public var tailFraction: Double = 0.12

    // Transformation kinetics.
    /// 10–90 % width of the tanh front; nil: no front in this run.
    public var frontWidthNm: Double?
    public var activationEnergyEV: Double = 1.5
    /// Front velocity at `referenceTemperatureC` (sets v0).
    public var referenceVelocityNmPerS: Double = 0.07
    public var referenceTemperatureC: Double = 550
    /// Temperature above which the front moves (0 below).
    public var frontOnsetTemperatureC: Double = 400
    /// Uniform cation mixing (fraction of Li sites holding TM) rises linearly above this.
    public var uniformMixingOnsetC: Double?
    public var uniformMixingPerC: Double = 0.001

    // Temperature programme.
    public var startTemperatureC: Double = 25
    /// Room-temperature time before heating starts.
    public var preHeatS: Double = 5
    public var rampRateCPerS: Double = 50
    public var holds: [HoldSpec]
    /// Holds whose incoming ramp gets one frame at its mid-point (step -1).
    public var rampFrameHolds: Set<Int> = []
    /// Time kept free at each end of a hold, so the log's hold clearly contains every frame.
    public var holdMarginS: Double = 2
    /// Time between the starts of consecutive frames of a hold, from the hold's start plus
    /// `holdMarginS`; nil: the frames are spread evenly over the hold.
    public var frameIntervalS: Double?

    // Scan.
    public var dwellTimeS: Double = 2e-6
    public var flybackTimeS: Double = 300e-6
    /// White per-line jitter along the fast-scan axis (σ, px at 512 px, scaled with size).
    public var jitterPx: Double = 0.1
    /// 50 Hz mains pick-up along the fast-scan axis (amplitude, px at 512 px).
    public var humAmplitudePx: Double = 0
    /// Flyback: the first pixels of a line are compressed; x_scan = x + A·exp(−x/λ).
    public var flybackAmplitudePx: Double = 0.3
    public var flybackDecayPx: Double = 12
    /// Vibration of the specimen relative to the probe: RMS along the fast and the slow scan
    /// axis (px at 512 px, scaled with size), made of `vibrationModes` sinusoids with
    /// frequencies in `vibrationBandHz` (`Vibration`).
    public var vibrationFastPx: Double = 0
    public var vibrationSlowPx: Double = 0
    public var vibrationBandHz: ClosedRange<Double> = 2...12
    public var vibrationModes = 3

    // Specimen drift.
    /// Steady drift speed at 25 °C, growing by `driftThermalGainPer100C` per 100 °C.
    public var driftNmPerS: Double = 0.0008
    public var driftAngleDeg: Double = 200
    public var driftThermalGainPer100C: Double = 0.5
    /// Random-walk diffusion of the specimen position (nm/√s at 25 °C, same thermal gain).
    public var driftRandomWalkNmPerRootS: Double = 0.0015

    // Detector.
    /// Electron dose per frame, e⁻/Å².
    public var dose: Double
    /// Factor on the preset's dose (`simulate --dose-scale`), e.g. for a high-dose reference
    /// run of the same specimen; recorded in the ground truth when not 1.
    public var doseScale: Double = 1
    /// Fraction of the incident electrons reaching the HAADF detector at a TM column peak.
    public var detectorFraction: Double = 0.1
    public var gainADUPerElectron: Double = 12
    public var offsetADU: Double = 200
    public var readNoiseADU: Double = 4
    /// When set, the detector records this level minus the model intensity (in units of a TM
    /// column peak): dark columns on a bright background, as ABF shows them or an inverted
    /// export stores them. A test of contrast handling, not a model of ABF image formation.
    public var invertedContrastLevel: Double? = nil
    /// Scan interference added to every frame's recorded signal.
    public var interference: ScanInterference? = nil

    // Run conventions.
    /// Pure-noise frames (beam blanked / lost lock), as (hold index, frame within the hold).
    public var noiseFrames: [HoldFrame] = []
    public var heatingLog: HeatingLogFlavour
    public var layout: FolderLayout
    public var registrationMode = "rigid"
    /// Absolute time (s since 1970) of the programme start: fixed, never the wall clock.
    public var programmeStartEpochS: Double = 1_741_944_600   // 2025-03-14T09:30:00Z

    public struct HoldFrame: Sendable, Equatable {
        public var hold: Int
        public var frame: Int
        public init(hold: Int, frame: Int) { self.hold = hold; self.frame = frame }
    }

    /// `size`: frame width in pixels, `preset.defaultSize` when nil.
    public init(preset: SimulationPreset, seed: UInt64 = 1, size: Int? = nil) {
        self.preset = preset
        self.seed = seed
        self.size = size ?? preset.defaultSize
        // Every preset sets these; the placeholders let the per-preset settings be methods.
        framesPerStep = 0; format = .tiff; layerAngleDeg = 0; neighbour = .vacuum; holds = []; dose = 0
        heatingLog = .plainRelative; layout = .flat
        switch preset {
        case .boundaryFront: setBoundaryFront()
        case .gradualOnset: setGradualOnset()
        case .registrationStress: setRegistrationStress()
        case .scanDistortion: setScanDistortion()
        case .doseFloor: setDoseFloor()
        case .strongDistortion: setStrongDistortion()
        case .slowFront: setSlowFront()
        }
    }

    // The presets' settings, each on top of the defaults above.

    private mutating func setBoundaryFront() {
        framesPerStep = 10; format = .tiff
        layerAngleDeg = 28; neighbour = .grain(layerAngleDeg: -19)
        frontWidthNm = 3.5; dose = 1500
        holds = [HoldSpec(475, 160), HoldSpec(500, 80), HoldSpec(525, 44), HoldSpec(550, 44)]
        heatingLog = .plainRelative; layout = .temperatureFolders
    }

    private mutating func setGradualOnset() {
        framesPerStep = 6; format = .png
        layerAngleDeg = 23; neighbour = .vacuum
        layerSpacingNm = 0.474; materialName = "NCM851005"
        tmColumnWeight = 0.85 * 290 + 0.05 * 271 + 0.10 * 237
        boundaryOffsetNm = 5
        frontWidthNm = nil; uniformMixingOnsetC = 150; uniformMixingPerC = 0.001
        dose = 800; rampRateCPerS = 2; preHeatS = 0
        holds = stride(from: 25.0, through: 300, by: 25).map { HoldSpec($0, 60) }
        rampFrameHolds = [7, 8, 9]
        heatingLog = .densImpulse; layout = .temperatureFolders
        driftNmPerS = 0.0004; driftRandomWalkNmPerRootS = 0.001
    }

    private mutating func setRegistrationStress() {
        framesPerStep = 8; format = .dm4
        layerAngleDeg = 33; neighbour = .amorphous
        boundaryOffsetNm = 3          // more amorphous area: non-periodic features for coarse registration
        frontWidthNm = 3.0; dose = 250
        holds = [HoldSpec(475, 160), HoldSpec(500, 80), HoldSpec(525, 44), HoldSpec(550, 44)]
        preHeatS = 10
        jitterPx = 0.5; humAmplitudePx = 0.3; flybackAmplitudePx = 0.5
        driftNmPerS = 0.0025; driftAngleDeg = 140; driftRandomWalkNmPerRootS = 0.004
        noiseFrames = [HoldFrame(hold: 1, frame: 3), HoldFrame(hold: 2, frame: 5), HoldFrame(hold: 3, frame: 1)]
        heatingLog = .protochips; layout = .fileNameTokens(prefix: "stress", tPrefix: true)
        registrationMode = "rigid"
    }

    private mutating func setScanDistortion() {
        framesPerStep = 8; format = .tiff
        layerAngleDeg = 31; neighbour = .grain(layerAngleDeg: 78)
        frontWidthNm = 4.5; dose = 1000
        holds = [HoldSpec(500, 90), HoldSpec(525, 50), HoldSpec(550, 44)]
        preHeatS = 20
        dwellTimeS = 6e-6; flybackTimeS = 500e-6
        jitterPx = 0.35; humAmplitudePx = 0.5; flybackAmplitudePx = 2.5; flybackDecayPx = 18
        driftNmPerS = 0.004; driftAngleDeg = 60; driftRandomWalkNmPerRootS = 0.002
        heatingLog = .plainTimestamp; layout = .fileNameTokens(prefix: "scan", tPrefix: false)
        registrationMode = "nonrigid"
    }

    private mutating func setDoseFloor() {
        framesPerStep = 40; format = .tiff
        layerAngleDeg = 30; neighbour = .amorphous
        frontWidthNm = nil; dose = 1
        holds = [HoldSpec(300, 100)]
        heatingLog = .plainRelative; layout = .stack(name: "dose_floor_300C")
        drawDoseFloor()
    }

    private mutating func setStrongDistortion() {
        framesPerStep = 30; format = .tiff
        layerAngleDeg = 30; neighbour = .amorphous
        frontWidthNm = nil; dose = 1
        holds = [HoldSpec(25, 60)]
        preHeatS = 0
        dwellTimeS = 6e-6; flybackTimeS = 500e-6
        heatingLog = .plainRelative; layout = .temperatureFolders
        registrationMode = "nonrigid"
        drawStrongDistortion()
    }

    private mutating func setSlowFront() {
        framesPerStep = 12; format = .png
        fieldOfViewNm = 25.6; aspectRatio = 0.5
        layerAngleDeg = 12; neighbour = .grain(layerAngleDeg: -35)
        layerSpacingNm = 0.474; materialName = "NCM851005"
        tmColumnWeight = 0.85 * 290 + 0.05 * 271 + 0.10 * 237
        boundaryOffsetNm = 9
        dose = 1000; rampRateCPerS = 1; preHeatS = 0
        holds = [25, 150, 175, 200, 225, 250].map { HoldSpec($0, 285) }
        frameIntervalS = 25
        heatingLog = .plainRelative; layout = .flat
        driftNmPerS = 0.0004; driftRandomWalkNmPerRootS = 0.001
        // Drawn per seed: the regime, not one run of it.
        var rng = SeededRandom.stream(seed, 0x510F)
        frontWidthNm = 2 + 4 * rng.uniform()
        activationEnergyEV = 0.9 + 0.2 * rng.uniform()
        // Travel during the 225 °C hold (its frames span 11 × 25 s): 2.4–3.1 nm.
        referenceTemperatureC = 225
        referenceVelocityNmPerS = (2.4 + 0.7 * rng.uniform()) / 275
        frontOnsetTemperatureC = 182 + 12 * rng.uniform()   // on the ramp to 200 °C
        uniformMixingOnsetC = 157 + 8 * rng.uniform()       // 0.010–0.018 mixing at 175 °C
        uniformMixingPerC = 0.001
    }

    /// Expected electrons at a TM column's peak (unit thickness) for a given dose.
    public var countsAtColumnPeak: Double {
        get { dose * (pixelSizeNm * 10) * (pixelSizeNm * 10) * detectorFraction }
        set { dose = newValue / ((pixelSizeNm * 10) * (pixelSizeNm * 10) * detectorFraction) }
    }

    /// Time between the starts of consecutive frames of a hold: `frameIntervalS`, else the
    /// frames spread evenly over the first hold.
    var effectiveFrameIntervalS: Double {
        if let frameIntervalS { return frameIntervalS }
        let frame = Double(height) * (Double(size) * dwellTimeS + flybackTimeS)
        guard framesPerStep > 1, let h = holds.first else { return frame }
        return (h.durationS - 2 * holdMarginS - frame) / Double(framesPerStep - 1)
    }

    /// The dose-floor preset's per-seed parameters, stated for 1024 px frames (converted to
    /// the actual pixel size): the same seed gives the same specimen and motion at any size.
    private mutating func drawDoseFloor() {
        var rng = SeededRandom.stream(seed, 0xD05E)
        let nominal = fieldOfViewNm / 1024   // px of the stated numbers
        let scale = nominal / 0.025           // option px are stated at 0.025 nm
        // Back-to-back frames: the hold holds the frames and its margins, plus 1 s.
        let frame = Double(size) * (Double(size) * dwellTimeS + flybackTimeS)
        holds = [HoldSpec(300, Double(framesPerStep) * frame + 2 * holdMarginS + 1)]
        countsAtColumnPeak = (3 + 2 * rng.uniform()) * (pixelSizeNm / nominal) * (pixelSizeNm / nominal)
        jitterPx = 0.8 * scale
        humAmplitudePx = 0; flybackAmplitudePx = 0.3
        layerAngleDeg = 10 + 70 * rng.uniform()
        // The amorphous region covers 20–35 % of the field of view.
        boundaryOffsetNm = fieldOfViewNm * (0.15 + 0.15 * rng.uniform())
        contaminationBlobs = 2 + Int(3 * rng.uniform())
        contaminationSigmaNm = 0.8...2.5; contaminationHeight = 0.08...0.25
        // Steady drift 1.4–1.9 px per frame in any direction, a random walk of 0.6–1.4 px per
        // √frame (Brownian within each frame too): 55–75 px steady over 40 frames, ≈ 80 px in all.
        let interval = effectiveFrameIntervalS
        driftThermalGainPer100C = 0
        driftNmPerS = (1.4 + 0.5 * rng.uniform()) * nominal / interval
        driftAngleDeg = 360 * rng.uniform()
        driftRandomWalkNmPerRootS = (0.6 + 0.8 * rng.uniform()) * nominal / interval.squareRoot()
    }

    /// The strong-distortion preset's per-seed parameters (at 512 px, 0.025 nm pixels).
    private mutating func drawStrongDistortion() {
        var rng = SeededRandom.stream(seed, 0x5D15)
        let nominal = fieldOfViewNm / 512
        let frame = Double(size) * (Double(size) * dwellTimeS + flybackTimeS)
        holds = [HoldSpec(25, Double(framesPerStep) * frame + 2 * holdMarginS + 1)]
        countsAtColumnPeak = (30 + 20 * rng.uniform()) * (pixelSizeNm / nominal) * (pixelSizeNm / nominal)
        layerAngleDeg = 10 + 70 * rng.uniform()
        // Amorphous material along one edge: 10–17 % of the field of view.
        boundaryOffsetNm = fieldOfViewNm * (0.33 + 0.07 * rng.uniform())
        jitterPx = 0.5; humAmplitudePx = 0
        flybackAmplitudePx = 4 + 2 * rng.uniform(); flybackDecayPx = 12 + 2 * rng.uniform()
        vibrationFastPx = 0.9 + 0.2 * rng.uniform(); vibrationSlowPx = 0.3 + 0.2 * rng.uniform()
        vibrationBandHz = 2...12; vibrationModes = 3
        driftThermalGainPer100C = 0
        driftNmPerS = (1.0 + 0.6 * rng.uniform()) * nominal
        driftAngleDeg = 360 * rng.uniform()
        driftRandomWalkNmPerRootS = (0.05 + 0.1 * rng.uniform()) * nominal
    }

    /// Check the options before any work: named, human-readable problems.
    public func validate() throws {
        func bad(_ s: String) -> SimulationError { SimulationError.invalidOption(s) }
        guard size >= 32 && size <= 8192 else { throw bad("size must be 32…8192 px (got \(size))") }
        guard height >= 32 && height <= 8192 else { throw bad("height must be 32…8192 px (got \(height))") }
        guard doseScale > 0 && doseScale <= 1000 else { throw bad("dose scale must be in (0, 1000] (got \(doseScale))") }
        guard framesPerStep >= 1 && framesPerStep <= 1000 else { throw bad("frames per step must be 1…1000 (got \(framesPerStep))") }
        guard pixelSizeNm > 0, pixelSizeNm.isFinite else { throw bad("pixel size must be positive") }
        guard layerSpacingNm > 0, inPlaneSpacingNm > 0 else { throw bad("lattice spacings must be positive") }
        guard dose > 0, dose.isFinite else { throw bad("dose must be positive") }
        guard !holds.isEmpty, holds.allSatisfy({ $0.durationS > 2 * holdMarginS }) else { throw bad("every hold must outlast its margins") }
        guard rampRateCPerS > 0 else { throw bad("ramp rate must be positive") }
        if let w = frontWidthNm, !(w > 0) { throw bad("front width must be positive") }
        for nf in noiseFrames where nf.hold >= holds.count {
            throw bad("noise frame in hold \(nf.hold), but only \(holds.count) holds")
        }
        if case .stack = layout, format != .tiff { throw bad("a multi-page stack is written as TIFF only") }
        guard vibrationFastPx >= 0, vibrationSlowPx >= 0, vibrationModes >= 1, vibrationBandHz.lowerBound > 0 else {
            throw bad("vibration amplitudes must be ≥ 0, with at least one mode above 0 Hz")
        }
        guard contaminationBlobs >= 0, contaminationBlobs <= 1000 else { throw bad("contamination blobs must be 0…1000") }
        let frameDuration = Double(height) * (Double(size) * dwellTimeS + flybackTimeS)
        if let dt = frameIntervalS {
            guard dt >= frameDuration else { throw bad("frame interval \(dt) s is shorter than a frame (\(String(format: "%.2f", frameDuration)) s)") }
            for h in holds where Double(framesPerStep - 1) * dt + frameDuration > h.durationS - 2 * holdMarginS {
                throw bad("\(framesPerStep) frames \(dt) s apart do not fit in the \(Int(h.durationS)) s hold at \(Int(h.temperatureC)) °C")
            }
        }
        for h in holds where frameDuration * Double(framesPerStep) > h.durationS - 2 * holdMarginS {
            throw bad("\(framesPerStep) frames of \(String(format: "%.2f", frameDuration)) s do not fit in the \(Int(h.durationS)) s hold at \(Int(h.temperatureC)) °C")
        }
    }
}

/// A problem with the simulator's options or outputs.
public enum SimulationError: Error, CustomStringConvertible, Sendable {
    case invalidOption(String)
    case write(String)
    public var description: String {
        switch self {
        case .invalidOption(let s): "invalid simulation option: \(s)"
        case .write(let s): "cannot write the simulated run: \(s)"
        }
    }
}
