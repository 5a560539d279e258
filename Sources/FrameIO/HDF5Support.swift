import Foundation
import CHDF5
import CHDF5Guard
#if canImport(Glibc)
import Glibc
#endif

/// Serialises every call into the HDF5 C library.
///
/// HDF5 is only safe to call from several threads when built with `--enable-threadsafe`.
/// Default source builds (and several distributions' and Homebrew's) are not: their error
/// stack, identifier tables, metadata cache and free lists are process-wide and unprotected,
/// so two threads inside HDF5 at once can corrupt memory. (This machine's Debian package
/// reports `H5is_library_threadsafe` = yes, but HeatFront must not depend on how HDF5 was
/// built; a threadsafe build takes one global lock internally anyway, so nothing is lost.)
/// Every HDF5 call in HeatFront, and in its tests, which write files with the C API, goes
/// through `serialized`. The lock is recursive so a helper may call another that takes it.
///
/// Each entry also switches off HDF5's automatic error printing for the calling thread (a
/// threadsafe build keeps one error stack per thread): failures come back as `FrameIOError`s
/// that name their cause (`chdf5_error_text`), never as a stack dump on stderr.
public enum HDF5Access {
    private static let lock = NSRecursiveLock()
    private static let ready: Bool = { H5open() >= 0 }()

    public static func serialized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = ready
        _ = H5Eset_auto2(chdf5_e_default(), nil, nil)
        return try body()
    }

    /// The pending HDF5 error stack as one line, innermost cause first (clears the stack).
    /// Call only inside `serialized`.
    static func errorText() -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        buf.withUnsafeMutableBufferPointer { chdf5_error_text($0.baseAddress, $0.count) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Reading helpers shared by the HDF5-based decoders (Velox EMD, HyperSpy, Berkeley EMD),
/// after the HDF5 1.10 reference manual. Call them only inside `HDF5Access.serialized`.
///
/// Nothing here trusts a size the file declares: a dataset's shape, chunk shape and
/// storage are checked against `FrameLimits` and the file's real length before a frame
/// buffer is allocated (`checkDataset`), attributes are read through C helpers that check
/// their class and size first, and group listings and walks are capped.
enum HDF5 {
    /// Most members listed from one group, and deepest group nesting walked.
    static let maxMembers = 100_000
    static let maxDepth = 32

    /// Opens `url` read-only: a regular, non-empty file with the HDF5 signature. Returns
    /// the file identifier and the file's length in bytes.
    static func openFile(_ url: URL) throws -> (id: hid_t, bytes: Int) {
        let size = try regularFileSize(url)
        guard size > 0 else { throw FrameIOError(.truncated, url: url, "empty file (0 bytes)") }
        let isHDF5 = H5Fis_hdf5(url.path)
        if isHDF5 == 0 { throw FrameIOError(.badMagic, url: url, "not an HDF5 file (no HDF5 signature)") }
        guard isHDF5 > 0 else { throw openError(url, HDF5Access.errorText()) }
        // Through HeatFront's read-only driver (CHDF5Guard), which refuses the global heap
        // collections HDF5 1.10 would loop on forever before HDF5 decodes them, and records
        // the damage its checks of heap objects and attribute tables find (`listing`). Read-only
        // opens take a shared file lock; on file systems without locks (some network
        // shares) HDF5 would refuse the file, so carry on there without one.
        let fapl = H5Pcreate(chdf5_p_file_access())
        defer { H5Pclose(fapl) }
        guard chdf5_use_guard_driver(fapl) == 0 else {
            throw FrameIOError(.io, url: url, "cannot set up HDF5's file driver: \(HDF5Access.errorText())")
        }
        _ = H5Pset_file_locking(fapl, true, true)
        let f = H5Fopen(url.path, chdf5_f_acc_rdonly(), fapl)
        guard f >= 0 else {
            let cause = HDF5Access.errorText()
            throw openError(url, lastRefusal() ?? cause)
        }
        return (f, size)
    }

    /// Runs `list` on the file `f` just opened, and closes `f` when it throws. When the checks
    /// of CHDF5Guard found damage while listing (a heap object refused, attribute messages
    /// HDF5 cannot decode: attributes that then read as absent), that damage is the error,
    /// whatever `list` concluded.
    static func listing<T>(_ f: hid_t, url: URL, _ list: () throws -> T) throws -> T {
        do {
            let result = try list()
            if let damage = heapDamage(f) { throw FrameIOError(.corrupt, url: url, damage) }
            return result
        } catch {
            let damage = heapDamage(f)
            H5Fclose(f)
            _ = HDF5Access.errorText()
            if let damage, (error as? FrameIOError)?.detail != damage { throw FrameIOError(.corrupt, url: url, damage) }
            throw error
        }
    }

    /// The damage CHDF5Guard's checks found in `f`, if any.
    static func heapDamage(_ f: hid_t) -> String? {
        let damage = guardText(capacity: 512) { chdf5_guard_damage(f, $0, $1) }
        _ = HDF5Access.errorText()
        return damage
    }

    /// What CHDF5Guard refused last while HDF5 opened the file or read a dataset, if anything.
    static func lastRefusal() -> String? {
        guardText(capacity: 256) { chdf5_guard_last_refusal($0, $1) }
    }

    /// The text one of CHDF5Guard's reporters writes into a buffer of `capacity` bytes (it
    /// returns the length), or nil when there is none.
    private static func guardText(capacity: Int, _ write: (UnsafeMutablePointer<CChar>?, Int) -> Int) -> String? {
        var buf = [CChar](repeating: 0, count: capacity)
        let n = buf.withUnsafeMutableBufferPointer { write($0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    /// `H5Dread` with CHDF5Guard told which dataset's chunks come next, so that a compressed
    /// chunk decompressing to another size than its dimensions hold is refused.
    static func guardedRead(_ d: hid_t, as memType: hid_t, memory: hid_t, file: hid_t, into buffer: UnsafeMutableRawPointer?) -> herr_t {
        chdf5_expect_chunks_of(d)
        defer { chdf5_expect_chunks_of(-1) }
        return H5Dread(d, memType, memory, file, chdf5_p_default(), buffer)
    }

    static func openError(_ url: URL, _ cause: String) -> FrameIOError {
        let truncated = cause.localizedCaseInsensitiveContains("truncated")
            || cause.localizedCaseInsensitiveContains("end of file") || cause.localizedCaseInsensitiveContains("eof")
        let detail = "HDF5 cannot open the file" + (truncated ? " (truncated)" : "") + (cause.isEmpty ? "" : ": \(cause)")
        return FrameIOError(truncated ? .truncated : .corrupt, url: url, detail)
    }

    // MARK: Links and objects

    /// Whether `path` (absolute, or relative to `loc`) names an object through local links
    /// only. Each component is checked in turn, as `H5Lexists` requires; external links are
    /// refused, so a file cannot make HeatFront open other files.
    static func exists(_ loc: hid_t, _ path: String) -> Bool {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            guard H5Lexists(loc, prefix, chdf5_p_default()) > 0 else { _ = HDF5Access.errorText(); return false }
            var info = H5L_info_t()
            guard H5Lget_info(loc, prefix, &info, chdf5_p_default()) >= 0, info.type != H5L_TYPE_EXTERNAL else {
                _ = HDF5Access.errorText(); return false
            }
        }
        let ok = H5Oexists_by_name(loc, path.isEmpty ? "." : path, chdf5_p_default()) > 0
        _ = HDF5Access.errorText()
        return ok
    }

    enum Kind: Equatable {
        case group, dataset, other
        /// Linked but HDF5 cannot open it (a damaged object header, or a layout newer than
        /// this HDF5 reads), with HDF5's reason.
        case unreadable(String)
    }

    /// What `path` is, or nil when it does not exist (through local links).
    static func kind(_ loc: hid_t, _ path: String) -> Kind? {
        guard exists(loc, path) else { return nil }
        let o = H5Oopen(loc, path, chdf5_p_default())
        guard o >= 0 else { return .unreadable(HDF5Access.errorText()) }
        defer { H5Oclose(o) }
        switch H5Iget_type(o) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// The file address of the object at `path`: two paths naming one object (hard links, or
    /// a group linked into itself) share it. Nil when the object cannot be opened.
    static func address(_ loc: hid_t, _ path: String) -> haddr_t? {
        let o = H5Oopen(loc, path, chdf5_p_default())
        guard o >= 0 else { return nil }
        defer { H5Oclose(o) }
        var info = H5O_info_t()
        return H5Oget_info2(o, &info, UInt32(H5O_INFO_BASIC)) >= 0 ? info.addr : nil
    }

    /// The names of a group's members in name order (h5py's iteration order).
    static func members(_ loc: hid_t, _ path: String, url: URL) throws -> [String] {
        let g = H5Gopen2(loc, path, chdf5_p_default())
        guard g >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path) is not a readable group: \(HDF5Access.errorText())") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw FrameIOError(.corrupt, url: url, "cannot list \(path): \(HDF5Access.errorText())") }
        guard info.nlinks <= hsize_t(maxMembers) else {
            throw FrameIOError(.corrupt, url: url, "\(path) claims \(info.nlinks) members (HeatFront lists at most \(maxMembers))")
        }
        var names: [String] = []
        for i in 0..<Int(info.nlinks) {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), nil, 0, chdf5_p_default())
            guard n > 0, n < 4096 else { throw FrameIOError(.corrupt, url: url, "unreadable member name in \(path)") }
            var buf = [CChar](repeating: 0, count: n + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), &buf, n + 1, chdf5_p_default())
            names.append(String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// Joins a group path and a member name.
    static func join(_ group: String, _ name: String) -> String {
        group == "/" ? "/" + name : group + "/" + name
    }

    // MARK: Attributes

    /// A string attribute (fixed or variable length), or nil.
    static func string(_ obj: hid_t, _ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBufferPointer { chdf5_attr_string(obj, name, $0.baseAddress, $0.count) }
        _ = HDF5Access.errorText()
        guard n >= 0 else { return nil }
        let bytes = buf.prefix(n).map { UInt8(bitPattern: $0) }
        return String(validating: bytes, as: UTF8.self) ?? String(bytes.map { Character(Unicode.Scalar($0)) })
    }

    /// A numeric (integer, float or bool-enum) attribute, or nil.
    static func number(_ obj: hid_t, _ name: String) -> Double? {
        var v = 0.0
        let ok = chdf5_attr_double(obj, name, &v) == 0
        _ = HDF5Access.errorText()
        return ok ? v : nil
    }

    /// An attribute of the object at `path`, read with `read`; nil when either is absent.
    static func attribute<T>(_ loc: hid_t, _ path: String, _ name: String, _ read: (hid_t, String) -> T?) -> T? {
        guard exists(loc, path) else { return nil }
        let o = H5Oopen(loc, path, chdf5_p_default())
        guard o >= 0 else { _ = HDF5Access.errorText(); return nil }
        defer { H5Oclose(o) }
        return read(o, name)
    }

    /// Every attribute of `obj` as text (strings as they are, numbers formatted), in name order.
    static func attributes(_ obj: hid_t) -> [(String, String)] {
        var buf = [CChar](repeating: 0, count: 1 << 16)
        let used = buf.withUnsafeMutableBufferPointer { chdf5_attr_names(obj, $0.baseAddress, $0.count) }
        _ = HDF5Access.errorText()
        let names = buf.prefix(used).split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return names.compactMap { n in
            if let s = string(obj, n) { return (n, s) }
            if let v = number(obj, n) { return (n, v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)) }
            return nil
        }
    }

    // MARK: Datasets

    /// A dataset's declared shape, sample type and storage.
    struct DatasetInfo {
        var dims: [Int]
        /// Nil for types that are not integer or float samples (strings, compounds, complex).
        var sampleType: SampleType?
        var isChunked: Bool
        var isFiltered: Bool
        var chunkDims: [Int]
        /// Chunks written in the file (chunked layout only).
        var writtenChunks: Int
        var storedBytes: Int
        /// Where a contiguous dataset's bytes start in the file; nil for other layouts and
        /// for data not written.
        var dataOffset: Int?
    }

    /// Describes the dataset `d` (rank at most 8).
    static func describe(_ d: hid_t, path: String, url: URL) throws -> DatasetInfo {
        let t = H5Dget_type(d)
        guard t >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): unreadable data type") }
        defer { H5Tclose(t) }
        let space = H5Dget_space(d)
        guard space >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): unreadable dataspace") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0, rank <= 8 else { throw FrameIOError(.corrupt, url: url, "\(path): rank \(rank)") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        var info = DatasetInfo(dims: rank == 0 ? [] : dims.map { $0 > hsize_t(Int32.max) ? Int(Int32.max) : Int($0) },
                               sampleType: sampleType(t), isChunked: false, isFiltered: false, chunkDims: [],
                               writtenChunks: 0, storedBytes: Int(clamping: H5Dget_storage_size(d)))
        let offset = H5Dget_offset(d)
        if offset != haddr_t.max { info.dataOffset = Int(clamping: offset) }
        let dcpl = H5Dget_create_plist(d)
        if dcpl >= 0 {
            defer { H5Pclose(dcpl) }
            info.isFiltered = H5Pget_nfilters(dcpl) > 0
            if H5Pget_layout(dcpl) == H5D_CHUNKED {
                info.isChunked = true
                var c = [hsize_t](repeating: 0, count: 32)
                let n = Int(H5Pget_chunk(dcpl, 32, &c))
                info.chunkDims = n > 0 ? c.prefix(n).map { $0 > hsize_t(Int32.max) ? Int(Int32.max) : Int($0) } : []
                var written: hsize_t = 0
                // HDF5 1.10 wants the dataset's own dataspace here (its docs say H5S_ALL).
                if H5Dget_num_chunks(d, space, &written) >= 0 { info.writtenChunks = Int(clamping: written) }
            }
        }
        _ = HDF5Access.errorText()
        return info
    }

    /// Checks that reading `info` frame by frame is safe and meaningful: the whole declared
    /// size is what the file can hold (as stored, or compressed at most
    /// `FrameLimits.maxCompressionRatio`:1), a chunk fits `FrameLimits.maxChunkBytes`, and a
    /// dataset that declares pixels stores some. Throws one line naming the dataset.
    static func checkDataset(_ info: DatasetInfo, type: SampleType, path: String, url: URL, fileBytes: Int) throws {
        var total = type.byteCount
        for d in info.dims {
            let (r, o) = total.multipliedReportingOverflow(by: max(d, 0))
            guard !o else { throw FrameIOError(.corrupt, url: url, "\(path): declared shape \(info.dims) overflows") }
            total = r
        }
        let shape = info.dims.map(String.init).joined(separator: "×")
        // Compressed data may stand for up to `maxCompressionRatio` times its bytes; the
        // declared size beyond that is a damaged or hostile header, refused before anything
        // is sized by it.
        let limit = FrameLimits.maxDecodedBytes(fileBytes: fileBytes, compressed: info.isFiltered)
        guard total <= limit else {
            throw FrameIOError(.corrupt, url: url, "\(path): declares \(shape) samples (\(total) bytes), far more than the \(fileBytes)-byte file can hold")
        }
        if total > 0, info.storedBytes == 0 {
            throw FrameIOError(.truncated, url: url, "\(path): declares \(shape) samples but stores no data")
        }
        // Data that are not there (unwritten chunks, a short contiguous block) would be read
        // as the fill value: silent zeros. Uncompressed, the stored bytes show it.
        if !info.isFiltered, info.storedBytes < total {
            throw FrameIOError(.truncated, url: url, "\(path): stores \(info.storedBytes) of \(total) bytes")
        }
        if let at = info.dataOffset, at > fileBytes || info.storedBytes > fileBytes - at {
            throw FrameIOError(.truncated, url: url, "\(path): its \(info.storedBytes) bytes lie past the end of the \(fileBytes)-byte file")
        }
        guard info.isChunked else { return }
        let chunk = info.chunkDims.reduce(type.byteCount) { $0.multipliedReportingOverflow(by: max($1, 1)).partialValue }
        guard info.chunkDims.count == info.dims.count, chunk <= FrameLimits.maxChunkBytes,
              chunk <= FrameLimits.maxDecodedBytes(fileBytes: fileBytes, compressed: true) else {
            throw FrameIOError(.corrupt, url: url, "\(path): chunks of \(info.chunkDims) samples (\(chunk) bytes) exceed HeatFront's limit")
        }
        // Uncompressed, every chunk is stored whole: HDF5 copies a chunk out by its
        // dimensions whatever its stored size, past the end of a short one.
        let (whole, overflow) = info.writtenChunks.multipliedReportingOverflow(by: chunk)
        if !info.isFiltered, info.writtenChunks > 0, overflow || info.storedBytes < whole {
            throw FrameIOError(.corrupt, url: url, "\(path): stores \(info.storedBytes) bytes for \(info.writtenChunks) chunk(s) of \(chunk) bytes")
        }
        // Compressed, the chunks written show it.
        let expected = zip(info.dims, info.chunkDims).reduce(1) { $0 * (($1.0 + $1.1 - 1) / $1.1) }
        if info.isFiltered, total > 0, info.writtenChunks < expected {
            throw FrameIOError(.truncated, url: url, "\(path): \(info.writtenChunks) of its \(expected) chunks are written")
        }
    }

    /// The native sample type of an HDF5 integer or float type; nil for anything else.
    static func sampleType(_ t: hid_t) -> SampleType? {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch size {
            case 1: return signed ? .int8 : .uint8
            case 2: return signed ? .int16 : .uint16
            case 4: return signed ? .int32 : .uint32
            case 8: return signed ? .int64 : .uint64
            default: return nil
            }
        case H5T_FLOAT:
            switch size {
            case 2: return .float16   // IEEE half (numpy's float16); HDF5 converts it to float
            case 4: return .float32
            case 8: return .float64
            default: return nil
            }
        default: return nil
        }
    }

    /// The HDF5 memory type samples of `t` are read into.
    static func nativeType(_ t: SampleType) -> hid_t {
        switch t {
        case .uint8: chdf5_native_uint8()
        case .int8: chdf5_native_int8()
        case .uint16: chdf5_native_uint16()
        case .int16: chdf5_native_int16()
        case .uint32: chdf5_native_uint32()
        case .int32: chdf5_native_int32()
        case .uint64: chdf5_native_uint64()
        case .int64: chdf5_native_int64()
        case .float16, .float32: chdf5_native_float()
        case .float64: chdf5_native_double()
        }
    }

    /// Reads the block of dataset `d` at `start` of size `count` (one entry per dimension;
    /// empty for a whole rank-0 dataset) as `type`'s samples, in C order. The caller has
    /// checked the block's size against `FrameLimits`.
    static func read(_ d: hid_t, start: [Int], count: [Int], type: SampleType, path: String, url: URL) throws -> PixelPlane.Values {
        let fspace = H5Dget_space(d)
        guard fspace >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): unreadable dataspace") }
        defer { H5Sclose(fspace) }
        if !count.isEmpty {
            var s = start.map { hsize_t($0) }, c = count.map { hsize_t($0) }
            guard H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &s, nil, &c, nil) >= 0 else {
                throw FrameIOError(.corrupt, url: url, "\(path): block \(start)+\(count) is outside the dataset")
            }
        }
        let n = count.reduce(1, *)
        var memDims: [hsize_t] = [hsize_t(n)]
        let mspace = H5Screate_simple(1, &memDims, nil)
        defer { H5Sclose(mspace) }
        let memType = nativeType(type)
        func values<T: Numeric>(_: T.Type) throws -> [T] {
            var out = [T](repeating: 0, count: n)
            let status = out.withUnsafeMutableBytes { guardedRead(d, as: memType, memory: mspace, file: fspace, into: $0.baseAddress) }
            guard status >= 0 else {
                let cause = HDF5Access.errorText()
                throw FrameIOError(.corrupt, url: url, "\(path): \(lastRefusal() ?? cause)")
            }
            return out
        }
        switch type {
        case .uint8: return .uint8(try values(UInt8.self))
        case .int8: return .int8(try values(Int8.self))
        case .uint16: return .uint16(try values(UInt16.self))
        case .int16: return .int16(try values(Int16.self))
        case .uint32: return .uint32(try values(UInt32.self))
        case .int32: return .int32(try values(Int32.self))
        case .uint64: return .uint64(try values(UInt64.self))
        case .int64: return .int64(try values(Int64.self))
        case .float16: return .float16(try values(Float.self))
        case .float32: return .float32(try values(Float.self))
        case .float64: return .float64(try values(Double.self))
        }
    }

    /// A short 1-D numeric dataset (an axis vector) as doubles; nil when it is not one or
    /// holds more than `maxCount` values.
    static func doubles(_ loc: hid_t, _ path: String, fileBytes: Int, maxCount: Int = 1 << 20) -> [Double]? {
        guard kind(loc, path) == .dataset else { return nil }
        let d = H5Dopen2(loc, path, chdf5_p_default())
        guard d >= 0 else { _ = HDF5Access.errorText(); return nil }
        defer { H5Dclose(d) }
        let url = URL(fileURLWithPath: path)
        guard let info = try? describe(d, path: path, url: url), info.dims.count == 1,
              let type = info.sampleType, info.dims[0] >= 1, info.dims[0] <= maxCount,
              (try? checkDataset(info, type: type, path: path, url: url, fileBytes: fileBytes)) != nil
        else { _ = HDF5Access.errorText(); return nil }
        var out = [Double](repeating: 0, count: info.dims[0])
        let status = out.withUnsafeMutableBytes {
            guardedRead(d, as: chdf5_native_double(), memory: chdf5_s_all(), file: chdf5_s_all(), into: $0.baseAddress)
        }
        _ = HDF5Access.errorText()
        return status >= 0 ? out : nil
    }
}
