import Foundation
import Testing
import CZarrCodecs
import FrameIO

/// A zip archive of stored members, written by hand so that a name can occur twice, as
/// zarr's ZipStore writes it when an attribute file is updated (APPNOTE.TXT 6.3: local file
/// headers, central directory, end record).
struct ZipBuilder {
    private var body: [UInt8] = []
    private var directory: [UInt8] = []
    private var count = 0

    private static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    private static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }

    mutating func add(_ name: String, _ data: [UInt8]) {
        let crc = UInt32(data.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
        let n = Array(name.utf8), offset = UInt32(body.count), size = UInt32(data.count)
        body += Self.le32(0x0403_4B50) + Self.le16(20) + Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le16(0x21)
        body += Self.le32(crc) + Self.le32(size) + Self.le32(size) + Self.le16(n.count) + Self.le16(0) + n + data
        directory += Self.le32(0x0201_4B50) + Self.le16(20) + Self.le16(20) + Self.le16(0) + Self.le16(0) + Self.le16(0)
        directory += Self.le16(0x21) + Self.le32(crc) + Self.le32(size) + Self.le32(size) + Self.le16(n.count)
        directory += Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le32(0) + Self.le32(offset) + n
        count += 1
    }

    mutating func add(_ name: String, json: String) { add(name, Array(json.utf8)) }

    func bytes() -> [UInt8] {
        body + directory + Self.le32(0x0605_4B50) + Self.le16(0) + Self.le16(0) + Self.le16(count) + Self.le16(count)
            + Self.le32(UInt32(directory.count)) + Self.le32(UInt32(body.count)) + Self.le16(0)
    }
}

@Suite struct ZSpyTests {
    /// Blosc-compresses `bytes` (zstd inside, byte shuffle), as numcodecs does for ZSpy.
    static func blosc(_ bytes: [UInt8], typeSize: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes.count + Int(BLOSC_MAX_OVERHEAD))
        let n = bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                blosc_compress_ctx(1, 1, typeSize, src.count, src.baseAddress, dst.baseAddress, dst.count, "zstd", 0, 1)
            }
        }
        return Array(out.prefix(Int(n)))
    }

    static func le16(_ v: [Int16]) -> [UInt8] { v.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xFF), UInt8(UInt16(bitPattern: $0) >> 8)] } }

    /// A (4 frames, 3 rows, 4 columns) int16 stack in chunks of (2, 3, 2): chunk (1, 0, 1)
    /// is missing and reads as the fill value 7. `.zattrs` of axis-2 is written twice.
    static func writeStack(_ url: URL, compressor: String = #"{"id": "blosc", "cname": "zstd", "clevel": 1, "shuffle": 1, "blocksize": 0}"#,
                           encode: ([UInt8]) -> [UInt8] = { blosc($0, typeSize: 2) }, shape: String = "[4, 3, 4]") throws {
        var z = ZipBuilder()
        z.add(".zgroup", json: #"{"zarr_format": 2}"#)
        z.add(".zattrs", json: #"{"file_format": "ZSpy", "file_format_version": "3.3"}"#)
        let g = "Experiments/DF2 series"
        z.add("Experiments/.zgroup", json: #"{"zarr_format": 2}"#)
        z.add(g + "/.zgroup", json: #"{"zarr_format": 2}"#)
        z.add(g + "/data/.zarray", json: """
            {"chunks": [2, 3, 2], "compressor": \(compressor), "dtype": "<i2", "fill_value": 7, "filters": null,
             "order": "C", "shape": \(shape), "zarr_format": 2}
            """)
        for (i, a) in [#"{"name": "t", "units": "s", "scale": 0.5, "size": 4, "navigate": true}"#,
                       #"{"name": "y", "units": "nm", "scale": 0.2, "size": 3, "navigate": false}"#,
                       #"{"name": "x", "units": "_None_", "scale": 1.0, "size": 4, "navigate": false}"#].enumerated() {
            z.add(g + "/axis-\(i)/.zgroup", json: #"{"zarr_format": 2}"#)
            z.add(g + "/axis-\(i)/.zattrs", json: a)
        }
        // Rewritten later with the real calibration: the last member of a name wins.
        z.add(g + "/axis-2/.zattrs", json: #"{"name": "x", "units": "pm", "scale": 300.0, "size": 4, "navigate": false}"#)
        z.add(g + "/metadata/.zgroup", json: #"{"zarr_format": 2}"#)
        z.add(g + "/metadata/General/.zgroup", json: #"{"zarr_format": 2}"#)
        z.add(g + "/metadata/General/.zattrs", json: #"{"title": "DF2", "date": "2024-01-02", "time": "03:04:05"}"#)
        for (f, c) in [(0, 0), (0, 1), (1, 0)] {
            // Chunk (f, 0, c): frames 2f, 2f+1; rows 0-2; columns 2c, 2c+1.
            let v = (0..<2).flatMap { k in (0..<3).flatMap { r in (0..<2).map { j in Self.value(2 * f + k, r, 2 * c + j) } } }
            z.add(g + "/data/\(f).0.\(c)", encode(Self.le16(v)))
        }
        try Data(z.bytes()).write(to: url)
    }

    static func value(_ k: Int, _ r: Int, _ c: Int) -> Int16 { Int16(100 * k + 10 * r + c) }
    static func expected(_ k: Int) -> [Double] {
        (0..<3).flatMap { r in (0..<4).map { c in (k >= 2 && c >= 2) ? 7 : Double(value(k, r, c)) } }
    }

    @Test func chunkedBloscStackWithMissingChunkAndRewrittenAttributes() throws {
        let dir = ScratchFolder("zspy")
        let url = dir.file("stack.zspy")
        try Self.writeStack(url)
        let r = try FrameFiles.open(url)
        #expect(r.format == .zspy)
        let s = r.signals[0]
        #expect(s.name == "DF2" && s.frameCount == 4 && s.height == 3 && s.width == 4 && s.sampleType == .int16)
        #expect(abs(try #require(s.pixelSizeXNm) - 0.3) < 1e-12)     // 300 pm, from the last .zattrs
        #expect(abs(try #require(s.pixelSizeYNm) - 0.2) < 1e-12)
        for k in 0..<4 {
            #expect(try r.plane(signal: 0, frame: k).doubleValues() == Self.expected(k), "frame \(k)")
            #expect(try r.metadata(signal: 0, frame: k).relativeTime_s == 0.5 * Double(k))
        }
        let t = try #require(try r.metadata(signal: 0, frame: 0).acquisitionTime)
        #expect(t.timeIntervalSince1970 == 1_704_164_645)             // 2024-01-02T03:04:05Z
    }

    @Test func zlibAndUncompressedChunks() throws {
        let dir = ScratchFolder("zspy")
        let zlibURL = dir.file("zlib.zspy"), rawURL = dir.file("raw.zspy")
        try Self.writeStack(zlibURL, compressor: #"{"id": "zlib", "level": 1}"#, encode: { b in
            var out = [UInt8](repeating: 0, count: b.count + 64)
            var n = uLongf(out.count)
            _ = compress2(&out, &n, b, uLong(b.count), 6)
            return Array(out.prefix(Int(n)))
        })
        try Self.writeStack(rawURL, compressor: "null", encode: { $0 })
        for url in [zlibURL, rawURL] {
            let r = try ZSpyReader(url: url)
            #expect(try r.plane(signal: 0, frame: 1).doubleValues() == Self.expected(1))
            #expect(try r.plane(signal: 0, frame: 3).doubleValues() == Self.expected(3))
        }
    }

    @Test func damagedChunkIsOneLineNamingTheChunk() throws {
        let dir = ScratchFolder("zspy")
        let url = dir.file("bad.zspy")
        try Self.writeStack(url, encode: { b in Array(Self.blosc(b, typeSize: 2).prefix(20)) })
        let r = try ZSpyReader(url: url)
        let e = #expect(throws: FrameIOError.self) { try r.plane(signal: 0, frame: 0) }
        #expect(e?.kind == .corrupt && e?.file == url.path)
        #expect(e?.detail.contains("data/0.0.0") == true, "\(String(describing: e))")
    }

    /// `.zarray` claiming 262,144 frames of 16k × 16k in a few-kB archive: refused at open.
    @Test func hugeDeclaredArrayIsRefusedAtOpen() throws {
        let dir = ScratchFolder("zspy")
        let url = dir.file("bomb.zspy")
        try Self.writeStack(url, shape: "[262144, 16384, 16384]")
        let e = #expect(throws: FrameIOError.self) { try ZSpyReader(url: url) }
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("far more than the") == true, "\(String(describing: e))")
    }

    @Test func notAZipOrNotZSpy() throws {
        let dir = ScratchFolder("zspy")
        let junk = dir.file("junk.zspy")
        try Data("not a zip at all".utf8).write(to: junk)
        let e = #expect(throws: FrameIOError.self) { try ZSpyReader(url: junk) }
        #expect(e?.file == junk.path)
        var z = ZipBuilder()
        z.add(".zgroup", json: #"{"zarr_format": 2}"#)
        let empty = dir.file("empty.zspy")
        try Data(z.bytes()).write(to: empty)
        let e2 = #expect(throws: FrameIOError.self) { try ZSpyReader(url: empty) }
        #expect(e2?.kind == .unsupported)
    }

    @Test(.enabled(if: Corpus.available, "../shared/corpus is not beside this checkout"))
    func corpusFile() throws {
        let r = try ZSpyReader(url: Corpus.root.appendingPathComponent("zspy/dmTest_3D_int16_64,65,66.zspy"))
        let s = r.signals[0]
        #expect(s.frameCount == 66 && s.height == 65 && s.width == 64)
        #expect(s.pixelSizeXNm == 0.002 && s.pixelSizeYNm == 3)       // x 2 pm, y 3 nm
    }
}
