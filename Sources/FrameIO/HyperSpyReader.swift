import Foundation
import CHDF5

/// HyperSpy's own HDF5 format (`.hspy`; `.hdf5` as HyperSpy 1.x named it), read through the
/// HDF5 C library.
///
/// Layout (HyperSpy "hspy" format, versions 1.0–3.3, as documented with RosettaSciIO's
/// `rsciio/hspy` plugin and read by its `_hierarchical.py`): the root attributes
/// `file_format = "HyperSpy"` and `file_format_version`; one group per signal under
/// `/Experiments/<title>` holding the dataset `data`, stored in C order exactly as the
/// signal's array, and one group `axis-0` … `axis-N` per array axis with the attributes
/// `scale`, `offset`, `size`, `units`, `name` and `navigate`. HyperSpy writes a missing unit
/// or name as the text `_None_`. Signals are numbered by the `Experiments` groups that hold
/// `data`, in name order (h5py's order).
///
/// An image signal is 2-D or 3-D with its last two axes signal (not navigation) axes: a
/// stack's navigation axis comes first and numbers its frames. Formats 3.x say so in each
/// axis's `navigate`; 2.x files have no `navigate` and say `record_by = "image"` in
/// `metadata/Signal` (1.x: `mapped_parameters`) instead; a `record_by` of `"spectrum"`
/// makes the last axis the signal and the file is not an image.
///
/// Calibration travels with the pixels: x is the last axis, y the one before, in nm when
/// the unit is a length (`m`, `mm`, `µm`, `um`, `microns`, `nm`, `Å`, `pm`); `_None_`, an
/// empty unit or a reciprocal one (`1/nm`: a diffraction pattern or FFT) leaves the axis
/// uncalibrated. Times: `metadata/General` `date` and `time` give the acquisition time; a
/// navigation axis in seconds gives each frame's time relative to the first.
///
/// Datasets may be chunked and compressed (HyperSpy writes gzip chunks); frames are read one
/// at a time with a hyperslab, after the declared shape and chunks were checked against
/// `FrameLimits` and the file's length. float16 data are widened exactly to Float.
public final class HyperSpyReader: FrameFileReader, @unchecked Sendable {
    public let url: URL
    public var format: FrameFormat { .hspy }
    public let signals: [SignalInfo]
    public let fileMetadata: [String: String]

    private struct Entry {
        var dataPath: String
        var rank: Int
        var metadata: FrameMetadata
        var frameInterval_s: Double?
    }

    private let file: hid_t
    private let entries: [Entry]

    public init(url: URL) throws {
        self.url = url
        let opened: (hid_t, [SignalInfo], [Entry], [String: String]) = try HDF5Access.serialized {
            let (f, bytes) = try HDF5.openFile(url)
            return try HDF5.listing(f, url: url) {
                let (infos, entries, md) = try Self.listSignals(file: f, url: url, fileBytes: bytes)
                return (f, infos, entries, md)
            }
        }
        (file, signals, entries, fileMetadata) = opened
    }

    deinit {
        let f = file
        HDF5Access.serialized { _ = H5Fclose(f) }
    }

    // MARK: Listing

    private static func listSignals(file f: hid_t, url: URL, fileBytes: Int) throws
        -> ([SignalInfo], [Entry], [String: String]) {
        let root = H5Oopen(f, "/", chdf5_p_default())
        guard root >= 0 else { throw FrameIOError(.corrupt, url: url, "unreadable root group: \(HDF5Access.errorText())") }
        let formatName = HDF5.string(root, "file_format")
        let versionText = HDF5.string(root, "file_format_version") ?? HDF5.number(root, "file_format_version").map { String($0) }
        H5Oclose(root)
        if let formatName, formatName != "HyperSpy" {
            throw FrameIOError(.unsupported, url: url, "an HDF5 file written as '\(formatName)', not HyperSpy")
        }
        guard HDF5.kind(f, "/Experiments") == .group else {
            throw FrameIOError(.unsupported, url: url, "no /Experiments group: not a HyperSpy file")
        }
        let version = HyperSpyLayout.Version(versionText ?? "1.0")
        var md: [String: String] = ["file_format": formatName ?? "", "file_format_version": versionText ?? "1.0"]
        var infos: [SignalInfo] = [], entries: [Entry] = []
        var index = 0
        for name in try HDF5.members(f, "/Experiments", url: url) {
            let group = "/Experiments/" + name
            guard HDF5.kind(f, group) == .group else { continue }
            switch HDF5.kind(f, group + "/data") {
            case .dataset?: break
            case .unreadable(let why)?: throw FrameIOError(.corrupt, url: url, "\(group)/data cannot be opened: \(why)")
            default: continue
            }
            defer { index += 1 }
            guard let (info, entry, flat) = try describe(file: f, group: group, title: name, index: index, version: version,
                                                         url: url, fileBytes: fileBytes) else { continue }
            if infos.isEmpty { for (k, v) in flat { md[k] = v } }
            infos.append(info)
            entries.append(entry)
        }
        guard !infos.isEmpty else {
            throw FrameIOError(.unsupported, url: url, "no image signal (2-D or 3-D with two signal axes) among \(index) HyperSpy signal(s)")
        }
        return (infos, entries, md)
    }

    /// One `/Experiments/<title>` group as an image signal, or nil when it is not one.
    private static func describe(file f: hid_t, group: String, title: String, index: Int,
                                 version: HyperSpyLayout.Version, url: URL, fileBytes: Int) throws
        -> (SignalInfo, Entry, [String: String])? {
        let dataPath = group + "/data"
        let d = H5Dopen2(f, dataPath, chdf5_p_default())
        guard d >= 0 else { _ = HDF5Access.errorText(); return nil }
        defer { H5Dclose(d) }
        let info = try HDF5.describe(d, path: dataPath, url: url)
        guard let type = info.sampleType, info.dims.count == 2 || info.dims.count == 3 else { return nil }

        let axes = (0..<info.dims.count).map { i -> HyperSpyLayout.Axis in
            let path = group + "/axis-\(i)"
            guard HDF5.kind(f, path) == .group else { return HyperSpyLayout.Axis() }
            let g = H5Oopen(f, path, chdf5_p_default())
            guard g >= 0 else { _ = HDF5Access.errorText(); return HyperSpyLayout.Axis() }
            defer { H5Oclose(g) }
            return HyperSpyLayout.Axis(name: HDF5.string(g, "name"), units: HDF5.string(g, "units"),
                                       scale: HDF5.number(g, "scale"), offset: HDF5.number(g, "offset"),
                                       size: HDF5.number(g, "size").map { Int(exactly: $0) ?? -1 },
                                       navigate: HDF5.number(g, "navigate").map { $0 != 0 })
        }
        let metadataGroup = group + (version < HyperSpyLayout.Version("1.2") ? "/mapped_parameters" : "/metadata")
        var flat: [String: String] = [:]
        HDF5Walk.attributes(f, metadataGroup, prefix: "metadata", into: &flat)
        let recordBy = flat["metadata.Signal.record_by"] ?? flat["metadata.record_by"]
        guard let layout = try HyperSpyLayout.imageLayout(shape: info.dims, axes: axes, recordBy: recordBy, url: url, what: dataPath)
        else { return nil }
        try FrameLimits.checkShape(frames: layout.frames, height: layout.height, width: layout.width, url: url, dataPath)
        try HDF5.checkDataset(info, type: type, path: dataPath, url: url, fileBytes: fileBytes)

        let px = HyperSpyLayout.pixelSizeNm(axes)
        var md = FrameMetadata(pixelSizeXNm: px.x, pixelSizeYNm: px.y)
        md.acquisitionTime = HyperSpyLayout.acquisitionTime(date: flat["metadata.General.date"], time: flat["metadata.General.time"],
                                                           timeZone: flat["metadata.General.time_zone"])
        md.original = flat
        let name = HyperSpyLayout.signalName(title: flat["metadata.General.title"], group: title)
        let signal = SignalInfo(index: index, name: name, frameCount: layout.frames, height: layout.height, width: layout.width,
                                sampleType: type, pixelSizeXNm: px.x, pixelSizeYNm: px.y)
        let interval = info.dims.count == 3 ? HyperSpyLayout.seconds(per: axes[0]) : nil
        return (signal, Entry(dataPath: dataPath, rank: info.dims.count, metadata: md, frameInterval_s: interval), flat)
    }

    // MARK: Frames

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let s = try checkedSignal(signal, frame)
        let entry = entries[signal]
        let url = self.url, file = self.file
        return try HDF5Access.serialized {
            let d = H5Dopen2(file, entry.dataPath, chdf5_p_default())
            guard d >= 0 else { throw FrameIOError(.corrupt, url: url, "\(entry.dataPath): \(HDF5Access.errorText())") }
            defer { H5Dclose(d) }
            // C order (frames, rows, columns): frame k is the block [k, 0, 0] + [1, H, W].
            let values = entry.rank == 3
                ? try HDF5.read(d, start: [frame, 0, 0], count: [1, s.height, s.width], type: s.sampleType, path: entry.dataPath, url: url)
                : try HDF5.read(d, start: [0, 0], count: [s.height, s.width], type: s.sampleType, path: entry.dataPath, url: url)
            return PixelPlane(width: s.width, height: s.height, values: values)
        }
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        _ = try checkedSignal(signal, frame)
        var md = entries[signal].metadata
        if let dt = entries[signal].frameInterval_s { md.relativeTime_s = Double(frame) * dt }
        return md
    }
}

/// The parts of HyperSpy's signal layout shared by its HDF5 (`.hspy`) and Zarr (`.zspy`)
/// stores: which axes are the image, their calibration, times and the signal's name.
enum HyperSpyLayout {
    struct Axis {
        var name: String?
        var units: String?
        var scale: Double?
        var offset: Double?
        var size: Int?
        var navigate: Bool?
    }

    /// A format version such as "3.1", compared numerically part by part.
    struct Version: Comparable {
        let parts: [Int]
        init(_ text: String) {
            parts = text.split(separator: ".").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
        }
        static func < (a: Version, b: Version) -> Bool {
            for i in 0..<max(a.parts.count, b.parts.count) {
                let x = i < a.parts.count ? a.parts[i] : 0, y = i < b.parts.count ? b.parts[i] : 0
                if x != y { return x < y }
            }
            return false
        }
    }

    /// HyperSpy's spelling of "no value".
    static func value(_ s: String?) -> String? {
        guard let s, s != "_None_" else { return nil }
        return s
    }

    /// (frames, height, width) when the array is an image or image stack: rank 2 or 3 with
    /// its last two axes signal axes. Axis groups that contradict the array are an error.
    static func imageLayout(shape: [Int], axes: [Axis], recordBy: String?, url: URL, what: String) throws
        -> (frames: Int, height: Int, width: Int)? {
        guard shape.count == 2 || shape.count == 3, axes.count == shape.count else { return nil }
        for (i, a) in axes.enumerated() {
            if let n = a.size, n != shape[i] {
                throw FrameIOError(.corrupt, url: url, "\(what): axis-\(i) says \(n) points but the data has \(shape[i])")
            }
        }
        let navigate: [Bool]
        if axes.allSatisfy({ $0.navigate != nil }) {
            navigate = axes.map { $0.navigate! }
        } else {
            // Formats before 3.0: `record_by` says which trailing axes the signal spans.
            switch value(recordBy) {
            case "spectrum": navigate = shape.indices.map { $0 < shape.count - 1 }
            default: navigate = shape.indices.map { $0 < shape.count - 2 }
            }
        }
        guard !navigate[shape.count - 1], !navigate[shape.count - 2] else { return nil }
        return (shape.count == 3 ? shape[0] : 1, shape[shape.count - 2], shape[shape.count - 1])
    }

    /// Pixel size in nm along x (last axis) and y, nil for an uncalibrated or reciprocal axis.
    static func pixelSizeNm(_ axes: [Axis]) -> (x: Double?, y: Double?) {
        func nm(_ a: Axis) -> Double? {
            guard let unit = value(a.units), let perNm = nanometresPerUnit(unit),
                  let scale = a.scale, scale > 0, scale.isFinite else { return nil }
            return scale * perNm
        }
        return (nm(axes[axes.count - 1]), nm(axes[axes.count - 2]))
    }

    /// The step of a navigation axis in seconds, when its unit is a time.
    static func seconds(per axis: Axis) -> Double? {
        guard let unit = value(axis.units), let scale = axis.scale, scale > 0, scale.isFinite else { return nil }
        switch unit.trimmingCharacters(in: .whitespaces) {
        case "s": return scale
        case "ms": return scale * 1e-3
        case "µs", "μs", "us": return scale * 1e-6
        case "min": return scale * 60
        case "h": return scale * 3600
        default: return nil
        }
    }

    /// `General.date` (ISO date) and `General.time` (ISO time, optionally fractional) in
    /// `General.time_zone` (an IANA name or an offset; none: UTC).
    static func acquisitionTime(date: String?, time: String?, timeZone: String?) -> Date? {
        guard let date = value(date), let time = value(time) else { return nil }
        var zone = ""
        if let z = value(timeZone)?.trimmingCharacters(in: .whitespaces), !z.isEmpty {
            if z.hasPrefix("+") || z.hasPrefix("-") { zone = z }
            else if let tz = TimeZone(identifier: z) {
                let base = AXONMetadata.isoDate(date + "T" + time) ?? Date(timeIntervalSince1970: 0)
                let s = tz.secondsFromGMT(for: base)
                zone = String(format: "%@%02d:%02d", s < 0 ? "-" : "+", abs(s) / 3600, abs(s) % 3600 / 60)
            }
        }
        return AXONMetadata.isoDate(date + "T" + time + zone)
    }

    /// The signal's title, else its group's name (HyperSpy writes an untitled one as `__unnamed__`).
    static func signalName(title: String?, group: String) -> String {
        if let t = value(title), !t.isEmpty, t != "__unnamed__" { return t }
        return group == "__unnamed__" ? "" : group
    }
}

/// Depth- and size-capped walks over HDF5 groups.
enum HDF5Walk {
    /// Most attributes gathered from one subtree.
    static let maxEntries = 4096

    /// Gathers the attributes of `path` and of the groups below it as `prefix.sub.key → text`,
    /// entering each group once (groups may link back into the tree).
    static func attributes(_ f: hid_t, _ path: String, prefix: String, into out: inout [String: String]) {
        var walked = Set<haddr_t>()
        attributes(f, path, prefix: prefix, into: &out, depth: 0, walked: &walked)
    }

    private static func attributes(_ f: hid_t, _ path: String, prefix: String, into out: inout [String: String],
                                   depth: Int, walked: inout Set<haddr_t>) {
        guard depth <= 8, out.count < maxEntries, HDF5.kind(f, path) == .group,
              let at = HDF5.address(f, path), walked.insert(at).inserted else { return }
        let g = H5Oopen(f, path, chdf5_p_default())
        guard g >= 0 else { _ = HDF5Access.errorText(); return }
        for (k, v) in HDF5.attributes(g) where out.count < maxEntries { out[prefix + "." + k] = v }
        H5Oclose(g)
        guard let names = try? HDF5.members(f, path, url: URL(fileURLWithPath: path)) else { return }
        for n in names.prefix(256) where HDF5.kind(f, HDF5.join(path, n)) == .group {
            attributes(f, HDF5.join(path, n), prefix: prefix + "." + n, into: &out, depth: depth + 1, walked: &walked)
        }
    }
}
