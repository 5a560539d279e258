import Foundation
import CZip
import CZarrCodecs

/// HyperSpy's Zarr format in a zip store (`.zspy`), read through libzip and the chunk
/// codecs' own libraries (c-blosc, zstd, zlib).
///
/// Layout: a zarr v2 hierarchy (Zarr storage specification version 2) in a zip archive, as
/// zarr's `ZipStore` writes it: every group holds `.zgroup` and `.zattrs` (JSON), every
/// array `.zarray` (JSON: `shape`, `chunks`, `dtype`, `compressor`, `fill_value`, `order`,
/// `filters`, `dimension_separator`) and one member per chunk, named by its chunk indices
/// (`0.0.0`, or `0/0/0`). A missing chunk holds the fill value. `ZipStore` appends a member
/// again when an attribute file is rewritten, so a name can occur several times: the last
/// one is current. The HyperSpy hierarchy inside is the `.hspy` one (`HyperSpyLayout`):
/// `Experiments/<title>/data` and `axis-N` groups whose `.zattrs` hold the axes.
///
/// Supported chunk codecs: Blosc (HyperSpy's default, zstd inside), Zstd, Zlib, GZip and none;
/// C-order arrays without filters. A chunk's decoded size comes from `.zarray`, is checked
/// against `FrameLimits` and the file's length, and the codec must produce exactly that.
/// Frames are assembled from the chunks that cover them; the last chunk decoded is kept, so
/// reading a stack frame by frame decodes each chunk once.
public final class ZSpyReader: FrameFileReader, @unchecked Sendable {
    public let url: URL
    public var format: FrameFormat { .zspy }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]

    private let store: ZipStore
    private let arrays: [ZarrArray]
    private let metadata: [FrameMetadata]
    private let intervals: [Double?]

    public init(url: URL) throws {
        self.url = url
        store = try ZipStore(url: url)
        let root = try store.json("/.zattrs") ?? [:]
        if let f = root["file_format"] as? String, f != "ZSpy" {
            throw FrameIOError(.unsupported, url: url, "a zarr store written as '\(f)', not HyperSpy's ZSpy")
        }
        guard store.hasGroup("Experiments") else {
            throw FrameIOError(.unsupported, url: url, "no Experiments group: not a HyperSpy ZSpy file")
        }
        var infos: [SignalInfo] = [], arrays: [ZarrArray] = [], mds: [FrameMetadata] = [], intervals: [Double?] = []
        var md: [String: String] = ["file_format": "ZSpy", "file_format_version": Self.text(root["file_format_version"]) ?? ""]
        var index = 0
        for name in store.children("Experiments") where store.hasArray("Experiments/\(name)/data") {
            defer { index += 1 }
            guard let (info, array, m, dt) = try Self.describe(store: store, url: url, group: "Experiments/\(name)", title: name, index: index) else { continue }
            if infos.isEmpty { for (k, v) in m.original { md[k] = v } }
            infos.append(info); arrays.append(array); mds.append(m); intervals.append(dt)
        }
        guard !infos.isEmpty else {
            throw FrameIOError(.unsupported, url: url, "no image signal (2-D or 3-D with two signal axes) among \(index) HyperSpy signal(s)")
        }
        signals = infos
        self.arrays = arrays
        metadata = mds
        self.intervals = intervals
        fileMetadata = md
    }

    private static func describe(store: ZipStore, url: URL, group: String, title: String, index: Int) throws -> (SignalInfo, ZarrArray, FrameMetadata, Double?)? {
        let array = try ZarrArray(store: store, path: group + "/data")
        guard let type = array.sampleType, array.shape.count == 2 || array.shape.count == 3 else { return nil }
        let axes = try array.shape.indices.map { i -> HyperSpyLayout.Axis in
            let a = try store.json("\(group)/axis-\(i)/.zattrs") ?? [:]
            return HyperSpyLayout.Axis(name: Self.text(a["name"]), units: Self.text(a["units"]), scale: Self.number(a["scale"]),
                                       offset: Self.number(a["offset"]), size: Self.number(a["size"]).map { Int(exactly: $0) ?? -1 },
                                       navigate: a["navigate"] as? Bool)
        }
        var flat: [String: String] = [:]
        try gather(store, group + "/metadata", prefix: "metadata", into: &flat, depth: 0)
        let recordBy = flat["metadata.Signal.record_by"]
        guard let layout = try HyperSpyLayout.imageLayout(shape: array.shape, axes: axes, recordBy: recordBy, url: url,
                                                          what: group + "/data") else { return nil }
        try FrameLimits.checkShape(frames: layout.frames, height: layout.height, width: layout.width, url: url, group + "/data")
        let px = HyperSpyLayout.pixelSizeNm(axes)
        var md = FrameMetadata(pixelSizeXNm: px.x, pixelSizeYNm: px.y)
        md.acquisitionTime = HyperSpyLayout.acquisitionTime(date: flat["metadata.General.date"], time: flat["metadata.General.time"],
                                                           timeZone: flat["metadata.General.time_zone"])
        md.original = flat
        let info = SignalInfo(index: index, name: HyperSpyLayout.signalName(title: flat["metadata.General.title"], group: title),
                              frameCount: layout.frames, height: layout.height, width: layout.width, sampleType: type,
                              pixelSizeXNm: px.x, pixelSizeYNm: px.y)
        let interval = array.shape.count == 3 ? HyperSpyLayout.seconds(per: axes[0]) : nil
        return (info, array, md, interval)
    }

    /// The `.zattrs` of `group` and the groups below it as `prefix.sub.key → text`.
    private static func gather(_ store: ZipStore, _ group: String, prefix: String, into out: inout [String: String], depth: Int) throws {
        guard depth <= 8, out.count < HDF5Walk.maxEntries else { return }
        if let attrs = try store.json(group + "/.zattrs") {
            for (k, v) in attrs where out.count < HDF5Walk.maxEntries {
                if let t = Self.text(v) { out[prefix + "." + k] = t }
            }
        }
        for child in store.children(group).prefix(256) where store.hasGroup(group + "/" + child) {
            try gather(store, group + "/" + child, prefix: prefix + "." + child, into: &out, depth: depth + 1)
        }
    }

    static func text(_ v: Any?) -> String? {
        switch v {
        case let s as String: return s
        case let b as Bool: return b ? "True" : "False"
        case let n as NSNumber: return n.stringValue
        default: return nil
        }
    }

    static func number(_ v: Any?) -> Double? {
        guard let n = v as? NSNumber, !(v is Bool) else { return nil }
        let d = n.doubleValue
        return d.isFinite ? d : nil
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let s = try checkedSignal(signal, frame)
        return try arrays[signal].frame(frame, height: s.height, width: s.width)
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        _ = try checkedSignal(signal, frame)
        var md = metadata[signal]
        if let dt = intervals[signal] { md.relativeTime_s = Double(frame) * dt }
        return md
    }
}

/// A zip archive's members by name (the last of several with one name), read through libzip.
final class ZipStore: @unchecked Sendable {
    let url: URL
    let fileBytes: Int
    private let archive: OpaquePointer
    private let members: [String: UInt64]
    private let lock = NSLock()
    /// Most members listed from one archive.
    static let maxMembers = 1 << 20

    init(url: URL) throws {
        self.url = url
        let size = try regularFileSize(url)
        guard size > 0 else { throw FrameIOError(.truncated, url: url, "empty file (0 bytes)") }
        fileBytes = size
        var code: Int32 = 0
        guard let z = czip_open(url.path, &code) else {
            let kind: FrameIOError.Kind = code == ZIP_ER_NOZIP ? .badMagic : (code == ZIP_ER_INCONS ? .corrupt : .io)
            throw FrameIOError(kind, url: url, "not a readable zip archive (libzip: \(String(cString: czip_error_text(code))))")
        }
        archive = z
        let n = zip_get_num_entries(z, 0)
        guard n >= 0, n <= Int64(Self.maxMembers) else {
            zip_discard(z)
            throw FrameIOError(.corrupt, url: url, "the zip directory claims \(n) members")
        }
        var names: [String: UInt64] = [:]
        for i in 0..<UInt64(n) {
            guard let c = zip_get_name(z, i, zip_flags_t(ZIP_FL_ENC_RAW)) else { continue }
            var name = String(cString: c)
            while name.hasPrefix("/") { name.removeFirst() }
            names[name] = i       // a later member of the same name replaces an earlier one
        }
        members = names
    }

    deinit { zip_discard(archive) }

    /// Normalises "/a/b" and "a//b" to "a/b".
    static func key(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    func has(_ path: String) -> Bool { members[Self.key(path)] != nil }
    func hasGroup(_ path: String) -> Bool { has(path + "/.zgroup") }
    func hasArray(_ path: String) -> Bool { has(path + "/.zarray") }

    /// The names one level below `group`, sorted (zarr lists members in name order).
    func children(_ group: String) -> [String] {
        let prefix = Self.key(group) + "/"
        var out = Set<String>()
        for name in members.keys where name.hasPrefix(prefix) {
            if let first = name.dropFirst(prefix.count).split(separator: "/").first, !first.hasPrefix(".") {
                out.insert(String(first))
            }
        }
        return out.sorted()
    }

    /// A member's bytes, or nil when absent. Its size is checked against `limit` and against
    /// what its stored bytes can inflate to before anything is allocated.
    func read(_ path: String, limit: Int) throws -> [UInt8]? {
        guard let index = members[Self.key(path)] else { return nil }
        lock.lock()
        defer { lock.unlock() }
        var size: UInt64 = 0, stored: UInt64 = 0
        guard czip_sizes(archive, index, &size, &stored) == 0 else {
            throw FrameIOError(.corrupt, url: url, "zip member \(path): unreadable directory entry")
        }
        let plausible = UInt64(FrameLimits.maxDecodedBytes(fileBytes: Int(clamping: min(stored, UInt64(fileBytes))), compressed: true))
        guard size <= UInt64(limit), size <= plausible else {
            throw FrameIOError(.corrupt, url: url, "zip member \(path) claims \(size) bytes (limit \(min(UInt64(limit), plausible)))")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok = size == 0 || out.withUnsafeMutableBytes { czip_read(archive, index, $0.baseAddress, size) } == 0
        guard ok else { throw FrameIOError(.corrupt, url: url, "zip member \(path) cannot be read (damaged or cut short)") }
        return out
    }

    /// A member holding a JSON object, or nil when absent.
    func json(_ path: String) throws -> [String: Any]? {
        guard let bytes = try read(path, limit: FrameLimits.maxMetadataBytes) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
              let dict = object as? [String: Any] else {
            throw FrameIOError(.corrupt, url: url, "\(path) is not a JSON object")
        }
        return dict
    }
}

/// One zarr v2 array of a `ZipStore`, read frame by frame.
final class ZarrArray: @unchecked Sendable {
    enum Codec { case none, blosc, zstd, zlib, gzip }

    let path: String
    let shape: [Int]
    let chunks: [Int]
    let sampleType: SampleType?
    let littleEndian: Bool
    private let codec: Codec
    private let separator: String
    private let fill: [UInt8]
    private let store: ZipStore
    private let lock = NSLock()
    private var cached: (key: String, bytes: [UInt8])?

    init(store: ZipStore, path: String) throws {
        self.store = store
        self.path = path
        let url = store.url
        guard let meta = try store.json(path + "/.zarray") else { throw FrameIOError(.corrupt, url: url, "\(path): no .zarray") }
        guard (meta["zarr_format"] as? NSNumber)?.intValue == 2 else {
            throw FrameIOError(.unsupported, url: url, "\(path): zarr format \(meta["zarr_format"] ?? "none") (HeatFront reads version 2)")
        }
        guard let shape = (meta["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
              let chunks = (meta["chunks"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
              shape.count == chunks.count, shape.count <= 8, shape.allSatisfy({ $0 >= 0 }), chunks.allSatisfy({ $0 >= 1 }),
              let dtype = meta["dtype"] as? String else {
            throw FrameIOError(.corrupt, url: url, "\(path)/.zarray: shape, chunks or dtype missing or malformed")
        }
        self.shape = shape
        self.chunks = chunks
        (sampleType, littleEndian) = Self.parse(dtype: dtype)
        separator = (meta["dimension_separator"] as? String) == "/" ? "/" : "."
        if let order = meta["order"] as? String, order != "C" {
            throw FrameIOError(.unsupported, url: url, "\(path): zarr order '\(order)' (HeatFront reads C order)")
        }
        if let filters = meta["filters"], !(filters is NSNull), !((filters as? [Any])?.isEmpty ?? false) {
            throw FrameIOError(.unsupported, url: url, "\(path): zarr filters \(filters) (HeatFront reads arrays without filters)")
        }
        codec = try Self.codec(meta["compressor"], url: url, path: path)
        let type = sampleType ?? .uint8
        fill = Self.fillBytes(meta["fill_value"], type: type, littleEndian: littleEndian)
        guard sampleType != nil else { return }
        // Declared sizes against the caps and the archive's length, before any chunk is read.
        let chunkBytes = chunks.reduce(type.byteCount) { $0.multipliedReportingOverflow(by: $1).partialValue }
        let total = shape.reduce(type.byteCount) { $0.multipliedReportingOverflow(by: $1).partialValue }
        let limit = FrameLimits.maxDecodedBytes(fileBytes: store.fileBytes, compressed: true)
        guard chunkBytes <= FrameLimits.maxChunkBytes, chunkBytes <= limit, total <= limit else {
            throw FrameIOError(.corrupt, url: url, "\(path): declares \(shape) samples in chunks of \(chunks), far more than the \(store.fileBytes)-byte file can hold")
        }
    }

    /// numpy's dtype string: `<i2`, `>f4`, `|u1`, `<f2` …
    static func parse(dtype: String) -> (SampleType?, Bool) {
        let order = dtype.first
        let little = order != ">"
        let code = (order == "<" || order == ">" || order == "|" || order == "=") ? String(dtype.dropFirst()) : dtype
        let type: SampleType?
        switch code {
        case "u1": type = .uint8
        case "i1": type = .int8
        case "u2": type = .uint16
        case "i2": type = .int16
        case "u4": type = .uint32
        case "i4": type = .int32
        case "u8": type = .uint64
        case "i8": type = .int64
        case "f2": type = .float16
        case "f4": type = .float32
        case "f8": type = .float64
        default: type = nil
        }
        return (type, little)
    }

    static func codec(_ value: Any?, url: URL, path: String) throws -> Codec {
        guard let c = value as? [String: Any] else {
            if value == nil || value is NSNull { return .none }
            throw FrameIOError(.corrupt, url: url, "\(path): malformed compressor")
        }
        switch c["id"] as? String {
        case "blosc": return .blosc
        case "zstd": return .zstd
        case "zlib": return .zlib
        case "gzip": return .gzip
        default: throw FrameIOError(.unsupported, url: url, "\(path): zarr compressor '\(c["id"] ?? "?")' (HeatFront reads blosc, zstd, zlib, gzip)")
        }
    }

    /// The fill value's bytes in the array's type and byte order (null: zeros).
    static func fillBytes(_ value: Any?, type: SampleType, littleEndian: Bool) -> [UInt8] {
        var v = 0.0
        if let n = value as? NSNumber { v = n.doubleValue }
        else if let s = value as? String { v = s == "NaN" ? .nan : s == "Infinity" ? .infinity : s == "-Infinity" ? -.infinity : 0 }
        func bytes<T>(_ x: T) -> [UInt8] { withUnsafeBytes(of: x) { Array($0) } }
        func int<T: FixedWidthInteger>(_: T.Type) -> [UInt8] {
            let x = v.isFinite ? T(clamping: Int64(max(min(v, 9.2e18), -9.2e18))) : 0
            return bytes(littleEndian ? x.littleEndian : x.bigEndian)
        }
        switch type {
        case .uint8: return int(UInt8.self)
        case .int8: return int(Int8.self)
        case .uint16: return int(UInt16.self)
        case .int16: return int(Int16.self)
        case .uint32: return int(UInt32.self)
        case .int32: return int(Int32.self)
        case .uint64: return int(UInt64.self)
        case .int64: return int(Int64.self)
        case .float16:
            let h = Float16Bits.from(Float(v))
            return bytes(littleEndian ? h.littleEndian : h.bigEndian)
        case .float32:
            let b = Float(v).bitPattern
            return bytes(littleEndian ? b.littleEndian : b.bigEndian)
        case .float64:
            let b = v.bitPattern
            return bytes(littleEndian ? b.littleEndian : b.bigEndian)
        }
    }

    /// The decoded bytes of the chunk at `indices` (the fill value when it is missing).
    private func chunk(_ indices: [Int]) throws -> [UInt8] {
        let key = indices.map(String.init).joined(separator: separator)
        if let c = cached, c.key == key { return c.bytes }
        let itemSize = sampleType!.byteCount
        let n = chunks.reduce(1, *)
        let url = store.url
        var out: [UInt8]
        if let raw = try store.read(path + "/" + key, limit: FrameLimits.maxChunkBytes) {
            out = [UInt8](repeating: 0, count: n * itemSize)
            let status: Int32 = raw.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in
                    switch codec {
                    case .none:
                        guard src.count == dst.count else { return -3 }
                        dst.copyMemory(from: src); return 0
                    case .blosc: return czarr_blosc(src.baseAddress, src.count, dst.baseAddress, dst.count)
                    case .zstd: return czarr_zstd(src.baseAddress, src.count, dst.baseAddress, dst.count)
                    case .zlib: return czarr_inflate(src.baseAddress, src.count, dst.baseAddress, dst.count, 0)
                    case .gzip: return czarr_inflate(src.baseAddress, src.count, dst.baseAddress, dst.count, 1)
                    }
                }
            }
            guard status == 0 else {
                throw FrameIOError(.corrupt, url: url, "\(path)/\(key): the \(codec) chunk does not decode to its \(n * itemSize) bytes (code \(status))")
            }
        } else {
            out = [UInt8](repeating: 0, count: n * itemSize)
            if fill.contains(where: { $0 != 0 }) {
                for i in 0..<n { for b in 0..<itemSize { out[i * itemSize + b] = fill[b] } }
            }
        }
        cached = (key, out)
        return out
    }

    /// Frame `k` (the first axis of a 3-D array; the whole of a 2-D one), assembled from the
    /// chunks that cover it.
    func frame(_ k: Int, height: Int, width: Int) throws -> PixelPlane {
        guard let type = sampleType else { throw FrameIOError(.unsupported, url: store.url, "\(path): not an image type") }
        lock.lock()
        defer { lock.unlock() }
        let itemSize = type.byteCount
        let rank = shape.count
        let (ch, cw) = (chunks[rank - 2], chunks[rank - 1])
        let plane = rank == 3 ? k / chunks[0] : 0, within = rank == 3 ? k % chunks[0] : 0
        var raw = [UInt8](repeating: 0, count: height * width * itemSize)
        for ci in 0..<((height + ch - 1) / ch) {
            for cj in 0..<((width + cw - 1) / cw) {
                let bytes = try chunk(rank == 3 ? [plane, ci, cj] : [ci, cj])
                let rows = min(ch, height - ci * ch), cols = min(cw, width - cj * cw)
                for r in 0..<rows {
                    let src = ((within * ch + r) * cw) * itemSize
                    let dst = ((ci * ch + r) * width + cj * cw) * itemSize
                    raw.withUnsafeMutableBytes { d in
                        bytes.withUnsafeBytes { s in
                            (d.baseAddress! + dst).copyMemory(from: s.baseAddress! + src, byteCount: cols * itemSize)
                        }
                    }
                }
            }
        }
        return raw.withUnsafeBytes { PixelPlane.decode($0, type: type, littleEndian: littleEndian, width: width, height: height) }
    }
}

/// IEEE binary16 bit patterns from Float (round to nearest even), for fill values.
enum Float16Bits {
    static func from(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        if f.isNaN { return sign | 0x7E00 }
        let exp = Int((b >> 23) & 0xFF) - 127 + 15
        var mant = b & 0x7F_FFFF
        if exp >= 31 { return sign | 0x7C00 }
        if exp <= 0 {
            guard exp >= -10 else { return sign }
            mant |= 0x80_0000
            let shift = UInt32(14 - exp)
            var h = mant >> shift
            if (mant >> (shift - 1)) & 1 == 1, (mant & ((1 << (shift - 1)) - 1)) != 0 || h & 1 == 1 { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(exp) << 10 | (mant >> 13)
        if mant & 0x1000 != 0, (mant & 0xFFF) != 0 || h & 1 == 1 { h += 1 }
        return sign | UInt16(h)
    }
}
