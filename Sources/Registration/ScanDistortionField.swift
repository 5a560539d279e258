import FrameCore

/// The displacement a raster scan adds to one frame beyond its rigid shift, in the structure
/// the scan produces (Jones et al., Adv. Struct. Chem. Imaging 1:8, 2015; Berkels et al.,
/// Ultramicroscopy 138, 2014):
///
/// - `lineShiftX[y]`: one offset per scan line along the fast-scan axis (line jitter, and
///   slow-scan drift along x, which shears the frame);
/// - `lineShiftY[y]`: a smooth offset per line across it (slow-scan drift along y, which
///   stretches or compresses the frame);
/// - `flybackShiftX[x]`: a smooth offset per column shared by all lines (the flyback's
///   compression at the start of each line, and other fast-scan non-linearity).
///
/// A pixel at frame position (x, y) shows the specimen point that the reference shows at
/// (x − ux, y − uy), with ux = lineShiftX[y] + flybackShiftX[x] and uy = lineShiftY[y]:
/// the same "content moved by +u" sign as the rigid shifts. All values in pixels.
/// `NonrigidRegistration` fills it with the frame's own part (relative to the series) plus the
/// part every frame shares, measured on the average, so the reference it refers to is the
/// undistorted specimen up to an affine map (which no reference-free method can fix).
public struct ScanDistortionField: Sendable, Equatable, Codable {
    public let width: Int
    public let height: Int
    public var lineShiftX: [Float]
    public var lineShiftY: [Float]
    public var flybackShiftX: [Float]

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        lineShiftX = [Float](repeating: 0, count: height)
        lineShiftY = [Float](repeating: 0, count: height)
        flybackShiftX = [Float](repeating: 0, count: width)
    }

    /// Displacement at frame pixel (x, y) (integer row and column of the frame).
    @inlinable
    public func displacement(x: Int, y: Int) -> (ux: Float, uy: Float) {
        (lineShiftX[y] + flybackShiftX[x], lineShiftY[y])
    }

    /// RMS and largest displacement magnitude over the frame, px.
    public var statistics: (rms: Double, max: Double) {
        var ss = 0.0, mx = 0.0
        for y in 0..<height {
            for x in 0..<width {
                let (ux, uy) = displacement(x: x, y: y)
                let m2 = Double(ux * ux + uy * uy)
                ss += m2
                mx = Swift.max(mx, m2)
            }
        }
        return ((ss / Double(Swift.max(1, width * height))).squareRoot(), mx.squareRoot())
    }

    /// The field as two float images (ux, uy), for export beside spectrum maps.
    public var images: (ux: Image, uy: Image) {
        var ux = Image(width: width, height: height), uy = Image(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                let d = displacement(x: x, y: y)
                ux[x, y] = d.ux
                uy[x, y] = d.uy
            }
        }
        return (ux, uy)
    }
}
