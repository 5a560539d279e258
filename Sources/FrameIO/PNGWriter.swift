import Foundation

// STUB: replaced by the PNG writer (libpng).
public enum PNGWriter {
    /// Writes an 8- or 16-bit greyscale PNG (values rounded and clamped). When the frame has
    /// metadata, an AXON-style `MicroscopeControlImage` XML text chunk carries pixel size,
    /// acquisition time and holder temperature.
    public static func writeGray(_ frame: Frame, bitDepth: Int, to url: URL) throws {
        throw FrameIOError(.unsupported, url: url, "PNG writer not built yet")
    }

    /// Writes an 8-bit RGBA image (`rgba.count == 4·width·height`), for plots and maps.
    public static func writeRGBA(width: Int, height: Int, rgba: [UInt8], to url: URL) throws {
        throw FrameIOError(.unsupported, url: url, "PNG writer not built yet")
    }
}
