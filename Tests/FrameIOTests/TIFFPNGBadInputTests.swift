import Foundation
import Testing
import FrameCore
import FrameIO

/// Hostile and damaged TIFF and PNG files: each must give a `FrameIOError` of the right
/// kind naming the file, before any allocation bigger than the file justifies.
@Suite struct TIFFPNGBadInputTests {
    /// A little-endian classic TIFF with one IFD at byte 8 and `pixelBytes` after it.
    /// Entries are (tag, type, value) with SHORT (3) / LONG (4) values stored inline;
    /// StripOffsets (273) is filled in to point at the pixel bytes unless given.
    static func handTIFF(_ entries: [(UInt16, UInt16, UInt32)], pixelBytes: [UInt8] = [UInt8](repeating: 1, count: 64),
                         stripOffset: UInt32? = nil) -> [UInt8] {
        var all = entries
        let ifdSize = 2 + 12 * (all.count + (entries.contains { $0.0 == 273 } ? 0 : 1)) + 4
        let dataAt = UInt32(8 + ifdSize)
        if !entries.contains(where: { $0.0 == 273 }) { all.append((273, 4, stripOffset ?? dataAt)) }
        all.sort { $0.0 < $1.0 }
        var b: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
        func u16(_ v: UInt16) { b += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) { for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
        u16(UInt16(all.count))
        for (tag, type, value) in all {
            u16(tag); u16(type); u32(1)
            if type == 3 { u16(UInt16(value)); u16(0) } else { u32(value) }
        }
        u32(0)
        return b + pixelBytes
    }

    static func expectError(_ kind: FrameIOError.Kind, _ url: URL, _ open: (URL) throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        expectError([kind], url, open, sourceLocation: sourceLocation)
    }

    static func expectError(_ kinds: Set<FrameIOError.Kind>, _ url: URL, _ open: (URL) throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try open(url)
            Issue.record("\(url.lastPathComponent) opened without error", sourceLocation: sourceLocation)
        } catch let e as FrameIOError {
            #expect(kinds.contains(e.kind), "\(e)", sourceLocation: sourceLocation)
            #expect(e.description.contains(url.lastPathComponent), "\(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a FrameIOError: \(error)", sourceLocation: sourceLocation)
        }
    }

    static func tiff(_ url: URL) throws { let r = try TIFFReader(url: url); _ = try r.plane(signal: 0, frame: 0) }
    static func png(_ url: URL) throws { let r = try PNGReader(url: url); _ = try r.plane(signal: 0, frame: 0) }

    // MARK: TIFF

    @Test func tiffZeroBytes() throws {
        let dir = TPScratch(), url = dir.file("empty.tif")
        try Data().write(to: url)
        Self.expectError(.truncated, url, Self.tiff)
    }

    @Test func tiffWrongMagic() throws {
        let dir = TPScratch(), url = dir.file("notatiff.tif")
        try Data("GIF89a and then some more bytes".utf8).write(to: url)
        Self.expectError(.badMagic, url, Self.tiff)
        let url2 = dir.file("badversion.tif")
        try Data([0x49, 0x49, 41, 0, 8, 0, 0, 0, 0, 0]).write(to: url2)
        Self.expectError(.badMagic, url2, Self.tiff)
    }

    @Test func tiffTruncated() throws {
        let dir = TPScratch()
        // Written by TIFFWriter (directory after the pixels), then cut in half: no directory left.
        let whole = dir.file("whole.tif"), cut = dir.file("cut.tif")
        try TIFFWriter.write([Frame(image: Image(width: 64, height: 64, fill: 3))], as: .uint16, to: whole)
        let data = try Data(contentsOf: whole)
        try data.prefix(data.count / 2).write(to: cut)
        Self.expectError(.truncated, cut, Self.tiff)
        // Directory first (as Zeiss and ImageJ write), pixel data cut short.
        let short = dir.file("shortstrip.tif")
        try Data(Self.handTIFF([(256, 3, 32), (257, 3, 32), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                                (278, 3, 32), (279, 4, 1024)], pixelBytes: [UInt8](repeating: 5, count: 100))).write(to: short)
        Self.expectError(.truncated, short, Self.tiff)
        // Shorter than a header.
        let tiny = dir.file("tiny.tif")
        try Data([0x49, 0x49, 42]).write(to: tiny)
        Self.expectError(.truncated, tiny, Self.tiff)
    }

    /// One strip offset for a 32-row image in strips of 8 rows: libtiff fills the missing
    /// offsets with 0 and would read the header as pixels; an error instead.
    @Test func tiffStripsMissingRows() throws {
        let dir = TPScratch(), url = dir.file("fewstrips.tif")
        try Data(Self.handTIFF([(256, 3, 32), (257, 3, 32), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                                (278, 3, 8), (279, 4, 256)], pixelBytes: [UInt8](repeating: 5, count: 256))).write(to: url)
        Self.expectError([.corrupt, .truncated], url, Self.tiff)
    }

    @Test func tiffAbsurdSize() throws {
        let dir = TPScratch()
        // 10⁶ × 10⁶ uint8 claimed by a ~1 kB file: refused before allocating a terabyte.
        let huge = dir.file("huge.tif")
        try Data(Self.handTIFF([(256, 4, 1_000_000), (257, 4, 1_000_000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                                (278, 4, 1_000_000), (279, 4, 900)], pixelBytes: [UInt8](repeating: 0, count: 900))).write(to: huge)
        Self.expectError(.corrupt, huge, Self.tiff)
        // The same with LZW: a 900-byte strip cannot expand to 10¹² bytes.
        let lzw = dir.file("huge-lzw.tif")
        try Data(Self.handTIFF([(256, 4, 1_000_000), (257, 4, 1_000_000), (258, 3, 8), (259, 3, 5), (262, 3, 1),
                                (278, 4, 1_000_000), (279, 4, 900)], pixelBytes: [UInt8](repeating: 0, count: 900))).write(to: lzw)
        Self.expectError(.corrupt, lzw, Self.tiff)
    }

    @Test func tiffUnsupportedSamples() throws {
        let dir = TPScratch()
        // Photometric CIELab (8) greyscale-sized samples: not an intensity image.
        let lab = dir.file("lab.tif")
        try Data(Self.handTIFF([(256, 3, 8), (257, 3, 8), (258, 3, 8), (259, 3, 1), (262, 3, 8),
                                (278, 3, 8), (279, 4, 64)])).write(to: lab)
        Self.expectError(.unsupported, lab, Self.tiff)
        // Complex integer samples (SampleFormat 5).
        let complex = dir.file("complex.tif")
        try Data(Self.handTIFF([(256, 3, 4), (257, 3, 4), (258, 3, 32), (259, 3, 1), (262, 3, 1),
                                (278, 3, 4), (279, 4, 64), (339, 3, 5)])).write(to: complex)
        Self.expectError(.unsupported, complex, Self.tiff)
        // 16-bit floats are read (as tifffile does), widened exactly.
        let half = dir.file("half.tif")
        try Data(Self.handTIFF([(256, 3, 8), (257, 3, 4), (258, 3, 16), (259, 3, 1), (262, 3, 1),
                                (278, 3, 4), (279, 4, 64), (339, 3, 3)])).write(to: half)
        #expect(try TIFFReader(url: half).signals.first?.sampleType == .float16)
        // JPEG-compressed greyscale when libtiff has no JPEG codec, or OJPEG: either way not
        // readable here (compression 6, old-style JPEG, is never supported for data).
        let ojpeg = dir.file("ojpeg.tif")
        try Data(Self.handTIFF([(256, 3, 8), (257, 3, 8), (258, 3, 8), (259, 3, 6), (262, 3, 1),
                                (278, 3, 8), (279, 4, 64)])).write(to: ojpeg)
        Self.expectError([.unsupported, .corrupt], ojpeg, Self.tiff)
    }

    @Test func tiffGarbageDirectory() throws {
        let dir = TPScratch(), url = dir.file("garbage.tif")
        var b: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
        b += [0xFF, 0xFF] + [UInt8](repeating: 0xAB, count: 200)   // 65535 entries claimed, 200 bytes present
        try Data(b).write(to: url)
        Self.expectError([.corrupt, .truncated], url, Self.tiff)
    }

    /// A directory whose "next" pointer points back to itself must not loop forever.
    @Test func tiffDirectoryLoop() throws {
        let dir = TPScratch(), url = dir.file("loop.tif")
        var b = Self.handTIFF([(256, 3, 8), (257, 3, 8), (258, 3, 8), (259, 3, 1), (262, 3, 1), (278, 3, 8), (279, 4, 64)])
        let entries = Int(b[8]) | Int(b[9]) << 8
        let next = 10 + 12 * entries
        b[next] = 8; b[next + 1] = 0; b[next + 2] = 0; b[next + 3] = 0
        try Data(b).write(to: url)
        do {
            let r = try TIFFReader(url: url)
            #expect(r.signals.count == 1 && r.signals[0].frameCount == 1)
            #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [Double](repeating: 1, count: 64))
        } catch let e as FrameIOError {
            #expect(e.kind == .corrupt && e.description.contains("loop.tif"), "\(e)")
        }
    }

    // MARK: PNG

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        let n = UInt32(data.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + t + data
            + withUnsafeBytes(of: PNGResolution.chunkCRC(t + data).bigEndian, Array.init)
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    @Test func pngZeroBytes() throws {
        let dir = TPScratch(), url = dir.file("empty.png")
        try Data().write(to: url)
        Self.expectError(.truncated, url, Self.png)
    }

    @Test func pngWrongMagic() throws {
        let dir = TPScratch(), url = dir.file("fake.png")
        try Data("II*\0 this is a TIFF header, not a PNG".utf8).write(to: url)
        Self.expectError(.badMagic, url, Self.png)
    }

    @Test func pngTruncated() throws {
        let dir = TPScratch(), whole = dir.file("whole.png"), cut = dir.file("cut.png")
        let img = Image(width: 64, height: 64) { x, y in Float((x * 977 + y * 131) % 65536) }
        try PNGWriter.writeGray(Frame(image: img), bitDepth: 16, to: whole)
        let data = try Data(contentsOf: whole)
        try data.prefix(data.count / 2).write(to: cut)
        Self.expectError(.truncated, cut, Self.png)
    }

    @Test func pngAbsurdSize() throws {
        let dir = TPScratch(), url = dir.file("huge.png")
        // IHDR: 10⁶ × 10⁶, 16-bit grey, then a tiny IDAT: 2 TB claimed by ~60 bytes.
        var ihdr: [UInt8] = []
        for v in [UInt32(1_000_000), UInt32(1_000_000)] { ihdr += withUnsafeBytes(of: v.bigEndian, Array.init) }
        ihdr += [16, 0, 0, 0, 0]
        let file = Self.signature + Self.chunk("IHDR", ihdr) + Self.chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
            + Self.chunk("IEND", [])
        try Data(file).write(to: url)
        Self.expectError(.corrupt, url, Self.png)
    }

    @Test func pngBadCRC() throws {
        let dir = TPScratch(), whole = dir.file("ok.png"), bad = dir.file("badcrc.png")
        try PNGWriter.writeGray(Frame(image: Image(width: 8, height: 8, fill: 9)), bitDepth: 8, to: whole)
        var data = [UInt8](try Data(contentsOf: whole))
        data[16] ^= 0x01   // IHDR width byte: CRC no longer matches
        try Data(data).write(to: bad)
        Self.expectError(.corrupt, bad, Self.png)
    }

    /// A 4×1 8-bit grey PNG by hand (row filter "none", one stored deflate block), so a test
    /// can place chunks and damage the stream at will.
    static func handPNG(pixels: [UInt8] = [10, 20, 30, 40], textAfterImage: Bool = false, damageStream: Bool = false) -> [UInt8] {
        var ihdr: [UInt8] = []
        for v in [UInt32(pixels.count), UInt32(1)] { ihdr += withUnsafeBytes(of: v.bigEndian, Array.init) }
        ihdr += [8, 0, 0, 0, 0]
        let raw: [UInt8] = [0] + pixels   // filter byte + row
        var adler = (a: UInt32(1), b: UInt32(0))
        for v in raw { adler.a = (adler.a + UInt32(v)) % 65521; adler.b = (adler.b + adler.a) % 65521 }
        let n = UInt16(raw.count)
        // zlib header, one final stored block (BTYPE 00), the bytes, Adler-32.
        var z: [UInt8] = [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + raw
        z += withUnsafeBytes(of: ((adler.b << 16) | adler.a).bigEndian, Array.init)
        if damageStream { z[3] ^= 0xFF }   // LEN no longer matches NLEN; the chunk's CRC is still right
        let text = chunk("tEXt", Array("Comment".utf8) + [0] + Array("after the pixels".utf8))
        return signature + chunk("IHDR", ihdr) + chunk("IDAT", z) + (textAfterImage ? text : []) + chunk("IEND", [])
    }

    @Test func pngTextAfterTheImageDataIsRead() throws {
        let dir = TPScratch(), url = dir.file("late-text.png")
        try Data(Self.handPNG(textAfterImage: true)).write(to: url)
        let r = try PNGReader(url: url)
        #expect(r.fileMetadata["png.Comment"] == "after the pixels")
        #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [10, 20, 30, 40])
    }

    /// Sound chunks around a broken deflate stream: the header opens (a scan sees the
    /// frame), and the pixels fail with a clear error when they are first needed.
    @Test func pngBrokenStreamFailsWhenThePixelsAreRead() throws {
        let dir = TPScratch(), url = dir.file("bad-stream.png")
        try Data(Self.handPNG()).write(to: url)
        #expect(try PNGReader(url: url).plane(signal: 0, frame: 0).doubleValues() == [10, 20, 30, 40])
        try Data(Self.handPNG(damageStream: true)).write(to: url)
        let r = try PNGReader(url: url)
        #expect(r.signals[0].width == 4 && r.signals[0].height == 1)
        Self.expectError(.corrupt, url, { _ in _ = try r.plane(signal: 0, frame: 0) })
    }
}
