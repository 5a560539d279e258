import Foundation

/// The tag tree of a Gatan DigitalMicrograph file (DM3 = version 3, DM4 = version 4).
///
/// The format is undocumented by Gatan; this follows the layout worked out by Greg
/// Jefferis (ImageJ DM3_Reader, "DM3 format", 2005) and as read by RosettaSciIO
/// (`rsciio/digitalmicrograph/_api.py`) and openNCEM (`ncempy/io/dm.py`, Ercius et al.):
///
/// - header: version (4 bytes BE), root length (4 bytes in DM3, 8 in DM4), byte-order flag
///   (4 bytes BE; 1 = data values little-endian);
/// - a tag group: sorted (1 byte), open (1 byte), tag count (4/8 bytes BE);
/// - a tag: kind (1 byte: 20 group, 21 data), name length (2 bytes BE), name, then in DM4 the
///   tag's byte length (8 bytes BE); a data tag continues with `%%%%`, the length of its
///   info array and the info array itself (4/8-byte BE entries), then the value in the
///   header's byte order.
///
/// Structural numbers are always big-endian; values follow the byte-order flag. Arrays are
/// not read here: an array tag records where its bytes are, so image data stays on disk.
public struct DMTagGroup: Sendable {
    public var tags: [DMTag] = []

    /// The first tag called `name`.
    public subscript(_ name: String) -> DMTagValue? { tags.first { $0.name == name }?.value }

    /// Follows a path of tag names (`["ImageData", "Calibrations"]`).
    public func value(at path: [String]) -> DMTagValue? {
        var group = self
        for (i, name) in path.enumerated() {
            guard let v = group[name] else { return nil }
            if i == path.count - 1 { return v }
            guard case .group(let g) = v else { return nil }
            group = g
        }
        return nil
    }

    public func group(at path: [String]) -> DMTagGroup? {
        if case .group(let g)? = value(at: path) { return g }
        return nil
    }

    /// Flattens the tree to `path.to.tag → value` (unnamed tags are numbered as RosettaSciIO
    /// does: `TagGroup0`, `Data0`; dots in names are dropped so paths stay unambiguous).
    public func flattened(prefix: String = "") -> [String: String] {
        var out: [String: String] = [:]
        var groups = 0, datas = 0
        for tag in tags {
            var name = tag.name.replacingOccurrences(of: ".", with: "")
            if name.isEmpty {
                if case .group = tag.value { name = "TagGroup\(groups)"; groups += 1 } else { name = "Data\(datas)"; datas += 1 }
            }
            let key = prefix.isEmpty ? name : prefix + "." + name
            if case .group(let g) = tag.value {
                out.merge(g.flattened(prefix: key)) { a, _ in a }
            } else {
                out[key] = tag.value.description
            }
        }
        return out
    }
}

public struct DMTag: Sendable {
    public var name: String
    public var value: DMTagValue
}

/// The encoded type of a DM tag value (the info array, decoded).
public indirect enum DMType: Sendable, Equatable {
    /// 2 int16, 3 int32, 4 uint16, 5 uint32, 6 float32, 7 float64, 8 bool, 9 int8,
    /// 10 uint8, 11 int64, 12 uint64.
    case simple(Int)
    /// 18: a string of `length` one-byte characters.
    case string(length: Int)
    /// 15: a struct of fields.
    case structure([DMType])
    /// 20: `count` elements of one type.
    case array(DMType, count: Int)

    static func simpleSize(_ code: Int) -> Int? {
        switch code {
        case 2, 4: 2
        case 3, 5, 6: 4
        case 7, 11, 12: 8
        case 8, 9, 10: 1
        default: nil
        }
    }

    /// Bytes the value takes, or nil on overflow.
    var byteCount: Int? {
        switch self {
        case .simple(let c): return DMType.simpleSize(c)
        case .string(let n): return n
        case .structure(let fields):
            var s = 0
            for f in fields {
                guard let b = f.byteCount else { return nil }
                let (r, o) = s.addingReportingOverflow(b)
                if o { return nil }
                s = r
            }
            return s
        case .array(let t, let n):
            guard let b = t.byteCount else { return nil }
            let (r, o) = b.multipliedReportingOverflow(by: n)
            return o ? nil : r
        }
    }
}

/// A tag's value. Numbers and short texts are read; arrays keep their file position.
public enum DMTagValue: Sendable, CustomStringConvertible {
    case group(DMTagGroup)
    case integer(Int64)
    case real(Double)
    case bool(Bool)
    case string(String)
    /// A struct of simple fields (calibrations, rectangles, RGB colours).
    case structure([Double])
    /// An array: element type, element count, byte offset of the first element, total bytes.
    /// Short arrays of numbers are also decoded into `values`; uint16 arrays into `text`.
    case array(element: DMType, count: Int, offset: Int, byteCount: Int, values: [Double]?, text: String?)

    public var description: String {
        switch self {
        case .group: return "<group>"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return s
        case .structure(let f): return "(" + f.map { String($0) }.joined(separator: ", ") + ")"
        case .array(let t, let n, let off, _, let values, let text):
            if let text { return text }
            if let values { return "[" + values.map { String($0) }.joined(separator: ", ") + "]" }
            return "<array of \(n) \(t) at \(off)>"
        }
    }

    /// The value as a number, when it is one.
    public var number: Double? {
        switch self {
        case .integer(let v): Double(v)
        case .real(let v): v
        case .bool(let b): b ? 1 : 0
        case .string(let s): Double(s.trimmingCharacters(in: .whitespaces))
        default: nil
        }
    }

    /// The value as text: a string, or a uint16 (UTF-16) array.
    public var text: String? {
        switch self {
        case .string(let s): s
        case .array(_, _, _, _, _, let t): t
        default: nil
        }
    }
}

/// Parses the DM tag tree of a mapped file.
public struct DMTagTreeParser {
    /// Deeper nesting than this is a recursion bomb, not a real file (DM nests about 8 deep).
    public static let maxDepth = 64
    /// Arrays up to this many elements are decoded into the metadata (texts up to `textLimit`).
    static let decodeLimit = 256
    static let textLimit = 8192

    public let file: MappedFile
    public let version: Int
    public let dataLittleEndian: Bool
    var reader: ByteReader
    /// Total tags read: bounded by the file length (each tag takes at least 3 bytes).
    private var tagCount = 0

    /// Reads the header; throws `.truncated`/`.badMagic` when it is not a DM3/DM4 file.
    public init(file: MappedFile) throws {
        self.file = file
        reader = ByteReader(file, littleEndian: false)
        guard file.count > 0 else { throw FrameIOError(.truncated, url: file.url, "the file is empty (0 bytes)") }
        let v = try reader.u32(little: false, "DM header version")
        guard v == 3 || v == 4 else {
            throw FrameIOError(.badMagic, url: file.url, "not a DigitalMicrograph file (version field \(v), want 3 or 4)")
        }
        version = Int(v)
        _ = version == 4 ? try reader.u64(little: false, "DM header length") : UInt64(try reader.u32(little: false, "DM header length"))
        let order = try reader.u32(little: false, "DM byte-order flag")
        guard order <= 1 else {
            throw FrameIOError(.corrupt, url: file.url, "DM byte-order flag is \(order), want 0 or 1")
        }
        dataLittleEndian = order == 1
    }

    /// Parses the root tag group.
    public mutating func parseRoot() throws -> DMTagGroup {
        try parseGroupBody(depth: 0)
    }

    private mutating func length(_ what: @autoclosure () -> String) throws -> Int {
        let v: UInt64 = version == 4 ? try reader.u64(little: false, what()) : UInt64(try reader.u32(little: false, what()))
        guard v <= UInt64(file.count) else {
            throw FrameIOError(.corrupt, url: file.url, "\(what()) is \(v), more than the file's \(file.count) bytes")
        }
        return Int(v)
    }

    private mutating func parseGroupBody(depth: Int) throws -> DMTagGroup {
        guard depth <= Self.maxDepth else {
            throw FrameIOError(.corrupt, url: file.url, "DM tag groups nested deeper than \(Self.maxDepth) at offset \(reader.offset)")
        }
        _ = try reader.u8("DM tag group sorted flag")
        _ = try reader.u8("DM tag group open flag")
        let n = try length("DM tag count")
        var group = DMTagGroup()
        for _ in 0..<n {
            tagCount += 1
            guard tagCount <= file.count / 3 else {
                throw FrameIOError(.corrupt, url: file.url, "more DM tags than the file has room for")
            }
            let kind = try reader.u8("DM tag kind")
            let nameLength = Int(try reader.u16(little: false, "DM tag name length"))
            let name = try reader.string(nameLength, "DM tag name")
            if version == 4 { _ = try reader.u64(little: false, "DM4 tag length") }
            switch kind {
            case 20:
                group.tags.append(DMTag(name: name, value: .group(try parseGroupBody(depth: depth + 1))))
            case 21:
                group.tags.append(DMTag(name: name, value: try parseData(name: name)))
            default:
                throw FrameIOError(.corrupt, url: file.url, "DM tag '\(name)' has kind \(kind) at offset \(reader.offset), want 20 or 21")
            }
        }
        return group
    }

    private mutating func parseData(name: String) throws -> DMTagValue {
        let delimiter = try reader.bytes(4, "DM data tag delimiter")
        guard delimiter == Array("%%%%".utf8) else {
            throw FrameIOError(.corrupt, url: file.url, "DM data tag '\(name)' lacks its %%%% delimiter at offset \(reader.offset - 4)")
        }
        let entry = version == 4 ? 8 : 4
        let n = try length("DM info array length")
        guard n >= 1, n <= reader.remaining / entry else {
            throw FrameIOError(.corrupt, url: file.url, "DM data tag '\(name)' claims \(n) type entries, more than the file holds")
        }
        var info: [Int] = []
        info.reserveCapacity(n)
        for _ in 0..<n { info.append(try length("DM info array entry")) }
        var i = 0
        let type = try decodeType(info, &i, depth: 0, name: name)
        guard let bytes = type.byteCount, bytes <= reader.remaining else {
            throw FrameIOError(.truncated, url: file.url, "DM data tag '\(name)' needs more bytes than the file has left")
        }
        let start = reader.offset
        let value = try readValue(type, name: name)
        reader.offset = start + bytes
        return value
    }

    /// Decodes one type from the info array (RosettaSciIO's `parse_*_definition`).
    private func decodeType(_ info: [Int], _ i: inout Int, depth: Int, name: String) throws -> DMType {
        func next() throws -> Int {
            guard i < info.count else {
                throw FrameIOError(.corrupt, url: file.url, "DM data tag '\(name)' has a short type description")
            }
            defer { i += 1 }
            return info[i]
        }
        guard depth <= 8 else { throw FrameIOError(.corrupt, url: file.url, "DM data tag '\(name)' nests types too deeply") }
        let code = try next()
        switch code {
        case 15:
            _ = try next()                           // struct name length (always 0)
            let nfields = try next()
            guard nfields <= info.count else { throw FrameIOError(.corrupt, url: file.url, "DM struct '\(name)' claims \(nfields) fields") }
            var fields: [DMType] = []
            for _ in 0..<nfields {
                _ = try next()                       // field name length
                fields.append(try decodeType(info, &i, depth: depth + 1, name: name))
            }
            return .structure(fields)
        case 18:
            return .string(length: try next())
        case 20:
            let element = try decodeType(info, &i, depth: depth + 1, name: name)
            return .array(element, count: try next())
        default:
            guard DMType.simpleSize(code) != nil else {
                throw FrameIOError(.corrupt, url: file.url, "DM data tag '\(name)' has unknown type code \(code)")
            }
            return .simple(code)
        }
    }

    private mutating func simple(_ code: Int) throws -> DMTagValue {
        let le = dataLittleEndian
        switch code {
        case 2: return .integer(Int64(try reader.i16(little: le)))
        case 3: return .integer(Int64(try reader.i32(little: le)))
        case 4: return .integer(Int64(try reader.u16(little: le)))
        case 5: return .integer(Int64(try reader.u32(little: le)))
        case 6: return .real(Double(try reader.f32(little: le)))
        case 7: return .real(try reader.f64(little: le))
        case 8: return .bool(try reader.u8() != 0)
        case 9: return .integer(Int64(try reader.i8()))
        case 10: return .integer(Int64(try reader.u8()))
        case 11: return .integer(try reader.i64(little: le))
        default:
            let v = try reader.u64(little: le)
            return v <= UInt64(Int64.max) ? .integer(Int64(v)) : .real(Double(v))
        }
    }

    private mutating func readValue(_ type: DMType, name: String) throws -> DMTagValue {
        switch type {
        case .simple(let c):
            return try simple(c)
        case .string(let n):
            return .string(try reader.string(n, "DM string tag '\(name)'"))
        case .structure(let fields):
            var values: [Double] = []
            for f in fields {
                if case .simple(let c) = f { values.append(try simple(c).number ?? .nan) }
                else { return .structure(values) }   // nested non-simple fields: keep what precedes
            }
            return .structure(values)
        case .array(let element, let count):
            let offset = reader.offset
            let bytes = type.byteCount ?? 0
            var values: [Double]? = nil, text: String? = nil
            if case .simple(let c) = element, count <= (c == 4 ? Self.textLimit : Self.decodeLimit) {
                if c == 4 {
                    // DM stores text as uint16 (UTF-16) arrays.
                    var units: [UInt16] = []
                    for _ in 0..<count { units.append(try reader.u16(little: dataLittleEndian)) }
                    text = String(decoding: units, as: UTF16.self)
                } else {
                    var v: [Double] = []
                    for _ in 0..<count { v.append(try simple(c).number ?? .nan) }
                    values = v
                }
            }
            return .array(element: element, count: count, offset: offset, byteCount: bytes, values: values, text: text)
        }
    }
}
