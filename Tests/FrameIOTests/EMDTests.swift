import Foundation
import Testing
import CHDF5
import FrameCore
import FrameIO

/// Writes Velox-like EMD files with the HDF5 C API: `/Data/Image/<uuid>/Data` stored
/// (height, width, frames) and `/Data/Image/<uuid>/Metadata` uint8 (bytes, frames) holding
/// one NUL-padded JSON text per frame, as Velox does.
enum VeloxFixture {
    /// A signal to write. `value(frame, row, column)` gives the pixels.
    struct Signal {
        var uuid: String
        var height: Int
        var width: Int
        var frames: Int
        var type: hid_t                 // file type, e.g. chdf5_std_i16le()
        var value: (Int, Int, Int) -> Double
        var metadata: (Int) -> [String: Any]
        var complexFFT = false          // write a compound (real, imag) float32 pair instead
    }

    static func temporaryURL(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-emd-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(UUID().uuidString + "-" + name)
    }

    static func write(_ url: URL, signals: [Signal], imageGroup: String = "/Data/Image") throws {
        try HDF5Access.serialized {
            let f = H5Fcreate(url.path, chdf5_f_acc_trunc(), chdf5_p_default(), chdf5_p_default())
            try #require(f >= 0)
            defer { H5Fclose(f) }
            var path = ""
            for part in imageGroup.split(separator: "/") {
                path += "/" + part
                H5Gclose(H5Gcreate2(f, path, chdf5_p_default(), chdf5_p_default(), chdf5_p_default()))
            }
            for s in signals {
                let g = H5Gcreate2(f, imageGroup + "/" + s.uuid, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
                try #require(g >= 0)
                defer { H5Gclose(g) }
                try writeData(g, s)
                try writeMetadata(g, s)
            }
        }
    }

    private static func writeData(_ g: hid_t, _ s: Signal) throws {
        var dims: [hsize_t] = [hsize_t(s.height), hsize_t(s.width), hsize_t(s.frames)]
        let space = H5Screate_simple(3, &dims, nil)
        defer { H5Sclose(space) }
        if s.complexFFT {
            let t = H5Tcreate(H5T_COMPOUND, 8)
            H5Tinsert(t, "realFloatHalfEven", 0, chdf5_ieee_f32le())
            H5Tinsert(t, "imagFloatHalfEven", 4, chdf5_ieee_f32le())
            defer { H5Tclose(t) }
            let d = H5Dcreate2(g, "Data", t, space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
            defer { H5Dclose(d) }
            var bytes = [Float](repeating: 0.5, count: 2 * s.height * s.width * s.frames)
            #expect(H5Dwrite(d, t, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &bytes) >= 0)
            return
        }
        let d = H5Dcreate2(g, "Data", s.type, space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
        try #require(d >= 0)
        defer { H5Dclose(d) }
        // (height, width, frames), frames fastest: element (r, c, k) at (r·width + c)·frames + k.
        var buf = [Double](repeating: 0, count: s.height * s.width * s.frames)
        for r in 0..<s.height { for c in 0..<s.width { for k in 0..<s.frames {
            buf[(r * s.width + c) * s.frames + k] = s.value(k, r, c)
        } } }
        // HDF5 converts the doubles to the file type on write.
        #expect(H5Dwrite(d, chdf5_native_double(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &buf) >= 0)
    }

    private static func writeMetadata(_ g: hid_t, _ s: Signal) throws {
        let texts = try (0..<s.frames).map { try JSONSerialization.data(withJSONObject: s.metadata($0)) }
        let n = 60_000
        try #require(texts.allSatisfy { $0.count < n })
        var buf = [UInt8](repeating: 0, count: n * s.frames)
        for (k, t) in texts.enumerated() { for (i, b) in t.enumerated() { buf[i * s.frames + k] = b } }
        var dims: [hsize_t] = [hsize_t(n), hsize_t(s.frames)]
        let space = H5Screate_simple(2, &dims, nil)
        defer { H5Sclose(space) }
        let d = H5Dcreate2(g, "Metadata", chdf5_std_u8le(), space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
        defer { H5Dclose(d) }
        #expect(H5Dwrite(d, chdf5_native_uint8(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), &buf) >= 0)
    }

    /// Velox's per-frame JSON, reduced to the keys HeatFront reads plus a few others.
    static func veloxJSON(detector: String, detectorIndex: Int, pixelSizeM: Double?, start: Int,
                          frameTime: Double? = nil, dwell: Double? = nil, exposure: Double? = nil,
                          timeStampMicroseconds: Int64? = nil, frameID: Int = 0,
                          extraCustom: [String: Any] = [:]) -> [String: Any] {
        var binary: [String: Any] = ["Detector": detector, "DetectorIndex": "\(detectorIndex)",
                                     "PixelUnitX": "m", "PixelUnitY": "m", "Encoding": "Signed"]
        if let p = pixelSizeM { binary["PixelSize"] = ["width": "\(p)", "height": "\(p)"] }
        var scan: [String: Any] = [:]
        if let t = frameTime { scan["FrameTime"] = "\(t)" }
        if let d = dwell { scan["DwellTime"] = "\(d)" }
        var det: [String: Any] = ["DetectorName": detector]
        if let e = exposure { det["ExposureTime"] = "\(e)" }
        var custom = extraCustom
        if let us = timeStampMicroseconds {
            custom["Detectors[\(detector)].TimeStamp"] = ["type": "int64", "value": "\(us)"]
            custom["Detectors[\(detector)].FrameID"] = ["type": "long", "value": "\(frameID)"]
        }
        return ["Core": ["MetadataSchemaVersion": "v1/2013/07"],
                "Acquisition": ["AcquisitionStartDatetime": ["DateTime": "\(start)"]],
                "Instrument": ["Manufacturer": "FEI Company", "InstrumentModel": "Talos"],
                "Scan": scan,
                "Detectors": ["Detector-\(detectorIndex)": det],
                "BinaryResult": binary,
                "CustomProperties": custom]
    }
}

@Suite struct EMDTests {
    /// Pixel values that differ in every frame, row and column, so order and orientation show.
    static func ramp(_ k: Int, _ r: Int, _ c: Int) -> Double { Double(1000 * k + 16 * r + c - 500) }

    @Test func cameraSeriesFramesOrderCalibrationAndTimes() throws {
        let url = VeloxFixture.temporaryURL("series.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        let t0: Int64 = 1_700_000_123_250_000   // µs since 1970
        let signal = VeloxFixture.Signal(
            uuid: "3f2a9c0d1e2b4c5d8e9f00112233aabb", height: 20, width: 16, frames: 3, type: chdf5_std_i16le(),
            value: Self.ramp,
            metadata: { k in VeloxFixture.veloxJSON(detector: "BM-Ceta", detectorIndex: 0, pixelSizeM: 1.95e-11,
                                                    start: 1_700_000_120, exposure: 2.5,
                                                    timeStampMicroseconds: t0 + Int64(k) * 2_500_000, frameID: k) })
        try VeloxFixture.write(url, signals: [signal])

        let reader = try FrameFiles.open(url)
        #expect(reader.format == .emd)
        #expect(reader.signals.count == 1)
        let s = try #require(reader.signals.first)
        #expect(s.index == 0 && s.name == "BM-Ceta")
        #expect(s.frameCount == 3 && s.height == 20 && s.width == 16 && s.sampleType == .int16)
        #expect(abs(try #require(s.pixelSizeXNm) - 0.0195) < 1e-12)
        #expect(abs(try #require(s.pixelSizeYNm) - 0.0195) < 1e-12)
        #expect(reader.fileMetadata["BinaryResult.Detector"] == "BM-Ceta")
        #expect(reader.fileMetadata["Instrument.InstrumentModel"] == "Talos")

        var expectedAll: [Double] = []
        for k in 0..<3 {
            let plane = try reader.plane(signal: 0, frame: k)
            guard case .int16(let v) = plane.values else { Issue.record("frame \(k) not int16"); continue }
            let want = (0..<20).flatMap { r in (0..<16).map { c in Int16(Self.ramp(k, r, c)) } }
            #expect(v == want, "frame \(k) pixels or orientation wrong")
            expectedAll += want.map(Double.init)

            let md = try reader.metadata(signal: 0, frame: k)
            let stamp = try #require(md.acquisitionTime)
            #expect(abs(stamp.timeIntervalSince1970 - (Double(t0) / 1e6 + 2.5 * Double(k))) < 1e-5)
            #expect(abs(try #require(md.relativeTime_s) - 2.5 * Double(k)) < 1e-6)
            #expect(md.original["CustomProperties.Detectors[BM-Ceta].FrameID.value"] == "\(k)")
            #expect(md.dwellTime_s == nil)
        }
        // The fingerprint is the manifest's: sha256 of all frames as little-endian float64.
        let hasher = SHA256Hasher()
        hasher.updateFloat64LE(expectedAll)
        let fp = try reader.fingerprint(signal: 0)
        #expect(fp.sha256 == hasher.finalizeHex())
        #expect(fp.min == expectedAll.min() && fp.max == expectedAll.max())
    }

    @Test func stemSeriesWithoutTimestampsUsesStartPlusFrameTime() throws {
        let url = VeloxFixture.temporaryURL("stem.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        let signal = VeloxFixture.Signal(
            uuid: "aa00", height: 8, width: 12, frames: 3, type: chdf5_std_u16le(),
            value: { k, r, c in Double(100 * k + 12 * r + c) },
            metadata: { _ in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 4, pixelSizeM: 8.7e-11,
                                                    start: 1_700_000_000, frameTime: 0.75, dwell: 2e-6,
                                                    extraCustom: ["HolderTemperature": ["type": "double", "value": "175.5"]]) })
        try VeloxFixture.write(url, signals: [signal])
        let reader = try EMDReader(url: url)
        #expect(reader.signals[0].sampleType == .uint16)
        for k in 0..<3 {
            let md = try reader.metadata(signal: 0, frame: k)
            #expect(md.acquisitionTime == Date(timeIntervalSince1970: 1_700_000_000 + 0.75 * Double(k)))
            #expect(md.relativeTime_s == 0.75 * Double(k))
            #expect(md.dwellTime_s == 2e-6)
            #expect(md.temperatureC == 175.5)
            #expect(abs(try #require(md.pixelSizeXNm) - 0.087) < 1e-12)
            let p = try reader.plane(signal: 0, frame: k)
            #expect(p.doubleValues()[12 * 7 + 11] == Double(100 * k + 12 * 7 + 11))   // last pixel, row 7
        }
    }

    @Test func multiDetectorFileNumbersGroupsInNameOrderAndPicksHAADF() throws {
        let url = VeloxFixture.temporaryURL("multi.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        func stem(_ uuid: String, _ detector: String, _ index: Int, offset: Double) -> VeloxFixture.Signal {
            VeloxFixture.Signal(uuid: uuid, height: 6, width: 5, frames: 1, type: chdf5_std_u16le(),
                                value: { _, r, c in offset + Double(5 * r + c) },
                                metadata: { _ in VeloxFixture.veloxJSON(detector: detector, detectorIndex: index,
                                                                        pixelSizeM: 2e-10, start: 1_600_000_000) })
        }
        var fft = stem("0a1b", "Half FFT", 9, offset: 0)
        fft.complexFFT = true
        // Written out of name order: the reader must sort by name, as h5py iterates.
        try VeloxFixture.write(url, signals: [stem("9f00", "BF", 0, offset: 3000), stem("5c00", "HAADF", 4, offset: 1000),
                                              fft, stem("2d00", "DF2", 2, offset: 2000)])
        let reader = try EMDReader(url: url)
        #expect(reader.signals.map(\.index) == [1, 2, 3])            // 0 is the complex FFT, not listed
        #expect(reader.signals.map(\.name) == ["DF2", "HAADF", "BF"])
        #expect(reader.primarySignal == 1)
        #expect(reader.fileMetadata["BinaryResult.Detector"] == "HAADF")
        for (pos, offset) in [(0, 2000.0), (1, 1000.0), (2, 3000.0)] {
            let v = try reader.plane(signal: pos, frame: 0).doubleValues()
            #expect(v == (0..<30).map { offset + Double($0) })
            #expect(abs(try #require(reader.signals[pos].pixelSizeXNm) - 0.2) < 1e-12)
        }
    }

    @Test func concurrentReadsAreSerialisedAndExact() throws {
        let url = VeloxFixture.temporaryURL("concurrent.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        let signal = VeloxFixture.Signal(
            uuid: "c0", height: 32, width: 32, frames: 16, type: chdf5_std_i32le(),
            value: { k, r, c in Double(k * 100_000 + r * 32 + c) },
            metadata: { k in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 0, pixelSizeM: 1e-10,
                                                    start: 1_700_000_000, frameTime: 1) })
        try VeloxFixture.write(url, signals: [signal])
        let reader = try EMDReader(url: url)
        let ok = OKCounter()
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let k = i % 16
            guard let p = try? reader.plane(signal: 0, frame: k), case .int32(let v) = p.values else { return }
            if v == (0..<1024).map({ Int32(k * 100_000 + $0) }) { ok.increment() }
        }
        #expect(ok.value == 64)
    }

    // MARK: Bad input: a FrameIOError naming the problem, never a crash.

    @Test func zeroByteFile() throws {
        let url = VeloxFixture.temporaryURL("empty.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data().write(to: url)
        let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(e?.kind == .truncated)
    }

    @Test func notHDF5() throws {
        let url = VeloxFixture.temporaryURL("text.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("this is not an HDF5 file at all, just text padding".utf8).write(to: url)
        let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(e?.kind == .badMagic)
    }

    @Test func truncatedHDF5() throws {
        let url = VeloxFixture.temporaryURL("trunc.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try VeloxFixture.write(url, signals: [VeloxFixture.Signal(
            uuid: "t0", height: 64, width: 64, frames: 2, type: chdf5_std_u16le(), value: { k, r, c in Double(k + r + c) },
            metadata: { _ in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 0, pixelSizeM: 1e-10, start: 1) })])
        let full = try Data(contentsOf: url)
        for cut in [full.count / 2, 3000, 100] {
            try full.prefix(cut).write(to: url)
            let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
            #expect(e?.kind == .truncated, "cut at \(cut): \(String(describing: e))")
            #expect(e?.file == url.path)
        }
    }

    @Test func hdf5WithoutDataImage() throws {
        let url = VeloxFixture.temporaryURL("nodata.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try VeloxFixture.write(url, signals: [], imageGroup: "/Data/Spectrum")
        let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(e?.kind == .unsupported)
        #expect(e?.detail.contains("/Data/Image") == true)
    }

    @Test func absurdDeclaredSizeAndUnwrittenData() throws {
        for (dims, chunked, kind) in [([100_000, 100_000, 1000], true, FrameIOError.Kind.corrupt),
                                      ([64, 64, 2], false, .truncated)] {
            let url = VeloxFixture.temporaryURL("absurd.emd")
            defer { try? FileManager.default.removeItem(at: url) }
            try HDF5Access.serialized {
                let f = H5Fcreate(url.path, chdf5_f_acc_trunc(), chdf5_p_default(), chdf5_p_default())
                try #require(f >= 0)
                defer { H5Fclose(f) }
                for p in ["/Data", "/Data/Image", "/Data/Image/ff"] {
                    H5Gclose(H5Gcreate2(f, p, chdf5_p_default(), chdf5_p_default(), chdf5_p_default()))
                }
                var d = dims.map { hsize_t($0) }
                let space = H5Screate_simple(3, &d, nil)
                let dcpl = H5Pcreate(chdf5_p_dataset_create())
                if chunked { var chunk: [hsize_t] = [64, 64, 1]; H5Pset_chunk(dcpl, 3, &chunk) }
                // Declared only: HDF5 allocates nothing until data is written.
                let ds = H5Dcreate2(f, "/Data/Image/ff/Data", chdf5_std_u16le(), space, chdf5_p_default(), dcpl, chdf5_p_default())
                try #require(ds >= 0)
                H5Dclose(ds); H5Pclose(dcpl); H5Sclose(space)
            }
            let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
            #expect(e?.kind == kind, "\(dims): \(String(describing: e))")
        }
    }

    @Test func chunkedSeriesWithMissingFrames() throws {
        let url = VeloxFixture.temporaryURL("partial.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try HDF5Access.serialized {
            let f = H5Fcreate(url.path, chdf5_f_acc_trunc(), chdf5_p_default(), chdf5_p_default())
            try #require(f >= 0)
            defer { H5Fclose(f) }
            for p in ["/Data", "/Data/Image", "/Data/Image/ee"] {
                H5Gclose(H5Gcreate2(f, p, chdf5_p_default(), chdf5_p_default(), chdf5_p_default()))
            }
            // Declares 4 frames of 64×64, chunked one frame per chunk as Velox does; writes one.
            var dims: [hsize_t] = [64, 64, 4], chunk: [hsize_t] = [64, 64, 1]
            let space = H5Screate_simple(3, &dims, nil)
            let dcpl = H5Pcreate(chdf5_p_dataset_create())
            H5Pset_chunk(dcpl, 3, &chunk)
            let ds = H5Dcreate2(f, "/Data/Image/ee/Data", chdf5_std_u16le(), space, chdf5_p_default(), dcpl, chdf5_p_default())
            try #require(ds >= 0)
            var start: [hsize_t] = [0, 0, 0]
            H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &chunk, nil)
            var mdims: [hsize_t] = [64 * 64]
            let mspace = H5Screate_simple(1, &mdims, nil)
            var frame = [UInt16](repeating: 7, count: 64 * 64)
            #expect(H5Dwrite(ds, chdf5_native_uint16(), mspace, space, chdf5_p_default(), &frame) >= 0)
            H5Sclose(mspace); H5Dclose(ds); H5Pclose(dcpl); H5Sclose(space)
        }
        let e = #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(e?.kind == .truncated)
        #expect(e?.detail.contains("stores 8192 of 32768 bytes") == true, "\(String(describing: e))")
    }

    @Test func externalLinksAreNotFollowed() throws {
        let target = VeloxFixture.temporaryURL("target.emd"), outer = VeloxFixture.temporaryURL("outer.emd")
        defer { try? FileManager.default.removeItem(at: target); try? FileManager.default.removeItem(at: outer) }
        func sig(_ uuid: String) -> VeloxFixture.Signal {
            VeloxFixture.Signal(uuid: uuid, height: 4, width: 4, frames: 1, type: chdf5_std_u16le(),
                                value: { _, r, c in Double(r + c) },
                                metadata: { _ in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 0, pixelSizeM: 1e-10, start: 1) })
        }
        try VeloxFixture.write(target, signals: [sig("t1")])
        try VeloxFixture.write(outer, signals: [sig("bb")])
        try HDF5Access.serialized {
            let f = H5Fopen(outer.path, chdf5_f_acc_rdwr(), chdf5_p_default())
            try #require(f >= 0)
            defer { H5Fclose(f) }
            // Sorted before "bb": would be signal 0 if followed.
            #expect(H5Lcreate_external(target.path, "/Data/Image/t1", f, "/Data/Image/aa", chdf5_p_default(), chdf5_p_default()) >= 0)
        }
        let reader = try EMDReader(url: outer)
        #expect(reader.signals.map(\.index) == [1])
    }

    @Test func outOfRangeSignalOrFrame() throws {
        let url = VeloxFixture.temporaryURL("range.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try VeloxFixture.write(url, signals: [VeloxFixture.Signal(
            uuid: "r0", height: 4, width: 4, frames: 2, type: chdf5_std_u16le(), value: { k, r, c in Double(k + r + c) },
            metadata: { _ in VeloxFixture.veloxJSON(detector: "HAADF", detectorIndex: 0, pixelSizeM: nil, start: 1) })])
        let reader = try EMDReader(url: url)
        #expect(reader.signals[0].pixelSizeXNm == nil)
        #expect(throws: FrameIOError.self) { try reader.plane(signal: 0, frame: 2) }
        #expect(throws: FrameIOError.self) { try reader.plane(signal: 1, frame: 0) }
        #expect(throws: FrameIOError.self) { try reader.metadata(signal: 0, frame: -1) }
    }
}

/// A thread-safe counter for the concurrency test.
final class OKCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
