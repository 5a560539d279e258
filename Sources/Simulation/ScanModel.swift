import Foundation

/// Specimen drift over the whole run: a steady drift whose speed grows with temperature
/// (thermal expansion of the holder) plus a random walk (Brownian position noise) whose
/// step size grows the same way. Sampled at knots every `knotS` and interpolated linearly,
/// so it is continuous within a frame and produces the slow-scan shear of a raster scan.
///
/// Displacement `D(t)` (nm) is the movement of the specimen, i.e. of the image content:
/// +x right, +y down (the `shift_x_px`, `shift_y_px` convention of frames.csv, docs/outputs.md). It is zero at frame 0's mid-acquisition time. The truth
/// shift of a frame (see `FrameTruth`) follows frame 0's content through it, line by line,
/// and averages over the lines: the drift's random walk within a frame, which no rigid
/// shift can represent, averages out.
public struct DriftPath: Sendable {
    let startS: Double
    let knotS: Double
    let xs: [Double], ys: [Double]

    init(options o: SimulationOptions, programme: TemperatureProgramme, fromS: Double, toS: Double, zeroAtS: Double) {
        knotS = 0.1
        startS = fromS
        let n = max(2, Int(ceil((toS - fromS) / knotS)) + 2)
        var rng = SeededRandom.stream(o.seed, 0xD81F7)
        let dir = SIMD2(cos(o.driftAngleDeg * .pi / 180), sin(o.driftAngleDeg * .pi / 180))
        var x = [Double](repeating: 0, count: n), y = x
        var p = SIMD2<Double>(0, 0)
        for j in 1..<n {
            let t = fromS + (Double(j) - 0.5) * knotS
            let gain = 1 + o.driftThermalGainPer100C * max(0, programme.temperature(at: t) - 25) / 100
            p += dir * (o.driftNmPerS * gain * knotS)
            let step = o.driftRandomWalkNmPerRootS * gain * knotS.squareRoot()
            p += SIMD2(rng.gaussian(), rng.gaussian()) * step
            x[j] = p.x; y[j] = p.y
        }
        let z = DriftPath.interpolate(x, y, (zeroAtS - fromS) / knotS)
        xs = x.map { $0 - z.x }
        ys = y.map { $0 - z.y }
    }

    static func interpolate(_ xs: [Double], _ ys: [Double], _ u: Double) -> SIMD2<Double> {
        let uc = min(max(u, 0), Double(xs.count - 1))
        let j = min(Int(uc), xs.count - 2)
        let w = uc - Double(j)
        return SIMD2(xs[j] * (1 - w) + xs[j + 1] * w, ys[j] * (1 - w) + ys[j + 1] * w)
    }

    /// Specimen displacement (nm) at programme time `t`.
    public func displacement(at t: Double) -> SIMD2<Double> {
        DriftPath.interpolate(xs, ys, (t - startS) / knotS)
    }
}

/// Raster-scan timing and the within-frame distortions of a STEM scan.
///
/// Pixel (c, r) is acquired at `frameStart + r·lineTime + flybackTime + c·dwell`. The beam
/// lands at fast-scan position `c + A·exp(−c/λ) + j_r` (pixels): the flyback transient
/// compresses the first pixels of each line (A, λ), and `j_r` is the line's jitter along
/// the fast-scan axis — white noise plus 50 Hz mains pick-up whose phase walks with the
/// line time (Jones & Nellist, Microsc. Microanal. 2013; Jones et al., ASCI 2015).
public struct ScanModel: Sendable {
    public let width: Int, height: Int
    public let dwellS: Double, flybackS: Double
    public let jitterPx: Double, humAmplitudePx: Double
    public let flybackAmplitudePx: Double, flybackDecayPx: Double

    public var lineTimeS: Double { Double(width) * dwellS + flybackS }
    public var frameDurationS: Double { Double(height) * lineTimeS }

    init(options o: SimulationOptions) {
        width = o.size; height = o.height
        dwellS = o.dwellTimeS; flybackS = o.flybackTimeS
        // Distortion amplitudes are given for 0.025 nm pixels; they are physical beam
        // displacements, so they scale inversely with the pixel size.
        let scale = 0.025 / o.pixelSizeNm
        jitterPx = o.jitterPx * scale
        humAmplitudePx = o.humAmplitudePx * scale
        flybackAmplitudePx = o.flybackAmplitudePx * scale
        flybackDecayPx = o.flybackDecayPx * scale
    }

    /// Time of pixel (c, r) after the frame start.
    public func pixelTime(_ c: Int, _ r: Int) -> Double {
        Double(r) * lineTimeS + flybackS + Double(c) * dwellS
    }

    /// Per-line fast-scan offsets (pixels) of one frame.
    func lineJitter(frameStartS: Double, rng: inout SeededRandom) -> [Double] {
        let phase = 2 * Double.pi * rng.uniform()
        return (0..<height).map { r in
            let t = frameStartS + Double(r) * lineTimeS
            return jitterPx * rng.gaussian() + humAmplitudePx * sin(2 * .pi * 50 * t + phase)
        }
    }

    /// Flyback compression at the line start: the beam lands `A·exp(−c/λ)` px beyond column c,
    /// the coils settling after the line flyback over λ px.
    public func flybackOffset(_ c: Int) -> Double {
        flybackAmplitudePx == 0 ? 0 : flybackAmplitudePx * exp(-Double(c) / flybackDecayPx)
    }
}

/// Mechanical vibration of the specimen relative to the probe (stage, holder or column):
/// a few narrow-band modes with frequencies in a band (2–12 Hz for the presets), each a
/// sinusoid whose phase diffuses slowly (a resonance of finite Q: coherence time ≈ 1 s), so
/// consecutive scan lines see a smooth, continuous displacement (at 2–12 Hz a period spans
/// tens to hundreds of lines) and consecutive frames see unrelated stretches of it, whatever
/// the frame rate. Displacement of the content in nm, +x right, +y down; RMS over time
/// `vibrationFastPx` along x and `vibrationSlowPx` along y (px at 0.025 nm pixels). Cf. Jones
/// et al., Adv. Struct. Chem. Imaging 1:8 (2015), on low-frequency distortions in series of
/// fast scans.
public struct Vibration: Sendable {
    public struct Mode: Sendable {
        public var frequencyHz: Double
        public var amplitude: SIMD2<Double>
        /// Phase offset (rad) at knots every `knotS` from `startS`, per axis.
        var phaseX: [Double]
        var phaseY: [Double]
    }
    public let modes: [Mode]
    let startS: Double
    let knotS = 0.02
    /// Phase diffusion (rad per √s) of every mode.
    static let phaseDiffusion = 1.0

    init(options o: SimulationOptions, fromS: Double, toS: Double) {
        startS = fromS
        let scale = 0.025   // option amplitudes are px at 0.025 nm pixels
        let fast = o.vibrationFastPx * scale, slow = o.vibrationSlowPx * scale
        guard fast > 0 || slow > 0 else { modes = []; return }
        var rng = SeededRandom.stream(o.seed, 0x71B)
        let knots = Swift.max(2, Int(((toS - fromS) / knotS).rounded(.up)) + 2)
        let step = Self.phaseDiffusion * knotS.squareRoot()
        // Random relative weights per axis, normalised so Σ a²/2 = RMS².
        var raw: [Mode] = []
        let band = o.vibrationBandHz
        for _ in 0..<o.vibrationModes {
            let f = band.lowerBound + (band.upperBound - band.lowerBound) * rng.uniform()
            let w = SIMD2(0.3 + rng.uniform(), 0.3 + rng.uniform())
            var px = [2 * Double.pi * rng.uniform()], py = [2 * Double.pi * rng.uniform()]
            for _ in 1..<knots { px.append(px.last! + step * rng.gaussian()); py.append(py.last! + step * rng.gaussian()) }
            raw.append(Mode(frequencyHz: f, amplitude: w, phaseX: px, phaseY: py))
        }
        let sx = (raw.map { $0.amplitude.x * $0.amplitude.x / 2 }.reduce(0, +)).squareRoot()
        let sy = (raw.map { $0.amplitude.y * $0.amplitude.y / 2 }.reduce(0, +)).squareRoot()
        modes = raw.map { m in
            var m = m
            m.amplitude = SIMD2(m.amplitude.x / sx * fast, m.amplitude.y / sy * slow)
            return m
        }
    }

    /// Displacement (nm) at programme time `t`.
    public func displacement(at t: Double) -> SIMD2<Double> {
        var d = SIMD2<Double>(0, 0)
        for m in modes {
            let u = Swift.min(Swift.max((t - startS) / knotS, 0), Double(m.phaseX.count - 1))
            let j = Swift.min(Int(u), m.phaseX.count - 2), w = u - Double(j)
            let a = 2 * Double.pi * m.frequencyHz * t
            let phx = m.phaseX[j] * (1 - w) + m.phaseX[j + 1] * w, phy = m.phaseY[j] * (1 - w) + m.phaseY[j + 1] * w
            d += m.amplitude * SIMD2(sin(a + phx), sin(a + phy))
        }
        return d
    }
}
