import Foundation
import FrameCore

/// The length of `url`, a regular file. A FIFO, socket or device would block a reader's
/// `open` or never end, and a folder is no frame: all are refused before any decoder opens
/// the path. A missing or unreadable file is `.io`.
func regularFileSize(_ url: URL) throws -> Int {
    var st = stat()
    guard stat(url.path, &st) == 0 else { throw FrameIOError(.io, url: url, "cannot read the file (no such file or no permission)") }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        throw FrameIOError(.io, url: url, "not a regular file (a folder, FIFO, socket or device)")
    }
    return Int(st.st_size)
}

/// The whole of a small text file (a heating log, a config), its length checked against
/// `limit` before anything is read. An empty file is answered without Foundation's read
/// path, which leaks its buffer for zero-byte files (found by the fuzzer).
public func readWholeFile(_ url: URL, limit: Int) throws -> Data {
    let size = try regularFileSize(url)
    guard size <= limit else {
        throw FrameIOError(.corrupt, url: url, "\(size) bytes, more than the \(limit) HeatFront reads from such a file")
    }
    guard size > 0 else { return Data() }
    do { return try Data(contentsOf: url) }
    catch { throw FrameIOError(.io, url: url, "cannot read the file (\(error.localizedDescription))") }
}

/// A whole file, memory-mapped, with bounds-checked access.
///
/// Decoders of binary formats (DM3/DM4, SER, MRC) parse headers through a `ByteReader`
/// over this and decode pixels straight from the mapping, so a multi-gigabyte stack costs
/// address space, not memory, and every read is checked against the file's real length.
public struct MappedFile: @unchecked Sendable {
    // Data is immutable here; the mapping is read-only, so sharing it between threads is safe.
    public let url: URL
    public let data: Data

    /// Maps `url`; a missing or unreadable file is a `FrameIOError(.io)`.
    public init(url: URL) throws {
        self.url = url
        if let why = RegularFile.problem(url.path) { throw FrameIOError(.io, url: url, why) }
        do {
            // An empty file is answered without mapping: Foundation's read path leaks a
            // buffer for zero-byte files (found by the fuzzer).
            if try regularFileSize(url) == 0 {
                data = Data()
            } else {
                data = try Data(contentsOf: url, options: .alwaysMapped)
            }
        } catch let e as FrameIOError {
            throw e
        } catch {
            throw FrameIOError(.io, url: url, "cannot read the file (\(error.localizedDescription))")
        }
    }

    public var count: Int { data.count }

    /// Throws `.truncated` unless `count` bytes exist at `offset`.
    public func check(offset: Int, count: Int, _ what: @autoclosure () -> String) throws {
        guard offset >= 0, count >= 0, offset <= data.count, count <= data.count - offset else {
            throw FrameIOError(.truncated, url: url,
                               "\(what()) needs \(count) bytes at offset \(offset) but the file has \(data.count)")
        }
    }

    /// Calls `body` with the `count` bytes at `offset`, after checking they exist.
    public func withBytes<R>(offset: Int, count: Int, _ what: @autoclosure () -> String,
                             _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try check(offset: offset, count: count, what())
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)]))
        }
    }

    /// Decodes one frame of `width × height` samples at `offset` (checked against the file).
    public func plane(at offset: Int, type: SampleType, littleEndian: Bool, width: Int, height: Int,
                      _ what: @autoclosure () -> String) throws -> PixelPlane {
        let (n, o1) = width.multipliedReportingOverflow(by: height)
        let (bytes, o2) = n.multipliedReportingOverflow(by: type.byteCount)
        guard !o1, !o2, width >= 0, height >= 0 else {
            throw FrameIOError(.corrupt, url: url, "\(what()): \(width)×\(height) pixels is not a real size")
        }
        return try withBytes(offset: offset, count: bytes, what()) {
            PixelPlane.decode($0, type: type, littleEndian: littleEndian, width: width, height: height)
        }
    }
}

/// A cursor over a `MappedFile` reading fixed-width numbers in either byte order.
///
/// Every read checks the bytes exist and throws `FrameIOError(.truncated)` naming the
/// file and the field otherwise; nothing is ever allocated from a size read in the file
/// without first checking it against the bytes left.
public struct ByteReader {
    public let file: MappedFile
    public var offset: Int
    /// Byte order of multi-byte numbers read without an explicit order.
    public var littleEndian: Bool

    public init(_ file: MappedFile, offset: Int = 0, littleEndian: Bool) {
        self.file = file
        self.offset = offset
        self.littleEndian = littleEndian
    }

    public var remaining: Int { max(0, file.count - offset) }
    public var url: URL { file.url }

    public mutating func seek(_ to: Int, _ what: @autoclosure () -> String = "seek") throws {
        guard to >= 0, to <= file.count else {
            throw FrameIOError(.truncated, url: file.url, "\(what()): offset \(to) is past the end of the file (\(file.count) bytes)")
        }
        offset = to
    }

    public mutating func skip(_ n: Int, _ what: @autoclosure () -> String = "skip") throws {
        try file.check(offset: offset, count: n, what())
        offset += n
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type, little: Bool?, _ what: () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        try file.check(offset: offset, count: size, what())
        var v: T = 0
        file.data.withUnsafeBytes { raw in
            withUnsafeMutableBytes(of: &v) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]))
            }
        }
        offset += size
        return (little ?? littleEndian) ? T(littleEndian: v) : T(bigEndian: v)
    }

    public mutating func u8(_ what: @autoclosure () -> String = "byte") throws -> UInt8 { try integer(UInt8.self, little: true, what) }
    public mutating func i8(_ what: @autoclosure () -> String = "byte") throws -> Int8 { Int8(bitPattern: try u8(what())) }
    public mutating func u16(little: Bool? = nil, _ what: @autoclosure () -> String = "uint16") throws -> UInt16 { try integer(UInt16.self, little: little, what) }
    public mutating func i16(little: Bool? = nil, _ what: @autoclosure () -> String = "int16") throws -> Int16 { try integer(Int16.self, little: little, what) }
    public mutating func u32(little: Bool? = nil, _ what: @autoclosure () -> String = "uint32") throws -> UInt32 { try integer(UInt32.self, little: little, what) }
    public mutating func i32(little: Bool? = nil, _ what: @autoclosure () -> String = "int32") throws -> Int32 { try integer(Int32.self, little: little, what) }
    public mutating func u64(little: Bool? = nil, _ what: @autoclosure () -> String = "uint64") throws -> UInt64 { try integer(UInt64.self, little: little, what) }
    public mutating func i64(little: Bool? = nil, _ what: @autoclosure () -> String = "int64") throws -> Int64 { try integer(Int64.self, little: little, what) }
    public mutating func f32(little: Bool? = nil, _ what: @autoclosure () -> String = "float32") throws -> Float {
        Float(bitPattern: try u32(little: little, what()))
    }
    public mutating func f64(little: Bool? = nil, _ what: @autoclosure () -> String = "float64") throws -> Double {
        Double(bitPattern: try u64(little: little, what()))
    }

    /// `count` raw bytes (checked against the file before allocating).
    public mutating func bytes(_ count: Int, _ what: @autoclosure () -> String = "bytes") throws -> [UInt8] {
        let start = offset
        let out = try file.withBytes(offset: start, count: count, what()) { [UInt8]($0) }
        offset += count
        return out
    }

    /// `count` bytes as text: UTF-8 when valid, Latin-1 otherwise (files from Windows locales).
    public mutating func string(_ count: Int, _ what: @autoclosure () -> String = "text") throws -> String {
        let b = try bytes(count, what())
        return String(validating: b, as: UTF8.self) ?? String(b.map { Character(Unicode.Scalar($0)) })
    }
}

/// Converts a length unit as written by microscope software to nanometres per unit.
/// Returns nil for empty or non-length units (uncalibrated axes, eV, 1/nm, s).
func nanometresPerUnit(_ unit: String) -> Double? {
    switch unit.trimmingCharacters(in: .whitespaces) {
    case "m": 1e9
    case "cm": 1e7
    case "mm": 1e6
    case "µm", "μm", "um", "micron", "microns": 1e3
    case "nm": 1
    case "Å", "A", "Angstrom", "angstrom", "Ang": 0.1
    case "pm": 1e-3
    default: nil
    }
}
