import FrameCore

/// Which cation sublattice of the layered structure a column site belongs to.
public enum Sublattice: String, Sendable {
    /// Transition-metal sites (bright in the layered phase).
    case tm
    /// Li sites half-way between TM planes (nearly dark in the layered phase, lit up when TM
    /// migrates into them).
    case li
}

/// One atomic-column site in pixel coordinates (x right, y down).
public struct ColumnSite: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var sublattice: Sublattice
    /// Background-corrected integrated intensity (set by `SiteIntensity.measure`; 0 before).
    public var intensity: Double

    public init(x: Double, y: Double, sublattice: Sublattice, intensity: Double = 0) {
        self.x = x; self.y = y; self.sublattice = sublattice; self.intensity = intensity
    }

    public var position: SIMD2<Double> { SIMD2(x, y) }
}

/// The column sites of one image grouped by sublattice (Atomap's sublattice idea), with the
/// lattice refined from them.
public struct ColumnSites: Sendable {
    public var sites: [ColumnSite]
    public var lattice: Lattice
    /// Gaussian σ (px) of the TM columns, median over refined fits; nil when not refined.
    /// `SiteIntensity.measure` integrates every site with this width.
    public var columnSigmaPx: Double?

    public init(sites: [ColumnSite], lattice: Lattice, columnSigmaPx: Double? = nil) {
        self.sites = sites
        self.lattice = lattice
        self.columnSigmaPx = columnSigmaPx
    }

    public var tm: [ColumnSite] { sites.filter { $0.sublattice == .tm } }
    public var li: [ColumnSite] { sites.filter { $0.sublattice == .li } }

    /// The same sites moved by (dx, dy) px, intensities cleared: e.g. the sites of a step's
    /// aligned average carried onto one raw frame whose content moved by its registration
    /// shift (contract §3: +x right, +y down), so that a low-dose frame is measured at
    /// positions that do not come from its own noise.
    public func translated(dx: Double, dy: Double) -> ColumnSites {
        var out = self
        let d = SIMD2(dx, dy)
        for k in out.sites.indices {
            out.sites[k].x += dx; out.sites[k].y += dy; out.sites[k].intensity = 0
        }
        out.lattice.origin += d
        return out
    }
}
