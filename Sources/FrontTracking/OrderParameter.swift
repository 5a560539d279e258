import Foundation
import FrameCore

/// Local layered order of a HAADF image, from lock-in amplitudes at the layer reflection.
public struct OrderParameterMap: Sendable {
    /// Amplitude at `gLayer` over amplitude at `2·gLayer` on crystal pixels (0 elsewhere).
    /// Both scale with thickness, so the ratio does not: ≳ 1 in an ordered layered crystal
    /// (for TM planes `a`, Li planes `b` it is (F(g)/F(2g))·(a − b)/(a + b), F the column
    /// profile's transfer, ≥ 1), → 0 in cation-mixed rock salt, where Li and TM sites match.
    public var layered: Image
    /// Where lattice fringes exist at all: the half-spacing (2g) fringes survive in rock
    /// salt, so crystal = either amplitude present; vacuum, amorphous material and grains at
    /// other orientations have neither.
    public var crystal: Mask
    /// Fringe amplitude at `gLayer` (image units: the amplitude of a cosine fringe).
    public var amplitudeLayer: Image
    /// Fringe amplitude at `2·gLayer`.
    public var amplitudeHalf: Image
    /// Standard deviation (px) of the Gaussian lock-in window actually used: every map is
    /// the true one blurred by this Gaussian, which the front fits undo.
    public var windowPx: Double

    public init(layered: Image, crystal: Mask, amplitudeLayer: Image, amplitudeHalf: Image, windowPx: Double) {
        self.layered = layered
        self.crystal = crystal
        self.amplitudeLayer = amplitudeLayer
        self.amplitudeHalf = amplitudeHalf
        self.windowPx = windowPx
    }

    /// A map with no crystal anywhere (what bad input gives).
    public static func empty(width: Int, height: Int, windowPx: Double) -> OrderParameterMap {
        let zero = Image(width: width, height: height)
        return OrderParameterMap(layered: zero, crystal: Mask(width: width, height: height, fill: false),
                                 amplitudeLayer: zero, amplitudeHalf: zero, windowPx: windowPx)
    }
}

extension OrderParameterMap {
    /// The order parameter with a fixed denominator: this map's layer-fringe amplitude A(g)
    /// over `reference`, a half-spacing amplitude map measured on the step average (this
    /// map's grid), times the frame's own level of the half-spacing fringes relative to it,
    /// c = Σ A(2g) / Σ reference over the crystal: q = A(g) / (c·reference). With
    /// `phase` (this map's segmentation), the returned phase map's layered ratio is the
    /// median of that q over its layered pixels, and pixels without a reference are not crystal
    /// (none are where the frame or the reference has no half-spacing fringe at all).
    /// A reference or phase map of another size leaves both as they are.
    ///
    /// Why: A(2g) is there to cancel thickness, which the frames of a step share, but a
    /// single low-dose frame's A(2g) is demodulated from the same noisy pixels as its A(g),
    /// and its noise entered every pixel of the ratio; the average's map has the noise of the
    /// step's frames averaged, and the one number c keeps what does change from frame to
    /// frame (dose, the blur of the frame's scan) out of the ratio. The denominator then no
    /// longer follows the frame's occupancy change, so the frame's q falls linearly with it:
    /// fit it with a half-spacing contrast β = 0 (docs/benchmarks.md has the velocities
    /// before and after).
    public func normalised(byHalfSpacing reference: Image, phase: PhaseMap) -> (map: OrderParameterMap, phase: PhaseMap) {
        var map = self, profilePhase = phase
        guard reference.width == layered.width, reference.height == layered.height,
              phase.labels.count == layered.pixels.count else { return (map, profilePhase) }
        var own = 0.0, fixed = 0.0
        for i in crystal.bits.indices where crystal.bits[i] && reference.pixels[i] > 0 {
            own += Double(amplitudeHalf.pixels[i]); fixed += Double(reference.pixels[i])
        }
        // Nothing to scale by (no half-spacing fringe in the frame or the reference): no
        // profile, rather than the frame's own ratio fitted as if it had the fixed denominator.
        let c = own > 0 && fixed > 0 ? Float(own / fixed) : 0
        var layeredValues = [Double]()
        for i in crystal.bits.indices {
            guard crystal.bits[i], reference.pixels[i] > 0, c > 0 else {
                // Not measured on the average: left out of the profile.
                map.crystal.bits[i] = false
                map.layered.pixels[i] = 0
                profilePhase.labels[i] = PhaseMap.notCrystal
                continue
            }
            let q = amplitudeLayer.pixels[i] / (c * reference.pixels[i])
            map.layered.pixels[i] = q
            if phase.labels[i] == PhaseMap.layered { layeredValues.append(Double(q)) }
        }
        profilePhase.layeredRatio = LeastSquares.median(layeredValues)
        return (map, profilePhase)
    }
}

/// Lock-in (geometric-phase-style) demodulation of the layer fringes.
///
/// Method: Hÿtch, Snoeck & Kilaas, Ultramicroscopy 74 (1998) 131 (geometric phase
/// analysis), used here for its amplitude. For each reflection h ∈ {g, 2g} the spectrum is
/// multiplied by a Gaussian mask centred on h — equivalent to multiplying the image by
/// exp(−2πi h·r) and low-passing with a real-space Gaussian of σ = `windowPx` — and
/// inverse transformed; the modulus is the local fringe amplitude. Details:
/// - *Normalised convolution* (Knutsson & Westin, CVPR 1993): the image is multiplied by
///   the analysed region (and zero-padded by 3σ so nothing wraps around), and every
///   windowed sum is divided by the same window's sum of the region mask, so amplitudes
///   stay unbiased up to the region's and the image's edges.
/// - The local mean (Gaussian σ = one layer spacing, whose transfer at g is e^−2π² ≈ 3e−9)
///   is subtracted first, so the large DC term and a thickness ramp cannot leak into g.
/// - The crystal mask is first split from vacuum/amorphous material by Otsu on log
///   amplitude (only when the two classes differ ≥ 4× — otherwise the whole region is
///   crystal), then refined to half the local lattice presence — max(A(2g), A(g)/q₉₀),
///   q₉₀ the 90th percentile of A(g)/A(2g) on the seed, at least 1 —
///   which is about equal in both phases — averaged (σ = 2·window) over the seed's core and
///   extrapolated to its edge by normalised convolution, so the mask's edge sits on the
///   physical edge instead of σ outside it.
/// - σ is clamped to [d/2, max(width, height)/4] (d = 1/|g|): a narrower window would let
///   the neighbouring reflections (0 and 2g are |g| away) leak in.
/// Choosing the window: σ = one layer spacing (`windowPx = 1/|g|`) is a good default — it
/// suppresses the neighbouring reflections by e^−2π² and blurs the front by a 10–90 %
/// width of 2.56σ (≈ 1.2 nm), which `FrontLocator` models and removes. Larger σ lowers
/// noise in single low-dose frames at the cost of resolution near the boundary; the same
/// function serves single frames, frame-window averages and step averages.
/// The frames of a step are mapped on their average's crystal (`RegionLockIn`), found once
/// at the average's signal rather than again in every noisy frame (the detection and the
/// frequency lock it needs are three quarters of a frame's map); what depends on that region
/// alone (its normalised-convolution denominators) is computed once for the step, and each
/// frame's real planes go through real-to-complex transforms.
/// gLayer must be the (003) layer reflection (0.468 nm spacing), not the half-spacing one.
/// Thread-safe (each call owns its FFT workspace); memory ≈ 2 complex + ~8 float planes of
/// the padded size.
/// Cost: 10 complex FFTs of the padded size (real planes paired) with FrameCore's cached
/// single-precision plans.
public enum OrderParameter {
    /// Block binning for mapping an image whose layers are `layerSpacingPx` apart: the map
    /// needs only about 9 px per layer spacing (2g then has a period of ~4.5 px, well inside
    /// Nyquist, and the window of one spacing stays several pixels wide), so larger images are
    /// binned to that scale first and the map costs a fraction of the full-resolution one.
    public static func binning(layerSpacingPx: Double) -> Int {
        guard layerSpacingPx.isFinite else { return 1 }
        return max(1, Int(layerSpacingPx / 9))
    }

    /// The map with its crystal detected in `image` (within `region` when given).
    public static func map(_ image: Image, gLayer: SIMD2<Double>, windowPx: Double, region: Mask?) -> OrderParameterMap {
        let w = image.width, h = image.height
        let gLength = (gLayer * gLayer).sum().squareRoot()
        // 2g must lie below Nyquist on both axes and the window must be a real number.
        guard w >= 8, h >= 8, gLength.isFinite, gLength > 0,
              abs(2 * gLayer.x) < 0.5, abs(2 * gLayer.y) < 0.5, windowPx.isFinite, windowPx > 0 else {
            return .empty(width: w, height: h, windowPx: windowPx.isFinite ? windowPx : 0)
        }
        if let region, region.width != w || region.height != h {
            return .empty(width: w, height: h, windowPx: windowPx)
        }
        let (sigma, sigmaMean, pw, ph) = planeSize(w, h, gLength: gLength, windowPx: windowPx)
        let plane = Plane(width: pw, height: ph, imageWidth: w, imageHeight: h)
        let amplitudes = LockIn(image, region: region, plane: plane, gLayer: gLayer, sigma: sigma, sigmaMean: sigmaMean)
        let (crystal, layered) = crystalMap(amplitudes, plane: plane, sigmaLevel: 2 * sigma)
        return OrderParameterMap(layered: layered, crystal: crystal, amplitudeLayer: amplitudes.amplitudeG,
                                 amplitudeHalf: amplitudes.amplitude2G, windowPx: sigma)
    }

    /// The window σ actually used (clamped to [d/2, max(w, h)/4]), the local mean's σ (one
    /// spacing d) and the padded plane, 3 of the wider σ beyond the image so nothing wraps.
    static func planeSize(_ w: Int, _ h: Int, gLength: Double, windowPx: Double)
        -> (sigma: Double, sigmaMean: Double, width: Int, height: Int) {
        let spacing = 1 / gLength
        let sigma = min(max(windowPx, 0.5 * spacing), Double(max(w, h)) / 4)
        let pad = Int((3 * max(2 * sigma, spacing)).rounded(.up)) + 1
        return (sigma, spacing, smoothSize(w + pad), smoothSize(h + pad))
    }

    /// The map of `image` on a region known to be crystal (`lockIn`'s, a step average's, for its
    /// frames): the map's crystal is the region itself wherever the 2g fringes have an
    /// amplitude. Five transforms, three of them of real planes (half the cost): the
    /// frame's spectrum, its local mean, the fringes' spectrum, and the demodulations at g and
    /// 2g. A frame with non-finite pixels in the region is mapped on the rest of it.
    public static func map(_ image: Image, on lockIn: RegionLockIn) -> OrderParameterMap {
        let w = image.width, h = image.height
        guard w == lockIn.region.width, h == lockIn.region.height else {
            return .empty(width: w, height: h, windowPx: lockIn.sigma)
        }
        let finite = lockIn.region.bits.indices.allSatisfy { !lockIn.region.bits[$0] || image.pixels[$0].isFinite }
        guard finite else {
            let region = Mask(width: w, height: h, bits: lockIn.region.bits.indices.map {
                lockIn.region.bits[$0] && image.pixels[$0].isFinite
            })
            guard let own = RegionLockIn(gLayer: lockIn.gLayer, windowPx: lockIn.sigma, region: region) else {
                return .empty(width: w, height: h, windowPx: lockIn.sigma)
            }
            return map(image, on: own)
        }
        let (ampG, amp2G) = lockIn.amplitudes(image)
        var crystal = lockIn.region, layered = Image(width: w, height: h)
        for i in crystal.bits.indices where crystal.bits[i] {
            let a2 = amp2G.pixels[i]
            crystal.bits[i] = a2 > 0
            if a2 > 0 { layered.pixels[i] = ampG.pixels[i] / a2 }
        }
        return OrderParameterMap(layered: layered, crystal: crystal, amplitudeLayer: ampG, amplitudeHalf: amp2G,
                                 windowPx: lockIn.sigma)
    }

    /// The crystal mask and q = A(g)/A(2g) on it. Crystal: a coarse split from
    /// vacuum/amorphous material, then the 50 % level of the local lattice presence.
    private static func crystalMap(_ lockIn: LockIn, plane: Plane, sigmaLevel: Double) -> (Mask, Image) {
        let w = plane.imageWidth, h = plane.imageHeight, pw = plane.width
        var crystal = Mask(width: w, height: h, fill: false)
        var layered = Image(width: w, height: h)
        guard let coarse = coarseLevel(lockIn.regionValues) else { return (crystal, layered) }
        let presence = lockIn.presence(coarse: coarse)
        let (levelNum, levelDen) = localLevel(presence, lockIn: lockIn, coarse: coarse, plane: plane, sigmaLevel: sigmaLevel)
        let combined = lockIn.combined, ampG = lockIn.amplitudeG, amp2G = lockIn.amplitude2G
        for y in 0..<h {
            for x in 0..<w {
                let i = y * pw + x
                guard combined[i] > 0, levelDen[i] > 1e-4 else { continue }
                let level = levelNum[i] / levelDen[i]
                guard presence[i] >= 0.5 * level, Double(combined[i]) >= 0.25 * coarse else { continue }
                crystal[x, y] = true
                let a2 = amp2G[x, y]
                layered[x, y] = a2 > 0 ? ampG[x, y] / a2 : 0
            }
        }
        return (crystal, layered)
    }

    /// The combined amplitude that separates crystal from vacuum/amorphous material: a tenth
    /// of its 95th percentile, raised to Otsu's cut on log amplitude when the two classes
    /// differ ≥ 4×. Nil when the region holds no amplitude.
    private static func coarseLevel(_ values: [Double]) -> Double? {
        guard let top = LeastSquares.quantile(values, 0.95), top > 0 else { return nil }
        var coarse = 0.1 * top
        let logs = values.map { log(max($0, top * 1e-6)) }
        if let split = OtsuSplit(logs) {
            let low = logs.filter { $0 < split.threshold }, high = logs.filter { $0 >= split.threshold }
            if let ml = LeastSquares.median(low), let mh = LeastSquares.median(high), mh - ml > log(4.0) {
                coarse = max(coarse, exp(split.threshold))
            }
        }
        return coarse
    }

    /// Local level of the lattice presence: its normalised-convolution average (σ = 2·window)
    /// over the seed (combined amplitude ≥ `coarse`). The seed reaches into the blurred edge,
    /// whose low amplitudes pull the local level down; so it is averaged again over the
    /// seed's core only (fully surrounded by seed), which the normalised convolution
    /// extrapolates out to the edge.
    private static func localLevel(_ presence: [Float], lockIn: LockIn, coarse: Double, plane: Plane,
                                   sigmaLevel: Double) -> ([Float], [Float]) {
        let n = plane.width * plane.height, combined = lockIn.combined
        var seed = [Float](repeating: 0, count: n), seedLevel = [Float](repeating: 0, count: n)
        for i in 0..<n where combined[i] > 0 && Double(combined[i]) >= coarse {
            seed[i] = 1
            seedLevel[i] = presence[i]
        }
        let presenceLevel = meanLevel(seedLevel, mask: seed)
        let (levelNum, levelDen) = plane.inversePair(plane.forward(seedLevel, and: seed, scale: presenceLevel),
                                                     sigma: sigmaLevel, scale: presenceLevel)
        var core = [Float](repeating: 0, count: n), coreLevel = [Float](repeating: 0, count: n)
        var coreCount = 0
        // Seed density relative to the analysed area's: outside the image (or region) is
        // unknown, not "no crystal", so the core reaches the image's edges.
        let regionDen = lockIn.regionDensity
        for i in 0..<n where seed[i] > 0 && levelDen[i] > 0.97 * regionDen[i] {
            core[i] = 1; coreLevel[i] = presence[i]; coreCount += 1
        }
        guard coreCount >= 16 else { return (levelNum, levelDen) }
        let coreMean = meanLevel(coreLevel, mask: core)
        return plane.inversePair(plane.forward(coreLevel, and: core, scale: coreMean), sigma: sigmaLevel, scale: coreMean)
    }

    /// Mean of `values` over the mask's set pixels (1 when that is zero or undefined): the
    /// scale that puts a 0/1 mask on the level of the values it is paired with.
    static func meanLevel(_ values: [Float], mask: [Float]) -> Float {
        var sum = 0.0, n = 0.0
        for i in values.indices where mask[i] > 0 { sum += Double(abs(values[i])); n += 1 }
        let m = n > 0 ? Float(sum / n) : 1
        return m.isNormal ? m : 1
    }

    /// Smallest n' ≥ n whose prime factors are 2, 3, 5, 7 (sizes FFTW transforms fast).
    static func smoothSize(_ n: Int) -> Int {
        var m = max(n, 1)
        while true {
            var r = m
            for p in [2, 3, 5, 7] { while r % p == 0 { r /= p } }
            if r == 1 { return m }
            m += 1
        }
    }
}

extension OrderParameter {
    /// What the lock-in of every frame mapped on one region needs from the region alone: its
    /// padded plane, the region as a 0/1 plane, and that plane's normalised-convolution
    /// denominators at the local mean's σ and at the window's. Made once for a step's frames.
    public struct RegionLockIn: Sendable {
        let region: Mask
        let gLayer: SIMD2<Double>
        let sigma: Double, sigmaMean: Double
        let paddedWidth: Int, paddedHeight: Int
        let mask: [Float], meanDen: [Float], den: [Float]

        /// Nil where `map` would give an empty map: too small an image, or a reflection the
        /// lock-in cannot use.
        public init?(gLayer: SIMD2<Double>, windowPx: Double, region: Mask) {
            let w = region.width, h = region.height
            let gLength = (gLayer * gLayer).sum().squareRoot()
            guard w >= 8, h >= 8, gLength.isFinite, gLength > 0, abs(2 * gLayer.x) < 0.5, abs(2 * gLayer.y) < 0.5,
                  windowPx.isFinite, windowPx > 0 else { return nil }
            let size = OrderParameter.planeSize(w, h, gLength: gLength, windowPx: windowPx)
            (self.region, self.gLayer, sigma, sigmaMean) = (region, gLayer, size.sigma, size.sigmaMean)
            (paddedWidth, paddedHeight) = (size.width, size.height)
            var mask = [Float](repeating: 0, count: size.width * size.height)
            for y in 0..<h { for x in 0..<w where region[x, y] { mask[y * size.width + x] = 1 } }
            let workspace = FFTWorkspace(width: size.width, height: size.height)
            meanDen = Self.lowPass(mask, sigma: size.sigmaMean, workspace)
            den = Self.lowPass(mask, sigma: size.sigma, workspace)
            self.mask = mask
        }

        /// A padded real plane low-passed by a Gaussian of `sigma` (real-to-complex transforms),
        /// divided by the plane's pixel count, as the complex transforms' results are.
        static func lowPass(_ plane: [Float], sigma: Double, _ workspace: FFTWorkspace) -> [Float] {
            let pw = workspace.width, ph = workspace.height, hw = workspace.spectrumWidth
            plane.withUnsafeBufferPointer { workspace.real.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            workspace.forward()
            let gx = gaussianAxis(pw, centre: 0, sigma: sigma, scale: 1)
            let gy = gaussianAxis(ph, centre: 0, sigma: sigma, scale: 1 / Double(pw * ph))
            for ky in 0..<ph {
                for kx in 0..<hw { workspace.spectrum[ky * hw + kx] *= gx[kx] * gy[ky] }
            }
            workspace.inverse()
            return Array(workspace.real)
        }

        /// A frame's fringe amplitudes at g and 2g (×2, over the window's density, as
        /// `LockIn.demodulate` gives them) on the region.
        func amplitudes(_ image: Image) -> (g: Image, twoG: Image) {
            let w = region.width, h = region.height, pw = paddedWidth, ph = paddedHeight
            var masked = [Float](repeating: 0, count: pw * ph)
            for y in 0..<h { for x in 0..<w where region[x, y] { masked[y * pw + x] = image.pixels[y * w + x] } }
            let workspace = FFTWorkspace(width: pw, height: ph)
            // The local mean (σ = one spacing) subtracted first, by normalised convolution.
            let meanNum = Self.lowPass(masked, sigma: sigmaMean, workspace)
            for i in 0..<(pw * ph) {
                workspace.real[i] = mask[i] > 0 && meanDen[i] > 1e-3 ? masked[i] - meanNum[i] / meanDen[i] : 0
            }
            workspace.forward()
            let plane = Plane(width: pw, height: ph, imageWidth: w, imageHeight: h)
            func amplitude(at hk: SIMD2<Double>) -> Image {
                let z = plane.inverseComplex(half: workspace.spectrum, centre: hk, sigma: sigma)
                var a = Image(width: w, height: h)
                for y in 0..<h {
                    for x in 0..<w {
                        let i = y * pw + x
                        guard mask[i] > 0, den[i] > 0.05 else { continue }
                        a[x, y] = 2 * (z[i] * z[i]).sum().squareRoot() / den[i]
                    }
                }
                return a
            }
            return (amplitude(at: gLayer), amplitude(at: 2 * gLayer))
        }
    }

    /// exp(−2π²σ²(k/n − centre)²) along one axis of n frequencies (k at its nearest periodic
    /// image of the centre), times `scale`.
    static func gaussianAxis(_ n: Int, centre: Double, sigma: Double, scale: Double) -> [Float] {
        let c = -2 * Double.pi * Double.pi * sigma * sigma
        return (0..<n).map { k -> Float in
            var d = Double(k) / Double(n) - centre
            d -= d.rounded()
            return Float(exp(c * d * d) * scale)
        }
    }
}

/// The lock-in amplitudes of one image at g and 2g on its padded plane (see `OrderParameter`).
private struct LockIn {
    /// Fringe amplitudes at g and 2g on the image's grid.
    var amplitudeG: Image
    var amplitude2G: Image
    /// The same, on the padded plane, where the fringes' local frequency lies close enough
    /// to the reflection (0 elsewhere).
    var lockedG: [Float]
    var locked2G: [Float]
    /// √(A_g² + A_2g²) of the locked amplitudes on the padded plane, and its values over the
    /// analysed pixels in order.
    var combined: [Float]
    var regionValues: [Double]
    /// The region's own density at σ = 2·window (its normalised-convolution denominator).
    var regionDensity: [Float]

    init(_ image: Image, region: Mask?, plane: Plane, gLayer: SIMD2<Double>, sigma: Double, sigmaMean: Double) {
        let w = image.width, h = image.height, pw = plane.width, ph = plane.height
        let (mask, masked) = Self.maskedPlanes(image, region: region, plane: plane)
        // Two real planes share one complex transform wherever a real, even filter is applied
        // to both (FFT of a + i·b filtered and inverted = filtered a + i·filtered b): 10
        // transforms instead of 17. The mask is scaled to the image's level so that float
        // rounding is relative to the same magnitude in both halves.
        let level = OrderParameter.meanLevel(masked, mask: mask)
        let specMaskedAndMask = plane.forward(masked, and: mask, scale: level)
        let specMask = plane.secondHalf(of: specMaskedAndMask, scale: level)
        // Subtract the local mean (normalised convolution at σ = d).
        let specFringes: [Complex] = {
            let (meanNum, meanDen) = plane.inversePair(specMaskedAndMask, sigma: sigmaMean, scale: level)
            var fringes = [Float](repeating: 0, count: pw * ph)
            for i in 0..<(pw * ph) where mask[i] > 0 && meanDen[i] > 1e-3 {
                fringes[i] = masked[i] - meanNum[i] / meanDen[i]
            }
            return plane.forward(fringes)
        }()
        let (den, regionDen) = plane.inverse(specMask, sigmas: sigma, 2 * sigma)
        regionDensity = regionDen
        (amplitudeG, lockedG) = Self.demodulate(specFringes, at: gLayer, plane: plane, sigma: sigma, mask: mask, den: den)
        (amplitude2G, locked2G) = Self.demodulate(specFringes, at: 2 * gLayer, plane: plane, sigma: sigma, mask: mask,
                                                   den: den)
        combined = [Float](repeating: 0, count: pw * ph)
        regionValues = []
        regionValues.reserveCapacity(w * h)
        for y in 0..<h {
            for x in 0..<w {
                let i = y * pw + x
                guard mask[i] > 0, den[i] > 0.05 else { continue }
                let a1 = lockedG[i], a2 = locked2G[i]
                let c = (a1 * a1 + a2 * a2).squareRoot()
                combined[i] = c
                regionValues.append(Double(c))
            }
        }
    }

    /// Region mask (also dropping non-finite pixels) and the masked image, zero-padded.
    static func maskedPlanes(_ image: Image, region: Mask?, plane: Plane) -> (mask: [Float], masked: [Float]) {
        let w = image.width, pw = plane.width
        var mask = [Float](repeating: 0, count: pw * plane.height)
        var masked = [Float](repeating: 0, count: pw * plane.height)
        for y in 0..<image.height {
            for x in 0..<w {
                let v = image.pixels[y * w + x]
                guard v.isFinite, region?[x, y] ?? true else { continue }
                mask[y * pw + x] = 1
                masked[y * pw + x] = v
            }
        }
        return (mask, masked)
    }

    /// The amplitude at reflection `hk`, ×2 since a fringe A·cos(2πh·r) demodulates to A/2,
    /// and the same kept only where the fringes' local frequency (GPA: the phase gradient of
    /// the demodulated signal) lies within max(half a mask width 1/(4πσ), 4 % of |h|) of h: a
    /// neighbouring grain whose own reflection falls inside the mask but off its centre is
    /// not this lattice, while strain up to ~4 % (rock salt's spacing differs from the layered
    /// half-spacing by ~3.6 %) still is. Only an almost exactly coincident reflection of
    /// another grain gets through; a looser limit lets random amorphous fringes in.
    static func demodulate(_ spectrum: [Complex], at hk: SIMD2<Double>, plane: Plane, sigma: Double, mask: [Float],
                           den: [Float]) -> (Image, [Float]) {
        let w = plane.imageWidth, h = plane.imageHeight, pw = plane.width
        var amplitude = Image(width: w, height: h)
        var locked = [Float](repeating: 0, count: pw * plane.height)
        let limit = max(1 / (4 * Double.pi * sigma), 0.04 * (hk * hk).sum().squareRoot())
        let z = plane.inverseComplex(spectrum, centre: hk, sigma: sigma)
        for y in 0..<h {
            for x in 0..<w {
                let i = y * pw + x
                guard mask[i] > 0, den[i] > 0.05 else { continue }
                let a = 2 * (z[i] * z[i]).sum().squareRoot() / den[i]
                amplitude[x, y] = a
                // Local frequency from neighbour products z(r+e)·z̄(r).
                let jx = x + 1 < w ? i + 1 : i - 1, jy = y + 1 < h ? i + pw : i - pw
                let sx: Double = x + 1 < w ? 1 : -1, sy: Double = y + 1 < h ? 1 : -1
                func frequency(_ j: Int) -> Double {
                    let p = z[j], q = z[i]
                    return Double(atan2f(p.y * q.x - p.x * q.y, p.x * q.x + p.y * q.y)) / (2 * .pi)
                }
                var dx = sx * frequency(jx) - hk.x, dy = sy * frequency(jy) - hk.y
                dx -= dx.rounded(); dy -= dy.rounded()
                if dx * dx + dy * dy < limit * limit { locked[i] = a }
            }
        }
        return (amplitude, locked)
    }

    /// Presence of lattice, the same in both phases: the 2g amplitude, or the g amplitude
    /// scaled to the layered phase's 2g level (for layered crystal whose 2g is weak). The
    /// plain combined amplitude would drop ~2.5× from layered to rock salt and pull the rock
    /// salt at a boundary out of the mask. The scale is the 90th percentile of A(g)/A(2g) over
    /// the seed, never below 1: an ordered layered crystal has q ≳ 0.95 (see
    /// `PhaseSegmentation`), and a crystal with no layered part must not scale noise at g up
    /// to crystal level.
    func presence(coarse: Double) -> [Float] {
        var ratios = [Double]()
        for i in combined.indices where combined[i] > 0 && Double(combined[i]) >= coarse && locked2G[i] > 0 {
            ratios.append(Double(lockedG[i] / locked2G[i]))
        }
        let layeredRatio = Float(max(LeastSquares.quantile(ratios, 0.9) ?? 1, 1))
        var presence = [Float](repeating: 0, count: combined.count)
        for i in combined.indices where combined[i] > 0 {
            presence[i] = max(locked2G[i], lockedG[i] / layeredRatio)
        }
        return presence
    }
}

/// One padded plane size with its complex FFT workspace: forward transforms of real
/// arrays and Gaussian-masked inverse transforms.
private final class Plane {
    let width: Int, height: Int
    /// The image's size inside the padded plane.
    let imageWidth: Int, imageHeight: Int
    let workspace: ComplexFFTWorkspace

    init(width: Int, height: Int, imageWidth: Int, imageHeight: Int) {
        self.width = width
        self.height = height
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        workspace = ComplexFFTWorkspace(width: width, height: height)
    }

    func forward(_ real: [Float]) -> [Complex] {
        let data = workspace.data
        for i in 0..<data.count { data[i] = Complex(real[i], 0) }
        workspace.forward()
        return Array(data)
    }

    /// Spectrum of `a + i·scale·b` (two real planes in one transform).
    func forward(_ a: [Float], and b: [Float], scale: Float) -> [Complex] {
        let data = workspace.data
        for i in 0..<data.count { data[i] = Complex(a[i], scale * b[i]) }
        workspace.forward()
        return Array(data)
    }

    /// The spectrum of `b` from that of `a + i·scale·b`, by Hermitian symmetry:
    /// B(k) = (S(k) − S̄(−k)) / (2i·scale).
    func secondHalf(of s: [Complex], scale: Float) -> [Complex] {
        var out = [Complex](repeating: .zero, count: s.count)
        let f = 0.5 / scale
        for ky in 0..<height {
            let my = (height - ky) % height
            for kx in 0..<width {
                let p = s[ky * width + kx], q = s[my * width + (width - kx) % width]
                out[ky * width + kx] = Complex(p.y + q.y, q.x - p.x) * f
            }
        }
        return out
    }

    /// The complex result of the same filtered inverse transform.
    func inverseComplex(_ spectrum: [Complex], centre: SIMD2<Double>, sigma: Double) -> [Complex] {
        filterAndInvert(centre: centre, sigma: sigma) { ky, kx in spectrum[ky * width + kx] }
        return Array(workspace.data)
    }

    /// The same from a real plane's half spectrum (`FFTWorkspace`'s layout): the other half is
    /// its mirror's complex conjugate, X(k) = X̄(−k).
    func inverseComplex(half: UnsafeMutableBufferPointer<Complex>, centre: SIMD2<Double>, sigma: Double) -> [Complex] {
        let hw = width / 2 + 1
        filterAndInvert(centre: centre, sigma: sigma) { ky, kx in
            guard kx >= hw else { return half[ky * hw + kx] }
            let m = half[((height - ky) % height) * hw + width - kx]
            return Complex(m.x, -m.y)
        }
        return Array(workspace.data)
    }

    /// Both real planes of a spectrum from `forward(_:and:scale:)`, each low-passed by the
    /// same Gaussian (a real, even filter keeps the two halves apart).
    func inversePair(_ spectrum: [Complex], sigma: Double, scale: Float) -> ([Float], [Float]) {
        filterAndInvert(centre: .zero, sigma: sigma) { ky, kx in spectrum[ky * width + kx] }
        let data = workspace.data, inv = 1 / scale
        return (data.map { $0.x }, data.map { $0.y * inv })
    }

    /// One real plane low-passed by two Gaussians in one transform: IFFT(S·(G₁ + i·G₂)).
    func inverse(_ spectrum: [Complex], sigmas s1: Double, _ s2: Double) -> ([Float], [Float]) {
        let (g1x, g1y) = gaussianAxes(centre: .zero, sigma: s1)
        let (g2x, g2y) = gaussianAxes(centre: .zero, sigma: s2)
        let data = workspace.data
        for ky in 0..<height {
            let row = ky * width
            for kx in 0..<width {
                let p = spectrum[row + kx], a = g1x[kx] * g1y[ky], b = g2x[kx] * g2y[ky]
                data[row + kx] = Complex(p.x * a - p.y * b, p.y * a + p.x * b)
            }
        }
        workspace.backward()
        return (data.map { $0.x }, data.map { $0.y })
    }

    /// The separable mask exp(−2π²σ²|k − centre|²) per axis (k at its nearest periodic image
    /// of the centre), the 1/N of the inverse transform folded into the y factor.
    private func gaussianAxes(centre: SIMD2<Double>, sigma: Double) -> ([Float], [Float]) {
        (OrderParameter.gaussianAxis(width, centre: centre.x, sigma: sigma, scale: 1),
         OrderParameter.gaussianAxis(height, centre: centre.y, sigma: sigma, scale: 1 / Double(width * height)))
    }

    /// The workspace filled with the spectrum (element (ky, kx) from `spectrum`) times the
    /// Gaussian mask, rows the mask leaves under 10⁻¹² set to zero, and transformed back.
    @inline(__always)
    private func filterAndInvert(centre: SIMD2<Double>, sigma: Double, _ spectrum: (_ ky: Int, _ kx: Int) -> Complex) {
        let data = workspace.data
        let (gx, gy) = gaussianAxes(centre: centre, sigma: sigma)
        for ky in 0..<height {
            let row = ky * width
            if gy[ky] < 1e-12 {
                for kx in 0..<width { data[row + kx] = .zero }
                continue
            }
            for kx in 0..<width { data[row + kx] = spectrum(ky, kx) * (gx[kx] * gy[ky]) }
        }
        workspace.backward()
    }
}
