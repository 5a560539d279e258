import Foundation

/// Reads MRC images and stacks (MRC2014, Cheng et al., J. Struct. Biol. 192 (2015) 146,
/// and the older CCP4/IMOD variants), as written by Thermo Fisher Velox/EPU and
/// Direct Electron DE-Server.
///
/// The 1024-byte header gives nx, ny, nz (frames), the mode, the sampling mx and the cell
/// length cella.x in Å, so the pixel size is cella.x / mx Å (a zero or negative value,
/// such as DE-Server's −1 nm placeholder, means uncalibrated). The byte order comes from
/// the machine stamp (0x44 little-, 0x11 big-endian). `NSYMBT` bytes of extended header
/// follow the header; when it is Thermo's FEI1/FEI2 type, each frame's block gives its
/// timestamp (OLE automation date) and the STEM dwell time. Pixels start at 1024 + NSYMBT
/// and are read per frame, rows in file order (row 0 first, as mrcfile and RosettaSciIO).
///
/// Modes: 0 int8 (uint8 when IMOD's flags say bytes are unsigned), 1 int16, 2 float32,
/// 6 uint16, 12 float16 (widened exactly to Float when decoded). Complex modes 3/4 and packed 4-bit mode 101
/// are `.unsupported`.
public final class MRCReader: FrameFileReader, Sendable {
    public let url: URL
    public var format: FrameFormat { .mrc }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]

    private let file: MappedFile
    private let littleEndian: Bool
    private let mode: Int
    private let dataOffset: Int
    private let frameBytes: Int
    private let extendedHeaderType: String
    private let extendedHeaderBytes: Int

    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        guard file.count > 0 else { throw FrameIOError(.truncated, url: url, "the file is empty (0 bytes)") }
        try file.check(offset: 0, count: 1024, "MRC header")
        let h = try Header(file, url: url)
        littleEndian = h.littleEndian
        extendedHeaderType = h.exttyp
        self.mode = h.mode
        let type = try h.sampleType(url: url)
        guard h.nsymbt >= 0 else { throw FrameIOError(.corrupt, url: url, "MRC extended header length \(h.nsymbt)") }
        extendedHeaderBytes = h.nsymbt
        dataOffset = 1024 + h.nsymbt
        // The claim is checked against the caps before anything is sized by it: a sparse
        // file can match any page count with its length while holding nothing.
        try FrameLimits.checkShape(frames: h.nz, height: h.ny, width: h.nx, url: url, "MRC header")
        let (plane, o1) = h.nx.multipliedReportingOverflow(by: h.ny)
        let (fb, o2) = plane.multipliedReportingOverflow(by: type.byteCount)
        let (all, o3) = fb.multipliedReportingOverflow(by: h.nz)
        guard !o1, !o2, !o3 else { throw FrameIOError(.corrupt, url: url, "MRC dimensions \(h.nx)×\(h.ny)×\(h.nz) overflow") }
        frameBytes = fb
        try file.check(offset: dataOffset, count: all, "MRC pixel data (\(h.nx)×\(h.ny)×\(h.nz), mode \(h.mode))")

        func size(_ cell: Double, _ m: Int) -> Double? {
            guard m > 0, cell > 0, cell.isFinite else { return nil }
            return cell / Double(m) * 0.1
        }
        var px = size(h.ax, h.mx), py = size(h.ay, h.my)
        if px == nil || py == nil, let fei = try? Self.feiBlock(file, type: h.exttyp, bytes: h.nsymbt, frame: 0) {
            px = px ?? fei.sizeXNm
            py = py ?? fei.sizeYNm
        }
        signals = [SignalInfo(index: 0, name: url.deletingPathExtension().lastPathComponent, frameCount: h.nz,
                              height: h.ny, width: h.nx, sampleType: type, pixelSizeXNm: px, pixelSizeYNm: py)]
        fileMetadata = try h.metadata(file)
    }

    /// The fields of the 1024-byte header HeatFront uses.
    struct Header {
        var littleEndian: Bool
        var nx = 0, ny = 0, nz = 0, mode = 0
        var mx = 0, my = 0, mz = 0
        var ax = 0.0, ay = 0.0, az = 0.0
        var ispg = 0, nsymbt = 0, nversion = 0
        var exttyp = ""
        var imodStamp: Int32 = 0, imodFlags: Int32 = 0

        init(_ file: MappedFile, url: URL) throws {
            var r = ByteReader(file, littleEndian: true)
            // Byte order: the machine stamp, or for old files without one, whichever order
            // gives a sane mode and dimensions.
            try r.seek(208)
            let map = try r.string(4)
            let stamp = try r.u8()
            if stamp == 0x11 { littleEndian = false }
            else if stamp == 0x44 || stamp == 0x41 { littleEndian = true }
            else {
                var probe = ByteReader(file, littleEndian: true)
                let nxLE = try probe.i32()
                littleEndian = nxLE > 0 && nxLE < 1 << 24
            }
            r.littleEndian = littleEndian
            r.offset = 0
            nx = Int(try r.i32()); ny = Int(try r.i32()); nz = Int(try r.i32()); mode = Int(try r.i32())
            guard nx > 0, ny > 0, nz > 0, (0...200).contains(mode) || map == "MAP " else {
                throw FrameIOError(.badMagic, url: url, "not an MRC file (nx \(nx), ny \(ny), nz \(nz), mode \(mode))")
            }
            r.offset = 28
            mx = Int(try r.i32()); my = Int(try r.i32()); mz = Int(try r.i32())
            ax = Double(try r.f32()); ay = Double(try r.f32()); az = Double(try r.f32())
            r.offset = 88
            ispg = Int(try r.i32()); nsymbt = Int(try r.i32())
            r.offset = 104
            exttyp = try r.string(4).trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
            nversion = Int(try r.i32())
            r.offset = 152
            imodStamp = try r.i32(); imodFlags = try r.i32()
        }

        func sampleType(url: URL) throws -> SampleType {
            switch mode {
            case 0: return (imodStamp == 1_146_047_817 && imodFlags & 1 == 0) ? .uint8 : .int8
            case 1: return .int16
            case 2: return .float32
            case 12: return .float16
            case 6: return .uint16
            default:
                throw FrameIOError(.unsupported, url: url, "MRC mode \(mode) (HeatFront reads modes 0, 1, 2, 6 and 12)")
            }
        }

        /// The header's fields and its text labels, as `fileMetadata`.
        func metadata(_ file: MappedFile) throws -> [String: String] {
            var md: [String: String] = [
                "nx": String(nx), "ny": String(ny), "nz": String(nz), "mode": String(mode),
                "mx": String(mx), "my": String(my), "mz": String(mz),
                "cella": "\(ax) \(ay) \(az)", "ispg": String(ispg), "nsymbt": String(nsymbt),
                "exttyp": exttyp, "nversion": String(nversion), "byteorder": littleEndian ? "little" : "big",
            ]
            var r = ByteReader(file, littleEndian: littleEndian)
            r.offset = 220
            let nlabl = min(10, max(0, Int(try r.i32())))
            for i in 0..<nlabl {
                let label = try r.string(80).trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
                if !label.isEmpty { md["label\(i)"] = label }
            }
            return md
        }
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let s = try check(signal, frame)
        let offset = dataOffset + frame * frameBytes
        return try file.plane(at: offset, type: s.sampleType, littleEndian: littleEndian, width: s.width, height: s.height, "MRC frame \(frame)")
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        let s = try check(signal, frame)
        var m = FrameMetadata(pixelSizeXNm: s.pixelSizeXNm, pixelSizeYNm: s.pixelSizeYNm)
        if let fei = try Self.feiBlock(file, type: extendedHeaderType, bytes: extendedHeaderBytes, frame: frame) {
            m.acquisitionTime = fei.time
        }
        return m
    }

    /// Thermo's FEI1/FEI2 extended header: one block per frame, its length in the block's
    /// first int32; the timestamp (OLE automation date, days since 1899-12-30) is at byte 12
    /// and the pixel size x, y (metres) at bytes 156 and 164.
    private static func feiBlock(_ file: MappedFile, type: String, bytes: Int, frame: Int) throws
        -> (time: Date?, sizeXNm: Double?, sizeYNm: Double?)? {
        guard type == "FEI1" || type == "FEI2", bytes >= 180 else { return nil }
        var r = ByteReader(file, offset: 1024, littleEndian: true)
        let block = Int(try r.i32("FEI extended header block size"))
        guard block >= 180, frame <= (bytes - block) / block else { return nil }
        let base = 1024 + frame * block
        r.offset = base + 12
        let ole = try r.f64("FEI timestamp")
        let time = ole > 0 && ole < 200_000 ? Date(timeIntervalSince1970: (ole - 25_569) * 86_400) : nil
        r.offset = base + 156
        let sx = try r.f64("FEI pixel size x"), sy = try r.f64("FEI pixel size y")
        return (time, sx > 0 && sx < 1e-3 ? sx * 1e9 : nil, sy > 0 && sy < 1e-3 ? sy * 1e9 : nil)
    }

    private func check(_ signal: Int, _ frame: Int) throws -> SignalInfo {
        guard signal == 0, frame >= 0, frame < signals[0].frameCount else {
            throw FrameIOError(.corrupt, url: url, "no signal \(signal) frame \(frame) in this file")
        }
        return signals[0]
    }
}
