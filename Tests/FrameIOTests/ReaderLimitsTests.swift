import Foundation
import Testing
import CHDF5
import CTIFF
import CPNG
import FrameIO
#if canImport(Glibc)
import Glibc
#endif

/// Claims a file cannot back: each must be refused at open with one line naming the file,
/// without allocating what the claim says.
@Suite struct ReaderLimitsTests {
    /// The process's peak resident set so far, bytes.
    static func peakRSS() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss * 1024
    }

    static func chunk(_ type: String, _ data: [UInt8], claimedLength: UInt32? = nil) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let body = Array(type.utf8) + data
        let crc = UInt32(body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
        return be(claimedLength ?? UInt32(data.count)) + body + be(crc)
    }

    /// A 3.6 KB PNG whose text chunk claims 0x7FFFFFFF bytes. libpng allocates and zero-fills
    /// a text chunk's claimed length before reading it (2 GB of resident memory); the chunk
    /// structure is now checked first.
    @Test func pngTextChunkClaimingTwoGigabytes() throws {
        let dir = ScratchFolder("limits")
        let url = dir.file("bomb.png")
        var ihdr: [UInt8] = [0, 0, 0, 16, 0, 0, 0, 16, 8, 0, 0, 0, 0]
        ihdr.reserveCapacity(13)
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Self.chunk("IHDR", ihdr)
            + Self.chunk("tEXt", Array("Comment\0".utf8) + [UInt8](repeating: 0x78, count: 3500), claimedLength: 0x7FFF_FFFF)
            + Self.chunk("IEND", [])
        try Data(png).write(to: url)
        let before = Self.peakRSS()
        let e = #expect(throws: FrameIOError.self) { try PNGReader(url: url) }
        #expect(e?.kind == .corrupt && e?.file == url.path)
        #expect(e?.detail.contains("claims 2147483647 bytes") == true, "\(String(describing: e))")
        #expect(Self.peakRSS() - before < 1 << 30, "peak RSS grew by \((Self.peakRSS() - before) >> 20) MB")
    }

    /// A sparse MRC claiming 16×16×(2³¹−1) pages, its length matching (512 GiB apparent,
    /// 4 KB on disk): the page count is over the cap, so nothing is sized by it.
    @Test func sparseMRCClaimingTwoBillionPages() throws {
        let dir = ScratchFolder("limits")
        let url = dir.file("bomb.mrc")
        var h = [UInt8](repeating: 0, count: 1024)
        func put(_ v: Int32, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { h[at + i] = $0[i] } } }
        put(16, 0); put(16, 4); put(Int32.max, 8); put(0, 12); put(16, 28); put(16, 32); put(1, 36)
        h[208] = 0x4D; h[209] = 0x41; h[210] = 0x50; h[211] = 0x20; h[212] = 0x44; h[213] = 0x44
        try Data(h).write(to: url)
        let fh = try FileHandle(forWritingTo: url)
        try fh.truncate(atOffset: 1024 + 256 * UInt64(Int32.max))
        try fh.close()
        let e = #expect(throws: FrameIOError.self) { try MRCReader(url: url) }
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("claims 2147483647 frames") == true, "\(String(describing: e))")
        #expect(FrameLimits.maxFrames == 262_144)
    }

    /// A Velox EMD whose compressed dataset declares 16 frames of 16,384² float32 (16 GiB), one
    /// chunk written: before, a frame (1 GiB) was allocated on reading; now refused at open.
    @Test func veloxCompressedDatasetDeclaringGigabytes() throws {
        let dir = ScratchFolder("limits")
        let url = dir.file("bomb.emd")
        do {
            let w = try HDF5Writer(url)
            defer { w.close() }
            w.group("/Data/Image/aa")
            w.dataset("/Data/Image/aa/Data", dims: [16_384, 16_384, 16], type: chdf5_ieee_f32le(), values: [1],
                      chunks: [64, 64, 1], gzip: true)
        }
        let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(e?.kind == .corrupt && e?.file == url.path)
        #expect(e?.detail.contains("far more than the") == true, "\(String(describing: e))")
    }

    @Test func fifoIsRefusedWithoutBlocking() throws {
        let dir = ScratchFolder("limits")
        for ext in ["png", "tif", "mrc", "dm4", "emd", "hspy", "zspy", "ser"] {
            let url = dir.file("pipe.\(ext)")
            #expect(mkfifo(url.path, 0o600) == 0)
            let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
            #expect(e?.kind == .io, "\(ext)")
            #expect(e?.detail.contains("not a regular file") == true, "\(ext): \(String(describing: e))")
        }
    }
}

/// TIFF 6.0 resolution tags as the calibration of files no vendor block describes.
@Suite struct TIFFResolutionTests {
    static func write(_ url: URL, xRes: Double?, unit: UInt16?, dmScale: Double? = nil) throws {
        let t = try #require(TIFFOpen(url.path, "w"))
        defer { TIFFClose(t) }
        if dmScale != nil { _ = ctiff_register_dm_tags(t) }
        _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), 4)
        _ = ctiff_set_u32(t, UInt32(TIFFTAG_IMAGELENGTH), 2)
        _ = ctiff_set_u16(t, UInt32(TIFFTAG_BITSPERSAMPLE), 8)
        _ = ctiff_set_u16(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
        _ = ctiff_set_u16(t, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK))
        _ = ctiff_set_u32(t, UInt32(TIFFTAG_ROWSPERSTRIP), 2)
        if let xRes {
            _ = ctiff_set_double(t, UInt32(TIFFTAG_XRESOLUTION), xRes)
            _ = ctiff_set_double(t, UInt32(TIFFTAG_YRESOLUTION), xRes)
        }
        if let unit { _ = ctiff_set_u16(t, UInt32(TIFFTAG_RESOLUTIONUNIT), unit) }
        if let s = dmScale {
            _ = ctiff_set_double(t, 65009, s)
            _ = ctiff_set_double(t, 65010, s)
            _ = ctiff_set_string(t, 65003, "")      // an uncalibrated DM image says no unit
        }
        var row: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        #expect(TIFFWriteEncodedStrip(t, 0, &row, 8) == 8)
    }

    @Test(arguments: [
        (2e6, UInt16(3), 5.0 as Double?),          // 2,000,000 pixels per cm: 5 nm
        (25_400, UInt16(2), 1000),                  // 25,400 per inch: 1 µm
        (150, nil, 169_333.333),                    // no unit tag: inch, the TIFF default
        (1, UInt16(1), nil),                        // unit none: an aspect ratio only
        (72, UInt16(2), nil),                       // screen defaults, not a calibration
        (96, UInt16(2), nil),
    ] as [(Double, UInt16?, Double?)])
    func resolutionTags(_ xRes: Double, _ unit: UInt16?, _ nm: Double?) throws {
        let dir = ScratchFolder("tiffres")
        let url = dir.file("r.tif")
        try Self.write(url, xRes: xRes, unit: unit)
        let got = try TIFFReader(url: url).signals[0].pixelSizeXNm
        if let nm { #expect(abs(try #require(got) - nm) < 1e-6 * nm) } else { #expect(got == nil) }
    }

    /// A DigitalMicrograph export says 300 per inch in its resolution tags and no unit in its
    /// own: uncalibrated, not 84.7 µm.
    @Test func vendorBlockWinsOverResolutionTags() throws {
        let dir = ScratchFolder("tiffres")
        let url = dir.file("dm.tif")
        try Self.write(url, xRes: 300, unit: 2, dmScale: 1)
        #expect(try TIFFReader(url: url).signals[0].pixelSizeXNm == nil)
    }
}

/// Choosing one detector's signal in a multi-signal file by name.
@Suite struct SignalSelectionTests {
    static func multiDetector() throws -> URL {
        let url = VeloxFixture.temporaryURL("detectors.emd")
        func stem(_ uuid: String, _ detector: String, _ index: Int) -> VeloxFixture.Signal {
            VeloxFixture.Signal(uuid: uuid, height: 3, width: 2, frames: 1, type: chdf5_std_u16le(),
                                value: { _, r, c in Double(10 * index + 2 * r + c) },
                                metadata: { _ in VeloxFixture.veloxJSON(detector: detector, detectorIndex: index,
                                                                        pixelSizeM: 1e-10, start: 1_600_000_000) })
        }
        try VeloxFixture.write(url, signals: [stem("a1", "HAADF", 0), stem("b2", "DF2", 1), stem("c3", "ABF", 2), stem("d4", "iDPC", 3)])
        return url
    }

    @Test func namesMatchCaseInsensitivelyAndBecomeThePrimarySignal() throws {
        let url = try Self.multiDetector()
        defer { try? FileManager.default.removeItem(at: url) }
        let plain = try FrameFiles.open(url)
        #expect(plain.signals.map(\.name) == ["HAADF", "DF2", "ABF", "iDPC"])
        #expect(plain.primarySignal == 0)
        #expect(try plain.signalIndex(named: "df2") == 1)
        #expect(try plain.signalIndex(named: "IDPC") == 3)
        #expect(try plain.signalIndex(named: "2") == 2)            // the file's own numbering
        let abf = try plain.signalIndex(named: "ABF")
        #expect(abf == 2)
        #expect(try plain.plane(signal: abf, frame: 0).doubleValues() == [20, 21, 22, 23, 24, 25])
    }

    @Test func absentNameListsTheFilesSignals() throws {
        let url = try Self.multiDetector()
        defer { try? FileManager.default.removeItem(at: url) }
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url).signalIndex(named: "BF") }
        #expect(e?.kind == .unsupported && e?.file == url.path)
        #expect(e?.detail == "no signal named 'BF'; this file has HAADF (signal 0), DF2 (signal 1), ABF (signal 2), iDPC (signal 3)")
    }
}
