import Foundation

/// The kind of atomic column at a site of the projected layered lattice.
public enum ColumnSpecies: Int, Sendable {
    case oxygen, transitionMetal, lithiumSite
}

/// Projected layered LiMO2 (α-NaFeO2 type, R-3m, O3 stacking) seen edge-on along hexagonal
/// [100], in specimen coordinates (nm; x right, y down).
///
/// Along the c axis the close-packed layers follow O(A) TM(c) O(B) Li(a) O(C) TM(b) O(A) Li(c) …
/// so sub-layer `m` lies at `m·d/4` across the layers (d = (003) spacing, 0.468 nm for LiCoO2)
/// and each sub-layer is shifted sideways by −a/3 from the previous (a = projected in-plane
/// column spacing, 0.244 nm). Even `m` are O layers, `m ≡ 1 (mod 4)` TM planes and
/// `m ≡ 3 (mod 4)` Li planes, half-way between TM planes. Consecutive TM planes are therefore
/// offset by one third of the in-plane spacing (ABC stacking), and in the fully cation-mixed
/// rock salt the Li and TM sites become equivalent, halving the periodicity across the layers.
public struct LayeredLattice: Sendable, Equatable {
    /// A point of O sub-layer 0, column 0.
    public var originNm: SIMD2<Double>
    /// Unit vector along the layers and unit normal to them (u rotated by +90° in y-down axes).
    public let along: SIMD2<Double>
    public let across: SIMD2<Double>
    public let inPlaneSpacingNm: Double
    public let layerSpacingNm: Double

    /// `layerAngleDeg`: angle of the layers from +x, counter-clockwise as seen on screen.
    public init(originNm: SIMD2<Double>, layerAngleDeg: Double, inPlaneSpacingNm: Double, layerSpacingNm: Double) {
        let th = layerAngleDeg * .pi / 180
        self.originNm = originNm
        along = SIMD2(cos(th), -sin(th))
        across = SIMD2(sin(th), cos(th))
        self.inPlaneSpacingNm = inPlaneSpacingNm
        self.layerSpacingNm = layerSpacingNm
    }

    var subLayerSpacing: Double { layerSpacingNm / 4 }

    static func mod(_ m: Int, _ n: Int) -> Int { let r = m % n; return r < 0 ? r + n : r }

    public func species(layer m: Int) -> ColumnSpecies {
        if m & 1 == 0 { return .oxygen }
        return LayeredLattice.mod(m, 4) == 1 ? .transitionMetal : .lithiumSite
    }

    /// Sideways shift of sub-layer `m` along the layers (ABC stacking, reduced modulo a).
    func sideOffset(_ m: Int) -> Double { -Double(LayeredLattice.mod(m, 3)) * inPlaneSpacingNm / 3 }

    /// Specimen position of column `i` of sub-layer `m`.
    public func position(layer m: Int, column i: Int) -> SIMD2<Double> {
        originNm + (Double(i) * inPlaneSpacingNm + sideOffset(m)) * along + Double(m) * subLayerSpacing * across
    }

    /// (along, across) coordinates of a specimen point relative to the origin.
    func local(_ r: SIMD2<Double>) -> (Double, Double) {
        let d = r - originNm
        return ((d * along).sum(), (d * across).sum())
    }

    /// Basis of the TM sublattice: `tm(i, j) = tmOrigin + i·alongBasis + j·acrossBasis`, where
    /// `acrossBasis = d·n − (a/3)·u` carries the one-third stacking offset between TM planes.
    public var tmOriginNm: SIMD2<Double> { position(layer: 1, column: 0) }
    public var alongBasisNm: SIMD2<Double> { inPlaneSpacingNm * along }
    public var acrossBasisNm: SIMD2<Double> { layerSpacingNm * across - (inPlaneSpacingNm / 3) * along }
    /// Li site of a TM site's own cell: half a layer across, a/3 along.
    public var liOffsetNm: SIMD2<Double> { position(layer: 3, column: 0) - position(layer: 1, column: 0) }

    /// Sub-layer and column index ranges covering a specimen rectangle (plus `margin`).
    func indexRange(xMin: Double, xMax: Double, yMin: Double, yMax: Double, margin: Double) -> (ClosedRange<Int>, ClosedRange<Int>) {
        var aMin = Double.infinity, aMax = -Double.infinity, cMin = Double.infinity, cMax = -Double.infinity
        for x in [xMin, xMax] { for y in [yMin, yMax] {
            let (a, c) = local(SIMD2(x, y))
            aMin = min(aMin, a); aMax = max(aMax, a); cMin = min(cMin, c); cMax = max(cMax, c)
        } }
        let q = subLayerSpacing, s = inPlaneSpacingNm
        let m = Int(floor((cMin - margin) / q))...Int(ceil((cMax + margin) / q))
        let i = Int(floor((aMin - margin) / s)) - 1...Int(ceil((aMax + margin) / s)) + 1
        return (m, i)
    }
}

/// The intensity of one atomic column in a HAADF image: a Gaussian probe core plus a weak
/// broad Gaussian tail (the aberration-corrected probe's tails, which put a little intensity
/// on neighbouring sites), normalised to a peak of 1 per unit column weight.
public struct ColumnProfile: Sendable, Equatable {
    public let coreSigmaNm: Double
    public let tailSigmaNm: Double
    public let tailFraction: Double
    let coreK: Double, tailK: Double, coreW: Double, tailW: Double
    /// The core is evaluated within 4 σ only (exp(−8) ≈ 3·10⁻⁴), which saves most exponentials.
    let coreCut2: Double
    /// Distance beyond which a column contributes nothing (3.2 σ of the widest part).
    public let cutoffNm: Double

    public init(coreSigmaNm: Double, tailSigmaNm: Double, tailFraction: Double) {
        self.coreSigmaNm = coreSigmaNm
        self.tailSigmaNm = tailSigmaNm
        self.tailFraction = tailFraction
        coreK = -1 / (2 * coreSigmaNm * coreSigmaNm)
        tailK = -1 / (2 * tailSigmaNm * tailSigmaNm)
        // Integrated weights (1−f) and f; peak normalised to 1.
        let tailPeak = tailFraction * (coreSigmaNm * coreSigmaNm) / (tailSigmaNm * tailSigmaNm)
        let peak = (1 - tailFraction) + tailPeak
        coreW = (1 - tailFraction) / peak
        tailW = tailPeak / peak
        cutoffNm = 3.2 * max(coreSigmaNm, tailFraction > 0 ? tailSigmaNm : 0)
        coreCut2 = max(16 * coreSigmaNm * coreSigmaNm, tailFraction > 0 ? 0 : cutoffNm * cutoffNm)
    }

    public func value(r2: Double) -> Double {
        var v = r2 < coreCut2 ? coreW * exp(r2 * coreK) : 0
        if tailW > 0 { v += tailW * exp(r2 * tailK) }
        return v
    }
}

/// Column amplitudes (weight × occupancy × thickness) of one lattice over an index window,
/// precomputed per frame so the per-pixel loop only evaluates profiles.
struct SiteAmplitudes {
    let layers: ClosedRange<Int>
    let columns: ClosedRange<Int>
    let values: [Double]

    init(layers: ClosedRange<Int>, columns: ClosedRange<Int>, _ amp: (Int, Int) -> Double) {
        self.layers = layers
        self.columns = columns
        var v = [Double]()
        v.reserveCapacity(layers.count * columns.count)
        for m in layers { for i in columns { v.append(amp(m, i)) } }
        values = v
    }

    func amplitude(_ m: Int, _ i: Int) -> Double {
        guard layers.contains(m), columns.contains(i) else { return 0 }
        return values[(m - layers.lowerBound) * columns.count + (i - columns.lowerBound)]
    }

    /// Sum of all columns' profiles at specimen point `r`.
    func intensity(at r: SIMD2<Double>, lattice: LayeredLattice, profile: ColumnProfile) -> Double {
        let (al, ac) = lattice.local(r)
        let q = lattice.subLayerSpacing, s = lattice.inPlaneSpacingNm
        let cut = profile.cutoffNm, cut2 = cut * cut
        let m0 = Int((ac / q + 0.5).rounded(.down))
        let k = Int(ceil(cut / q))
        var sum = 0.0
        for m in (m0 - k)...(m0 + k) {
            let dc = ac - Double(m) * q
            if abs(dc) > cut { continue }
            let off = al - lattice.sideOffset(m)
            let i0 = Int((off / s + 0.5).rounded(.down))
            let l = Int(ceil(cut / s))
            for i in (i0 - l)...(i0 + l) {
                let da = off - Double(i) * s
                let r2 = da * da + dc * dc
                if r2 > cut2 { continue }
                let a = amplitude(m, i)
                if a != 0 { sum += a * profile.value(r2: r2) }
            }
        }
        return sum
    }
}
