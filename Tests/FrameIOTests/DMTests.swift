import Foundation
import Testing
import FrameCore
import FrameIO
import Synchronization

/// Test files written to a fresh temporary folder, removed afterwards.
final class ScratchFolder {
    let url: URL
    init(_ name: String = "dm") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    deinit { try? FileManager.default.removeItem(at: url) }
}

private func corpus(_ path: String) -> URL { Corpus.root.appendingPathComponent(path) }

private func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> Date {
    var c = DateComponents()
    c.year = y; c.month = mo; c.day = d; c.hour = h; c.minute = mi; c.second = s
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone(identifier: "UTC")!
    return cal.date(from: c)!
}

@Suite("DM3/DM4 reader and DM4 writer")
struct DMTests {
    /// DigitalMicrograph's 2×2 test images hold [[1, 2], [3, 4]]: row 0 is [1, 2] in every
    /// numeric type, which pins orientation, byte order and type mapping.
    @Test(.enabled(if: Corpus.available), arguments: [
        (1, SampleType.int16), (2, .float32), (6, .uint8), (7, .int32),
        (9, .int8), (10, .uint16), (11, .uint32), (12, .float64),
    ])
    func everyNumericTypeDecodesInOrientation(_ n: Int, _ type: SampleType) throws {
        for ext in ["dm3", "dm4"] {
            let r = try FrameFiles.open(corpus("\(ext)/2D/test-\(n).\(ext)"))
            #expect(r.format.rawValue == ext)
            try #require(r.signals.count == 1)
            #expect(r.signals[0].sampleType == type)
            let p = try r.plane(signal: 0, frame: 0)
            #expect(p.width == 2 && p.height == 2)
            #expect(p.doubleValues() == [1, 2, 3, 4])
            #expect(r.signals[0].pixelSizeXNm == nil)          // uncalibrated: scale 1, no unit
        }
    }

    @Test(.enabled(if: Corpus.available)) func stacksUseTheThirdDimensionAsFrames() throws {
        for path in ["dm3/3D/test-10.dm3", "dm4/3D/test-2.dm4"] {
            let r = try FrameFiles.open(corpus(path))
            #expect(r.signals[0].frameCount == 2)
            #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [1, 2, 3, 4])
            #expect(try r.plane(signal: 0, frame: 1).doubleValues() == [5, 6, 7, 8])
            #expect(throws: FrameIOError.self) { try r.plane(signal: 0, frame: 2) }
        }
    }

    /// Thumbnails are dropped and the 1-D plot keeps its number but is not listed.
    @Test(.enabled(if: Corpus.available)) func signalNumberingMatchesRosettaSciIO() throws {
        let r = try DMReader(url: corpus("dm3/multi_signal.dm3"))
        #expect(r.signals.map(\.index) == [0])
        #expect(r.signals[0].width == 512 && r.signals[0].height == 512)
        #expect(r.fileMetadata["ImageList.TagGroup0.ImageData.DataType"] != nil)
        #expect(r.fileMetadata["Thumbnails.TagGroup0.ImageIndex"] == "0")
    }

    /// Non-square, different units per axis: x 1 nm, y 2 Å; the 3-D file: x 2 pm, y 3 nm.
    @Test(.enabled(if: Corpus.available)) func calibrationPerAxisInNanometres() throws {
        let a = try DMReader(url: corpus("dm3/dmTest_float32_nonSquare_diffPixelSize.dm3"))
        #expect(a.signals[0].width == 128 && a.signals[0].height == 64)
        #expect(abs(a.signals[0].pixelSizeXNm! - 1.0) < 1e-9)
        #expect(abs(a.signals[0].pixelSizeYNm! - 0.2) < 1e-7)
        let b = try DMReader(url: corpus("dm4/dmTest_3D_int16_64,65,66.dm4"))
        #expect(abs(b.signals[0].pixelSizeXNm! - 0.002) < 1e-9)
        #expect(abs(b.signals[0].pixelSizeYNm! - 3.0) < 1e-6)
        let m = try b.metadata(signal: 0, frame: 0)
        #expect(m.pixelSizeNm == b.signals[0].pixelSizeXNm)
    }

    /// The UK-locale file writes "27/08/2016" "20:52:30" (BST); its locale-free
    /// `Acquisition Time (OS)` FILETIME is 19:52:30.05 UTC, which wins.
    @Test(.enabled(if: Corpus.available)) func acquisitionTimeAndDwellFromDataBar() throws {
        let r = try DMReader(url: corpus("dm3/Fei HAADF-UK_location.dm3"))
        let m = try r.metadata(signal: 0, frame: 0)
        let t = try #require(m.acquisitionTime)
        #expect(abs(t.timeIntervalSince(utc(2016, 8, 27, 19, 52, 30)) - 0.0526) < 1e-3)
        #expect(abs(m.dwellTime_s! - 1.4e-6) < 1e-12)
        #expect(abs(m.pixelSizeXNm! - 5.506073124706745) < 1e-5)
        let us = try DMReader(url: corpus("dm3/test_STEM_image.dm3")).metadata(signal: 0, frame: 0)
        // "8/8/2016" "4:26:37 PM" local; FILETIME 15:26:37.0008 UTC.
        #expect(abs(us.acquisitionTime!.timeIntervalSince(utc(2016, 8, 8, 15, 26, 37))) < 0.01)
    }

    @Test func localeDateTimeStrings() {
        #expect(DMReader.parseLocaleDateTime(date: "27/08/2016", time: "20:52:30") == utc(2016, 8, 27, 20, 52, 30))
        #expect(DMReader.parseLocaleDateTime(date: "5/17/2015", time: "5:00:16 PM") == utc(2015, 5, 17, 17, 0, 16))
        #expect(DMReader.parseLocaleDateTime(date: "12/10/2019", time: "3:32:41 PM") == utc(2019, 12, 10, 15, 32, 41))
        #expect(DMReader.parseLocaleDateTime(date: "12/10/2019", time: "12:05:00 AM") == utc(2019, 12, 10, 0, 5, 0))
        #expect(DMReader.parseLocaleDateTime(date: "03.04.2021", time: "09:15:00") == utc(2021, 4, 3, 9, 15, 0))
        #expect(DMReader.parseLocaleDateTime(date: "2021-04-03", time: "09:15:00") == utc(2021, 4, 3, 9, 15, 0))
        #expect(DMReader.parseLocaleDateTime(date: "yesterday", time: "noon") == nil)
        #expect(DMReader.parseLocaleDateTime(date: "1/2/2020", time: "10:10:1e300") == nil)
        #expect(DMReader.parseLocaleDateTime(date: "1/2/99999999", time: "10:10:10") == nil)
    }

    /// Round trip through the writer: exact pixels, nm calibration (float32), times.
    @Test func dm4WriterRoundTrip() throws {
        let dir = ScratchFolder()
        let t0 = utc(2024, 3, 9, 14, 7, 55).addingTimeInterval(0.25)
        let frames = (0..<3).map { k in
            Frame(image: Image(width: 37, height: 23) { x, y in Float(x + 100 * y + 5000 * k) },
                  metadata: FrameMetadata(pixelSizeXNm: 0.0123, pixelSizeYNm: 0.0123,
                                          acquisitionTime: t0.addingTimeInterval(Double(k) * 2.5), dwellTime_s: 2e-6))
        }
        for type in [SampleType.uint16, .float32] {
            let url = dir.file("stack-\(type).dm4")
            try DM4Writer.write(frames, as: type, to: url)
            let r = try FrameFiles.open(url)
            #expect(r.format == .dm4)
            try #require(r.signals.count == 1)
            let s = r.signals[0]
            #expect(s.index == 0 && s.width == 37 && s.height == 23 && s.frameCount == 3 && s.sampleType == type)
            #expect(abs(s.pixelSizeXNm! - 0.0123) < 1e-9 && abs(s.pixelSizeYNm! - 0.0123) < 1e-9)
            for k in 0..<3 {
                let f = try r.frame(signal: 0, frame: k)
                #expect(f.image.pixels == frames[k].image.pixels)
                let m = f.metadata
                #expect(abs(m.acquisitionTime!.timeIntervalSince(frames[k].metadata.acquisitionTime!)) < 1e-4)
                #expect(abs(m.relativeTime_s! - 2.5 * Double(k)) < 1e-6)
                #expect(abs(m.dwellTime_s! - 2e-6) < 1e-15)
            }
        }
        // Relative times only: the stack axis still carries the interval.
        let relative = (0..<4).map { k in Frame(image: Image(width: 4, height: 4), metadata: FrameMetadata(relativeTime_s: 0.5 * Double(k))) }
        try DM4Writer.write(relative, as: .float32, to: dir.file("rel.dm4"))
        let rel = try DMReader(url: dir.file("rel.dm4"))
        #expect(try rel.metadata(signal: 0, frame: 3).relativeTime_s == 1.5)
        #expect(try rel.metadata(signal: 0, frame: 3).acquisitionTime == nil)
        // One frame: a 2-D image; uint16 rounds and clamps.
        let odd = Frame(image: Image(width: 3, height: 1, pixels: [-5, 2.6, 70000]))
        let url = dir.file("single.dm4")
        try DM4Writer.write([odd], as: .uint16, to: url)
        let r = try DMReader(url: url)
        #expect(r.signals[0].frameCount == 1 && r.signals[0].pixelSizeXNm == nil)
        #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [0, 3, 65535])
        #expect(try r.metadata(signal: 0, frame: 0).acquisitionTime == nil)
        #expect(throws: FrameIOError.self) { try DM4Writer.write([odd], as: .int32, to: dir.file("x.dm4")) }
        #expect(throws: FrameIOError.self) {
            try DM4Writer.write([odd, Frame(image: Image(width: 2, height: 2))], as: .uint16, to: dir.file("y.dm4"))
        }
    }

    /// Readers are Sendable: frames decoded on several threads at once equal serial decodes.
    @Test func concurrentFrameReads() throws {
        let dir = ScratchFolder()
        let frames = (0..<16).map { k in Frame(image: Image(width: 64, height: 48) { x, y in Float(x * 3 + y * 7 + k * 11) }) }
        let url = dir.file("par.dm4")
        try DM4Writer.write(frames, as: .float32, to: url)
        let r = try DMReader(url: url)
        let results = Mutex<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: 16) { k in
            if let f = try? r.frame(signal: 0, frame: k) { results.withLock { $0[k] = f.image.pixels } }
        }
        let got = results.withLock { $0 }
        #expect(got.count == 16)
        for k in 0..<16 { #expect(got[k] == frames[k].image.pixels) }
    }

    /// 2048×2048 uint16 DM4 frames decode to the values written, each read three times
    /// (their speed: scripts/bench-decode.sh).
    @Test func decodesLargeFrames() throws {
        let dir = ScratchFolder()
        let n = 2048, frames = 3
        let base = Image(width: n, height: n) { x, y in Float((x &* 7 &+ y &* 13) & 0xFFFF) }
        let url = dir.file("big.dm4")
        try DM4Writer.write((0..<frames).map { _ in Frame(image: base) }, as: .uint16, to: url)
        let r = try DMReader(url: url)
        for _ in 0..<3 {
            for f in 0..<frames { #expect(try r.plane(signal: 0, frame: f).floatPixels() == base.pixels) }
        }
        guard case .uint16(let v) = try r.plane(signal: 0, frame: 2).values else { Issue.record("type"); return }
        #expect(v[5 + 9 * n] == UInt16((5 * 7 + 9 * 13) & 0xFFFF))
    }
}

/// Builds DM3/DM4 files tag by tag (Jefferis' layout), in either data byte order, for
/// encodings the corpus does not exercise: big-endian data, strings (18), structs (15),
/// arrays of structs and of arrays (20), 64-bit integers.
struct DMBuilder {
    indirect enum Node {
        case group([(String, Node)])
        /// A data tag: its info array and its value bytes (already in the data byte order).
        case data(info: [Int], payload: [UInt8])
    }

    var version = 3
    var littleEndian = true

    func value<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: littleEndian ? v.littleEndian : v.bigEndian) { Array($0) }
    }
    func f32(_ v: Float) -> [UInt8] { value(v.bitPattern) }
    func f64(_ v: Double) -> [UInt8] { value(v.bitPattern) }
    func text(_ s: String) -> Node { .data(info: [20, 4, s.utf16.count], payload: s.utf16.flatMap { value($0) }) }
    func int32(_ v: Int32) -> Node { .data(info: [3], payload: value(v)) }
    func uint32(_ v: UInt32) -> Node { .data(info: [5], payload: value(v)) }
    func float32(_ v: Float) -> Node { .data(info: [6], payload: f32(v)) }

    func bytes(_ root: [(String, Node)]) -> [UInt8] {
        var out: [UInt8] = []
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        func len(_ v: Int) { if version == 4 { be(UInt64(v)) } else { be(UInt32(v)) } }
        func body(_ tags: [(String, Node)]) {
            out += [1, 0]; len(tags.count)
            for (name, node) in tags {
                switch node {
                case .group(let g):
                    out.append(20); be(UInt16(name.utf8.count)); out += Array(name.utf8)
                    if version == 4 { be(UInt64(0)) }        // tag length: not needed to read
                    body(g)
                case .data(let info, let payload):
                    out.append(21); be(UInt16(name.utf8.count)); out += Array(name.utf8)
                    if version == 4 { be(UInt64(0)) }
                    out += Array("%%%%".utf8); len(info.count)
                    for i in info { len(i) }
                    out += payload
                }
            }
        }
        be(UInt32(version)); len(0); be(UInt32(littleEndian ? 1 : 0))
        body(root)
        out += [UInt8](repeating: 0, count: 8)
        return out
    }
}

@Suite("DM tag encodings")
struct DMEncodingTests {
    @Test(arguments: [(3, true), (3, false), (4, true), (4, false)])
    func everyEncodingInBothByteOrders(_ version: Int, _ little: Bool) throws {
        let b = DMBuilder(version: version, littleEndian: little)
        let pixels: [UInt8] = (1...6).flatMap { b.value(Int16($0 * 100 - 300)) }
        let image: DMBuilder.Node = .group([
            ("ImageData", .group([
                ("Calibrations", .group([("Dimension", .group([
                    ("", .group([("Scale", b.float32(0.5)), ("Units", b.text("Å"))])),
                    ("", .group([("Scale", b.float32(2)), ("Units", b.text("pm"))])),
                ]))])),
                ("Data", .data(info: [20, 2, 6], payload: pixels)),
                ("DataType", b.int32(1)),
                ("Dimensions", .group([("", b.uint32(3)), ("", b.uint32(2))])),
            ])),
            ("ImageTags", .group([("DataBar", .group([
                ("Acquisition Date", b.text("13/11/2017")), ("Acquisition Time", b.text("14:30:04")),
            ]))])),
        ])
        let misc: DMBuilder.Node = .group([
            ("Struct", .data(info: [15, 0, 3, 0, 2, 0, 7, 0, 8], payload: b.value(Int16(-3)) + b.f64(2.5) + [1])),
            ("String18", .data(info: [18, 5], payload: Array("hello".utf8))),
            ("ArrayOfStructs", .data(info: [20, 15, 0, 2, 0, 3, 0, 6, 2],
                                     payload: b.value(Int32(1)) + b.f32(1.5) + b.value(Int32(2)) + b.f32(2.5))),
            ("ArrayOfArrays", .data(info: [20, 20, 10, 3, 2], payload: [1, 2, 3, 4, 5, 6])),
            ("Int64", .data(info: [11], payload: b.value(Int64(-5_000_000_000)))),
            ("UInt64", .data(info: [12], payload: b.value(UInt64.max))),
            ("Int8", .data(info: [9], payload: [0xFE])),
            ("Bytes", .data(info: [20, 10, 4], payload: [9, 8, 7, 6])),
            ("After", b.int32(42)),
        ])
        let dir = ScratchFolder("enc")
        let url = dir.file("enc.dm\(version)")
        try Data(b.bytes([("ImageList", .group([("", image)])), ("Misc", misc)])).write(to: url)
        let r = try DMReader(url: url)
        #expect(r.format == (version == 4 ? .dm4 : .dm3))
        try #require(r.signals.count == 1)
        let s = r.signals[0]
        #expect(s.width == 3 && s.height == 2 && s.sampleType == .int16)
        #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [-200, -100, 0, 100, 200, 300])
        #expect(abs(s.pixelSizeXNm! - 0.05) < 1e-9 && abs(s.pixelSizeYNm! - 0.002) < 1e-9)
        #expect(try r.metadata(signal: 0, frame: 0).acquisitionTime == DMReader.parseLocaleDateTime(date: "13/11/2017", time: "14:30:04"))
        let md = r.fileMetadata
        #expect(md["Misc.Struct"] == "(-3.0, 2.5, 1.0)")
        #expect(md["Misc.String18"] == "hello")
        #expect(md["Misc.Int64"] == "-5000000000")
        #expect(md["Misc.UInt64"] == String(Double(UInt64.max)))
        #expect(md["Misc.Int8"] == "-2")
        #expect(md["Misc.Bytes"] == "[9.0, 8.0, 7.0, 6.0]")
        #expect(md["Misc.After"] == "42")                  // every size before it was right
        #expect(md["ImageList.TagGroup0.ImageTags.DataBar.Acquisition Date"] == "13/11/2017")
    }
}
