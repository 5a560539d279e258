import Foundation
import CTIFF

/// Reads greyscale TIFF images and stacks through libtiff (TIFF 6.0 and BigTIFF; strips or
/// tiles; any codec libtiff was built with: none, LZW, deflate, PackBits…; either byte order).
///
/// Pages are grouped into signals the way tifffile's generic series (and so RosettaSciIO)
/// does: pages of the same width, height and sample type form one signal, in order of first
/// appearance. Pages that are not single-sample greyscale or palette images (an RGB or JPEG
/// preview) are not listed but keep their place in the numbering, so `SignalInfo.index`
/// equals RosettaSciIO's signal index. Palette images give their raw indices and
/// MinIsWhite images their stored values, as tifffile does.
///
/// Calibration (nm) comes from the vendor tags listed in `TIFFMetadata` (FEI, Zeiss, DM,
/// ImageJ, OME, TVIPS, Olympus SIS), first match wins; every frame of a signal carries its
/// first page's. A file no vendor block describes is calibrated by TIFF 6.0's XResolution
/// and YResolution with ResolutionUnit inch or centimetre (as RosettaSciIO with
/// `force_read_resolution`), except the screen defaults 72 and 96 per inch; with a vendor
/// block those tags are ignored (DigitalMicrograph exports write 72 per inch there).
/// Times: DateTime (306) + EXIF SubSecTime (37520) → `acquisitionTime` (read as UTC; the
/// format has no zone), else FEI `[User] Date/Time`, Zeiss `AP_DATE/AP_TIME` or the SIS
/// header; ImageJ `finterval` → `relativeTime_s = frame × finterval`; OME `Plane DeltaT`.
///
/// The directory structure, each strip's extent and the claimed image sizes are checked
/// against the file's length on open; pixels are decoded one page at a time. The `TIFF*`
/// stays open for the reader's lifetime; libtiff calls are serialised by a lock so a reader
/// can be shared between threads.
public final class TIFFReader: FrameFileReader, @unchecked Sendable {
    public let url: URL
    public var format: FrameFormat { .tiff }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]

    /// One image directory (page) of the file.
    struct Page {
        var directory: Int
        /// File offset of the page's directory, to return to it in O(1).
        var offset: UInt64 = 0
        var width: Int
        var height: Int
        var sampleType: SampleType?
        var listed: Bool
        var tiled: Bool
        var metadata: FrameMetadata
        var imageJ: [String: String]?
    }

    private let tiff: OpaquePointer
    private let lock = NSLock()
    /// The pages of each listed signal's frames, in order.
    private let framePages: [[Page]]

    /// Largest decoded-to-stored size ratio accepted for compressed data. Deflate cannot
    /// exceed ~1032:1 and LZW ~2730:1; anything beyond is a corrupt or hostile header.
    static let maxCompressionRatio = 4096

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        // Header checks before libtiff sees the file, so each failure gets the right kind.
        _ = try regularFileSize(url)
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw FrameIOError(.io, url: url, "cannot open file")
        }
        defer { try? fh.close() }
        let fileSize = Int((try? fh.seekToEnd()) ?? 0)
        func readBytes(_ offset: Int, _ count: Int) -> [UInt8]? {
            guard offset >= 0, count >= 0, offset <= fileSize, count <= fileSize - offset else { return nil }
            do {
                try fh.seek(toOffset: UInt64(offset))
                let d = try fh.read(upToCount: count) ?? Data()
                return d.count == count ? [UInt8](d) : nil
            } catch { return nil }
        }
        guard fileSize > 0 else { throw FrameIOError(.truncated, url: url, "empty file (0 bytes)") }
        guard fileSize >= 8, let head = readBytes(0, min(16, fileSize)) else {
            throw FrameIOError(.truncated, url: url, "\(fileSize) bytes, shorter than a TIFF header")
        }
        let little = try Self.checkHeader(head, fileSize: fileSize, url: url)

        ctiff_install_handlers()
        ctiff_clear_error()
        // "m": no memory mapping, so uncompressed strips are read straight into our buffers
        // and a file truncated under us gives an error, not SIGBUS.
        guard let t = TIFFOpen(path, "rm") else {
            throw FrameIOError(.corrupt, url: url, "libtiff cannot open it: \(String(cString: ctiff_last_error_message()))")
        }
        tiff = t
        var ok = false
        defer { if !ok { TIFFClose(t) } }

        let pages = try Self.readPages(t, fileSize: fileSize, littleEndian: little, read: readBytes, url: url)
        let (infos, frames) = try Self.groupSignals(pages, url: url)
        signals = infos
        framePages = frames
        fileMetadata = frames[0][0].metadata.original
        ok = true
    }

    deinit { TIFFClose(tiff) }

    /// The byte order the header states; checks the version and the first directory's offset.
    private static func checkHeader(_ head: [UInt8], fileSize: Int, url: URL) throws -> Bool {
        let little: Bool
        switch (head[0], head[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: throw FrameIOError(.badMagic, url: url, "not a TIFF file (no II/MM byte-order mark)")
        }
        let version = TIFFMetadata.readInt(head, at: 2, littleEndian: little) as UInt16
        let firstIFD: Int
        switch version {
        case 42: firstIFD = Int(TIFFMetadata.readInt(head, at: 4, littleEndian: little) as UInt32)
        case 43:
            guard head.count >= 16 else { throw FrameIOError(.truncated, url: url, "BigTIFF header cut short") }
            let off = TIFFMetadata.readInt(head, at: 8, littleEndian: little) as UInt64
            firstIFD = off > UInt64(Int.max) ? Int.max : Int(off)
        default: throw FrameIOError(.badMagic, url: url, "not a TIFF file (version \(version), want 42 or 43)")
        }
        guard firstIFD >= 8 else { throw FrameIOError(.corrupt, url: url, "first image directory offset \(firstIFD) is inside the header") }
        guard firstIFD < fileSize - 2 else {
            throw FrameIOError(.truncated, url: url, "first image directory at byte \(firstIFD) but the file has \(fileSize) bytes")
        }
        return little
    }

    /// Every directory, walked once in order.
    private static func readPages(_ t: OpaquePointer, fileSize: Int, littleEndian little: Bool,
                                  read readBytes: (Int, Int) -> [UInt8]?, url: URL) throws -> [Page] {
        var pages: [Page] = []
        let nDirs = Int(TIFFNumberOfDirectories(t))
        guard nDirs > 0 else { throw FrameIOError(.corrupt, url: url, "no image directory") }
        guard nDirs <= FrameLimits.maxFrames else {
            throw FrameIOError(.corrupt, url: url, "\(nDirs) image directories, more than HeatFront reads from one file (\(FrameLimits.maxFrames)); split the stack into several files")
        }
        // Walk the chain once, in order (TIFFSetDirectory(n) would re-walk it from the start
        // for every page); each page is later revisited by its directory's file offset.
        for d in 0..<nDirs {
            ctiff_clear_error()
            if d > 0, TIFFReadDirectory(t) != 1 {
                throw FrameIOError(.corrupt, url: url, "image directory \(d) unreadable: \(String(cString: ctiff_last_error_message()))")
            }
            let page = try Self.describePage(t, directory: d, fileSize: fileSize, littleEndian: little,
                                             read: readBytes, url: url)
            pages.append(page)
        }
        return pages
    }

    /// Pages grouped into signals (same size and type, in order of first appearance), with
    /// each frame's time and the signal's calibration.
    private static func groupSignals(_ pages: [Page], url: URL) throws -> (infos: [SignalInfo], frames: [[Page]]) {
        struct Key: Hashable { var w: Int; var h: Int; var type: SampleType?; var listed: Bool }
        var order: [Key] = [], groups: [Key: [Page]] = [:]
        for p in pages {
            let k = Key(w: p.width, h: p.height, type: p.sampleType, listed: p.listed)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(p)
        }
        var infos: [SignalInfo] = [], frames: [[Page]] = []
        for (i, k) in order.enumerated() where k.listed {
            var g = groups[k]!
            // Frame times: ImageJ finterval, OME DeltaT per plane (relative to the first frame).
            let first = g[0]
            if let fi = first.imageJ?["finterval"].flatMap(Double.init), fi > 0 {
                for f in g.indices { g[f].metadata.relativeTime_s = Double(f) * fi }
            } else if let desc = first.metadata.original["ImageDescription"] {
                let ome = TIFFMetadata.parseOME(desc)
                if !ome.deltaT.isEmpty {
                    for f in g.indices where f < ome.deltaT.count { g[f].metadata.relativeTime_s = ome.deltaT[f] }
                }
            }
            // Calibration travels with the signal: every frame gets the first page's.
            for f in g.indices {
                g[f].metadata.pixelSizeXNm = first.metadata.pixelSizeXNm
                g[f].metadata.pixelSizeYNm = first.metadata.pixelSizeYNm
            }
            infos.append(SignalInfo(index: i, name: "page \(first.directory)", frameCount: g.count,
                                    height: k.h, width: k.w, sampleType: k.type!,
                                    pixelSizeXNm: first.metadata.pixelSizeXNm, pixelSizeYNm: first.metadata.pixelSizeYNm))
            frames.append(g)
        }
        guard !infos.isEmpty else {
            throw FrameIOError(.unsupported, url: url, "no greyscale image among \(pages.count) page(s) (\(pages[0].metadata.original["tiff.reason"] ?? "RGB or unsupported samples"))")
        }
        return (infos, frames)
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        try page(signal: signal, frame: frame).metadata
    }

    private func page(signal: Int, frame: Int) throws -> Page {
        guard signals.indices.contains(signal), framePages[signal].indices.contains(frame) else {
            throw FrameIOError(.corrupt, url: url, "no frame \(frame) in signal \(signal)")
        }
        return framePages[signal][frame]
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let p = try page(signal: signal, frame: frame)
        guard let type = p.sampleType else { throw FrameIOError(.unsupported, url: url, "page \(p.directory) is not greyscale") }
        lock.lock()
        defer { lock.unlock() }
        ctiff_clear_error()
        guard TIFFSetSubDirectory(tiff, p.offset) == 1 else {
            throw FrameIOError(.corrupt, url: url, "page \(p.directory): \(String(cString: ctiff_last_error_message()))")
        }
        let n = p.width * p.height
        func decode<T>(_: T.Type) throws -> [T] {
            // Not zero-filled first: `readPage` writes every byte or throws.
            try [T](unsafeUninitializedCapacity: n) { buf, count in
                try readPage(into: UnsafeMutableRawBufferPointer(buf), page: p, bytesPerSample: MemoryLayout<T>.size)
                count = n
            }
        }
        let values: PixelPlane.Values
        switch type {
        case .uint8: values = .uint8(try decode(UInt8.self))
        case .int8: values = .int8(try decode(Int8.self))
        case .uint16: values = .uint16(try decode(UInt16.self))
        case .int16: values = .int16(try decode(Int16.self))
        case .uint32: values = .uint32(try decode(UInt32.self))
        case .int32: values = .int32(try decode(Int32.self))
        case .uint64: values = .uint64(try decode(UInt64.self))
        case .int64: values = .int64(try decode(Int64.self))
        case .float16: values = .float16(try decode(UInt16.self).map(halfToFloat))
        case .float32: values = .float32(try decode(Float.self))
        case .float64: values = .float64(try decode(Double.self))
        }
        return PixelPlane(width: p.width, height: p.height, values: values)
    }

    /// Decodes the current directory into `dest` (width·height samples, host byte order;
    /// libtiff swaps big-endian data), every byte of it, or throws. Strips are decoded
    /// straight into place.
    private func readPage(into dest: UnsafeMutableRawBufferPointer, page p: Page, bytesPerSample bps: Int) throws {
        let rowBytes = p.width * bps
        func fail(_ what: String) -> FrameIOError {
            let msg = String(cString: ctiff_last_error_message())
            return FrameIOError(.corrupt, url: url, "page \(p.directory): \(what)\(msg.isEmpty ? "" : ": \(msg)")")
        }
        if !p.tiled {
            var rps: UInt32 = 0
            if ctiff_get_u32(tiff, UInt32(TIFFTAG_ROWSPERSTRIP), &rps) != 1 || rps == 0 || Int(rps) > p.height {
                rps = UInt32(p.height)
            }
            let nStrips = Int(TIFFNumberOfStrips(tiff))
            var covered = 0
            for s in 0..<nStrips {
                let row0 = s * Int(rps)
                guard row0 < p.height else { break }
                let rows = min(Int(rps), p.height - row0)
                // libtiff fills offsets missing from the directory with 0 (the header).
                guard TIFFGetStrileOffset(tiff, UInt32(s)) >= 8 else { throw fail("strip \(s) has no data offset") }
                let got = TIFFReadEncodedStrip(tiff, UInt32(s), dest.baseAddress! + row0 * rowBytes, tmsize_t(rows * rowBytes))
                guard got >= 0 else { throw fail("strip \(s) cannot be decoded") }
                guard got == rows * rowBytes else { throw fail("strip \(s) holds \(got) bytes, its \(rows) rows need \(rows * rowBytes)") }
                covered = row0 + rows
            }
            guard covered == p.height else { throw fail("the strips cover \(covered) of \(p.height) rows") }
        } else {
            var tw: UInt32 = 0, th: UInt32 = 0
            guard ctiff_get_u32(tiff, UInt32(TIFFTAG_TILEWIDTH), &tw) == 1, ctiff_get_u32(tiff, UInt32(TIFFTAG_TILELENGTH), &th) == 1,
                  tw > 0, th > 0 else { throw fail("tile size missing") }
            let tileSize = Int(TIFFTileSize(tiff))
            guard tileSize >= Int(tw) * Int(th) * bps else { throw fail("tile size \(tileSize) too small") }
            let tile = UnsafeMutableRawPointer.allocate(byteCount: tileSize, alignment: 16)
            defer { tile.deallocate() }
            var y = 0
            while y < p.height {
                var x = 0
                while x < p.width {
                    let index = TIFFComputeTile(tiff, UInt32(x), UInt32(y), 0, 0)
                    guard TIFFGetStrileOffset(tiff, index) >= 8 else { throw fail("tile at (\(x), \(y)) has no data offset") }
                    let got = TIFFReadEncodedTile(tiff, index, tile, tmsize_t(tileSize))
                    guard got >= 0 else { throw fail("tile at (\(x), \(y)) cannot be decoded") }
                    guard got == tileSize else { throw fail("tile at (\(x), \(y)) holds \(got) of its \(tileSize) bytes") }
                    let cols = min(Int(tw), p.width - x), rows = min(Int(th), p.height - y)
                    for r in 0..<rows {
                        memcpy(dest.baseAddress! + (y + r) * rowBytes + x * bps, tile + r * Int(tw) * bps, cols * bps)
                    }
                    x += Int(tw)
                }
                y += Int(th)
            }
        }
    }

    /// Pixel size from the baseline TIFF 6.0 tags XResolution and YResolution (pixels per
    /// ResolutionUnit: 2 inch, the default, or 3 centimetre), in nm; nil for ResolutionUnit 1
    /// (none: an aspect ratio only), a missing or non-positive resolution, or 72 or 96 pixels
    /// per inch, the screen resolutions image programs write when they know no calibration.
    static func resolutionPixelSizeNm(_ t: OpaquePointer) -> (x: Double, y: Double, source: String)? {
        var xr: Float = 0, yr: Float = 0, unit: UInt16 = 2
        guard ctiff_get_float(t, UInt32(TIFFTAG_XRESOLUTION), &xr) == 1, xr > 0, xr.isFinite else { return nil }
        if ctiff_get_float(t, UInt32(TIFFTAG_YRESOLUTION), &yr) != 1 || !(yr > 0) || !yr.isFinite { yr = xr }
        _ = ctiff_get_u16_defaulted(t, UInt32(TIFFTAG_RESOLUTIONUNIT), &unit)
        let nmPerUnit: Double
        switch Int32(unit) {
        case RESUNIT_INCH:
            if [72, 96].contains(xr), yr == xr { return nil }
            nmPerUnit = 25.4e6
        case RESUNIT_CENTIMETER: nmPerUnit = 1e7
        default: return nil
        }
        // libtiff holds the rationals as float: ~6e-8 relative, far below any calibration's accuracy.
        return (nmPerUnit / Double(xr), nmPerUnit / Double(yr),
                "TIFF XResolution \(xr) per \(unit == 3 ? "cm" : "inch")")
    }

    /// SubSecTime (37520) from the EXIF sub-IFD at `offset`.
    static func exifSubSecTime(at offset: Int, read: (Int, Int) -> [UInt8]?, littleEndian: Bool, bigTIFF: Bool) -> String? {
        let countSize = bigTIFF ? 8 : 2, entrySize = bigTIFF ? 20 : 12, inline = bigTIFF ? 8 : 4
        guard let c = read(offset, countSize) else { return nil }
        let n = bigTIFF ? Int(TIFFMetadata.readInt(c, at: 0, littleEndian: littleEndian) as UInt64)
                        : Int(TIFFMetadata.readInt(c, at: 0, littleEndian: littleEndian) as UInt16)
        guard n > 0, n < 4096, let entries = read(offset + countSize, n * entrySize) else { return nil }
        for i in 0..<n {
            let e = i * entrySize
            let tag = TIFFMetadata.readInt(entries, at: e, littleEndian: littleEndian) as UInt16
            guard tag == 37520 || tag == 37521 else { continue }
            let count = bigTIFF ? Int(TIFFMetadata.readInt(entries, at: e + 4, littleEndian: littleEndian) as UInt64)
                                : Int(TIFFMetadata.readInt(entries, at: e + 4, littleEndian: littleEndian) as UInt32)
            let valueAt = e + 4 + (bigTIFF ? 8 : 4)
            guard count > 0, count < 64 else { continue }
            let bytes: [UInt8]
            if count <= inline {
                bytes = Array(entries[valueAt..<(valueAt + count)])
            } else {
                let off = bigTIFF ? Int(TIFFMetadata.readInt(entries, at: valueAt, littleEndian: littleEndian) as UInt64)
                                  : Int(TIFFMetadata.readInt(entries, at: valueAt, littleEndian: littleEndian) as UInt32)
                guard let b = read(off, count) else { continue }
                bytes = b
            }
            let s = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if !s.isEmpty { return s }
        }
        return nil
    }
}
