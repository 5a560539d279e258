import Foundation
import Testing
import FrameIO

/// Builds an MRC2014 file in memory: header, `extended` bytes of extended header, pixels.
struct MRCBuilder {
    var nx = 4, ny = 3, nz = 2
    var mode: Int32 = 1
    var cellA: Float = 4 * 2.5              // Å: 2.5 Å = 0.25 nm per pixel
    var littleEndian = true
    var extended = 0
    var values: [Double] { (0..<(nx * ny * nz)).map { Double($0) - 3 } }

    func bytes() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 1024)
        func put<T: FixedWidthInteger>(_ v: T, at o: Int) {
            withUnsafeBytes(of: littleEndian ? v.littleEndian : v.bigEndian) { b.replaceSubrange(o..<(o + $0.count), with: $0) }
        }
        put(Int32(nx), at: 0); put(Int32(ny), at: 4); put(Int32(nz), at: 8); put(mode, at: 12)
        put(Int32(nx), at: 28); put(Int32(ny), at: 32); put(Int32(nz), at: 36)
        put(cellA.bitPattern, at: 40); put((Float(ny) * cellA / Float(nx)).bitPattern, at: 44)
        put(Int32(extended), at: 92)
        b.replaceSubrange(208..<212, with: Array("MAP ".utf8))
        b[212] = littleEndian ? 0x44 : 0x11; b[213] = littleEndian ? 0x44 : 0x11
        b += [UInt8](repeating: 0xEE, count: extended)
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: littleEndian ? v.littleEndian : v.bigEndian) { b.append(contentsOf: $0) } }
        for v in values {
            switch mode {
            case 0: le(Int8(v))
            case 1: le(Int16(v))
            case 2: le(Float(v).bitPattern)
            case 6: le(UInt16(v + 3))
            default: le(Float16(v).bitPattern)
            }
        }
        return b
    }
}

@Suite("MRC reader")
struct MRCTests {
    @Test(arguments: [(Int32(0), "int8"), (1, "int16"), (2, "float32"), (6, "uint16"), (12, "float16")])
    func modesStacksAndByteOrder(_ mode: Int32, _ type: String) throws {
        let dir = ScratchFolder("mrc")
        for little in [true, false] {
            var m = MRCBuilder()
            m.mode = mode
            m.littleEndian = little
            m.extended = 96                     // skipped: pixels start at 1024 + NSYMBT
            let url = dir.file("m\(mode)-\(little).mrc")
            try Data(m.bytes()).write(to: url)
            let r = try MRCReader(url: url)
            let s = r.signals[0]
            #expect(s.sampleType.rawValue == type)
            #expect(s.frameCount == 2 && s.width == 4 && s.height == 3)
            let shift: Double = mode == 6 ? 3 : 0
            for f in 0..<2 {
                let want = Array(m.values[(f * 12)..<(f * 12 + 12)]).map { $0 + shift }
                #expect(try r.plane(signal: 0, frame: f).doubleValues() == want)
            }
            #expect(abs(s.pixelSizeXNm! - 0.25) < 1e-7)
            #expect(abs(s.pixelSizeYNm! - 0.25) < 1e-7)
        }
    }

    @Test func nonPositiveCellIsUncalibratedAndComplexIsUnsupported() throws {
        let dir = ScratchFolder("mrc")
        var m = MRCBuilder()
        m.cellA = -40                           // DE-Server writes −1 nm per pixel
        let url = dir.file("neg.mrc")
        try Data(m.bytes()).write(to: url)
        #expect(try MRCReader(url: url).signals[0].pixelSizeXNm == nil)
        m.cellA = 10
        m.mode = 4
        try Data(m.bytes()).write(to: url)
        let e = #expect(throws: FrameIOError.self) { try MRCReader(url: url) }
        #expect(e?.kind == .unsupported)
    }

    @Test func halfFloats() {
        #expect(MRCReaderHalf.convert(0x3C00) == 1)
        #expect(MRCReaderHalf.convert(0xC000) == -2)
        #expect(MRCReaderHalf.convert(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(MRCReaderHalf.convert(0x7C00) == .infinity)
        #expect(MRCReaderHalf.convert(0x7E00).isNaN)
    }

    /// Thermo's FEI2 extended header: the frame timestamp (OLE date 44900.5091088 =
    /// 2022-12-05 12:13:07 UTC) and, from the main header, 908.661 Å / 16 = 5.679 nm.
    @Test(.enabled(if: Corpus.available)) func feiExtendedHeader() throws {
        let r = try MRCReader(url: Corpus.root.appendingPathComponent("mrc/HAADFscan.mrc"))
        let m = try r.metadata(signal: 0, frame: 0)
        #expect(abs(m.acquisitionTime!.timeIntervalSince1970 - 1_670_242_387.0) < 0.01)
        #expect(abs(m.pixelSizeXNm! - 5.679131317138672) < 1e-9)
        #expect(r.fileMetadata["exttyp"] == "FEI2")
        let movie = try MRCReader(url: Corpus.root.appendingPathComponent("mrc/ROI_Random_Scan_movie.mrc"))
        #expect(movie.signals[0].frameCount == 348 && movie.signals[0].pixelSizeXNm == nil)
    }
}

/// The half-float conversion, reached through a one-pixel mode-12 file (no @testable).
enum MRCReaderHalf {
    static func convert(_ bits: UInt16) -> Float {
        var m = MRCBuilder()
        m.nx = 1; m.ny = 1; m.nz = 1; m.mode = 12
        var b = m.bytes()
        b[1024] = UInt8(bits & 0xFF); b[1025] = UInt8(bits >> 8)
        let dir = ScratchFolder("half")
        let url = dir.file("h.mrc")
        guard (try? Data(b).write(to: url)) != nil, let r = try? MRCReader(url: url),
              let p = try? r.plane(signal: 0, frame: 0), case .float16(let v) = p.values else { return .nan }
        return v[0]
    }
}
