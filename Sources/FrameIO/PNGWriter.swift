import Foundation
import CPNG
import FrameCore

/// Writes PNG files through libpng (all libpng calls in `CPNG/shim.h`, so its longjmp
/// error handling stays in C). Files are written atomically.
public enum PNGWriter {
    /// Writes an 8- or 16-bit greyscale PNG (values rounded and clamped to 0…255 / 0…65535,
    /// NaN → 0). When the frame has a pixel size, acquisition time or temperature, an
    /// AXON-style `MicroscopeControlImage` XML text chunk (compressed iTXt) carries them,
    /// which `PNGReader` reads back (see `AXONMetadata`). `compression`: zlib level 0–9.
    public static func writeGray(_ frame: Frame, bitDepth: Int, compression: Int = 6, to url: URL) throws {
        guard bitDepth == 8 || bitDepth == 16 else {
            throw FrameIOError(.unsupported, url: url, "PNG grey bit depth must be 8 or 16, not \(bitDepth)")
        }
        let img = frame.image
        guard img.width > 0, img.height > 0 else { throw FrameIOError(.size, url: url, "empty image \(img.width)×\(img.height)") }
        let m = frame.metadata
        let xml: String? = (m.pixelSizeNm != nil || m.acquisitionTime != nil || m.temperatureC != nil)
            ? AXONMetadata.xml(pixelSizeXNm: m.pixelSizeXNm ?? m.pixelSizeYNm, pixelSizeYNm: m.pixelSizeYNm,
                               acquisitionTime: m.acquisitionTime, temperatureC: m.temperatureC)
            : nil
        if bitDepth == 8 {
            let data: [UInt8] = img.pixels.map { TIFFWriter.roundClamped($0, max: 255) }
            try write(url, img.width, img.height, 8, PNG_COLOR_TYPE_GRAY, data, xml, compression)
        } else {
            let data: [UInt16] = img.pixels.map { TIFFWriter.roundClamped($0, max: 65535) }
            try write(url, img.width, img.height, 16, PNG_COLOR_TYPE_GRAY, data, xml, compression)
        }
    }

    /// Writes an 8-bit RGBA image (`rgba.count == 4·width·height`, rows top to bottom), for plots
    /// and maps; `compression`: zlib level 0–9 (1 for maps written on every run: 3× faster).
    public static func writeRGBA(width: Int, height: Int, rgba: [UInt8], compression: Int = 6, to url: URL) throws {
        try AtomicFile.write(encodeRGBA(width: width, height: height, rgba: rgba, compression: compression, for: url.path),
                             to: url)
    }

    /// Encodes an 8-bit RGB image (`rgb.count == 3·width·height`, rows top to bottom) as PNG
    /// bytes. `scaledPicture`: every row filtered against the one above (PNG filter Up), which
    /// turns the repeated rows of a picture scaled up by nearest neighbour into runs of zeros,
    /// instead of libpng trying every filter on every row. `dotsPerInch`: the `pHYs` chunk
    /// (PNG specification §11.3.5.3), so that documents place the image at its intended size.
    /// `file`: the file the bytes are for, named in errors.
    public static func encodeRGB(width: Int, height: Int, rgb: [UInt8], compression: Int = 6, scaledPicture: Bool = false,
                                 dotsPerInch: Double? = nil, for file: String) throws -> Data {
        try encodeColour(width, height, channels: 3, PNG_COLOR_TYPE_RGB, rgb, compression, scaledPicture: scaledPicture,
                         dotsPerInch: dotsPerInch, for: file)
    }

    /// Encodes an 8-bit RGBA image (`rgba.count == 4·width·height`, rows top to bottom) as PNG
    /// bytes, as `writeRGBA` writes it to a file. `file`: the file the bytes are for, named in errors.
    public static func encodeRGBA(width: Int, height: Int, rgba: [UInt8], compression: Int = 6, for file: String) throws -> Data {
        try encodeColour(width, height, channels: 4, PNG_COLOR_TYPE_RGB_ALPHA, rgba, compression, for: file)
    }

    /// 8-bit colour rows of `channels` samples per pixel as PNG bytes, the sizes checked first.
    private static func encodeColour(_ width: Int, _ height: Int, channels: Int, _ colorType: Int32, _ samples: [UInt8],
                                     _ compression: Int, scaledPicture: Bool = false, dotsPerInch: Double? = nil,
                                     for file: String) throws -> Data {
        let name = channels == 3 ? "RGB" : "RGBA"
        guard width > 0, height > 0, samples.count == channels * width * height else {
            throw FrameIOError(.size, file: file, "\(samples.count) \(name) bytes for \(width)×\(height)")
        }
        let encoded = encode(width, height, 8, colorType, samples, nil, compression, scaledPicture: scaledPicture,
                             dotsPerInch: dotsPerInch)
        guard let bytes = encoded.bytes else { throw FrameIOError(.io, file: file, "cannot encode PNG: \(encoded.error)") }
        return bytes
    }

    /// The PNG encoded (`cpng_encode`) and written atomically.
    private static func write<T>(_ url: URL, _ w: Int, _ h: Int, _ depth: Int32, _ colorType: Int32,
                                 _ data: [T], _ xml: String?, _ level: Int) throws {
        let encoded = encode(w, h, depth, colorType, data, xml, level)
        guard let bytes = encoded.bytes else { throw FrameIOError(.io, url: url, "cannot write PNG: \(encoded.error)") }
        try AtomicFile.write(bytes, to: url)
    }

    /// Packed rows of samples as PNG bytes (`cpng_encode`), with the AXON metadata text when
    /// `xml` is given; nil bytes and libpng's message when it fails.
    private static func encode<T>(_ w: Int, _ h: Int, _ depth: Int32, _ colorType: Int32, _ data: [T], _ xml: String?,
                                  _ level: Int, scaledPicture: Bool = false, dotsPerInch: Double? = nil)
        -> (bytes: Data?, error: String) {
        let perMetre = dotsPerInch.map { UInt32(($0 / 0.0254).rounded()) } ?? 0
        var out = cpng_buffer(bytes: nil, size: 0, capacity: 0)
        defer { free(out.bytes) }
        var err = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBytes { buf in
            cpng_encode(&out, UInt32(w), UInt32(h), depth, colorType, buf.baseAddress, xml == nil ? nil : AXONMetadata.key, xml,
                        Int32(min(9, max(0, level))), scaledPicture ? 1 : 0, perMetre, &err)
        }
        guard status == 0, let bytes = out.bytes else {
            return (nil, String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (Data(bytes: bytes, count: out.size), "")
    }
}

/// The PNG `pHYs` chunk (physical pixel density, PNG specification §11.3.5.3) set in PNG
/// bytes another program wrote: gnuplot's cairo terminal writes none, so slide and
/// word-processing programs would place a 300-dpi figure at 72 or 96 dpi.
public enum PNGResolution {
    /// `png` with a `pHYs` chunk of `dotsPerInch` after its header (an existing one
    /// replaced); bytes without a PNG header are returned as they are.
    public static func marked(_ png: Data, dotsPerInch: Double) -> Data {
        let bytes = [UInt8](png)
        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
        guard bytes.count > 33, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return png }
        var rest = bytes[33...]
        // An existing pHYs is replaced.
        if let at = chunkOffset(bytes, "pHYs") {
            rest = bytes[33..<at] + bytes[(at + 21)...]
        }
        let perMetre = UInt32((dotsPerInch / 0.0254).rounded())
        var data: [UInt8] = []
        for _ in 0..<2 { data += withUnsafeBytes(of: perMetre.bigEndian, Array.init) }
        data.append(1)   // unit: metre
        var chunk = withUnsafeBytes(of: UInt32(data.count).bigEndian, Array.init)
        let typed = Array("pHYs".utf8) + data
        chunk += typed + withUnsafeBytes(of: chunkCRC(typed).bigEndian, Array.init)
        return Data(bytes[..<33] + chunk + rest)
    }

    private static func chunkOffset(_ b: [UInt8], _ type: String) -> Int? {
        var at = 8
        let t = Array(type.utf8)
        while at + 12 <= b.count {
            let len = Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
            if Array(b[(at + 4)..<(at + 8)]) == t { return len == 9 ? at : nil }
            at += 12 + len
        }
        return nil
    }

    /// CRC-32 as PNG defines it (ISO 3309; zlib's `crc32`), of a chunk's type and data.
    public static func chunkCRC(_ bytes: [UInt8]) -> UInt32 {
        UInt32(bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
    }
}
