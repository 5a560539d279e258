import Foundation
import CPNG

/// Reads a PNG image through libpng as one frame.
///
/// - 8- and 16-bit greyscale (1/2/4-bit grey is expanded to 8) keep their values:
///   `uint8` / `uint16` (PNG's big-endian 16-bit samples are swapped to host order).
/// - Grey+alpha and tRNS transparency: alpha is dropped.
/// - Palette and RGB(A) images are converted to luminance with the Rec. 601 luma weights
///   Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), in the source's units (0…255 or
///   0…65535), and reported as `float32`.
///
/// Protochips AXON exports carry their metadata as XML in a text chunk keyed
/// `MicroscopeControlImage` (see `AXONMetadata`): pixel size, acquisition time and holder
/// temperature are read from it.
///
/// The decoded size is bounded by what the file can hold (deflate expands at most ~1032:1)
/// before any allocation, and all libpng calls run in C (`CPNG/shim.h`) so libpng's
/// longjmp error handling never crosses Swift frames.
///
/// Opening checks the chunk structure first (every chunk inside the file, CRCs matching, IEND
/// present), so a cut, damaged or hostile file is reported at open without libpng allocating
/// anything a chunk length claims; libpng's own per-chunk allocation cap (16 MiB, and what
/// the file's size allows) bounds inflated text. Then the header and metadata are read and
/// the pixels inflated on first use, so a run folder's scan costs a read and a CRC per file
/// instead of a decode. Files with text after the image data are decoded whole at open.
public final class PNGReader: FrameFileReader, @unchecked Sendable {
    public let url: URL
    public var format: FrameFormat { .png }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]
    private let meta: FrameMetadata
    private let maxBytes: Int
    /// Decoded on first use (guarded by `lock`).
    private var pixels: PixelPlane?
    private let lock = NSLock()

    public init(url: URL) throws {
        self.url = url
        let size = try regularFileSize(url)
        guard size > 0 else { throw FrameIOError(.truncated, url: url, "empty file (0 bytes)") }
        maxBytes = size.multipliedReportingOverflow(by: 1100).partialValue + (1 << 16)
        var textAfterImage: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let probe = err.withUnsafeMutableBufferPointer { cpng_probe(url.path, &textAfterImage, $0.baseAddress) }
        if probe != 0 {
            let message = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let kind: FrameIOError.Kind = [1: .truncated, 2: .corrupt, 3: .badMagic][probe] ?? .io
            throw FrameIOError(kind, url: url, message)
        }
        let decoded = try Self.decode(url, maxBytes: maxBytes, withPixels: textAfterImage != 0)
        pixels = decoded.pixels

        var m = FrameMetadata()
        var original: [String: String] = [:]
        for (k, v) in decoded.texts { original["png.\(k)"] = v }
        original["png.color_type"] = String(decoded.sourceColorType)
        original["png.bit_depth"] = String(decoded.sourceBitDepth)
        if let xml = decoded.texts.first(where: { $0.key.caseInsensitiveCompare(AXONMetadata.key) == .orderedSame })?.value {
            let axon = AXONMetadata.parse(xml)
            m.pixelSizeXNm = axon.pixelSizeXNm
            m.pixelSizeYNm = axon.pixelSizeYNm ?? axon.pixelSizeXNm
            m.acquisitionTime = axon.acquisitionTime
            m.temperatureC = axon.temperatureC
            for (k, v) in axon.flat { original["axon.\(k)"] = v }
        }
        m.original = original
        meta = m
        fileMetadata = original
        signals = [SignalInfo(index: 0, name: url.lastPathComponent, frameCount: 1, height: decoded.height, width: decoded.width,
                              sampleType: decoded.sampleType, pixelSizeXNm: m.pixelSizeXNm, pixelSizeYNm: m.pixelSizeYNm)]
    }

    private struct Decoded {
        var width: Int, height: Int
        var sampleType: SampleType
        var sourceColorType: Int32, sourceBitDepth: Int32
        var texts: [String: String]
        var pixels: PixelPlane?
    }

    /// One libpng pass: the header and text chunks, and the pixels when `withPixels`.
    private static func decode(_ url: URL, maxBytes: Int, withPixels: Bool) throws -> Decoded {
        var img = cpng_image()
        let status = cpng_read(url.path, maxBytes, withPixels ? 1 : 0, &img)
        defer { cpng_free(&img) }
        let message = withUnsafeBytes(of: img.err) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch status {
        case 0: break
        case 1: throw FrameIOError(.io, url: url, message)
        case 2: throw FrameIOError(message.hasPrefix("shorter") ? .truncated : .badMagic, url: url, message)
        case 3: throw FrameIOError(.corrupt, url: url, message)
        default:
            let lower = message.lowercased()
            let truncated = lower.contains("read error") || lower.contains("not enough") || lower.contains("eof")
                || lower.contains("truncated") || lower.contains("unexpected end")
            throw FrameIOError(truncated ? .truncated : .corrupt, url: url, "libpng: \(message)")
        }
        let w = Int(img.width), h = Int(img.height), n = w * h
        let sampleType: SampleType
        switch (img.channels, img.bit_depth) {
        case (1, 8): sampleType = .uint8
        case (1, 16): sampleType = .uint16
        case (3, _): sampleType = .float32
        default: throw FrameIOError(.unsupported, url: url, "\(img.channels) channels of \(img.bit_depth) bits")
        }
        var plane: PixelPlane? = nil
        if withPixels, let raw = UnsafeRawPointer(img.pixels) {
            let values: PixelPlane.Values
            switch (img.channels, img.bit_depth) {
            case (1, 8): values = .uint8(Array(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: n)))
            case (1, 16): values = .uint16(Array(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt16.self), count: n)))
            case (3, 8):
                let p = raw.assumingMemoryBound(to: UInt8.self)
                values = .float32((0..<n).map { i in luma(Float(p[3 * i]), Float(p[3 * i + 1]), Float(p[3 * i + 2])) })
            default:
                let p = raw.assumingMemoryBound(to: UInt16.self)
                values = .float32((0..<n).map { i in luma(Float(p[3 * i]), Float(p[3 * i + 1]), Float(p[3 * i + 2])) })
            }
            plane = PixelPlane(width: w, height: h, values: values)
        }
        var texts: [String: String] = [:]
        if let t = img.text, img.text_size > 0 {
            let parts = UnsafeRawBufferPointer(start: t, count: img.text_size).split(separator: 0, omittingEmptySubsequences: false)
            var i = 0
            while i + 1 < parts.count {
                texts[String(decoding: parts[i], as: UTF8.self)] = String(decoding: parts[i + 1], as: UTF8.self)
                i += 2
            }
        }
        return Decoded(width: w, height: h, sampleType: sampleType, sourceColorType: img.source_color_type,
                       sourceBitDepth: img.source_bit_depth, texts: texts, pixels: plane)
    }

    /// Rec. 601 luma.
    @inline(__always) static func luma(_ r: Float, _ g: Float, _ b: Float) -> Float { 0.299 * r + 0.587 * g + 0.114 * b }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        guard signal == 0, frame == 0 else { throw FrameIOError(.corrupt, url: url, "a PNG holds one frame; asked for \(signal)/\(frame)") }
        lock.lock()
        defer { lock.unlock() }
        if let pixels { return pixels }
        guard let decoded = try Self.decode(url, maxBytes: maxBytes, withPixels: true).pixels,
              decoded.width == signals[0].width, decoded.height == signals[0].height else {
            throw FrameIOError(.corrupt, url: url, "the file changed since it was opened")
        }
        pixels = decoded
        return decoded
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        guard signal == 0, frame == 0 else { throw FrameIOError(.corrupt, url: url, "a PNG holds one frame; asked for \(signal)/\(frame)") }
        return meta
    }
}

/// The XML Protochips AXON Studio stores in its PNG exports (text chunk `MicroscopeControlImage`),
/// as mapped by FAIRmat's pynxtools-em (`image_png_protochips.py`):
///
/// ```xml
/// <MicroscopeControlImageMetadata>
///   <MicroscopeDateTime>2021-04-26T22:51:28.4539893-05:00</MicroscopeDateTime>
///   <ImagerSettings><ImagePhysicalSize><X>0.0213</X><Y>0.0213</Y></ImagePhysicalSize></ImagerSettings>
///   <AuxiliaryData><AuxiliaryDataCategory><Name>…</Name><DataValues>
///     <AuxiliaryDataValue><HolderTemperature>650.1</HolderTemperature>…</AuxiliaryDataValue> …
///   </DataValues></AuxiliaryDataCategory></AuxiliaryData>
///   <MicroscopeSettings>…</MicroscopeSettings>
/// </MicroscopeControlImageMetadata>
/// ```
///
/// `ImagePhysicalSize` X/Y is the pixel size in nm (a unit suffix such as "pm" or "Å" is
/// honoured); `HolderTemperature` is in °C (a "K" suffix is converted), and when several
/// samples are stored with a frame the frame's temperature is their mean. Element names
/// are matched case-insensitively and namespace prefixes ignored, so variants still parse.
public enum AXONMetadata {
    public static let key = "MicroscopeControlImage"

    public struct Values: Sendable, Equatable {
        public var pixelSizeXNm: Double?
        public var pixelSizeYNm: Double?
        public var acquisitionTime: Date?
        public var temperatureC: Double?
        /// Every leaf element as `Parent.Child → text`.
        public var flat: [String: String]
    }

    public static func parse(_ xml: String) -> Values {
        var v = Values(flat: [:])
        let elements = TIFFMetadata.XMLScanner.allElements(in: xml)
        var temps: [Double] = []
        var counts: [String: Int] = [:]
        for e in elements {
            let parent = e.parents.last?.lowercased() ?? ""
            let name = e.name.lowercased()
            if !e.text.isEmpty {
                var path = (e.parents.dropFirst() + [e.name]).joined(separator: ".")
                if let c = counts[path] { counts[path] = c + 1; path += "[\(c)]" } else { counts[path] = 1 }
                v.flat[path] = e.text
            }
            switch (parent, name) {
            case ("imagephysicalsize", "x"), ("pixelsize", "x"): v.pixelSizeXNm = v.pixelSizeXNm ?? length(e.text)
            case ("imagephysicalsize", "y"), ("pixelsize", "y"): v.pixelSizeYNm = v.pixelSizeYNm ?? length(e.text)
            case (_, "microscopedatetime"): v.acquisitionTime = v.acquisitionTime ?? isoDate(e.text)
            case (_, "holdertemperature"): if let t = temperature(e.text) { temps.append(t) }
            default: break
            }
        }
        if v.acquisitionTime == nil, let e = elements.first(where: { $0.name.lowercased().hasSuffix("datetime") }) {
            v.acquisitionTime = isoDate(e.text)
        }
        if !temps.isEmpty { v.temperatureC = temps.reduce(0, +) / Double(temps.count) }
        return v
    }

    /// Builds the XML `PNGWriter` stores: the same structure, values in nm, °C, ISO 8601 UTC.
    public static func xml(pixelSizeXNm: Double?, pixelSizeYNm: Double?, acquisitionTime: Date?, temperatureC: Double?) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<MicroscopeControlImageMetadata>\n"
        if let d = acquisitionTime { s += "  <MicroscopeDateTime>\(isoString(d))</MicroscopeDateTime>\n" }
        if let x = pixelSizeXNm {
            s += "  <ImagerSettings>\n    <ImagePhysicalSize>\n      <X>\(x)</X>\n      <Y>\(pixelSizeYNm ?? x)</Y>\n    </ImagePhysicalSize>\n  </ImagerSettings>\n"
        }
        if let t = temperatureC {
            s += "  <AuxiliaryData>\n    <AuxiliaryDataCategory>\n      <Name>Heating</Name>\n      <DataValues>\n"
            s += "        <AuxiliaryDataValue>\n          <HolderTemperature>\(t)</HolderTemperature>\n        </AuxiliaryDataValue>\n"
            s += "      </DataValues>\n    </AuxiliaryDataCategory>\n  </AuxiliaryData>\n"
        }
        return s + "</MicroscopeControlImageMetadata>\n"
    }

    /// "0.0213", "21.3 pm", "0.213 Å" → nm (no unit: nm).
    static func length(_ text: String) -> Double? {
        let (value, unit) = numberAndUnit(text)
        guard let value, value > 0, value.isFinite else { return nil }
        if unit.isEmpty { return value }
        return TIFFMetadata.nanometres(per: unit).map { value * $0 }
    }

    static func temperature(_ text: String) -> Double? {
        let (value, unit) = numberAndUnit(text)
        guard let value, value.isFinite else { return nil }
        switch unit.lowercased() {
        case "k": return value - 273.15
        case "°f", "f": return (value - 32) * 5 / 9
        default: return value
        }
    }

    static func numberAndUnit(_ text: String) -> (Double?, String) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var end = t.startIndex
        for i in t.indices {
            if "0123456789+-.eE".contains(t[i]) { end = t.index(after: i) } else { break }
        }
        // Back off a trailing 'e'/'E' that is not an exponent.
        var number = String(t[..<end])
        while let last = number.last, last == "e" || last == "E" || last == "+" || last == "-" { number.removeLast() }
        let unit = t[t.index(t.startIndex, offsetBy: number.count)...].trimmingCharacters(in: .whitespaces)
        return (Double(number), unit)
    }

    /// ISO 8601 with any number of fractional digits and an optional zone (none = UTC).
    static func isoDate(_ text: String) -> Date? {
        let s = Array(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func int(_ a: Int, _ n: Int) -> Int? {
            guard a + n <= s.count else { return nil }
            return Int(String(s[a..<(a + n)]))
        }
        guard s.count >= 19, let y = int(0, 4), let mo = int(5, 2), let d = int(8, 2),
              let h = int(11, 2), let mi = int(14, 2), let sec = int(17, 2) else { return nil }
        var i = 19
        var frac = 0.0
        if i < s.count, s[i] == "." || s[i] == "," {
            var j = i + 1
            while j < s.count, s[j].isNumber { j += 1 }
            frac = Double("0." + String(s[(i + 1)..<j])) ?? 0
            i = j
        }
        var offset = 0
        if i < s.count, s[i] == "+" || s[i] == "-" {
            let sign = s[i] == "-" ? -1 : 1
            guard let oh = int(i + 1, 2) else { return nil }
            let om = (i + 3 < s.count && s[i + 3] == ":") ? (int(i + 4, 2) ?? 0) : (int(i + 3, 2) ?? 0)
            offset = sign * (oh * 3600 + om * 60)
        }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, sec)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard (1...12).contains(mo), let base = cal.date(from: c) else { return nil }
        return base.addingTimeInterval(frac - Double(offset))
    }

    /// `date` as ISO 8601 UTC with microseconds.
    static func isoString(_ date: Date) -> String {
        let (dt, sub) = TIFFMetadata.tiffDateStrings(date)   // "YYYY:MM:DD HH:MM:SS", "ffffff"
        let p = dt.split(separator: " ")
        return p[0].replacingOccurrences(of: ":", with: "-") + "T" + p[1] + "." + sub + "Z"
    }
}
