import Foundation
import CPNG

/// An 8-bit RGBA picture (rows top to bottom, alpha not premultiplied): a figure's layers,
/// decoded through libpng's simplified API (`cpng_read_rgba8`).
public struct PNGPicture: Sendable {
    public var width: Int
    public var height: Int
    public var rgba: [UInt8]

    /// Decodes PNG bytes of any colour type to RGBA.
    /// - Throws: `FrameIOError` naming `source` when the bytes are no PNG or hold more than
    ///   `maxPixels` pixels.
    public init(png: Data, source: URL, maxPixels: Int = 1 << 26) throws {
        var w: UInt32 = 0, h: UInt32 = 0
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var err = [CChar](repeating: 0, count: 256)
        let status = png.withUnsafeBytes { buf in
            cpng_read_rgba8(buf.baseAddress, buf.count, maxPixels, &w, &h, &pixels, &err)
        }
        defer { free(pixels) }
        guard status == 0, let pixels else {
            throw FrameIOError(.corrupt, url: source, "cannot decode PNG: \(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        width = Int(w)
        height = Int(h)
        rgba = Array(UnsafeBufferPointer(start: pixels, count: Int(w) * Int(h) * 4))
    }
}
