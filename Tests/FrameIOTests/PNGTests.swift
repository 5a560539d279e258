import Foundation
import Testing
import CPNG
import FrameCore
import FrameIO

@Suite struct PNGTests {
    static func frame(_ w: Int, _ h: Int) -> Image {
        // Includes out-of-range values and fractions: rounding and clamping are checked too.
        Image(width: w, height: h) { x, y in Float(x) * 37.3 - 50 + Float(y) * 2900.5 }
    }

    @Test(arguments: [8, 16]) func greyRoundTrip(_ bits: Int) throws {
        let dir = TPScratch()
        let url = dir.file("g\(bits).png")
        let img = Self.frame(29, 31)
        var m = FrameMetadata(pixelSizeXNm: 0.0213, pixelSizeYNm: 0.0215)
        m.acquisitionTime = Date(timeIntervalSince1970: 1_790_000_123.654321)
        m.temperatureC = 612.75
        try PNGWriter.writeGray(Frame(image: img, metadata: m), bitDepth: bits, to: url)
        let r = try FrameFiles.open(url)
        #expect(r.format == .png)
        let s = try #require(r.signals.first)
        #expect((s.width, s.height, s.frameCount) == (29, 31, 1))
        #expect(s.sampleType == (bits == 8 ? .uint8 : .uint16))
        let maxV: Float = bits == 8 ? 255 : 65535
        let f = try r.frame(signal: 0, frame: 0)
        #expect(f.image.pixels == img.pixels.map { min(max($0.rounded(), 0), maxV) })
        #expect(f.metadata.pixelSizeXNm == 0.0213 && f.metadata.pixelSizeYNm == 0.0215)
        #expect(f.metadata.temperatureC == 612.75)
        let t = try #require(f.metadata.acquisitionTime)
        #expect(abs(t.timeIntervalSince(m.acquisitionTime!)) < 1e-6)
        #expect(r.fileMetadata["png.MicroscopeControlImage"]?.contains("<HolderTemperature>612.75<") == true)
    }

    @Test func noMetadataNoChunk() throws {
        let dir = TPScratch()
        let url = dir.file("plain.png")
        try PNGWriter.writeGray(Frame(image: Image(width: 3, height: 2, fill: 7)), bitDepth: 8, to: url)
        let r = try PNGReader(url: url)
        let m = try r.metadata(signal: 0, frame: 0)
        #expect(m.pixelSizeNm == nil && m.acquisitionTime == nil && m.temperatureC == nil)
        #expect(r.fileMetadata["png.MicroscopeControlImage"] == nil)
    }

    @Test func orientation() throws {
        let dir = TPScratch()
        let url = dir.file("o.png")
        var img = Image(width: 3, height: 2, fill: 0)
        img[1, 0] = 100
        img[0, 1] = 200
        try PNGWriter.writeGray(Frame(image: img), bitDepth: 16, to: url)
        let f = try PNGReader(url: url).frame(signal: 0, frame: 0)
        #expect(f.image.pixels == [0, 100, 0, 200, 0, 0])
    }

    /// RGBA → luminance with Rec. 601 weights; alpha ignored.
    @Test func rgbaToLuma() throws {
        let dir = TPScratch()
        let url = dir.file("rgba.png")
        let px: [[UInt8]] = [[255, 0, 0, 255], [0, 255, 0, 10], [0, 0, 255, 0], [10, 20, 30, 255]]
        try PNGWriter.writeRGBA(width: 2, height: 2, rgba: px.flatMap { $0 }, to: url)
        let r = try PNGReader(url: url)
        #expect(r.signals[0].sampleType == .float32)
        let p = try r.plane(signal: 0, frame: 0)
        guard case .float32(let v) = p.values else { Issue.record("not float32"); return }
        let want: [Float] = px.map { 0.299 * Float($0[0]) + 0.587 * Float($0[1]) + 0.114 * Float($0[2]) }
        for (a, b) in zip(v, want) { #expect(abs(a - b) < 1e-4) }
        #expect(abs(v[3] - 18.15) < 1e-3)
    }

    /// The XML as AXON writes it (time zone offset, 7 fractional digits, several temperature
    /// samples, namespaces), parsed tolerantly.
    @Test func axonXML() throws {
        let xml = """
            <?xml version="1.0" encoding="utf-8"?>
            <MicroscopeControlImageMetadata xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
              <MicroscopeDateTime>2021-04-26T22:51:28.4539893-05:00</MicroscopeDateTime>
              <imagersettings><ImagePhysicalSize><X>21.5 pm</X><Y>0.0215</Y></ImagePhysicalSize></imagersettings>
              <AuxiliaryData><AuxiliaryDataCategory><Name>Heating</Name><DataValues>
                <AuxiliaryDataValue><HolderTemperature>600.0</HolderTemperature><HeatingPower>0.01</HeatingPower></AuxiliaryDataValue>
                <AuxiliaryDataValue><HolderTemperature>602.0</HolderTemperature></AuxiliaryDataValue>
              </DataValues></AuxiliaryDataCategory></AuxiliaryData>
            </MicroscopeControlImageMetadata>
            """
        let v = AXONMetadata.parse(xml)
        #expect(abs(v.pixelSizeXNm! - 0.0215) < 1e-12 && v.pixelSizeYNm == 0.0215)
        #expect(v.temperatureC == 601.0)
        // 22:51:28.4539893 at −05:00 is 03:51:28.4539893 UTC the next day.
        let want = 1_619_495_488.4539893
        #expect(abs(v.acquisitionTime!.timeIntervalSince1970 - want) < 1e-6)
        #expect(v.flat["AuxiliaryData.AuxiliaryDataCategory.DataValues.AuxiliaryDataValue.HolderTemperature[1]"] == "602.0")
    }
}
