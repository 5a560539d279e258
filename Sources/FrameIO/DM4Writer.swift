import Foundation
import FrameCore

/// Writes a minimal, valid DigitalMicrograph 4 file: one image (a 3-D stack when there are
/// several frames) of uint16 or float32 pixels.
///
/// The layout is the one `DMTagTreeParser` reads (Jefferis' DM3 notes, extended to DM4's
/// 8-byte lengths as in RosettaSciIO and openNCEM): a 16-byte header (version 4, root length,
/// little-endian flag), the root tag group, 8 zero bytes. The tree holds what RosettaSciIO's
/// reader expects of an image: `ImageList/TagGroup0/ImageData` with `Calibrations`
/// (`Brightness`, `Dimension[x, y(, z)]` with Origin/Scale/Units), `Data`, `DataType`,
/// `Dimensions`, `PixelDepth`; `ImageTags/DataBar` with the acquisition date and time (US
/// locale text, the form DigitalMicrograph writes by default) and `Acquisition Time (OS)`
/// (Windows FILETIME, UTC); and `Name`. There is no thumbnail, so the image is signal 0.
///
/// Calibration: x and y in nm from the first frame's pixel size (uncalibrated when absent);
/// the stack axis in seconds (mean frame interval) when every frame has an acquisition or
/// relative time. uint16 pixels are
/// rounded and clamped to 0…65535.
public enum DM4Writer {
    public static func write(_ frames: [Frame], as type: SampleType, to url: URL) throws {
        guard let first = frames.first else { throw FrameIOError(.size, url: url, "no frames to write") }
        guard type == .uint16 || type == .float32 else {
            throw FrameIOError(.unsupported, url: url, "DM4Writer writes uint16 or float32, not \(type.rawValue)")
        }
        let w = first.image.width, h = first.image.height
        guard w > 0, h > 0 else { throw FrameIOError(.size, url: url, "empty frame \(w)×\(h)") }
        for (i, f) in frames.enumerated() where f.image.width != w || f.image.height != h {
            throw FrameIOError(.size, url: url, "frame \(i) is \(f.image.width)×\(f.image.height), frame 0 is \(w)×\(h)")
        }
        let image: Node = .group([
            ("ImageData", imageData(frames, as: type)),
            ("ImageTags", .group(imageTags(first.metadata))),
            ("Name", .text(url.deletingPathExtension().lastPathComponent)),
        ])
        let root: [(String, Node)] = [
            ("ApplicationBounds", .group([])),
            ("ImageList", .group([("", image)])),
        ]
        let rootBody = Node.group(root)

        try AtomicFile.write(to: url) { tmp in
            guard FileManager.default.createFile(atPath: tmp.path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: tmp.path) else {
                throw FrameIOError(.io, url: url, "cannot create the file")
            }
            defer { try? handle.close() }
            var out = Emitter(handle: handle)
            out.u32(4)
            out.u64(UInt64(rootBody.groupBodySize))
            out.u32(1)                              // data values little-endian
            try rootBody.emitGroupBody(&out)
            out.u64(0)                              // trailer
            try out.flush()
        }
    }

    /// `ImageData`: calibrations, pixels, data type, dimensions and pixel depth.
    private static func imageData(_ frames: [Frame], as type: SampleType) -> Node {
        let first = frames[0], n = frames.count
        let md = first.metadata
        func dimension(_ scale: Double?, _ unit: String) -> Node {
            .group([("Origin", .float32(0)), ("Scale", .float32(Float(scale ?? 1))), ("Units", .text(scale == nil ? "" : unit))])
        }
        var dims = [("", dimension(md.pixelSizeXNm ?? md.pixelSizeYNm, "nm")), ("", dimension(md.pixelSizeYNm ?? md.pixelSizeXNm, "nm"))]
        var sizes: [(String, Node)] = [("", .uint32(UInt32(first.image.width))), ("", .uint32(UInt32(first.image.height)))]
        if n > 1 {
            dims.append(("", frameInterval(frames).map { dimension($0, "s") } ?? dimension(nil, "")))
            sizes.append(("", .uint32(UInt32(n))))
        }
        return .group([
            ("Calibrations", .group([
                ("Brightness", .group([("Origin", .float32(0)), ("Scale", .float32(1)), ("Units", .text(""))])),
                ("Dimension", .group(dims)),
                ("DisplayCalibratedUnits", .bool(true)),
            ])),
            ("Data", .pixels(frames, type)),
            ("DataType", .int32(type == .uint16 ? 10 : 2)),
            ("Dimensions", .group(sizes)),
            ("PixelDepth", .uint32(UInt32(type.byteCount))),
        ])
    }

    /// The stack's mean frame interval, s, when every frame has an acquisition (or else a
    /// relative) time and they increase.
    private static func frameInterval(_ frames: [Frame]) -> Double? {
        let n = frames.count, first = frames[0]
        if let t0 = first.metadata.acquisitionTime, let t1 = frames[n - 1].metadata.acquisitionTime,
           frames.allSatisfy({ $0.metadata.acquisitionTime != nil }), t1 > t0 {
            return t1.timeIntervalSince(t0) / Double(n - 1)
        } else if let r0 = first.metadata.relativeTime_s, let r1 = frames[n - 1].metadata.relativeTime_s,
                  frames.allSatisfy({ $0.metadata.relativeTime_s != nil }), r1 > r0 {
            return (r1 - r0) / Double(n - 1)
        }
        return nil
    }

    /// `ImageTags`: the DataBar's acquisition date and time, the dwell time, the temperature.
    private static func imageTags(_ md: FrameMetadata) -> [(String, Node)] {
        var dataBar: [(String, Node)] = []
        if let t = md.acquisitionTime {
            let (date, time) = usLocaleStrings(t)
            dataBar.append(("Acquisition Date", .text(date)))
            dataBar.append(("Acquisition Time", .text(time)))
            dataBar.append(("Acquisition Time (OS)", .float64((t.timeIntervalSince1970 + 11_644_473_600) * 1e7)))
        }
        var imageTags: [(String, Node)] = [("DataBar", .group(dataBar))]
        if let d = md.dwellTime_s { imageTags.append(("DigiScan", .group([("Sample Time", .float64(d * 1e6))]))) }
        if let t = md.temperatureC { imageTags.append(("HeatFront", .group([("Temperature (C)", .float64(t))]))) }
        return imageTags
    }

    /// DigitalMicrograph's default (US) DataBar text: `M/D/YYYY`, `h:mm:ss AM`, in UTC.
    static func usLocaleStrings(_ t: Date) -> (String, String) {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: t)
        let hour = c.hour!, h12 = hour % 12 == 0 ? 12 : hour % 12
        return ("\(c.month!)/\(c.day!)/\(c.year!)",
                String(format: "%d:%02d:%02d %@", h12, c.minute!, c.second!, hour < 12 ? "AM" : "PM"))
    }

    /// A tag value to write. Sizes are computed before writing so pixels stream frame by frame.
    fileprivate indirect enum Node {
        case group([(String, Node)])
        case int32(Int32), uint32(UInt32), float32(Float), float64(Double), bool(Bool)
        case text(String)                 // uint16 (UTF-16) array, as DM stores strings
        case pixels([Frame], SampleType)

        /// The info array (type description) of a data tag.
        var info: [UInt64] {
            switch self {
            case .int32: [3]
            case .uint32: [5]
            case .float32: [6]
            case .float64: [7]
            case .bool: [8]
            case .text(let s): [20, 4, UInt64(s.utf16.count)]
            case .pixels(let f, let t): [20, t == .uint16 ? 4 : 6, UInt64(f.count * f[0].image.count)]
            case .group: []
            }
        }

        var valueSize: Int {
            switch self {
            case .int32, .uint32, .float32: 4
            case .float64: 8
            case .bool: 1
            case .text(let s): 2 * s.utf16.count
            case .pixels(let f, let t): f.count * f[0].image.count * t.byteCount
            case .group: 0
            }
        }

        /// sorted + open + count + tags.
        var groupBodySize: Int {
            guard case .group(let tags) = self else { return 0 }
            return 10 + tags.reduce(0) { $0 + Node.tagSize(name: $1.0, $1.1) }
        }

        /// The bytes after a tag's 8-byte length field.
        var tagPayloadSize: Int {
            if case .group = self { return groupBodySize }
            return 4 + 8 + 8 * info.count + valueSize
        }

        static func tagSize(name: String, _ node: Node) -> Int {
            1 + 2 + name.utf8.count + 8 + node.tagPayloadSize
        }

        func emitGroupBody(_ out: inout Emitter) throws {
            guard case .group(let tags) = self else { return }
            out.u8(1); out.u8(0)
            out.u64(UInt64(tags.count))
            for (name, node) in tags {
                if case .group = node { out.u8(20) } else { out.u8(21) }
                out.u16(UInt16(name.utf8.count))
                out.bytes(Array(name.utf8))
                out.u64(UInt64(node.tagPayloadSize))
                if case .group = node { try node.emitGroupBody(&out); continue }
                out.bytes(Array("%%%%".utf8))
                out.u64(UInt64(node.info.count))
                for v in node.info { out.u64(v) }
                try node.emitValue(&out)
            }
        }

        func emitValue(_ out: inout Emitter) throws {
            switch self {
            case .int32(let v): out.le(UInt32(bitPattern: v))
            case .uint32(let v): out.le(v)
            case .float32(let v): out.le(v.bitPattern)
            case .float64(let v): out.le(v.bitPattern)
            case .bool(let b): out.u8(b ? 1 : 0)
            case .text(let s): for u in s.utf16 { out.le(u) }
            case .pixels(let frames, let type):
                for f in frames {
                    if type == .uint16 {
                        let px = f.image.pixels.map { v -> UInt16 in
                            (v.isNaN ? 0 : UInt16(max(0, min(65535, v.rounded())))).littleEndian
                        }
                        px.withUnsafeBytes { out.buffer.append(contentsOf: $0) }
                    } else {
                        let px = f.image.pixels.map { $0.bitPattern.littleEndian }
                        px.withUnsafeBytes { out.buffer.append(contentsOf: $0) }
                    }
                    try out.flush()
                }
            case .group: break
            }
        }
    }

    /// Buffers structural bytes (big-endian) and values (little-endian) on the way to a file.
    fileprivate struct Emitter {
        let handle: FileHandle
        var buffer: [UInt8] = []

        mutating func u8(_ v: UInt8) { buffer.append(v) }
        mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { buffer.append(contentsOf: $0) } }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { buffer.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { buffer.append(contentsOf: $0) } }
        mutating func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
        mutating func bytes(_ b: [UInt8]) { buffer.append(contentsOf: b) }
        mutating func flush() throws {
            guard !buffer.isEmpty else { return }
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }
}
