#!/usr/bin/env python3
"""Writes the small seed files of Fuzz/seeds/<target>/ (committed; rerun only to change them).

Needs h5py and numpy (pip) and, for the Blosc ZSpy seed, the system's libblosc (through
ctypes). TIFF, PNG and DM4 seeds, the heating log and the config come from
`heatfront simulate --size 32 --frames-per-step 1` (pass that run folder's parent as the
first argument: it holds tiff/, png/ and dm4/ runs).
"""
import ctypes, io, json, os, shutil, struct, sys, zipfile, zlib
import h5py, numpy as np

here = os.path.dirname(os.path.abspath(__file__))
seeds = os.path.join(here, "seeds")
sim = sys.argv[1] if len(sys.argv) > 1 else None


def out(target, name, data):
    d = os.path.join(seeds, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def h5bytes(build, libver=("earliest", "v110")):
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver=libver) as f:
        build(f)
    return bio.getvalue()


# MRC: 4x3x2 int16 and a 2x2 float16 (mode 12), little-endian, MRC2014 header.
def mrc(nx, ny, nz, mode, data, ext=b""):
    h = bytearray(1024)
    struct.pack_into("<4i", h, 0, nx, ny, nz, mode)
    struct.pack_into("<3i", h, 28, nx, ny, nz)
    struct.pack_into("<3f", h, 40, nx * 2.5, ny * 2.5, nz * 2.5)
    struct.pack_into("<i", h, 92, len(ext))
    h[104:108] = b"FEI1" if ext else b"\0\0\0\0"
    h[208:212] = b"MAP "
    h[212:214] = b"\x44\x44"
    return bytes(h) + ext + data

out("mrc", "int16.mrc", mrc(4, 3, 2, 1, np.arange(24, dtype="<i2").tobytes()))
out("mrc", "half.mrc", mrc(2, 2, 1, 12, np.array([0.5, -1, 2, 65504], dtype="<f2").tobytes()))
fei = bytearray(2 * 768)
for k in range(2):
    struct.pack_into("<i", fei, 768 * k, 768)
    struct.pack_into("<d", fei, 768 * k + 12, 45000.5 + k / 86400)
    struct.pack_into("<dd", fei, 768 * k + 156, 1e-10, 1e-10)
out("mrc", "fei.mrc", mrc(2, 2, 2, 2, np.arange(8, dtype="<f4").tobytes(), bytes(fei)))


# SER (TIA 0x0210): one or two 2-D elements of 4x3 uint16 with time tags.
def ser(n, w=4, h=3, dtype=2):
    head = struct.pack("<HHHIIIIII", 0x4949, 0x0197, 0x0210, 0x4122, 0x4152, n, n, 0, 1)
    desc, units = b"Number", b""
    dims = struct.pack("<Iddi", n, 0.0, 1.0, 0) + struct.pack("<I", len(desc)) + desc + struct.pack("<I", len(units)) + units
    offsets_at = len(head) + len(dims)
    body_at = offsets_at + 8 * n
    elems, tags, data_offs, tag_offs = b"", b"", [], []
    for k in range(n):
        data_offs.append(body_at + len(elems))
        px = np.arange(w * h, dtype="<u2") + 100 * k
        elems += struct.pack("<ddIddIHII", 0.0, 2e-10, 0, 0.0, 2e-10, 0, dtype, w, h) + px.tobytes()
    tag_at = body_at + len(elems)
    for k in range(n):
        tag_offs.append(tag_at + len(tags))
        tags += struct.pack("<HHI", 0x4152, 0, 1_600_000_000 + k)
    head = head[:-8] + struct.pack("<II", offsets_at, 1)
    return head + dims + struct.pack(f"<{n}I", *data_offs) + struct.pack(f"<{n}I", *tag_offs) + elems + tags

out("ser", "one.ser", ser(1))
out("ser", "two.ser", ser(2))
out("emi", "series.emi", b"\x00" * 16 + b"<ObjectInfo><ExperimentalDescription><Root><Data><Label>Magnification</Label>"
    b"<Value>100000</Value><Unit>x</Unit></Data></Root></ExperimentalDescription><DetectorRange>1</DetectorRange>"
    b"<Mode>STEM Image</Mode></ObjectInfo>\x00")


# Velox EMD: one 4x3x2 uint16 HAADF series with per-frame JSON; a second, DF2, image.
def velox(f):
    for uuid, det, frames in [("0a1b", "HAADF", 2), ("9f8e", "DF2", 1)]:
        g = f.create_group(f"Data/Image/{uuid}")
        g.create_dataset("Data", data=(np.arange(12 * frames, dtype="<u2").reshape(3, 4, frames)))
        texts = [json.dumps({"BinaryResult": {"Detector": det, "PixelSize": {"width": "2e-10", "height": "2e-10"},
                                              "PixelUnitX": "m", "PixelUnitY": "m"},
                             "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1600000000"}},
                             "Scan": {"FrameTime": "0.5", "DwellTime": "1e-6"}}).encode() for _ in range(frames)]
        n = max(len(t) for t in texts) + 1
        md = np.zeros((n, frames), dtype="u1")
        for k, t in enumerate(texts):
            md[:len(t), k] = np.frombuffer(t, dtype="u1")
        g.create_dataset("Metadata", data=md)
    f.create_dataset("Version", data=np.frombuffer(b'{"format":"Velox","version":"3"}', dtype="u1"))

out("emd-velox", "two-detectors.emd", h5bytes(velox, ("v110", "v110")))
out("emd-velox", "two-detectors-v0.emd", h5bytes(velox))


# HyperSpy: format 3.3 stack (gzip chunks, navigate), format 2.2 image (record_by), float16.
def hspy(version, navigate, dtype, shape, chunks):
    def build(f):
        f.attrs["file_format"] = "HyperSpy"
        f.attrs["file_format_version"] = version
        g = f.create_group("Experiments/HAADF")
        data = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
        g.create_dataset("data", data=data, chunks=chunks, compression="gzip" if chunks else None)
        units = ["s", "nm", "nm"][-len(shape):]
        for i, n in enumerate(shape):
            a = g.create_group(f"axis-{i}")
            a.attrs["name"] = ["t", "y", "x"][-len(shape):][i]
            a.attrs["units"] = units[i] if i else "_None_"
            a.attrs["scale"] = 0.25
            a.attrs["offset"] = 0.0
            a.attrs["size"] = n
            if navigate:
                a.attrs["navigate"] = np.bool_(len(shape) == 3 and i == 0)
        m = g.create_group("metadata")
        m.create_group("General").attrs.update({"title": "HAADF", "date": "2024-01-02", "time": "03:04:05"})
        m.create_group("Signal").attrs["record_by"] = "image"
    return build

out("hspy", "stack-v3.hspy", h5bytes(hspy("3.3", True, "<i2", (2, 3, 4), (1, 3, 4)), ("v110", "v110")))
out("hspy", "image-v2.hdf5", h5bytes(hspy("2.2", False, "<f4", (3, 4), None), ("v110", "v110")))
out("hspy", "half-v3.hspy", h5bytes(hspy("3.1", True, "<f2", (3, 4), (3, 4))))


# Berkeley EMD 0.2 (NCEM) and a Prismatic-like file.
def ncem(f):
    f.attrs["version_major"] = 0
    f.attrs["version_minor"] = 2
    g = f.create_group("data/image")
    g.attrs["emd_group_type"] = np.int32(1)
    g.create_dataset("data", data=np.arange(12, dtype="<i4").reshape(4, 3))
    for i, n in enumerate((4, 3)):
        d = g.create_dataset(f"dim{i + 1}", data=np.arange(n) * 0.5)
        d.attrs["name"] = np.bytes_(b"x" if i == 0 else b"y")
        d.attrs["units"] = np.bytes_(b"[n_m]")

def prismatic(f):
    base = f.create_group("4DSTEM_simulation/data/realslices")
    for name, shape in [("annular_detector_depth0000", (4, 3)), ("annular_detector_depth0001", (4, 3)), ("ppotential", (4, 3, 2))]:
        g = base.create_group(name)
        g.attrs["emd_group_type"] = np.int32(1)
        g.create_dataset("realslice", data=np.arange(np.prod(shape), dtype="<f4").reshape(shape))
        for i, n in enumerate(shape):
            d = g.create_dataset(f"dim{i + 1}", data=np.arange(n, dtype="<f4") * 0.25)
            d.attrs["units"] = np.bytes_(b"[n_m]")

out("emd-berkeley", "ncem.emd", h5bytes(ncem, ("v110", "v110")))
out("emd-berkeley", "prismatic.emd", h5bytes(prismatic, ("v110", "v110")))


# ZSpy: stored zip members, one Blosc (zstd) chunk and one zlib array; an attribute rewritten.
blosc = ctypes.CDLL("libblosc.so.1")
def blosc_zstd(raw, typesize):
    dst = ctypes.create_string_buffer(len(raw) + 16)
    n = blosc.blosc_compress_ctx(1, 1, ctypes.c_size_t(typesize), ctypes.c_size_t(len(raw)), raw, dst,
                                 ctypes.c_size_t(len(raw) + 16), b"zstd", ctypes.c_size_t(0), 1)
    return dst.raw[:n]

def zspy(codec):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_STORED) as z:
        z.writestr(".zgroup", '{"zarr_format": 2}')
        z.writestr(".zattrs", '{"file_format": "ZSpy", "file_format_version": "3.3"}')
        g = "Experiments/DF2"
        z.writestr("Experiments/.zgroup", '{"zarr_format": 2}')
        z.writestr(g + "/.zgroup", '{"zarr_format": 2}')
        comp = {"blosc": {"id": "blosc", "cname": "zstd", "clevel": 1, "shuffle": 1, "blocksize": 0},
                "zlib": {"id": "zlib", "level": 1}}[codec]
        z.writestr(g + "/data/.zarray", json.dumps({"chunks": [2, 3, 4], "compressor": comp, "dtype": "<i2",
                   "fill_value": 0, "filters": None, "order": "C", "shape": [2, 3, 4], "zarr_format": 2}))
        for i, (name, units, nav) in enumerate([("t", "s", True), ("y", "nm", False), ("x", "pm", False)]):
            z.writestr(g + f"/axis-{i}/.zgroup", '{"zarr_format": 2}')
            z.writestr(g + f"/axis-{i}/.zattrs", json.dumps({"name": name, "size": [2, 3, 4][i], "navigate": nav}))
            z.writestr(g + f"/axis-{i}/.zattrs", json.dumps({"name": name, "units": units, "scale": 0.5,
                                                              "size": [2, 3, 4][i], "navigate": nav}))
        raw = np.arange(24, dtype="<i2").tobytes()
        z.writestr(g + "/data/0.0.0", blosc_zstd(raw, 2) if codec == "blosc" else zlib.compress(raw))
        z.writestr(g + "/metadata/.zgroup", '{"zarr_format": 2}')
        z.writestr(g + "/metadata/General/.zgroup", '{"zarr_format": 2}')
        z.writestr(g + "/metadata/General/.zattrs", '{"title": "DF2"}')
    return bio.getvalue()

import warnings
warnings.simplefilter("ignore")   # zipfile warns about the duplicate name, as zarr's ZipStore writes it
out("zspy", "blosc.zspy", zspy("blosc"))
out("zspy", "zlib.zspy", zspy("zlib"))


# Heating logs and configs.
out("heating-log", "plain.csv", b"time_s,temperature_C\n0,25\n30,25\n60,100\n90,175\n120,175\n150,175\n180,200\n")
out("heating-log", "iso.csv", b"timestamp,temperature_C,setpoint_C\n2024-05-01T12:00:00Z,25.0,25\n"
    b"2024-05-01 14:00:30.5+02:00,50.0,50\n\"2024-05-01T12:01:00\",75,75\n")
out("heating-log", "protochips.csv", b"Time, Notes, Channel A Temperature, Channel B Current\n"
    b", Time units = Milliseconds,,\n, Temperature units = Degrees C,,\n, Date (yyyy.mm.dd) = 2014.12.03,,\n"
    b", Time (hh:mm:ss.ms) = 17:15:37.192,,\n0,,25.0,0.1\n1000,,150.5,0.2\n2000,,300.25,0.3\n")
out("heating-log", "impulse.csv", b"Experiment time;Temperature Measured;Temperature Setpoint\n"
    b"0.0;25.1;25\n1.5;100.2;100\n3.0;175.0;175\n")
out("config", "full.yaml", b"pixel_size_nm: 0.05\nframe_interval_s: 2\nstep_tolerance_C: 3\nmin_hold_s: 30\n"
    b"roi: [0, 0, 32, 32]\nregistration:\n  mode: rigid\n  max_shift_px: 20\nsteps:\n  - {glob: '175C/*', temperature_C: 175}\n"
    b"  - {frames: [0, 3], temperature_C: 25}\nheating_log: heating_log.csv\nprofile:\n  width_px: 4\n  line: [0, 0, 10, 10]\n")

if sim:
    for fmt, target, ext in [("tiff", "tiff", "tif"), ("png", "png", "png"), ("dm4", "dm", "dm4")]:
        src = os.path.join(sim, fmt, "475C", f"frame_0000.{ext}")
        shutil.copy(src, os.path.join(seeds, target, f"simulated.{ext}")) if os.path.isdir(os.path.join(seeds, target)) \
            else out(target, f"simulated.{ext}", open(src, "rb").read())
    out("heating-log", "simulated.csv", open(os.path.join(sim, "tiff", "heating_log.csv"), "rb").read())
    out("config", "simulated.yaml", open(os.path.join(sim, "tiff", "heatfront.yaml"), "rb").read())
    # A run folder: records of (name index, 2-byte length, content), see Fuzz/Sources/FrameFuzzer.
    def rec(i, data):
        return bytes([i]) + struct.pack("<H", len(data)) + data
    tif = open(os.path.join(sim, "tiff", "475C", "frame_0000.tif"), "rb").read()
    png = open(os.path.join(sim, "png", "500C", "frame_0001.png"), "rb").read()
    out("run-folder", "mixed.bin", rec(0, tif) + rec(1, png) + rec(11, tif) + rec(5, b"time_s,temperature_C\n0,25\n60,25\n")
        + rec(6, b"min_hold_s: 10\n") + rec(0x80 | 14, b""))
    out("run-folder", "gatan.bin", rec(12, open(os.path.join(sim, "dm4", "475C", "frame_0000.dm4"), "rb").read())
        + rec(2, open(os.path.join(sim, "dm4", "500C", "frame_0001.dm4"), "rb").read()))
