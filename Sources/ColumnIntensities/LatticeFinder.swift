import FrameCore
import Foundation

/// Why no lattice could be measured in an image.
public enum LatticeFinderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The image is too small to hold several lattice periods.
    case imageTooSmall(width: Int, height: Int)
    /// A parameter is impossible (negative pixel size, tolerance outside 0–0.9, …).
    case invalidParameter(String)
    /// No reflection stands out of the noise where the layer reflection should be.
    case noLayerReflection(String)

    public var description: String {
        switch self {
        case let .imageTooSmall(w, h): return "lattice finder: image \(w)×\(h) is too small (needs ≥ 32×32)"
        case let .invalidParameter(s): return "lattice finder: \(s)"
        case let .noLayerReflection(s): return "lattice finder: no layer reflection: \(s)"
        }
    }
}

/// Finds the layered lattice (layer reflection, in-plane column reflection, a TM column
/// position) from the Fourier transform of an HAADF image.
///
/// Method: the mean-free image is Hann-windowed and transformed with FFTW; the layer
/// reflection is the strongest spectral peak whose spacing lies within ±`tolerance` of the
/// expected (003) spacing (`layerSpacingNm / pixelSizeNm`), at any orientation. Its position is
/// refined to ≈ 0.005 FFT bin by the matrix-multiply DFT zoom of Guizar-Sicairos et al.,
/// Opt. Lett. 33 (2008) 156 (see `WindowedSpectrum`), so spacing and angle come out at the
/// 0.1 % / 0.05° level on a 256 px image. The in-plane column reflection is then searched where
/// the component along the layers matches the projected column spacing (0.521 × the layer
/// spacing for LiMO2 seen along [100], ±`tolerance`) and the component across the layers is at
/// most half the layer reflection (ABC stacking puts it at ±⅓). The phases of the two
/// reflections place a TM column (intensity maxima sit where the Fourier phases of the TM
/// lattice vanish), giving `origin`, like the reference-lattice step of geometric phase
/// analysis (Hÿtch, Snoeck & Kilaas, Ultramicroscopy 74 (1998) 131).
///
/// The whole image is used: in a partly transformed image the layered part alone carries the
/// 0.468 nm reflection (the rock-salt part only halves it), so the finder works as long as some
/// layered crystal remains. A fully rock-salt image has no layer reflection and throws
/// `noLayerReflection` when the pixel size is known. Works on single frames (the lattice
/// reflection integrates the whole field, so even a few counts per column suffice) and on
/// step averages.
///
/// Without a pixel size the expected spacing is unknown: the finder takes, among the strong
/// spectral peaks (≥ 1 % of the strongest in power, 50× the noise floor) with spacings between
/// 4 px and a quarter of the image, the one with the longest spacing, since the layer
/// reflection is the shortest reciprocal vector of the layered TM lattice. On a fully rock-salt image this returns the
/// 0.234 nm half-spacing reflection instead; callers without calibration should check.
public enum LatticeFinder {
    /// In-plane TM column spacing over (003) layer spacing for LiMO2 seen along [100]:
    /// (a·√3/2) / (c/3) = (0.2816 × 0.8660) / 0.4683 for LiCoO2.
    public static let columnToLayerSpacingRatio = 0.2816 * 0.8660254 / 0.4683

    public static func find(in image: Image, pixelSizeNm: Double?, layerSpacingNm: Double = 0.468,
                            tolerance: Double = 0.15) throws -> Lattice {
        try validate(image, pixelSizeNm: pixelSizeNm, layerSpacingNm: layerSpacingNm, tolerance: tolerance)
        let windowed = WindowedSpectrum(image)
        let power = PowerSpectrum(windowed: windowed.values, width: windowed.width, height: windowed.height)
        let maxSpacingPx = Double(min(image.width, image.height)) / 4

        // 1. Layer reflection at FFT-bin precision.
        let coarseLayer = try pixelSizeNm.map {
            try calibratedLayerPeak(power, expectedPx: layerSpacingNm / $0, layerSpacingNm: layerSpacingNm,
                                    tolerance: tolerance, maxSpacingPx: maxSpacingPx, size: (image.width, image.height))
        } ?? longestStrongPeak(power, maxSpacingPx: maxSpacingPx)

        // 2. Sub-bin refinement; orient the normal downwards (y ≥ 0) for a stable convention.
        var gLayer = windowed.refinePeak(coarseLayer)
        if gLayer.y < 0 || (gLayer.y == 0 && gLayer.x < 0) { gLayer = -gLayer }
        let layerSpacingPx = 1 / norm(gLayer)
        let normal = gLayer / norm(gLayer)

        // 3. In-plane column reflection.
        let expectedColumn = layerSpacingPx * columnToLayerSpacingRatio
        let gColumn = columnReflection(windowed, power: power, gLayer: gLayer, expectedPx: expectedColumn,
                                       tolerance: tolerance)
        let along = SIMD2(-normal.y, normal.x)
        let columnSpacingPx = gColumn.map { 1 / abs(dot($0, along)) } ?? expectedColumn

        // 4. Origin: a TM column, from the reflections' phases.
        let centre = SIMD2(Double(image.width - 1) / 2, Double(image.height - 1) / 2)
        var lattice = Lattice(layerNormal: normal, layerSpacingPx: layerSpacingPx, columnSpacingPx: columnSpacingPx,
                              gLayer: gLayer, gColumn: gColumn,
                              origin: origin(windowed, gLayer: gLayer, gColumn: gColumn, centre: centre))
        lattice.origin = lattice.nearestTMSite(to: centre)
        return lattice
    }

    static func validate(_ image: Image, pixelSizeNm: Double?, layerSpacingNm: Double, tolerance: Double) throws {
        guard image.width >= 32, image.height >= 32 else {
            throw LatticeFinderError.imageTooSmall(width: image.width, height: image.height)
        }
        if let p = pixelSizeNm, !(p.isFinite && p > 0) {
            throw LatticeFinderError.invalidParameter("pixel size \(p) nm is not positive")
        }
        guard layerSpacingNm.isFinite, layerSpacingNm > 0 else {
            throw LatticeFinderError.invalidParameter("layer spacing \(layerSpacingNm) nm is not positive")
        }
        guard tolerance.isFinite, tolerance > 0, tolerance < 0.9 else {
            throw LatticeFinderError.invalidParameter("tolerance \(tolerance) outside (0, 0.9)")
        }
        guard image.pixels.allSatisfy({ $0.isFinite }) else {
            throw LatticeFinderError.invalidParameter("image holds NaN or infinite pixels")
        }
    }

    /// The strongest peak with a spacing within ±`tolerance` of the expected one, when it
    /// stands out of the noise.
    static func calibratedLayerPeak(_ power: PowerSpectrum, expectedPx expected: Double, layerSpacingNm: Double,
                                    tolerance: Double, maxSpacingPx: Double, size: (Int, Int)) throws -> SIMD2<Double> {
        let lo = max(1 / (expected * (1 + tolerance)), 1 / maxSpacingPx)
        let hi = min(1 / (expected * (1 - tolerance)), 1 / minSpacingPx, 0.5)
        guard lo < hi else {
            throw LatticeFinderError.noLayerReflection(
                "expected spacing \(fmt(expected)) px cannot be resolved in a \(size.0)×\(size.1) image")
        }
        guard let peak = power.strongest(where: { f in
            let r = norm(f); return r >= lo && r <= hi
        }) else {
            throw LatticeFinderError.noLayerReflection("empty search band")
        }
        let floor = power.median(where: { f in let r = norm(f); return r >= lo && r <= hi })
        // Relative to the strongest lattice reflection anywhere (≥ 1 % in amplitude), so
        // window leakage of other reflections in a noise-free rock-salt image is no peak.
        let strongestAnywhere = power.strongest(where: { f in norm(f) >= 1 / maxSpacingPx })?.power ?? 0
        guard peak.power > 20 * floor, peak.power > 1e-4 * strongestAnywhere else {
            throw LatticeFinderError.noLayerReflection(
                "no peak within ±\(Int(tolerance * 100)) % of \(fmt(layerSpacingNm)) nm " +
                "(\(fmt(expected)) px) stands out (relative power \(peak.power / max(strongestAnywhere, 1e-300))) " +
                "— fully rock salt, or wrong pixel size?")
        }
        return peak.f
    }

    /// Without a pixel size: the strong peak with the longest spacing (see the type's comment).
    static func longestStrongPeak(_ power: PowerSpectrum, maxSpacingPx: Double) throws -> SIMD2<Double> {
        let band: (SIMD2<Double>) -> Bool = { f in
            let r = norm(f); return r >= 1 / maxSpacingPx && r <= 1 / minSpacingPx
        }
        let peaks = power.localMaxima(where: band)
        guard let strongest = peaks.max(by: { $0.power < $1.power }) else {
            throw LatticeFinderError.noLayerReflection("no spectral peak with a spacing of 4 px or more")
        }
        let floor = power.median(where: band)
        guard strongest.power > 20 * floor else {
            throw LatticeFinderError.noLayerReflection("no lattice reflection stands out of the noise")
        }
        let strong = peaks.filter { $0.power >= 0.01 * strongest.power && $0.power > 50 * floor }
        guard let longest = strong.min(by: { norm($0.f) < norm($1.f) }) else {
            throw LatticeFinderError.noLayerReflection("no lattice reflection stands 50× above the noise")
        }
        return longest.f
    }

    /// The in-plane column reflection, refined, pointing along the layers; nil when none
    /// stands out of the noise.
    static func columnReflection(_ windowed: WindowedSpectrum, power: PowerSpectrum, gLayer: SIMD2<Double>,
                                 expectedPx: Double, tolerance: Double) -> SIMD2<Double>? {
        let gl = norm(gLayer), normal = gLayer / gl
        let along = SIMD2(-normal.y, normal.x)
        let cLo = 1 / (expectedPx * (1 + tolerance)), cHi = 1 / (expectedPx * (1 - tolerance))
        let columnBand: (SIMD2<Double>) -> Bool = { f in
            let u = abs(dot(f, along)), v = abs(dot(f, normal))
            return u >= cLo && u <= cHi && v <= 0.55 * gl && norm(f) < 0.5
        }
        guard cLo < 0.5, let peak = power.strongest(where: columnBand),
              peak.power > 20 * power.median(where: columnBand) else { return nil }
        var g = windowed.refinePeak(peak.f)
        if dot(g, along) < 0 { g = -g }
        return g
    }

    /// A TM column from the reflections' phases. For I ∝ cos(2π g·r − θ), F(g) ∝ e^{−iθ}, so
    /// maxima lie on g·r = θ/2π + n with θ = −arg F(g).
    static func origin(_ windowed: WindowedSpectrum, gLayer: SIMD2<Double>, gColumn: SIMD2<Double>?,
                       centre: SIMD2<Double>) -> SIMD2<Double> {
        let fl = windowed.transform(at: gLayer)
        let thetaL = -atan2(fl.im, fl.re) / (2 * Double.pi)
        guard let gc = gColumn else {
            let gl = norm(gLayer)
            let offset: Double = (thetaL - dot(gLayer, centre)) / (gl * gl)
            return centre + offset * gLayer
        }
        let fc = windowed.transform(at: gc)
        let thetaC = -atan2(fc.im, fc.re) / (2 * Double.pi)
        // Solve gc·r = θc, gl·r = θl.
        let det = gc.x * gLayer.y - gc.y * gLayer.x
        return SIMD2((thetaC * gLayer.y - gc.y * thetaL) / det, (gc.x * thetaL - gLayer.x * thetaC) / det)
    }

    /// Shortest lattice spacing searched (px): 2g must stay resolvable.
    static let minSpacingPx = 4.0

    static func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
}

extension Lattice {
    /// The lattice TM position (origin + i·a1 + j·a2) nearest to `p`.
    func nearestTMSite(to p: SIMD2<Double>) -> SIMD2<Double> {
        let (a1, a2) = tmBasis
        let (i, j) = latticeCoordinates(of: p)
        var best = origin, bestD = Double.infinity
        for di in -1...1 {
            for dj in -1...1 {
                let q = origin + (i.rounded(.down) + Double(di)) * a1 + (j.rounded(.down) + Double(dj)) * a2
                let d = norm(q - p)
                if d < bestD { bestD = d; best = q }
            }
        }
        return best
    }

    /// Fractional lattice coordinates (i, j) of `p`: p = origin + i·a1 + j·a2.
    func latticeCoordinates(of p: SIMD2<Double>) -> (Double, Double) {
        let (a1, a2) = tmBasis
        let d = p - origin
        let det = a1.x * a2.y - a1.y * a2.x
        return ((d.x * a2.y - d.y * a2.x) / det, (a1.x * d.y - a1.y * d.x) / det)
    }
}
