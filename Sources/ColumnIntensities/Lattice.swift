import Foundation

/// The projected transition-metal (TM) column lattice of a layered LiMO2 crystal seen edge-on.
///
/// TM planes are `layerSpacingPx` apart along `layerNormal`; inside a plane, TM columns are
/// `columnSpacingPx` apart. With ABC stacking, consecutive planes are offset sideways, so
/// the TM columns form a 2-D Bravais lattice whose reciprocal basis is {`gColumn`, `gLayer`}
/// (`tmBasis` gives the real-space basis). Coordinates are pixels, x right and y down,
/// with pixel (x, y) centred on integer coordinates.
public struct Lattice: Sendable, Equatable {
    /// Unit vector across the layers (parallel to `gLayer`).
    public var layerNormal: SIMD2<Double>
    /// TM-plane spacing (the (003) spacing of the layered phase), pixels.
    public var layerSpacingPx: Double
    /// TM column spacing along the layers (≈ 0.244 nm projected along [100]), pixels.
    public var columnSpacingPx: Double
    /// Reciprocal vector of the layer periodicity, cycles/px (`1 / layerSpacingPx` long).
    public var gLayer: SIMD2<Double>
    /// A reciprocal vector of the in-plane column periodicity, cycles/px, when resolved; with
    /// ABC stacking it has a component along `layerNormal` too (e.g. −1/3 of `gLayer`).
    public var gColumn: SIMD2<Double>?
    /// A TM column position (px) that anchors the site grid.
    public var origin: SIMD2<Double>

    public init(layerNormal: SIMD2<Double>, layerSpacingPx: Double, columnSpacingPx: Double,
                gLayer: SIMD2<Double>, gColumn: SIMD2<Double>?, origin: SIMD2<Double>) {
        self.layerNormal = layerNormal
        self.layerSpacingPx = layerSpacingPx
        self.columnSpacingPx = columnSpacingPx
        self.gLayer = gLayer
        self.gColumn = gColumn
        self.origin = origin
    }

    /// Whether the lattice can place sites: finite values, a unit normal, spacings of at
    /// least 2 px, a non-degenerate basis. Stages return empty results for anything else
    /// rather than allocate for absurd lattices.
    public var isUsable: Bool {
        let values = [layerNormal.x, layerNormal.y, layerSpacingPx, columnSpacingPx, gLayer.x, gLayer.y,
                      origin.x, origin.y, gColumn?.x ?? 0, gColumn?.y ?? 0]
        guard values.allSatisfy({ $0.isFinite }), layerSpacingPx >= 2, columnSpacingPx >= 2,
              abs(norm(layerNormal) - 1) < 1e-3, norm(gLayer) > 0 else { return false }
        let (a1, a2) = tmBasis
        let area = abs(a1.x * a2.y - a1.y * a2.x)
        return area.isFinite && area >= 2 && norm(a1) >= 1.5 && norm(a2) >= 1.5
    }

    /// Unit vector along the layers: `layerNormal` turned by +90° in image coordinates.
    public var layerDirection: SIMD2<Double> { SIMD2(-layerNormal.y, layerNormal.x) }

    /// Angle of the layers (their in-plane direction) from the scan (+x) axis, degrees in
    /// (−90, 90], counter-clockwise as seen on screen (y down), as the simulator states it.
    public var layerAngleDegrees: Double {
        var a = atan2Degrees(-layerDirection.y, layerDirection.x)
        if a <= -90 { a += 180 }
        if a > 90 { a -= 180 }
        return a
    }

    /// Real-space basis of the TM column lattice: `a1` joins neighbouring columns in one plane,
    /// `a2` joins a column to one in the next plane (`a2 · gLayer = 1`), chosen so that its
    /// sideways part (the stacking offset) lies within ±½ `a1`.
    public var tmBasis: (a1: SIMD2<Double>, a2: SIMD2<Double>) {
        let t = layerDirection
        guard let gc = gColumn else {
            return (t * columnSpacingPx, layerNormal * layerSpacingPx)
        }
        // Dual basis of {gColumn, gLayer}: rows of M = [gc; gl], real basis = columns of M⁻¹.
        let gl = gLayer
        let det = gc.x * gl.y - gc.y * gl.x
        var a1 = SIMD2(gl.y / det, -gl.x / det)
        var a2 = SIMD2(-gc.y / det, gc.x / det)
        if (a1 * t).sum() < 0 { a1 = -a1 }
        let a1Length2 = (a1 * a1).sum()
        let k = ((a2 * a1).sum() / a1Length2).rounded()
        a2 -= k * a1
        return (a1, a2)
    }

    /// Sideways offset between consecutive TM planes as a fraction of the column spacing,
    /// in [−½, ½]: ±⅓ for ABC stacking seen along [100], 0 when planes line up; nil when the
    /// in-plane periodicity was not resolved.
    public var stackingOffset: Double? {
        guard gColumn != nil else { return nil }
        let (a1, a2) = tmBasis
        return (a2 * a1).sum() / (a1 * a1).sum()
    }
}

@inline(__always) func atan2Degrees(_ y: Double, _ x: Double) -> Double {
    atan2(y, x) * 180 / Double.pi
}

@inline(__always) func dot(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double { (a * b).sum() }
@inline(__always) func norm(_ a: SIMD2<Double>) -> Double { (a * a).sum().squareRoot() }
