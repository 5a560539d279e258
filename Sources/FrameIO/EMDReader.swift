import Foundation
import CHDF5

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

/// Thermo Fisher Velox EMD files (HDF5), read through the HDF5 C library.
///
/// Layout (Velox "EMD" v8–v11; RosettaSciIO `rsciio/emd/_emd_velox.py`, ncempy
/// `ncempy/io/emdVelox.py`): each image signal is a group `/Data/Image/<uuid>/` holding
/// `Data`, stored (height, width, frames) in the native integer or float type, and
/// `Metadata`, uint8 (bytes, frames): one NUL-padded JSON text per frame. Signals are
/// numbered by the groups in name order, as h5py iterates them, counting groups that are
/// not listed here (complex half-FFTs and DPC images are compound types, not images).
///
/// Frames are read one at a time with a hyperslab selection of one frame column, so a long
/// series is never held whole. Dataset shapes are checked against sanity limits before any
/// allocation. All HDF5 calls go through `HDF5Access.serialized`, which also makes the
/// reader safe to share between threads.
public final class EMDReader: FrameFileReader, @unchecked Sendable {
    public let url: URL
    public var format: FrameFormat { .emd }
    public let signals: [SignalInfo]
    public let primarySignal: Int
    public let fileMetadata: [String: String]

    /// Largest frame side and frame count accepted, and largest pixel count of one frame.
    public static let maxSide = 1 << 16
    public static let maxFrames = 1 << 24
    public static let maxFramePixels = 1 << 28
    /// Largest per-frame metadata text accepted (Velox writes 60,000 bytes).
    static let maxMetadataBytes = 1 << 24

    private struct Entry {
        var group: String          // "/Data/Image/<uuid>"
        var rank: Int              // 2 (height, width) or 3 (height, width, frames)
        var metadataColumns: Int   // frames with their own metadata text (0 when absent)
        var metadataBytes: Int
        var first: VeloxFrameMetadata
    }

    private let file: hid_t
    private let entries: [Entry]

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let attrs: [FileAttributeKey: Any]
        do { attrs = try FileManager.default.attributesOfItem(atPath: path) }
        catch { throw FrameIOError(.io, url: url, "cannot read the file") }
        if (attrs[.size] as? NSNumber)?.intValue == 0 { throw FrameIOError(.truncated, url: url, "empty file (0 bytes)") }

        let opened: (hid_t, [SignalInfo], [Entry]) = try HDF5Access.serialized {
            let isHDF5 = H5Fis_hdf5(path)
            if isHDF5 == 0 { throw FrameIOError(.badMagic, url: url, "not an HDF5 file (no HDF5 signature)") }
            guard isHDF5 > 0 else { throw Self.openError(url, HDF5Access.errorText()) }
            // Read-only opens take a shared file lock; on file systems without locks (some
            // network shares) HDF5 would refuse the file, so carry on there without one.
            let fapl = H5Pcreate(chdf5_p_file_access())
            defer { H5Pclose(fapl) }
            _ = H5Pset_file_locking(fapl, true, true)
            let f = H5Fopen(path, chdf5_f_acc_rdonly(), fapl)
            guard f >= 0 else { throw Self.openError(url, HDF5Access.errorText()) }
            do {
                let (infos, entries) = try Self.listSignals(file: f, url: url)
                return (f, infos, entries)
            } catch {
                H5Fclose(f)
                _ = HDF5Access.errorText()
                throw error
            }
        }
        (file, signals, entries) = opened
        primarySignal = signals.firstIndex { $0.name.uppercased() == "HAADF" } ?? 0
        fileMetadata = entries.isEmpty ? [:] : entries[primarySignal].first.flat
    }

    deinit {
        let f = file
        HDF5Access.serialized { _ = H5Fclose(f) }
    }

    private static func openError(_ url: URL, _ cause: String) -> FrameIOError {
        let truncated = cause.localizedCaseInsensitiveContains("truncated")
            || cause.localizedCaseInsensitiveContains("end of file") || cause.localizedCaseInsensitiveContains("eof")
        let detail = "HDF5 cannot open the file" + (truncated ? " (truncated)" : "") + (cause.isEmpty ? "" : ": \(cause)")
        return FrameIOError(truncated ? .truncated : .corrupt, url: url, detail)
    }

    // MARK: Listing

    /// Walks `/Data/Image` in name order; lists the integer and float image datasets.
    private static func listSignals(file f: hid_t, url: URL) throws -> ([SignalInfo], [Entry]) {
        guard H5Lexists(f, "/Data", chdf5_p_default()) > 0, H5Lexists(f, "/Data/Image", chdf5_p_default()) > 0 else {
            throw FrameIOError(.unsupported, url: url, "no /Data/Image group: not a Velox EMD image file")
        }
        let g = H5Gopen2(f, "/Data/Image", chdf5_p_default())
        guard g >= 0 else { throw FrameIOError(.corrupt, url: url, "/Data/Image is not a group") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw FrameIOError(.corrupt, url: url, "cannot list /Data/Image") }
        guard info.nlinks <= 100_000 else { throw FrameIOError(.corrupt, url: url, "/Data/Image claims \(info.nlinks) members") }

        var infos: [SignalInfo] = [], entries: [Entry] = []
        for i in 0..<Int(info.nlinks) {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), nil, 0, chdf5_p_default())
            guard n > 0, n < 4096 else { throw FrameIOError(.corrupt, url: url, "unreadable member name in /Data/Image") }
            var buf = [CChar](repeating: 0, count: n + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), &buf, n + 1, chdf5_p_default())
            let name = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let group = "/Data/Image/" + name
            guard let (signal, entry) = try describe(file: f, group: group, index: i, url: url) else { continue }
            infos.append(signal)
            entries.append(entry)
        }
        guard !infos.isEmpty else { throw FrameIOError(.unsupported, url: url, "no image signal under /Data/Image") }
        return (infos, entries)
    }

    /// One `/Data/Image/<uuid>` group as a signal, or nil when it holds no integer or float
    /// image (complex FFT, DPC vector data, a stray dataset).
    private static func describe(file f: hid_t, group: String, index: Int, url: URL) throws -> (SignalInfo, Entry)? {
        let dataPath = group + "/Data"
        guard isLocalLink(f, group), H5Oexists_by_name(f, group, chdf5_p_default()) > 0,
              isLocalLink(f, dataPath) else { _ = HDF5Access.errorText(); return nil }
        let d = H5Dopen2(f, dataPath, chdf5_p_default())
        guard d >= 0 else { _ = HDF5Access.errorText(); return nil }
        defer { H5Dclose(d) }
        let t = H5Dget_type(d)
        guard t >= 0 else { throw FrameIOError(.corrupt, url: url, "\(dataPath): unreadable data type") }
        defer { H5Tclose(t) }
        guard let type = sampleType(t) else { return nil }

        let space = H5Dget_space(d)
        guard space >= 0 else { throw FrameIOError(.corrupt, url: url, "\(dataPath): unreadable dataspace") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank == 2 || rank == 3 else { return nil }
        var dims = [hsize_t](repeating: 0, count: 3)
        H5Sget_simple_extent_dims(space, &dims, nil)
        let height = dims[0], width = dims[1], frames = rank == 3 ? dims[2] : 1
        guard height >= 1, width >= 1, frames >= 1,
              height <= hsize_t(maxSide), width <= hsize_t(maxSide), frames <= hsize_t(maxFrames),
              height * width <= hsize_t(maxFramePixels) else {
            throw FrameIOError(.corrupt, url: url, "\(dataPath): implausible size \(height)×\(width)×\(frames) (height×width×frames)")
        }
        // A dataset that declares pixels but stores none (unwritten chunks) or, stored without
        // compression, fewer bytes than it declares, is damaged; checking it here also keeps a
        // tiny file from making HeatFront allocate frames it cannot hold.
        let raw = height * width * frames * hsize_t(type.byteCount)
        let stored = H5Dget_storage_size(d)
        if stored == 0 {
            throw FrameIOError(.truncated, url: url, "\(dataPath): declares \(height)×\(width)×\(frames) pixels but stores no data")
        }
        let dcpl = H5Dget_create_plist(d)
        if dcpl >= 0 {
            if H5Pget_nfilters(dcpl) == 0, stored < raw {
                H5Pclose(dcpl)
                throw FrameIOError(.truncated, url: url, "\(dataPath): stores \(stored) of \(raw) bytes")
            }
            H5Pclose(dcpl)
        }

        // Per-frame metadata: lenient, a signal without readable metadata is still pixels.
        var columns = 0, bytes = 0
        var first = VeloxFrameMetadata(flat: [:])
        if let (b, c) = metadataShape(file: f, group: group) {
            bytes = b; columns = c
            if let text = try? readMetadataBytes(file: f, group: group, column: 0, bytes: b, columns: c, url: url),
               let md = try? VeloxFrameMetadata(jsonBytes: text) {
                first = md
            }
        }
        _ = HDF5Access.errorText()
        let px = first.pixelSizeNm
        let signal = SignalInfo(index: index, name: first.detectorName ?? String(group.split(separator: "/").last ?? ""),
                                frameCount: Int(frames), height: Int(height), width: Int(width), sampleType: type,
                                pixelSizeXNm: px.x, pixelSizeYNm: px.y)
        return (signal, Entry(group: group, rank: rank, metadataColumns: columns, metadataBytes: bytes, first: first))
    }

    /// Whether `path` exists as a link inside this file. External links are refused: a
    /// file must not make HeatFront open other files (Velox never writes them).
    private static func isLocalLink(_ f: hid_t, _ path: String) -> Bool {
        guard H5Lexists(f, path, chdf5_p_default()) > 0 else { return false }
        var info = H5L_info_t()
        return H5Lget_info(f, path, &info, chdf5_p_default()) >= 0 && info.type != H5L_TYPE_EXTERNAL
    }

    /// The native sample type of an HDF5 integer or float type; nil for anything else.
    private static func sampleType(_ t: hid_t) -> SampleType? {
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
            case 4: return .float32
            case 8: return .float64
            default: return nil
            }
        default: return nil
        }
    }

    private static func nativeType(_ t: SampleType) -> hid_t {
        switch t {
        case .uint8: chdf5_native_uint8()
        case .int8: chdf5_native_int8()
        case .uint16: chdf5_native_uint16()
        case .int16: chdf5_native_int16()
        case .uint32: chdf5_native_uint32()
        case .int32: chdf5_native_int32()
        case .uint64: chdf5_native_uint64()
        case .int64: chdf5_native_int64()
        case .float32: chdf5_native_float()
        case .float64: chdf5_native_double()
        }
    }

    /// (bytes per text, number of texts) of a group's `Metadata` dataset, or nil.
    private static func metadataShape(file f: hid_t, group: String) -> (Int, Int)? {
        let path = group + "/Metadata"
        guard isLocalLink(f, path) else { return nil }
        let d = H5Dopen2(f, path, chdf5_p_default())
        guard d >= 0 else { return nil }
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        guard space >= 0 else { return nil }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank == 1 || rank == 2 else { return nil }
        var dims = [hsize_t](repeating: 0, count: 2)
        H5Sget_simple_extent_dims(space, &dims, nil)
        let columns = rank == 2 ? dims[1] : 1
        guard dims[0] >= 1, dims[0] <= hsize_t(maxMetadataBytes), columns >= 1, columns <= hsize_t(maxFrames) else { return nil }
        return (Int(dims[0]), Int(columns))
    }

    /// The raw text bytes of metadata column `column`, read with a one-column hyperslab.
    private static func readMetadataBytes(file f: hid_t, group: String, column: Int, bytes: Int, columns: Int,
                                          url: URL) throws -> [UInt8] {
        let path = group + "/Metadata"
        let d = H5Dopen2(f, path, chdf5_p_default())
        guard d >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): \(HDF5Access.errorText())") }
        defer { H5Dclose(d) }
        let fspace = H5Dget_space(d)
        defer { H5Sclose(fspace) }
        let rank = Int(H5Sget_simple_extent_ndims(fspace))
        if rank == 2 {
            var start: [hsize_t] = [0, hsize_t(column)], count: [hsize_t] = [hsize_t(bytes), 1]
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &count, nil)
        }
        var memDims: [hsize_t] = [hsize_t(bytes)]
        let mspace = H5Screate_simple(1, &memDims, nil)
        defer { H5Sclose(mspace) }
        var out = [UInt8](repeating: 0, count: bytes)
        let status = out.withUnsafeMutableBytes {
            H5Dread(d, chdf5_native_uint8(), mspace, fspace, chdf5_p_default(), $0.baseAddress)
        }
        guard status >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): \(HDF5Access.errorText())") }
        return out
    }

    // MARK: Frames

    private func checked(_ signal: Int, _ frame: Int) throws -> SignalInfo {
        guard signals.indices.contains(signal) else {
            throw FrameIOError(.corrupt, url: url, "no signal \(signal) (the file lists \(signals.count))")
        }
        let s = signals[signal]
        guard (0..<s.frameCount).contains(frame) else {
            throw FrameIOError(.corrupt, url: url, "signal \(signal) has no frame \(frame) (it has \(s.frameCount))")
        }
        return s
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let s = try checked(signal, frame)
        let entry = entries[signal]
        let url = self.url, file = self.file
        return try HDF5Access.serialized {
            let path = entry.group + "/Data"
            let d = H5Dopen2(file, path, chdf5_p_default())
            guard d >= 0 else { throw FrameIOError(.corrupt, url: url, "\(path): \(HDF5Access.errorText())") }
            defer { H5Dclose(d) }
            let fspace = H5Dget_space(d)
            defer { H5Sclose(fspace) }
            if entry.rank == 3 {
                // One frame of the (height, width, frames) dataset: a height×width×1 block.
                var start: [hsize_t] = [0, 0, hsize_t(frame)]
                var count: [hsize_t] = [hsize_t(s.height), hsize_t(s.width), 1]
                H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &count, nil)
            }
            let n = s.height * s.width
            var memDims: [hsize_t] = [hsize_t(n)]
            let mspace = H5Screate_simple(1, &memDims, nil)
            defer { H5Sclose(mspace) }
            let memType = Self.nativeType(s.sampleType)
            func read<T: Numeric>(_: T.Type) throws -> [T] {
                var out = [T](repeating: 0, count: n)
                let status = out.withUnsafeMutableBytes {
                    H5Dread(d, memType, mspace, fspace, chdf5_p_default(), $0.baseAddress)
                }
                guard status >= 0 else {
                    throw FrameIOError(.corrupt, url: url, "\(path): frame \(frame): \(HDF5Access.errorText())")
                }
                return out
            }
            let values: PixelPlane.Values
            switch s.sampleType {
            case .uint8: values = .uint8(try read(UInt8.self))
            case .int8: values = .int8(try read(Int8.self))
            case .uint16: values = .uint16(try read(UInt16.self))
            case .int16: values = .int16(try read(Int16.self))
            case .uint32: values = .uint32(try read(UInt32.self))
            case .int32: values = .int32(try read(Int32.self))
            case .uint64: values = .uint64(try read(UInt64.self))
            case .int64: values = .int64(try read(Int64.self))
            case .float32: values = .float32(try read(Float.self))
            case .float64: values = .float64(try read(Double.self))
            }
            return PixelPlane(width: s.width, height: s.height, values: values)
        }
    }

    /// The frame's calibration, times and dwell from its own metadata text.
    ///
    /// Time, first that applies: the detector's per-frame timestamp (camera series); else the
    /// acquisition start plus `frame × frame period` (STEM series, whose per-frame texts all
    /// carry the same start). `relativeTime_s` is measured from frame 0 the same way.
    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        let s = try checked(signal, frame)
        let entry = entries[signal]
        let first = entry.first
        var md = first
        if frame > 0, frame < entry.metadataColumns {
            let url = self.url, file = self.file
            let bytes = try HDF5Access.serialized {
                try Self.readMetadataBytes(file: file, group: entry.group, column: frame, bytes: entry.metadataBytes,
                                           columns: entry.metadataColumns, url: url)
            }
            do { md = try VeloxFrameMetadata(jsonBytes: bytes) }
            catch let e as VeloxMetadataError {
                throw FrameIOError(.corrupt, url: url, "\(entry.group)/Metadata frame \(frame): \(e.detail)")
            }
        }
        let ownText = frame == 0 || frame < entry.metadataColumns
        let detector = first.detectorName
        let period = first.framePeriod_s
        var acquisition: Date? = nil, relative: Double? = nil
        if ownText, let stamp = md.detectorTimeStamp(detector: detector) {
            acquisition = stamp
            if let stamp0 = first.detectorTimeStamp(detector: detector) { relative = stamp.timeIntervalSince(stamp0) }
        } else if frame == 0 {
            acquisition = first.acquisitionStart   // whole seconds only
            relative = 0
        } else if let period {
            relative = Double(frame) * period
            let base = first.detectorTimeStamp(detector: detector) ?? first.acquisitionStart
            acquisition = base.map { $0.addingTimeInterval(Double(frame) * period) }
        }
        let px = md.pixelSizeNm
        return FrameMetadata(pixelSizeXNm: px.x ?? s.pixelSizeXNm, pixelSizeYNm: px.y ?? s.pixelSizeYNm,
                             acquisitionTime: acquisition, relativeTime_s: relative,
                             dwellTime_s: md.dwellTime_s, temperatureC: md.temperatureC, original: md.flat)
    }
}
