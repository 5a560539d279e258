import Foundation
import CTIFF

// One TIFF directory (page) described: its sample layout, the check that its data lies
// within the file, and its calibration, time and metadata text (see `TIFFReader` for the
// vendor tags, in the order they are tried).

extension TIFFReader {
    /// Reads one directory's layout, checks its data lies within the file, and gathers
    /// its calibration, time and metadata text.
    static func describePage(_ t: OpaquePointer, directory d: Int, fileSize: Int, littleEndian: Bool,
                             read: (Int, Int) -> [UInt8]?, url: URL) throws -> Page {
        var w: UInt32 = 0, h: UInt32 = 0
        guard ctiff_get_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), &w) == 1, ctiff_get_u32(t, UInt32(TIFFTAG_IMAGELENGTH), &h) == 1,
              w > 0, h > 0 else {
            throw FrameIOError(.corrupt, url: url, "page \(d) has no image width/height")
        }
        let layout = SampleLayout(t)
        if layout.listed, let type = layout.type {
            try checkExtent(t, directory: d, width: Int(w), height: Int(h), type: type, layout: layout, fileSize: fileSize, url: url)
        }
        // `PageTags` holds `read` only inside this call; what it found leaves without it.
        let (metadata, imageJ) = withoutActuallyEscaping(read) { read in
            var tags = PageTags(t: t, read: read, fileSize: fileSize, littleEndian: littleEndian)
            if let r = layout.reason { tags.original["tiff.reason"] = r }
            tags.readMetadata(width: Int(w))
            return (tags.meta, tags.imageJ)
        }
        return Page(directory: d, offset: TIFFCurrentDirOffset(t), width: Int(w), height: Int(h), sampleType: layout.type,
                    listed: layout.listed, tiled: layout.tiled, metadata: metadata, imageJ: imageJ)
    }

    /// How a page stores its samples, and why it is not listed when it is not.
    struct SampleLayout {
        var type: SampleType?
        var reason: String?
        var compression: UInt16
        var tiled: Bool
        var listed: Bool { reason == nil }

        init(_ t: OpaquePointer) {
            var bits: UInt16 = 1, spp: UInt16 = 1, fmt: UInt16 = 1, photometric: UInt16 = 1, compression: UInt16 = 1
            _ = ctiff_get_u16_defaulted(t, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
            _ = ctiff_get_u16_defaulted(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), &spp)
            _ = ctiff_get_u16_defaulted(t, UInt32(TIFFTAG_SAMPLEFORMAT), &fmt)
            _ = ctiff_get_u16_defaulted(t, UInt32(TIFFTAG_COMPRESSION), &compression)
            self.compression = compression
            if ctiff_get_u16(t, UInt32(TIFFTAG_PHOTOMETRIC), &photometric) != 1 { photometric = UInt16(PHOTOMETRIC_MINISBLACK) }
            tiled = TIFFIsTiled(t) != 0
            type = Self.sampleType(format: fmt, bits: bits)
            if type == nil { reason = "\(bits)-bit samples of format \(fmt)" }
            if spp != 1 { reason = "\(spp) samples per pixel" }
            if ![PHOTOMETRIC_MINISWHITE, PHOTOMETRIC_MINISBLACK, PHOTOMETRIC_PALETTE].contains(Int32(photometric)) {
                reason = "photometric interpretation \(photometric)"
            }
            if TIFFIsCODECConfigured(compression) == 0 { reason = "compression \(compression) not available" }
            if !listed { type = nil }
        }

        /// SampleFormat (1 unsigned, 2 signed, 3 IEEE float) and BitsPerSample.
        static func sampleType(format: UInt16, bits: UInt16) -> SampleType? {
            switch (format, bits) {
            case (1, 8): .uint8
            case (1, 16): .uint16
            case (1, 32): .uint32
            case (1, 64): .uint64
            case (2, 8): .int8
            case (2, 16): .int16
            case (2, 32): .int32
            case (2, 64): .int64
            case (3, 16): .float16
            case (3, 32): .float32
            case (3, 64): .float64
            default: nil
            }
        }
    }

    /// Size checks, before any allocation: every strip/tile must lie within the file, and
    /// the decoded size must be what those bytes can hold.
    static func checkExtent(_ t: OpaquePointer, directory d: Int, width w: Int, height h: Int, type: SampleType,
                            layout: SampleLayout, fileSize: Int, url: URL) throws {
        // A claim far beyond anything the file could hold is a corrupt (or hostile) header,
        // not a truncated file: a truncated file is short by a modest factor.
        let uncompressed = layout.compression == UInt16(COMPRESSION_NONE)
        let ratio = uncompressed ? 64 : maxCompressionRatio
        let (pixels, o1) = w.multipliedReportingOverflow(by: h)
        let (decoded, o2) = pixels.multipliedReportingOverflow(by: type.byteCount)
        if o1 || o2 || decoded > fileSize.multipliedReportingOverflow(by: ratio).partialValue + (1 << 20) {
            throw FrameIOError(.corrupt, url: url,
                               "page \(d) claims \(w)×\(h) \(type.rawValue) pixels, far more than the \(fileSize)-byte file can hold")
        }
        let chunks = Int(layout.tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t))
        guard chunks > 0 else { throw FrameIOError(.corrupt, url: url, "page \(d) has no strips") }
        var stored = 0
        for i in 0..<chunks {
            let off = TIFFGetStrileOffset(t, UInt32(i)), n = TIFFGetStrileByteCount(t, UInt32(i))
            guard off <= UInt64(fileSize), n <= UInt64(fileSize) - off else {
                throw FrameIOError(.truncated, url: url,
                                   "page \(d): \(layout.tiled ? "tile" : "strip") \(i) (bytes \(off)..<\(off &+ n)) runs past the end of the \(fileSize)-byte file")
            }
            stored += Int(n)
        }
        let storedRatio = uncompressed ? 1 : maxCompressionRatio
        if decoded > stored.multipliedReportingOverflow(by: storedRatio).partialValue + 4096 * storedRatio {
            throw FrameIOError(.corrupt, url: url,
                               "page \(d) claims \(w)×\(h) \(type.rawValue) pixels but its data holds \(stored) bytes")
        }
    }
}

/// A page's metadata text, calibration and time, gathered tag by tag. Calibration: the
/// first source that gives one wins, in the order `readMetadata` tries them.
struct PageTags {
    let t: OpaquePointer
    let read: (Int, Int) -> [UInt8]?
    let fileSize: Int
    let littleEndian: Bool
    var meta = FrameMetadata()
    var original: [String: String] = [:]
    var imageJ: [String: String]? = nil
    var calibrated = false

    init(t: OpaquePointer, read: @escaping (Int, Int) -> [UInt8]?, fileSize: Int, littleEndian: Bool) {
        self.t = t
        self.read = read
        self.fileSize = fileSize
        self.littleEndian = littleEndian
    }

    mutating func readMetadata(width: Int) {
        for (tag, key) in [(TIFFTAG_IMAGEDESCRIPTION, "ImageDescription"), (TIFFTAG_SOFTWARE, "Software"),
                           (TIFFTAG_DATETIME, "DateTime"), (TIFFTAG_MAKE, "Make"), (TIFFTAG_MODEL, "Model"),
                           (TIFFTAG_ARTIST, "Artist")] {
            if let s = string(UInt32(tag)), !s.isEmpty { original[key] = s }
        }
        readFEI()
        readZeiss(width: width)
        readDigitalMicrograph()
        readImageJ()
        readOME()
        readTVIPSAndOlympus()
        // TIFF 6.0's own XResolution/YResolution (pixels per ResolutionUnit), only for files
        // no vendor block describes: vendor software writes screen dpi there (DM exports say
        // 72 per inch) while its own tags hold the calibration, or say there is none.
        if !calibrated, !hasVendorBlock, let r = TIFFReader.resolutionPixelSizeNm(t) {
            setSize(r.x, r.y, r.source)
        }
        readDateTime()
        meta.original = original
    }

    /// A text tag (ASCII, UNDEFINED or BYTE), up to its first NUL; Latin-1 when not UTF-8.
    func string(_ tag: UInt32) -> String? {
        var count: UInt32 = 0, data: UnsafeRawPointer? = nil, type: Int32 = 0
        guard ctiff_get_array(t, tag, &count, &data, &type) == 1, let data, count > 0,
              [TIFF_ASCII.rawValue, TIFF_UNDEFINED.rawValue, TIFF_BYTE.rawValue].contains(UInt32(type)) else { return nil }
        let bytes = UnsafeRawBufferPointer(start: data, count: Int(count))
        let trimmed = bytes.prefix { $0 != 0 }
        return String(decoding: trimmed, as: UTF8.self).contains("\u{FFFD}")
            ? String(trimmed.map { Character(Unicode.Scalar($0)) })    // Latin-1 (DM's "µm")
            : String(decoding: trimmed, as: UTF8.self)
    }

    /// A numeric tag's first value.
    func scalar(_ tag: UInt32) -> Double? {
        var count: UInt32 = 0, data: UnsafeRawPointer? = nil, type: Int32 = 0
        guard ctiff_get_array(t, tag, &count, &data, &type) == 1, let data, count >= 1 else { return nil }
        switch UInt32(type) {
        case TIFF_DOUBLE.rawValue: return data.loadUnaligned(as: Double.self)
        case TIFF_FLOAT.rawValue: return Double(data.loadUnaligned(as: Float.self))
        case TIFF_LONG.rawValue, TIFF_IFD.rawValue: return Double(data.loadUnaligned(as: UInt32.self))
        case TIFF_SHORT.rawValue: return Double(data.loadUnaligned(as: UInt16.self))
        case TIFF_LONG8.rawValue, TIFF_IFD8.rawValue: return Double(data.loadUnaligned(as: UInt64.self))
        default: return nil
        }
    }

    mutating func setSize(_ x: Double, _ y: Double, _ source: String) {
        guard !calibrated, x.isFinite, y.isFinite, x > 0, y > 0 else { return }
        meta.pixelSizeXNm = x; meta.pixelSizeYNm = y; calibrated = true
        original["tiff.calibration"] = source
    }

    var isOME: Bool { original["ImageDescription"].map { $0.contains("<OME") || $0.contains(":OME") } ?? false }

    /// Whether a vendor's block describes the file (its calibration, or that it has none).
    var hasVendorBlock: Bool {
        let vendor = string(34682) ?? string(34680) ?? string(34118) ?? string(65003) ?? string(65004)
        return vendor != nil || scalar(65009) != nil || imageJ != nil || scalar(37706) != nil || scalar(33560) != nil || isOME
    }

    /// FEI / Thermo Fisher.
    mutating func readFEI() {
        guard let text = string(34682) ?? string(34680) else { return }
        let ini = TIFFMetadata.parseINI(text)
        for (k, v) in ini { original["fei.\(k)"] = v }
        if let s = TIFFMetadata.feiPixelSizeNm(ini) { setSize(s.x, s.y, "FEI [Scan] PixelWidth") }
        if let dwell = ini["Scan.Dwelltime"].flatMap(Double.init) { meta.dwellTime_s = dwell }
        if meta.acquisitionTime == nil { meta.acquisitionTime = TIFFMetadata.feiDate(ini) }
    }

    /// Zeiss SmartSEM.
    mutating func readZeiss(width: Int) {
        guard let text = string(34118) else { return }
        let cz = TIFFMetadata.parseCZSEM(text)
        for (k, v) in cz.named { original["cz_sem.\(k)"] = v }
        if let s = TIFFMetadata.zeissPixelSizeNm(cz, width: width) { setSize(s, s, "Zeiss CZ_SEM") }
        meta.acquisitionTime = meta.acquisitionTime ?? TIFFMetadata.zeissDate(cz.named)
        meta.dwellTime_s = meta.dwellTime_s ?? TIFFMetadata.zeissDwell(cz.named)
    }

    /// DigitalMicrograph export: 65009/65010 scales (x = width), 65003/65004 units. Read
    /// before ImageJ's resolution because they are exact doubles (libtiff keeps rationals as float).
    mutating func readDigitalMicrograph() {
        guard let sx = scalar(65009), let ux = string(65003), let perNm = TIFFMetadata.nanometres(per: ux) else { return }
        let sy = scalar(65010) ?? sx
        let uy = string(65004).flatMap { TIFFMetadata.nanometres(per: $0) } ?? perNm
        setSize(sx * perNm, sy * uy, "DigitalMicrograph tags 65009/65003")
    }

    /// ImageJ: its description's keys, and the resolution tags in its `unit`.
    mutating func readImageJ() {
        guard let desc = original["ImageDescription"], let ij = TIFFMetadata.parseImageJ(desc) else { return }
        imageJ = ij
        for (k, v) in ij { original["imagej.\(k)"] = v }
        var xr: Float = 0, yr: Float = 0
        if let unit = ij["unit"], let perNm = TIFFMetadata.nanometres(per: unit),
           ctiff_get_float(t, UInt32(TIFFTAG_XRESOLUTION), &xr) == 1, xr > 0 {
            if ctiff_get_float(t, UInt32(TIFFTAG_YRESOLUTION), &yr) != 1 || yr <= 0 { yr = xr }
            // libtiff holds the rationals as float: ~6e-8 relative, far below any calibration's accuracy.
            setSize(perNm / Double(xr), perNm / Double(yr), "ImageJ unit=\(unit)")
        }
    }

    /// OME-TIFF.
    mutating func readOME() {
        guard isOME, let desc = original["ImageDescription"] else { return }
        let ome = TIFFMetadata.parseOME(desc)
        if let x = ome.x { setSize(x, ome.y ?? x, "OME PhysicalSize") }
    }

    /// TVIPS EM-MENU (tag 37706: the offset of the TemData header) and Olympus SIS (tag
    /// 33560: the offset of the SIS0 structure).
    mutating func readTVIPSAndOlympus() {
        if let off = scalar(37706), off > 0, let bytes = read(Int(off), min(8192, fileSize - Int(off))),
           let s = TIFFMetadata.tvipsPixelSizeNm(bytes, littleEndian: littleEndian) {
            setSize(s.x, s.y, "TVIPS PixelSize")
        }
        if let off = scalar(33560), off > 0,
           let sis = TIFFMetadata.olympusSIS(read: read, at: Int(off)) {
            setSize(sis.x, sis.y, "Olympus SIS")
            if meta.acquisitionTime == nil, original["DateTime"] == nil { meta.acquisitionTime = sis.date }
        }
    }

    /// Times: DateTime + EXIF SubSecTime.
    mutating func readDateTime() {
        guard let dt = original["DateTime"] else { return }
        var subSec: String? = nil
        var exif: UInt64 = 0
        if ctiff_get_u64(t, UInt32(TIFFTAG_EXIFIFD), &exif) == 1, exif > 0 {
            subSec = TIFFReader.exifSubSecTime(at: Int(exif), read: read, littleEndian: littleEndian, bigTIFF: TIFFIsBigTIFF(t) != 0)
            if let s = subSec { original["exif.SubSecTime"] = s }
        }
        if let date = TIFFMetadata.tiffDate(dt, subSec: subSec) { meta.acquisitionTime = date }
    }
}
