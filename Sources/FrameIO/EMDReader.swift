import Foundation
import CHDF5

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

    /// Largest per-frame metadata text accepted (Velox writes 60,000 bytes).
    static let maxMetadataBytes = FrameLimits.maxMetadataBytes

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
        let opened: (hid_t, [SignalInfo], [Entry]) = try HDF5Access.serialized {
            let (f, bytes) = try HDF5.openFile(url)
            return try HDF5.listing(f, url: url) {
                let (infos, entries) = try Self.listSignals(file: f, url: url, fileBytes: bytes)
                return (f, infos, entries)
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

    // MARK: Listing

    /// Walks `/Data/Image` in name order; lists the integer and float image datasets.
    private static func listSignals(file f: hid_t, url: URL, fileBytes: Int) throws -> ([SignalInfo], [Entry]) {
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
            guard let (signal, entry) = try describe(file: f, group: group, index: i, url: url, fileBytes: fileBytes) else { continue }
            infos.append(signal)
            entries.append(entry)
        }
        guard !infos.isEmpty else { throw FrameIOError(.unsupported, url: url, "no image signal under /Data/Image") }
        return (infos, entries)
    }

    /// One `/Data/Image/<uuid>` group as a signal, or nil when it holds no integer or float
    /// image (complex FFT, DPC vector data, a stray dataset).
    private static func describe(file f: hid_t, group: String, index: Int, url: URL, fileBytes: Int) throws -> (SignalInfo, Entry)? {
        let dataPath = group + "/Data"
        guard isLocalLink(f, group), H5Oexists_by_name(f, group, chdf5_p_default()) > 0,
              isLocalLink(f, dataPath) else { _ = HDF5Access.errorText(); return nil }
        let d = H5Dopen2(f, dataPath, chdf5_p_default())
        guard d >= 0 else { throw FrameIOError(.corrupt, url: url, "\(dataPath) cannot be opened: \(HDF5Access.errorText())") }
        defer { H5Dclose(d) }
        let info = try HDF5.describe(d, path: dataPath, url: url)
        guard let type = info.sampleType, info.dims.count == 2 || info.dims.count == 3 else { return nil }
        let rank = info.dims.count
        let height = info.dims[0], width = info.dims[1], frames = rank == 3 ? info.dims[2] : 1
        try FrameLimits.checkShape(frames: frames, height: height, width: width, url: url, dataPath)
        // A dataset that declares pixels but stores none (unwritten chunks) or fewer bytes
        // than it declares is damaged; checking it here also keeps a tiny file from making
        // HeatFront allocate frames it cannot hold.
        try HDF5.checkDataset(info, type: type, path: dataPath, url: url, fileBytes: fileBytes)

        // Per-frame metadata: lenient, a signal without readable metadata is still pixels.
        var columns = 0, bytes = 0
        var first = VeloxFrameMetadata(flat: [:])
        if let (b, c) = metadataShape(file: f, group: group, fileBytes: fileBytes) {
            bytes = b; columns = c
            if let text = try? readMetadataBytes(file: f, group: group, column: 0, bytes: b, columns: c, url: url),
               let md = try? VeloxFrameMetadata(jsonBytes: text) {
                first = md
            }
        }
        _ = HDF5Access.errorText()
        let px = first.pixelSizeNm
        let signal = SignalInfo(index: index, name: first.detectorName ?? String(group.split(separator: "/").last ?? ""),
                                frameCount: frames, height: height, width: width, sampleType: type,
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

    /// (bytes per text, number of texts) of a group's `Metadata` dataset, or nil. Its samples
    /// must be bytes: HDF5 sizes its conversion buffer by the stored type, so a damaged type
    /// claiming gigabytes per sample costs gigabytes to read.
    private static func metadataShape(file f: hid_t, group: String, fileBytes: Int) -> (Int, Int)? {
        let path = group + "/Metadata"
        guard isLocalLink(f, path) else { return nil }
        let d = H5Dopen2(f, path, chdf5_p_default())
        guard d >= 0 else { return nil }
        defer { H5Dclose(d) }
        guard let info = try? HDF5.describe(d, path: path, url: URL(fileURLWithPath: path)),
              info.dims.count == 1 || info.dims.count == 2, info.sampleType?.byteCount == 1 else { return nil }
        let bytes = info.dims[0], columns = info.dims.count == 2 ? info.dims[1] : 1
        guard bytes >= 1, bytes <= maxMetadataBytes, columns >= 1, columns <= FrameLimits.maxFrames,
              (try? HDF5.checkDataset(info, type: .uint8, path: path, url: URL(fileURLWithPath: path), fileBytes: fileBytes)) != nil
        else { return nil }
        return (bytes, columns)
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
            HDF5.guardedRead(d, as: chdf5_native_uint8(), memory: mspace, file: fspace, into: $0.baseAddress)
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
            // One frame of the (height, width, frames) dataset: a height×width×1 block.
            let values = entry.rank == 3
                ? try HDF5.read(d, start: [0, 0, frame], count: [s.height, s.width, 1], type: s.sampleType, path: path, url: url)
                : try HDF5.read(d, start: [0, 0], count: [s.height, s.width], type: s.sampleType, path: path, url: url)
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
