import Foundation
import CHDF5
import FrameCore

/// Writes an image stack as a HyperSpy file (`.hspy`, format 3.1: HDF5 laid out as HyperSpy
/// and RosettaSciIO's `rsciio/hspy` plugin write it, and as `HyperSpyReader` reads it), frame
/// by frame, so only one frame is in memory.
///
/// Layout: root attributes `file_format = "HyperSpy"`, `file_format_version = "3.1"`; one
/// signal `/Experiments/<title>` with the float32 dataset `data` of shape (frames, height,
/// width), chunked one frame per chunk; `axis-0` the navigation axis (time in s when the frames
/// are evenly spaced, else the frame number), `axis-1` y and `axis-2` x with `scale` in nm and
/// `units = "nm"` (px and `_None_` without calibration); `metadata/General/title`,
/// `metadata/Signal/signal_type = ""` (a plain image stack), and `metadata/<node>/…`: one
/// float64 dataset per per-frame quantity (times, temperatures) and scalar attributes.
/// Strings are variable-length UTF-8 and booleans h5py's int8 enum, as h5py writes them.
public final class HyperSpyWriter {
    public struct Axis: Sendable {
        public var name: String
        public var units: String?
        public var scale: Double
        public var offset: Double
        public var navigate: Bool

        public init(name: String, units: String?, scale: Double, offset: Double = 0, navigate: Bool) {
            self.name = name
            self.units = units
            self.scale = scale
            self.offset = offset
            self.navigate = navigate
        }
    }

    public let url: URL
    public let frames: Int
    public let width: Int
    public let height: Int
    private let file: hid_t
    private let data: hid_t
    private let group: String
    private var written = 0

    /// Creates the file (replacing one there) with room for `frames` frames.
    /// - Throws: `FrameIOError(.io)` naming the file when HDF5 cannot create it.
    public init(url: URL, title: String, frames: Int, width: Int, height: Int, axes: [Axis]) throws {
        precondition(axes.count == 3, "a stack has three axes")
        self.url = url
        self.frames = frames
        self.width = width
        self.height = height
        let group = "/Experiments/__unnamed__"
        self.group = group
        let created: (hid_t, hid_t)? = HDF5Access.serialized {
            let f = H5Fcreate(url.path, chdf5_f_acc_trunc(), chdf5_p_default(), chdf5_p_default())
            guard f >= 0 else { return nil }
            for path in ["/Experiments", group, group + "/metadata", group + "/metadata/General", group + "/metadata/Signal",
                         group + "/original_metadata"] + (0..<3).map({ "\(group)/axis-\($0)" }) {
                let gcpl = Self.untimed(chdf5_p_group_create())
                H5Gclose(H5Gcreate2(f, path, chdf5_p_default(), gcpl, chdf5_p_default()))
                H5Pclose(gcpl)
            }
            var dims = [hsize_t(frames), hsize_t(height), hsize_t(width)]
            let space = H5Screate_simple(3, &dims, nil)
            let dcpl = Self.untimed(chdf5_p_dataset_create())
            var chunk = [hsize_t(1), hsize_t(max(1, height)), hsize_t(max(1, width))]
            if frames > 0 { H5Pset_chunk(dcpl, 3, &chunk) }
            var fill = Float.nan
            H5Pset_fill_value(dcpl, chdf5_native_float(), &fill)
            let d = H5Dcreate2(f, group + "/data", chdf5_ieee_f32le(), space, chdf5_p_default(), dcpl, chdf5_p_default())
            H5Pclose(dcpl)
            H5Sclose(space)
            guard d >= 0 else { H5Fclose(f); return nil }
            return (f, d)
        }
        guard let (f, d) = created else {
            throw FrameIOError(.io, url: url, "cannot create the HyperSpy file: \(HDF5Access.serialized { HDF5Access.errorText() })")
        }
        file = f
        data = d
        setString("/", "file_format", "HyperSpy")
        setString("/", "file_format_version", "3.1")
        setString(group + "/metadata/General", "title", title)
        setString(group + "/metadata/Signal", "signal_type", "")
        for (i, a) in axes.enumerated() {
            let path = "\(group)/axis-\(i)"
            setString(path, "name", a.name)
            setString(path, "units", a.units ?? "_None_")
            setDouble(path, "scale", a.scale)
            setDouble(path, "offset", a.offset)
            setInt(path, "size", [frames, height, width][i])
            setBool(path, "navigate", a.navigate)
        }
    }

    deinit { close() }

    /// Writes the next frame (`width × height`, row-major; NaN where it has no value).
    public func append(_ image: Image) throws {
        guard written < frames, image.width == width, image.height == height else {
            throw FrameIOError(.io, url: url, "frame \(written) of \(image.width)×\(image.height) px does not fit the stack")
        }
        let ok = HDF5Access.serialized { () -> Bool in
            let fspace = H5Dget_space(data)
            defer { H5Sclose(fspace) }
            var start = [hsize_t(written), 0, 0], count = [hsize_t(1), hsize_t(height), hsize_t(width)]
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &count, nil)
            let mspace = H5Screate_simple(3, &count, nil)
            defer { H5Sclose(mspace) }
            return image.pixels.withUnsafeBufferPointer {
                H5Dwrite(data, chdf5_native_float(), mspace, fspace, chdf5_p_default(), $0.baseAddress) >= 0
            }
        }
        guard ok else { throw FrameIOError(.io, url: url, "cannot write frame \(written): \(HDF5Access.serialized { HDF5Access.errorText() })") }
        written += 1
    }

    /// `metadata/<node>/<name>`: a float64 dataset (one value per frame). NaN marks an unknown value.
    public func metadataArray(_ node: String, _ name: String, _ values: [Double]) {
        HDF5Access.serialized {
            ensureGroup("\(group)/metadata/\(node)")
            var n = [hsize_t(values.count)]
            let space = H5Screate_simple(1, &n, nil)
            defer { H5Sclose(space) }
            let dcpl = Self.untimed(chdf5_p_dataset_create())
            defer { H5Pclose(dcpl) }
            let d = H5Dcreate2(file, "\(group)/metadata/\(node)/\(name)", chdf5_ieee_f64le(), space,
                               chdf5_p_default(), dcpl, chdf5_p_default())
            guard d >= 0 else { return }
            defer { H5Dclose(d) }
            values.withUnsafeBufferPointer { _ = H5Dwrite(d, chdf5_native_double(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    public func metadataNumber(_ node: String, _ name: String, _ value: Double) {
        HDF5Access.serialized { ensureGroup("\(group)/metadata/\(node)") }
        setDouble("\(group)/metadata/\(node)", name, value)
    }

    public func metadataString(_ node: String, _ name: String, _ value: String) {
        HDF5Access.serialized { ensureGroup("\(group)/metadata/\(node)") }
        setString("\(group)/metadata/\(node)", name, value)
    }

    /// Closes the file. Every frame must have been written.
    /// - Throws: when fewer frames than declared were written, or HDF5 cannot flush.
    public func finish() throws {
        guard written == frames else {
            close()
            throw FrameIOError(.io, url: url, "\(written) of \(frames) frames written")
        }
        let ok = HDF5Access.serialized { H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 }
        close()
        guard ok else { throw FrameIOError(.io, url: url, "cannot flush the HyperSpy file") }
    }

    private var closed = false
    private func close() {
        guard !closed else { return }
        closed = true
        let (f, d) = (file, data)
        HDF5Access.serialized { H5Dclose(d); H5Fclose(f) }
    }

    /// A creation property list that records no access or modification times (HDF5 records
    /// them by default), so the same stack gives the same bytes.
    private static func untimed(_ cls: hid_t) -> hid_t {
        let p = H5Pcreate(cls)
        H5Pset_obj_track_times(p, false)
        return p
    }

    // MARK: Attributes (h5py's types)

    /// Call with the HDF5 lock held.
    private func ensureGroup(_ path: String) {
        var p = ""
        for part in path.split(separator: "/") {
            p += "/" + part
            if H5Lexists(file, p, chdf5_p_default()) <= 0 {
                let gcpl = Self.untimed(chdf5_p_group_create())
                H5Gclose(H5Gcreate2(file, p, chdf5_p_default(), gcpl, chdf5_p_default()))
                H5Pclose(gcpl)
            }
        }
    }

    private func attribute(_ path: String, _ name: String, type: hid_t, _ write: (hid_t) -> Void) {
        HDF5Access.serialized {
            let o = H5Oopen(file, path, chdf5_p_default())
            guard o >= 0 else { return }
            defer { H5Oclose(o) }
            if H5Aexists(o, name) > 0 { H5Adelete(o, name) }
            let space = H5Screate(H5S_SCALAR)
            defer { H5Sclose(space) }
            let a = H5Acreate2(o, name, type, space, chdf5_p_default(), chdf5_p_default())
            guard a >= 0 else { return }
            defer { H5Aclose(a) }
            write(a)
        }
    }

    private func setString(_ path: String, _ name: String, _ value: String) {
        let t = HDF5Access.serialized { () -> hid_t in
            let t = H5Tcopy(chdf5_c_s1())
            H5Tset_size(t, chdf5_variable())
            H5Tset_cset(t, H5T_CSET_UTF8)
            return t
        }
        defer { HDF5Access.serialized { _ = H5Tclose(t) } }
        attribute(path, name, type: t) { a in
            value.withCString { p in
                var ptr: UnsafePointer<CChar>? = p
                _ = H5Awrite(a, t, &ptr)
            }
        }
    }

    private func setDouble(_ path: String, _ name: String, _ value: Double) {
        attribute(path, name, type: chdf5_ieee_f64le()) { a in
            var v = value
            _ = H5Awrite(a, chdf5_native_double(), &v)
        }
    }

    private func setInt(_ path: String, _ name: String, _ value: Int) {
        attribute(path, name, type: chdf5_std_i64le()) { a in
            var v = Int64(value)
            _ = H5Awrite(a, chdf5_native_int64(), &v)
        }
    }

    private func setBool(_ path: String, _ name: String, _ value: Bool) {
        let t = HDF5Access.serialized { () -> hid_t in
            let t = H5Tenum_create(chdf5_native_int8())
            var f: Int8 = 0, tr: Int8 = 1
            H5Tenum_insert(t, "FALSE", &f)
            H5Tenum_insert(t, "TRUE", &tr)
            return t
        }
        defer { HDF5Access.serialized { _ = H5Tclose(t) } }
        attribute(path, name, type: t) { a in
            var v: Int8 = value ? 1 : 0
            _ = H5Awrite(a, t, &v)
        }
    }
}
