import Foundation
import Testing
import CHDF5
import FrameIO

/// Writes small HDF5 files with the C API, the way h5py lays out what HyperSpy and ncempy
/// write: groups, datasets (optionally chunked and gzip-compressed), and attributes as h5py
/// stores Python values (str: variable-length UTF-8; bool: an int8 enum FALSE/TRUE;
/// numpy bytes: fixed-length strings).
final class HDF5Writer {
    let file: hid_t

    /// A new file at `url`, or with `reopen` the existing one, for writing.
    init(_ url: URL, reopen: Bool = false) throws {
        file = HDF5Access.serialized {
            reopen ? H5Fopen(url.path, chdf5_f_acc_rdwr(), chdf5_p_default())
                : H5Fcreate(url.path, chdf5_f_acc_trunc(), chdf5_p_default(), chdf5_p_default())
        }
        try #require(file >= 0)
    }

    func close() { HDF5Access.serialized { _ = H5Fclose(file) } }

    /// Creates `path` and every group above it.
    func group(_ path: String) {
        HDF5Access.serialized {
            var p = ""
            for part in path.split(separator: "/") {
                p += "/" + part
                if H5Lexists(file, p, chdf5_p_default()) <= 0 {
                    H5Gclose(H5Gcreate2(file, p, chdf5_p_default(), chdf5_p_default(), chdf5_p_default()))
                }
            }
        }
    }

    /// A second name, `link`, for the existing object `target` (HDF5 allows a group to be
    /// linked into itself).
    func hardLink(_ target: String, _ link: String) {
        HDF5Access.serialized { _ = H5Lcreate_hard(file, target, file, link, chdf5_p_default(), chdf5_p_default()) }
    }

    /// An IEEE half-precision file type (what h5py writes for numpy float16).
    static func float16Type() -> hid_t {
        let t = H5Tcopy(chdf5_ieee_f32le())
        H5Tset_fields(t, 15, 10, 5, 0, 10)
        H5Tset_size(t, 2)
        H5Tset_ebias(t, 15)
        H5Tset_precision(t, 16)
        return t
    }

    /// A dataset of `dims` holding `values` (C order; converted to `type` by HDF5). With
    /// `chunks`, chunked and, when `gzip`, deflate-compressed. `values` may hold fewer than
    /// the declared count: then only the first chunk is written (the rest stays unwritten).
    func dataset(_ path: String, dims: [Int], type: hid_t, values: [Double], chunks: [Int]? = nil, gzip: Bool = false) {
        HDF5Access.serialized {
            var d = dims.map { hsize_t($0) }
            let space = H5Screate_simple(Int32(d.count), &d, nil)
            defer { H5Sclose(space) }
            let dcpl = H5Pcreate(chdf5_p_dataset_create())
            defer { H5Pclose(dcpl) }
            if let chunks {
                var c = chunks.map { hsize_t($0) }
                H5Pset_chunk(dcpl, Int32(c.count), &c)
                if gzip { H5Pset_deflate(dcpl, 4) }
            }
            let ds = H5Dcreate2(file, path, type, space, chdf5_p_default(), dcpl, chdf5_p_default())
            precondition(ds >= 0, "cannot create \(path)")
            defer { H5Dclose(ds) }
            var v = values
            if values.count == dims.reduce(1, *) {
                H5Dwrite(ds, chdf5_native_double(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &v)
            } else if let chunks {
                // Only the first chunk.
                let fspace = H5Dget_space(ds)
                defer { H5Sclose(fspace) }
                var start = [hsize_t](repeating: 0, count: dims.count), count = chunks.map { hsize_t($0) }
                H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &count, nil)
                var n = [hsize_t(chunks.reduce(1, *))]
                let mspace = H5Screate_simple(1, &n, nil)
                defer { H5Sclose(mspace) }
                v = [Double](repeating: 1, count: chunks.reduce(1, *))
                H5Dwrite(ds, chdf5_native_double(), mspace, fspace, chdf5_p_default(), &v)
            }
        }
    }

    private func attribute(_ path: String, _ name: String, type: hid_t, _ write: (hid_t, hid_t) -> Void) {
        HDF5Access.serialized {
            let o = H5Oopen(file, path, chdf5_p_default())
            precondition(o >= 0, "no object \(path)")
            defer { H5Oclose(o) }
            let space = H5Screate(H5S_SCALAR)
            defer { H5Sclose(space) }
            let a = H5Acreate2(o, name, type, space, chdf5_p_default(), chdf5_p_default())
            defer { H5Aclose(a) }
            write(a, type)
        }
    }

    /// A Python str attribute (variable-length UTF-8).
    func string(_ path: String, _ name: String, _ value: String) {
        let t = HDF5Access.serialized { () -> hid_t in
            let t = H5Tcopy(chdf5_c_s1())
            H5Tset_size(t, chdf5_variable())
            H5Tset_cset(t, H5T_CSET_UTF8)
            return t
        }
        attribute(path, name, type: t) { a, t in
            value.withCString { p in
                var ptr: UnsafePointer<CChar>? = p
                H5Awrite(a, t, &ptr)
            }
        }
        HDF5Access.serialized { _ = H5Tclose(t) }
    }

    /// A numpy bytes attribute (fixed-length string), as Prismatic and ncempy write.
    func bytes(_ path: String, _ name: String, _ value: String) {
        let t = HDF5Access.serialized { () -> hid_t in
            let t = H5Tcopy(chdf5_c_s1())
            H5Tset_size(t, max(1, value.utf8.count))
            return t
        }
        attribute(path, name, type: t) { a, t in
            var b = Array(value.utf8) + [0]
            H5Awrite(a, t, &b)
        }
        HDF5Access.serialized { _ = H5Tclose(t) }
    }

    func double(_ path: String, _ name: String, _ value: Double) {
        attribute(path, name, type: chdf5_ieee_f64le()) { a, _ in
            var v = value
            H5Awrite(a, chdf5_native_double(), &v)
        }
    }

    func int(_ path: String, _ name: String, _ value: Int) {
        attribute(path, name, type: chdf5_std_i64le()) { a, _ in
            var v = Int64(value)
            H5Awrite(a, chdf5_native_int64(), &v)
        }
    }

    /// A numpy bool attribute: h5py's int8 enum {FALSE: 0, TRUE: 1}.
    func bool(_ path: String, _ name: String, _ value: Bool) {
        let t = HDF5Access.serialized { () -> hid_t in
            let t = H5Tenum_create(chdf5_native_int8())
            var f: Int8 = 0, tr: Int8 = 1
            H5Tenum_insert(t, "FALSE", &f)
            H5Tenum_insert(t, "TRUE", &tr)
            return t
        }
        attribute(path, name, type: t) { a, t in
            var v: Int8 = value ? 1 : 0
            H5Awrite(a, t, &v)
        }
        HDF5Access.serialized { _ = H5Tclose(t) }
    }
}
