import FrameCore
import Foundation

/// Whether an image shows what the Li/TM site model assumes: the layered LiMO2 lattice
/// seen edge-on along hexagonal [100], in a contrast where columns are bright (HAADF).
///
/// `LatticeFinder` fits the layered lattice to whatever reflections lie near the expected
/// spacings, so on another crystal (SrTiO3 along [001], a spinel, a second zone axis) or in
/// dark-column contrast (ABF, an inverted export) it still returns a lattice, and sites placed
/// on it would give a Li/TM ratio that means nothing. Four measurements decide, each a
/// property of the layered projection:
///
/// 1. **Stacking.** Consecutive TM planes of the O3 structure are offset sideways by ⅓ of the
///    in-plane column spacing (ABC stacking); planes that line up (0) or sit half-way (½)
///    belong to another lattice. Known only when the in-plane columns are resolved.
/// 2. **Contrast.** The unit-cell average (every crystal pixel folded onto one cell of the TM
///    lattice, as in the motif averaging of crystallographic image processing, Hovmöller,
///    Ultramicroscopy 41 (1992) 121) is skewed toward its maximum when columns are bright
///    peaks on a dark background (HAADF) and toward its minimum when they are dark dips
///    (ABF, Findlay et al., Appl. Phys. Lett. 95 (2009) 191913).
/// 3. **Sites on columns.** A TM site must lie on an intensity maximum: brighter than the
///    ring around it at the fit radius. A lattice fitted to a crystal of other symmetry puts
///    a fraction of its sites between the real columns.
/// 4. **Site contrast.** In the layered part of the crystal the Li sites are darker than the
///    TM sites (Li/TM well below 1).
public struct LayeredProjectionCheck: Sendable, Equatable {
    /// Column contrast of the image.
    public enum Contrast: String, Sendable, Codable {
        /// Bright columns on a dark background (HAADF, ADF).
        case brightColumns = "bright_columns"
        /// Dark columns on a bright background (ABF, BF, an inverted image).
        case darkColumns = "dark_columns"
        /// Neither clearly (too little lattice contrast to tell).
        case unclear
    }

    /// Sideways offset of consecutive TM planes as a fraction of the column spacing
    /// (`Lattice.stackingOffset`); nil when the in-plane columns were not resolved.
    public var stackingOffset: Double?
    /// Skewness of the unit-cell average: > 0 bright columns, < 0 dark columns.
    public var cellSkewness: Double
    public var contrast: Contrast
    /// Fraction of TM sites brighter than the ring around them.
    public var tmSitesOnColumns: Double
    /// Li/TM of the sites in the layered part (nil with too few sites there).
    public var layeredLiTmRatio: Double?
    /// Why the model does not apply, in a user's words; nil when it applies.
    public var failure: String?

    public var applies: Bool { failure == nil }

    /// Thresholds, with the margins measured on simulated layered runs and real SrTiO3
    /// frames (docs/algorithms.md, "Is it the layered lattice?").
    static let stackingTolerance = 0.1
    static let skewnessMargin = 0.2
    static let minSitesOnColumns = 0.75
    static let maxLayeredLiTm = 0.8

    /// - Parameters:
    ///   - image: the image in the contrast the sites were measured in.
    ///   - sites: TM and Li sites with their measured intensities.
    ///   - region: the analysed crystal.
    ///   - layered: the layered part of it, when a phase map is known.
    ///   - contrastStated: the user stated the contrast (`contrast:` in the config), so the
    ///     skewness does not decide it.
    public init(image: Image, sites: ColumnSites, region: Mask, layered: Mask?, contrastStated: Bool = false) {
        let lattice = sites.lattice
        stackingOffset = lattice.stackingOffset
        cellSkewness = Self.cellSkewness(image, lattice: lattice, region: region)
        contrast = cellSkewness > Self.skewnessMargin ? .brightColumns
            : cellSkewness < -Self.skewnessMargin ? .darkColumns : .unclear
        tmSitesOnColumns = Self.fractionOnMaxima(image, sites: sites.tm, lattice: lattice)
        layeredLiTmRatio = Self.liTmRatio(sites, in: layered ?? region)
        failure = reason(contrastStated: contrastStated)
    }

    private func reason(contrastStated: Bool) -> String? {
        if !contrastStated, contrast == .darkColumns {
            return String(format: "the columns are dark (unit-cell skewness %.2f): ABF or inverted contrast; "
                          + "Li/TM is an HAADF quantity (set contrast: dark_columns to measure dip depths instead)",
                          cellSkewness)
        }
        if let s = stackingOffset, abs(abs(s) - 1.0 / 3) > Self.stackingTolerance {
            return String(format: "consecutive column planes are offset by %.2f of the column spacing, not the ±1/3 "
                          + "of a layered oxide seen along [100]: another crystal or zone axis", s)
        }
        if tmSitesOnColumns < Self.minSitesOnColumns {
            return String(format: "only %.0f %% of the TM sites sit on intensity maxima: the layered lattice does not "
                          + "match the columns", 100 * tmSitesOnColumns)
        }
        if let r = layeredLiTmRatio, r >= Self.maxLayeredLiTm {
            return String(format: "Li sites are as bright as TM sites in the layered part (Li/TM %.2f)", r)
        }
        if !contrastStated, contrast == .unclear {
            return String(format: "the column contrast is too weak to tell bright from dark columns "
                          + "(unit-cell skewness %.2f)", cellSkewness)
        }
        return nil
    }

    /// Skewness of the unit-cell average over 16 × 16 bins of the TM cell.
    static func cellSkewness(_ image: Image, lattice: Lattice, region: Mask) -> Double {
        let n = 16
        var sum = [Double](repeating: 0, count: n * n), count = [Int](repeating: 0, count: n * n)
        for y in 0..<image.height {
            for x in 0..<image.width where region.bits[y * image.width + x] {
                let (i, j) = lattice.latticeCoordinates(of: SIMD2(Double(x), Double(y)))
                let bi = Int((i - i.rounded(.down)) * Double(n)) % n, bj = Int((j - j.rounded(.down)) * Double(n)) % n
                sum[bj * n + bi] += Double(image.pixels[y * image.width + x])
                count[bj * n + bi] += 1
            }
        }
        let cells = sum.indices.filter { count[$0] > 0 }.map { sum[$0] / Double(count[$0]) }
        guard cells.count >= n * n / 2 else { return 0 }
        let mean = cells.reduce(0, +) / Double(cells.count)
        var m2 = 0.0, m3 = 0.0
        for v in cells { let d = v - mean; m2 += d * d; m3 += d * d * d }
        m2 /= Double(cells.count); m3 /= Double(cells.count)
        return m2 > 0 ? m3 / pow(m2, 1.5) : 0
    }

    /// Fraction of `sites` whose centre (mean of 7 samples within 0.15 of the nearest
    /// cation distance) is brighter than the mean of 12 samples on the fit-radius ring.
    static func fractionOnMaxima(_ image: Image, sites: [ColumnSite], lattice: Lattice) -> Double {
        let (a1, a2) = lattice.tmBasis
        let ring = ColumnFinder.fitRadius(a1: a1, a2: a2), core = ring / 3
        func mean(at p: SIMD2<Double>, radius: Double, count: Int, centre: Bool) -> Double? {
            var s = 0.0, n = 0
            if centre, let v = image.bilinear(p.x, p.y) { s += Double(v); n += 1 }
            for k in 0..<count {
                let a = 2 * Double.pi * Double(k) / Double(count)
                if let v = image.bilinear(p.x + radius * cos(a), p.y + radius * sin(a)) { s += Double(v); n += 1 }
            }
            return n == count + (centre ? 1 : 0) ? s / Double(n) : nil
        }
        var on = 0, tested = 0
        for site in sites {
            guard let c = mean(at: site.position, radius: core, count: 6, centre: true),
                  let r = mean(at: site.position, radius: ring, count: 12, centre: false) else { continue }
            tested += 1
            if c > r { on += 1 }
        }
        return tested > 0 ? Double(on) / Double(tested) : 0
    }

    /// Mean Li over mean TM intensity of the sites inside `mask`; nil with fewer than 20 of either.
    static func liTmRatio(_ sites: ColumnSites, in mask: Mask) -> Double? {
        var tm = [Double](), li = [Double]()
        for s in sites.sites where mask.contains(s.x, s.y) {
            if s.sublattice == .tm { tm.append(s.intensity) } else { li.append(s.intensity) }
        }
        guard tm.count >= 20, li.count >= 20 else { return nil }
        let t = tm.reduce(0, +) / Double(tm.count)
        return t > 0 ? li.reduce(0, +) / Double(li.count) / t : nil
    }
}

extension LayeredProjectionCheck {
    /// Whether `image` shows the layered lattice in bright-column contrast, judged from the
    /// lattice alone (stacking and unit-cell skewness; no sites): cheap enough for one frame.
    public static func looksLayered(_ image: Image, lattice: Lattice) -> Bool {
        if let s = lattice.stackingOffset, abs(abs(s) - 1.0 / 3) > stackingTolerance { return false }
        let all = Mask(width: image.width, height: image.height, fill: true)
        return cellSkewness(image, lattice: lattice, region: all) > skewnessMargin
    }

    /// The highest strong reflection of the layered lattice (cycles/px: the layer
    /// half-spacing or the in-plane column reflection, whichever is higher) when `image`
    /// shows that lattice in bright-column contrast; nil otherwise. Read from the central
    /// 256² (a dozen periods or more), or the whole image when the centre shows none.
    public static func highestLayeredReflection(in image: Image, pixelSizeNm: Double?,
                                                layerSpacingNm: Double) -> Double? {
        let c = 256
        let centre = image.cropped(x0: (image.width - c) / 2, y0: (image.height - c) / 2,
                                   x1: (image.width + c) / 2, y1: (image.height + c) / 2)
        for candidate in [centre, image] {
            guard let lattice = try? LatticeFinder.find(in: candidate, pixelSizeNm: pixelSizeNm,
                                                        layerSpacingNm: layerSpacingNm) else { continue }
            guard looksLayered(candidate, lattice: lattice) else { return nil }
            return max(2 * norm(lattice.gLayer), lattice.gColumn.map(norm) ?? 0)
        }
        return nil
    }
}
