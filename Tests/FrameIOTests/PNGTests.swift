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
        // Damaged XML (every prefix, and junk) parses to less, never crashes.
        let chars = Array(xml)
        for n in stride(from: 0, through: chars.count, by: 3) { _ = AXONMetadata.parse(String(chars[..<n])) }
        #expect(AXONMetadata.parse("<<<>>></x <a b='1 <c d=\"").temperatureC == nil)
    }

    // MARK: Layouts libpng can hold that PNGWriter does not write

    /// A PNG from raw scanlines (filter byte 0 each), deflated as zlib "stored" blocks,
    /// so any colour type / bit depth can be produced without a compressor.
    static func handPNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                        extraChunks: [(String, [UInt8])] = []) -> [UInt8] {
        var raw: [UInt8] = []
        for r in rows { raw += [0] + r }
        var z: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, raw.count - i)
            let last: UInt8 = i + n >= raw.count ? 1 : 0
            z += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            z += raw[i..<(i + n)]
            i += n
        } while i < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        z += withUnsafeBytes(of: ((b << 16) | a).bigEndian, Array.init)
        var ihdr: [UInt8] = []
        for v in [UInt32(width), UInt32(height)] { ihdr += withUnsafeBytes(of: v.bigEndian, Array.init) }
        ihdr += [bitDepth, colorType, 0, 0, 0]
        var file = TIFFPNGBadInputTests.signature + TIFFPNGBadInputTests.chunk("IHDR", ihdr)
        for (t, d) in extraChunks { file += TIFFPNGBadInputTests.chunk(t, d) }
        return file + TIFFPNGBadInputTests.chunk("IDAT", z) + TIFFPNGBadInputTests.chunk("IEND", [])
    }

    @Test func paletteGreyAlphaAndLowBitDepth() throws {
        let dir = TPScratch()
        // Palette: index 0 red, 1 green, 2 blue → luma.
        let pal = dir.file("pal.png")
        try Data(Self.handPNG(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[0, 1, 2]],
                              extraChunks: [("PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255])])).write(to: pal)
        let p = try PNGReader(url: pal).plane(signal: 0, frame: 0)
        guard case .float32(let v) = p.values else { Issue.record("palette not float32"); return }
        let wantPal: [Float] = [0.299 * 255, 0.587 * 255, 0.114 * 255]
        for (g, w) in zip(v, wantPal) { #expect(abs(g - w) < 1e-3) }
        // Grey + alpha, 16-bit: alpha dropped, grey kept exactly (big-endian samples).
        let ga = dir.file("ga.png")
        try Data(Self.handPNG(width: 2, height: 1, bitDepth: 16, colorType: 4,
                              rows: [[0x12, 0x34, 0xFF, 0xFF, 0xAB, 0xCD, 0x00, 0x00]])).write(to: ga)
        let g = try PNGReader(url: ga)
        #expect(g.signals[0].sampleType == .uint16)
        #expect(try g.plane(signal: 0, frame: 0).doubleValues() == [0x1234, 0xABCD])
        // 1-bit grey: expanded to 0/255.
        let bit = dir.file("bit.png")
        try Data(Self.handPNG(width: 10, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1010_0000, 0b0100_0000]])).write(to: bit)
        #expect(try PNGReader(url: bit).plane(signal: 0, frame: 0).doubleValues() == [255, 0, 255, 0, 0, 0, 0, 0, 0, 255])
        // tEXt chunk before the image data is read like AXON's.
        let txt = dir.file("txt.png")
        let xml = Array("MicroscopeControlImage".utf8) + [0] + Array("<MicroscopeControlImageMetadata><HolderTemperature>25 K</HolderTemperature></MicroscopeControlImageMetadata>".utf8)
        try Data(Self.handPNG(width: 1, height: 1, bitDepth: 8, colorType: 0, rows: [[7]], extraChunks: [("tEXt", xml)])).write(to: txt)
        let m = try PNGReader(url: txt).metadata(signal: 0, frame: 0)
        #expect(abs(m.temperatureC! - (25 - 273.15)) < 1e-9)
    }
}
