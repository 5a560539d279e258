import Foundation
import Synchronization
import Testing
import CTIFF
import FrameCore
import FrameIO

/// Scratch files for one test, removed when the value is released.
final class TPScratch {
    let url: URL
    init(_ name: String = #function) {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("heatfront-tiffpng-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Writes a TIFF with libtiff directly, to test the reader on layouts `TIFFWriter` never
/// produces (tiles, LZW, deflate, signed and 64-bit samples, big-endian).
enum TPLibTIFF {
    struct Layout {
        var bits: Int
        var format: Int            // SAMPLEFORMAT_UINT / INT / IEEEFP
        var compression = Int(COMPRESSION_NONE)
        var predictor = 1
        var tile: Int? = nil       // tile edge (multiple of 16)
        var rowsPerStrip = 7
        var bigEndian = false
        var samplesPerPixel = 1
        var photometric = Int(PHOTOMETRIC_MINISBLACK)
        var bigTIFF = false
    }

    /// `pages[k]` holds width·height·samplesPerPixel sample bytes in host order.
    static func write(_ url: URL, width w: Int, height h: Int, layout L: Layout, pages: [[UInt8]]) throws {
        ctiff_install_handlers()
        let t = try #require(TIFFOpen(url.path, "w" + (L.bigTIFF ? "8" : "") + (L.bigEndian ? "b" : "l")))
        defer { TIFFClose(t) }
        for bytes in pages {
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(w))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGELENGTH), UInt32(h))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_BITSPERSAMPLE), UInt16(L.bits))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), UInt16(L.samplesPerPixel))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLEFORMAT), UInt16(L.format))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(L.photometric))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG))
            #expect(ctiff_set_u16(t, UInt32(TIFFTAG_COMPRESSION), UInt16(L.compression)) == 1)
            if L.predictor != 1 { _ = ctiff_set_u16(t, UInt32(TIFFTAG_PREDICTOR), UInt16(L.predictor)) }
            let bpp = L.bits / 8 * L.samplesPerPixel
            try bytes.withUnsafeBytes { src in
                if let e = L.tile {
                    _ = ctiff_set_u32(t, UInt32(TIFFTAG_TILEWIDTH), UInt32(e))
                    _ = ctiff_set_u32(t, UInt32(TIFFTAG_TILELENGTH), UInt32(e))
                    var tile = [UInt8](repeating: 0, count: e * e * bpp)
                    for ty in stride(from: 0, to: h, by: e) {
                        for tx in stride(from: 0, to: w, by: e) {
                            for i in tile.indices { tile[i] = 0 }
                            for r in 0..<min(e, h - ty) {
                                for c in 0..<min(e, w - tx) * bpp {
                                    tile[r * e * bpp + c] = src[((ty + r) * w + tx) * bpp + c]
                                }
                            }
                            let idx = TIFFComputeTile(t, UInt32(tx), UInt32(ty), 0, 0)
                            try #require(TIFFWriteEncodedTile(t, idx, &tile, tmsize_t(tile.count)) >= 0)
                        }
                    }
                } else {
                    _ = ctiff_set_u32(t, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(L.rowsPerStrip))
                    var s: UInt32 = 0
                    for r0 in stride(from: 0, to: h, by: L.rowsPerStrip) {
                        let rows = min(L.rowsPerStrip, h - r0)
                        try #require(TIFFWriteEncodedStrip(t, s, UnsafeMutableRawPointer(mutating: src.baseAddress! + r0 * w * bpp),
                                                           tmsize_t(rows * w * bpp)) >= 0)
                        s += 1
                    }
                }
            }
            try #require(TIFFWriteDirectory(t) == 1)
        }
    }
}

func tpBytes<T>(_ v: [T]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

@Suite struct TIFFTests {
    /// A test pattern whose value differs along x and y, so a transpose or flip shows.
    static func pattern(_ w: Int, _ h: Int, page: Int = 0) -> [Double] {
        (0..<(w * h)).map { i in Double((i % w) * 3 + (i / w) * 1000 + page * 7 + (i * 7919) % 13) }
    }

    // MARK: Round trips through TIFFWriter

    @Test(arguments: [SampleType.uint8, .uint16, .float32])
    func roundTrip(_ type: SampleType) throws {
        let dir = TPScratch()
        let url = dir.file("stack.tif")
        let (w, h) = (37, 23)
        let t0 = Date(timeIntervalSince1970: 1_790_000_000.123456)
        var frames: [Frame] = []
        for k in 0..<3 {
            // Values beyond the integer range and fractions exercise rounding and clamping.
            let img = Image(width: w, height: h) { x, y in Float(x) * 9.25 - 20 + Float(y * 11) + Float(k) * 0.5 }
            var m = FrameMetadata(pixelSizeXNm: 0.0731, pixelSizeYNm: 0.0731)
            m.acquisitionTime = t0.addingTimeInterval(Double(k) * 2.5)
            frames.append(Frame(image: img, metadata: m, sampleType: type))
        }
        try TIFFWriter.write(frames, as: type, to: url)
        let r = try TIFFReader(url: url)
        #expect(r.signals.count == 1)
        let s = try #require(r.signals.first)
        #expect((s.frameCount, s.width, s.height, s.sampleType) == (3, w, h, type))
        #expect(abs(s.pixelSizeXNm! - 0.0731) <= 1e-12 && abs(s.pixelSizeYNm! - 0.0731) <= 1e-12)
        let maxV: Float = type == .uint8 ? 255 : 65535
        for k in 0..<3 {
            let f = try r.frame(signal: 0, frame: k)
            let want = frames[k].image.pixels.map { v -> Float in
                type == .float32 ? v : min(max(v.rounded(), 0), maxV)
            }
            #expect(f.image.pixels == want)
            #expect(f.sampleType == type)
            let at = try #require(f.metadata.acquisitionTime)
            #expect(abs(at.timeIntervalSince(frames[k].metadata.acquisitionTime!)) < 1e-6)
            #expect(abs((f.metadata.relativeTime_s ?? -1) - Double(k) * 2.5) < 1e-9)
            #expect(f.metadata.pixelSizeNm == 0.0731)
        }
        #expect(r.fileMetadata["imagej.unit"] == "nm")
        #expect(r.fileMetadata["imagej.images"] == "3")
    }

    /// Vendor metadata beyond calibration in the corpus files: times and dwell.
    @Test(.enabled(if: Corpus.available)) func corpusTimes() throws {
        let fei = try TIFFReader(url: Corpus.root.appendingPathComponent("tiff/FEI-Helios-Ebeam-16bits.tif"))
        let fm = try fei.metadata(signal: 0, frame: 0)
        // [User] Date=06/13/2016 Time=05:06:40 PM; [Scan] Dwelltime=1e-005
        #expect(fm.acquisitionTime == TIFFMetadata.tiffDate("2016:06:13 17:06:40"))
        #expect(fm.dwellTime_s == 1e-5)
        let zeiss = try TIFFReader(url: Corpus.root.appendingPathComponent("tiff/ZEISS_SEM_multipage.tif"))
        let zm = try zeiss.metadata(signal: 0, frame: 0)
        #expect(zm.acquisitionTime == TIFFMetadata.tiffDate("2016:04:18 22:42:02"))
        #expect(abs(zm.dwellTime_s! - 100e-9) < 1e-18)
        // Each page keeps its own time: the second frame was taken 3 min 17 s later.
        #expect(try zeiss.metadata(signal: 0, frame: 1).acquisitionTime == TIFFMetadata.tiffDate("2016:04:18 22:45:19"))
        #expect(zm.pixelSizeXNm == zeiss.signals[0].pixelSizeXNm)
        let sis = try TIFFReader(url: Corpus.root.appendingPathComponent("tiff/olympus_SIS.tif"))
        #expect(try sis.metadata(signal: 0, frame: 0).acquisitionTime == TIFFMetadata.tiffDate("2018:11:15 19:42:31"))
    }

    /// Keeps one written file for inspection with other tools when HEATFRONT_KEEP_TIFF is set.
    @Test func writerLayout() throws {
        let dir = TPScratch()
        let url = ProcessInfo.processInfo.environment["HEATFRONT_KEEP_TIFF"].map { URL(fileURLWithPath: $0) } ?? dir.file("k.tif")
        var m = FrameMetadata(pixelSizeXNm: 0.05, pixelSizeYNm: 0.05)
        m.acquisitionTime = Date(timeIntervalSince1970: 1_790_000_000.5)
        let frames = (0..<2).map { k in
            var mk = m
            mk.acquisitionTime = m.acquisitionTime!.addingTimeInterval(Double(k))
            return Frame(image: Image(width: 5, height: 4, fill: Float(k)), metadata: mk)
        }
        try TIFFWriter.write(frames, as: .float32, to: url)
        let r = try TIFFReader(url: url)
        let md = r.fileMetadata
        #expect(md["imagej.finterval"] == "1.0" && md["imagej.unit"] == "nm" && md["imagej.images"] == "2")
        #expect(md["DateTime"] == "2026:09:21 14:13:20" && md["exif.SubSecTime"] == "500000")
        #expect(md["tiff.calibration"]?.hasPrefix("DigitalMicrograph") == true)
    }

    @Test func orientation() throws {
        let dir = TPScratch()
        let url = dir.file("orient.tif")
        var img = Image(width: 3, height: 2, fill: 0)
        img[1, 0] = 100   // x = 1, y = 0: first row, second column
        img[0, 1] = 200   // x = 0, y = 1: second row, first column
        try TIFFWriter.write([Frame(image: img)], as: .uint16, to: url)
        let f = try TIFFReader(url: url).frame(signal: 0, frame: 0)
        #expect(f.image[1, 0] == 100 && f.image[0, 1] == 200)
        #expect(f.image.pixels == [0, 100, 0, 200, 0, 0])
        // No calibration or time given: none read back.
        #expect(f.metadata.pixelSizeNm == nil && f.metadata.acquisitionTime == nil)
    }

    // MARK: Layouts written with libtiff

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var type: SampleType
        var layout: TPLibTIFF.Layout
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "uint16 strips LE", type: .uint16, layout: .init(bits: 16, format: 1)),
        Case(name: "uint16 strips big-endian", type: .uint16, layout: .init(bits: 16, format: 1, bigEndian: true)),
        Case(name: "int16 LZW+predictor", type: .int16, layout: .init(bits: 16, format: 2, compression: Int(COMPRESSION_LZW), predictor: 2)),
        Case(name: "int32 deflate big-endian", type: .int32, layout: .init(bits: 32, format: 2, compression: Int(COMPRESSION_ADOBE_DEFLATE), bigEndian: true)),
        Case(name: "int8 tiles", type: .int8, layout: .init(bits: 8, format: 2, tile: 16)),
        Case(name: "uint32 tiles LZW", type: .uint32, layout: .init(bits: 32, format: 1, compression: Int(COMPRESSION_LZW), tile: 16)),
        Case(name: "float32 tiles deflate big-endian", type: .float32, layout: .init(bits: 32, format: 3, compression: Int(COMPRESSION_ADOBE_DEFLATE), tile: 32, bigEndian: true)),
        Case(name: "float64 packbits", type: .float64, layout: .init(bits: 64, format: 3, compression: Int(COMPRESSION_PACKBITS))),
        Case(name: "uint8 minisblack", type: .uint8, layout: .init(bits: 8, format: 1, rowsPerStrip: 1)),
        Case(name: "uint16 BigTIFF big-endian tiles", type: .uint16,
             layout: .init(bits: 16, format: 1, tile: 16, bigEndian: true, bigTIFF: true)),
        Case(name: "int64 BigTIFF deflate", type: .int64,
             layout: .init(bits: 64, format: 2, compression: Int(COMPRESSION_ADOBE_DEFLATE), bigTIFF: true)),
    ]

    @Test(arguments: cases) func libtiffLayouts(_ c: Case) throws {
        let dir = TPScratch()
        let url = dir.file("layout.tif")
        let (w, h) = (45, 38)   // not multiples of the tile edge: partial edge tiles
        let pages = (0..<3).map { Self.pattern(w, h, page: $0).map { $0 - 600 } }   // negatives for signed types
        func encode(_ v: [Double]) -> [UInt8] {
            switch c.type {
            case .uint8: tpBytes(v.map { UInt8(truncatingIfNeeded: Int(abs($0))) })
            case .int8: tpBytes(v.map { Int8(truncatingIfNeeded: Int($0)) })
            case .uint16: tpBytes(v.map { UInt16(truncatingIfNeeded: Int($0)) })
            case .int16: tpBytes(v.map { Int16(truncatingIfNeeded: Int($0)) })
            case .uint32: tpBytes(v.map { UInt32(truncatingIfNeeded: Int($0) &* 70_001) })
            case .int32: tpBytes(v.map { Int32(truncatingIfNeeded: Int($0) &* 70_001) })
            case .float32: tpBytes(v.map { Float($0) / 7 })
            case .float64: tpBytes(v.map { $0 / 7 })
            case .int64: tpBytes(v.map { Int64($0) * 3_000_000_007 })
            default: []
            }
        }
        try TPLibTIFF.write(url, width: w, height: h, layout: c.layout, pages: pages.map(encode))
        let r = try TIFFReader(url: url)
        let s = try #require(r.signals.first)
        #expect((s.frameCount, s.width, s.height, s.sampleType) == (3, w, h, c.type))
        for k in 0..<3 {
            let got = try r.plane(signal: 0, frame: k)
            #expect(got.sampleType == c.type)
            let wantBytes = encode(pages[k])
            let gotBytes: [UInt8]
            switch got.values {
            case .uint8(let v): gotBytes = tpBytes(v)
            case .int8(let v): gotBytes = tpBytes(v)
            case .uint16(let v): gotBytes = tpBytes(v)
            case .int16(let v): gotBytes = tpBytes(v)
            case .uint32(let v): gotBytes = tpBytes(v)
            case .int32(let v): gotBytes = tpBytes(v)
            case .float32(let v): gotBytes = tpBytes(v)
            case .float64(let v): gotBytes = tpBytes(v)
            case .int64(let v): gotBytes = tpBytes(v)
            default: gotBytes = []
            }
            #expect(gotBytes == wantBytes, "page \(k) differs")
        }
    }

    /// An RGB page before a greyscale one: not listed but counted, like olympus_SIS.tif.
    @Test func rgbPageIsCountedNotListed() throws {
        let dir = TPScratch()
        let rgb = dir.file("rgb.tif"), grey = dir.file("grey.tif"), both = dir.file("both.tif")
        let (w, h) = (20, 10)
        try TPLibTIFF.write(rgb, width: w, height: h,
                          layout: .init(bits: 8, format: 1, samplesPerPixel: 3, photometric: Int(PHOTOMETRIC_RGB)),
                          pages: [[UInt8](repeating: 9, count: w * h * 3)])
        try TPLibTIFF.write(grey, width: w, height: h, layout: .init(bits: 16, format: 1),
                          pages: [tpBytes(Self.pattern(w, h).map { UInt16(truncatingIfNeeded: Int($0)) })])
        ctiff_install_handlers()
        let t = try #require(TIFFOpen(both.path, "w"))
        for (_, spp, bits, ph) in [(rgb, 3, 8, PHOTOMETRIC_RGB), (grey, 1, 16, PHOTOMETRIC_MINISBLACK)] {
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(w))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGELENGTH), UInt32(h))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_BITSPERSAMPLE), UInt16(bits))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), UInt16(spp))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(ph))
            _ = ctiff_set_u16(t, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG))
            _ = ctiff_set_u32(t, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(h))
            var data: [UInt8] = spp == 3 ? [UInt8](repeating: 9, count: w * h * 3) : tpBytes(Self.pattern(w, h).map { UInt16(truncatingIfNeeded: Int($0)) })
            try #require(TIFFWriteEncodedStrip(t, 0, &data, tmsize_t(data.count)) >= 0)
            try #require(TIFFWriteDirectory(t) == 1)
        }
        TIFFClose(t)
        let r = try TIFFReader(url: both)
        #expect(r.signals.map(\.index) == [1])
        #expect(try r.plane(signal: 0, frame: 0).doubleValues() == Self.pattern(w, h))
        // A file of RGB pages only has nothing to analyse.
        #expect(throws: FrameIOError.self) { try TIFFReader(url: rgb) }
        do { _ = try TIFFReader(url: rgb) } catch let e as FrameIOError {
            #expect(e.kind == .unsupported && e.description.contains("rgb.tif"))
        }
    }

    @Test func imageJCalibrationUnits() throws {
        // ImageJ's own text (unit=micron, resolution = pixels per µm), as in the corpus file.
        let dir = TPScratch()
        let url = dir.file("ij.tif")
        try TIFFWriter.write([Frame(image: Image(width: 4, height: 4, fill: 1))], as: .uint8, to: url)
        #expect(TIFFMetadata.nanometres(per: "micron") == 1000)
        #expect(TIFFMetadata.nanometres(per: "\\u00B5m") == 1000)
        #expect(TIFFMetadata.nanometres(per: "A") == 0.1)
        #expect(TIFFMetadata.nanometres(per: "pixel") == nil)
        let ij = try #require(TIFFMetadata.parseImageJ("ImageJ=1.51a\nimages=5\nunit=micron\nfinterval=0.5\n"))
        #expect(ij["unit"] == "micron" && ij["finterval"] == "0.5" && ij["images"] == "5")
        let ome = TIFFMetadata.parseOME("""
            <?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">
            <Pixels ID="Pixels:0" PhysicalSizeX="0.25" PhysicalSizeXUnit="nm" PhysicalSizeY="2.5" PhysicalSizeYUnit="Å" SizeT="2">
            <Plane TheT="0" DeltaT="0"/><Plane TheT="1" DeltaT="1500" DeltaTUnit="ms"/></Pixels></Image></OME>
            """)
        #expect(ome.x == 0.25 && ome.y == 0.25 && ome.deltaT == [0, 1.5])
        let date = try #require(TIFFMetadata.tiffDate("2024:03:05 14:07:09", subSec: "25"))
        #expect(abs(date.timeIntervalSince1970 - 1_709_647_629.25) < 1e-6)
    }

    /// A long stack read out of order from several threads: each frame must be its own page.
    @Test func longStackConcurrentReads() throws {
        let dir = TPScratch()
        let url = dir.file("long.tif")
        let n = 300
        let frames = (0..<n).map { k in Frame(image: Image(width: 16, height: 12) { x, y in Float(k * 100 + x + y) }) }
        try TIFFWriter.write(frames, as: .uint16, to: url)
        let r = try TIFFReader(url: url)
        #expect(r.signals.count == 1 && r.signals[0].frameCount == n)
        let bad = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { chunk in
            for k in stride(from: n - 1 - chunk, through: 0, by: -4) {
                let ok = (try? r.plane(signal: 0, frame: k).floatPixels()) == frames[k].image.pixels
                if !ok { bad.withLock { $0 += 1 } }
            }
        }
        #expect(bad.withLock { $0 } == 0)
    }

    /// An uncompressed 16-bit 2048×2048 page decodes to the values written, read repeatedly
    /// (its speed: scripts/bench-decode.sh).
    @Test func decodesLargePage() throws {
        let dir = TPScratch()
        let url = dir.file("big.tif")
        let n = 2048
        let img = Image(width: n, height: n) { x, y in Float((x * 7 + y * 13) & 0xFFFF) }
        try TIFFWriter.write([Frame(image: img)], as: .uint16, to: url)
        let r = try TIFFReader(url: url)
        #expect(try r.plane(signal: 0, frame: 0).floatPixels() == img.pixels)
        for _ in 0..<2 {
            let p = try r.plane(signal: 0, frame: 0)
            if case .uint16(let v) = p.values { #expect(v[2049] == UInt16((1 * 7 + 1 * 13) & 0xFFFF)) }
            else { Issue.record("not uint16") }
        }
    }
}
