import Foundation
import Testing
import FrameIO

/// Builds a TIA SER file of 2-D elements in memory (Boothroyd's layout), for ground truth
/// the corpus cannot give: every data type, both offset widths, known row order.
struct SERBuilder {
    var version: UInt16 = 0x0210
    var dataType: UInt16 = 2
    var width = 3, height = 2
    var deltaMetres = 2.5e-10
    /// Element pixel values in file order (bottom row first), one array per element.
    var elements: [[Double]] = [[1, 2, 3, 4, 5, 6]]
    var times: [UInt32] = [1_700_000_000]

    func bytes() -> [UInt8] {
        var b: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        func f64(_ v: Double) { le(v.bitPattern) }
        let wide = version == 0x0220
        let n = elements.count
        le(UInt16(0x4949)); le(UInt16(0x0197)); le(version)
        le(UInt32(0x4122)); le(UInt32(0x4152)); le(UInt32(n)); le(UInt32(n))
        let offsetArrayAt = b.count
        if wide { le(UInt64(0)) } else { le(UInt32(0)) }
        le(UInt32(1))                                  // one dimension: the series
        le(UInt32(n)); f64(0); f64(1); le(UInt32(0))
        let desc = Array("Number".utf8); le(UInt32(desc.count)); b += desc
        le(UInt32(0))
        var dataOffsets: [Int] = [], tagOffsets: [Int] = []
        for values in elements {
            dataOffsets.append(b.count)
            f64(0); f64(deltaMetres); le(UInt32(0)); f64(0); f64(deltaMetres); le(UInt32(0))
            le(dataType); le(UInt32(width)); le(UInt32(height))
            for v in values {
                switch dataType {
                case 1: le(UInt8(v))
                case 2: le(UInt16(v))
                case 3: le(UInt32(v))
                case 4: le(Int8(v))
                case 5: le(Int16(v))
                case 6: le(Int32(v))
                case 7: le(Float(v).bitPattern)
                default: f64(v)
                }
            }
        }
        for t in times { tagOffsets.append(b.count); le(UInt16(0x4152)); le(UInt16(0)); le(t) }
        let arrays = b.count
        for o in dataOffsets + tagOffsets { if wide { le(UInt64(o)) } else { le(UInt32(o)) } }
        // Patch the offset-array offset.
        var patch: [UInt8] = []
        if wide { withUnsafeBytes(of: UInt64(arrays).littleEndian) { patch += $0 } }
        else { withUnsafeBytes(of: UInt32(arrays).littleEndian) { patch += $0 } }
        b.replaceSubrange(offsetArrayAt..<(offsetArrayAt + patch.count), with: patch)
        return b
    }

    func write(to url: URL) throws { try Data(bytes()).write(to: url) }
}

@Suite("TIA SER/EMI reader")
struct SERTests {
    /// Every SER data type in both versions; rows come out top row first (the file stores
    /// the bottom row first), and calibration metres → nm.
    @Test(arguments: [(UInt16(1), "uint8"), (2, "uint16"), (3, "uint32"), (4, "int8"),
                      (5, "int16"), (6, "int32"), (7, "float32"), (8, "float64")])
    func dataTypesVersionsAndRowOrder(_ code: UInt16, _ type: String) throws {
        let dir = ScratchFolder("ser")
        for version: UInt16 in [0x0210, 0x0220] {
            var s = SERBuilder()
            s.version = version
            s.dataType = code
            s.elements = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]
            s.times = [1_700_000_000, 1_700_000_003]
            let url = dir.file("t\(code)-\(version)_1.ser")
            try s.write(to: url)
            let r = try SERReader(url: url)
            try #require(r.signals.count == 1)
            #expect(r.signals[0].sampleType.rawValue == type)
            #expect(r.signals[0].frameCount == 2 && r.signals[0].width == 3 && r.signals[0].height == 2)
            #expect(try r.plane(signal: 0, frame: 0).doubleValues() == [4, 5, 6, 1, 2, 3])
            #expect(try r.plane(signal: 0, frame: 1).doubleValues() == [10, 11, 12, 7, 8, 9])
            #expect(abs(r.signals[0].pixelSizeXNm! - 0.25) < 1e-12)
            let m = try r.metadata(signal: 0, frame: 1)
            #expect(m.acquisitionTime == Date(timeIntervalSince1970: 1_700_000_003))
            #expect(m.relativeTime_s == 3)
        }
    }

    @Test(.enabled(if: Corpus.available)) func seriesAndTimeTagsFromTIA() throws {
        let r = try SERReader(url: Corpus.root.appendingPathComponent("ser/64x64x5_TEM_preview_1.ser"))
        #expect(r.signals[0].frameCount == 5)
        #expect(r.fileMetadata["SeriesVersion"] == "0x0210")
        for f in 0..<5 {
            #expect(try r.metadata(signal: 0, frame: f).acquisitionTime == Date(timeIntervalSince1970: 1_456_073_345))
        }
        let wide = try SERReader(url: Corpus.root.appendingPathComponent("ser/128x128-TEM_search_1.ser"))
        #expect(wide.fileMetadata["SeriesVersion"] == "0x0220")
        #expect(try wide.metadata(signal: 0, frame: 0).acquisitionTime == Date(timeIntervalSince1970: 1_456_167_001))
    }

    /// The .emi lists its two detectors' series as signals 0 and 1 and carries the XML.
    @Test(.enabled(if: Corpus.available)) func emiListsItsSeriesFiles() throws {
        let r = try EMIReader(url: Corpus.root.appendingPathComponent("ser/16x16_STEM_BF_DF_acquire.emi"))
        #expect(r.signals.map(\.index) == [0, 1])
        #expect(r.seriesURLs.map(\.lastPathComponent) == ["16x16_STEM_BF_DF_acquire_1.ser", "16x16_STEM_BF_DF_acquire_2.ser"])
        #expect(r.fileMetadata["ObjectInfo.ExperimentalDescription.High tension_kV"] == "200")
        #expect(r.fileMetadata["ObjectInfo.AcquireDate"] == "Sun Feb 21 17:53:06 2016")
        let m = try r.metadata(signal: 1, frame: 0)
        #expect(m.dwellTime_s == 4.8e-5)                            // STEM, no camera: dwell
        #expect(m.acquisitionTime == Date(timeIntervalSince1970: 1_456_073_586))
        #expect(abs(m.pixelSizeXNm! - 21.510044070327744) < 1e-9)
        let camera = try EMIReader(url: Corpus.root.appendingPathComponent("ser/64x64x5_TEM_preview.emi"))
        #expect(try camera.metadata(signal: 0, frame: 0).dwellTime_s == nil)   // a camera exposure, not a dwell
    }

    @Test func acquireDateText() {
        #expect(EMIReader.parseAcquireDate("Sun Feb 21 17:53:06 2016") == Date(timeIntervalSince1970: 1_456_077_186))
        #expect(EMIReader.parseAcquireDate("Mon Feb  1 08:00:00 2016") == Date(timeIntervalSince1970: 1_454_313_600))
        #expect(EMIReader.parseAcquireDate("garbage") == nil)
    }
}
