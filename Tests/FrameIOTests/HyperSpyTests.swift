import Foundation
import Testing
import CHDF5
import FrameIO

/// HyperSpy `.hspy`/`.hdf5` files: the corpus's real files and small files written here in
/// the layouts of HyperSpy's format versions 2.x and 3.x.
@Suite struct HyperSpyTests {
    /// A 3-D `.hspy` in format 3.x: `navigate` attributes, a time axis, gzip chunks.
    static func writeStack(_ url: URL, type: hid_t, values: (Int, Int, Int) -> Double,
                           xUnits: String = "µm", xSize: Int = 5, chunks: [Int]? = [1, 4, 5]) throws {
        let w = try HDF5Writer(url)
        defer { w.close() }
        w.string("/", "file_format", "HyperSpy")
        w.string("/", "file_format_version", "3.3")
        let g = "/Experiments/HAADF series"
        w.group(g + "/metadata/General")
        w.group(g + "/metadata/Signal")
        w.string(g + "/metadata/General", "title", "HAADF")
        w.string(g + "/metadata/General", "date", "2024-03-05")
        w.string(g + "/metadata/General", "time", "10:20:30.5")
        w.string(g + "/metadata/Signal", "signal_type", "")
        let v = (0..<3).flatMap { k in (0..<4).flatMap { r in (0..<5).map { c in values(k, r, c) } } }
        w.dataset(g + "/data", dims: [3, 4, 5], type: type, values: v, chunks: chunks, gzip: chunks != nil)
        for (i, axis) in [("time", "s", 2.0, true, 3), ("y", "nm", 0.5, false, 4), ("x", xUnits, 0.002, false, xSize)].enumerated() {
            let a = g + "/axis-\(i)"
            w.group(a)
            w.string(a, "name", axis.0)
            w.string(a, "units", axis.1)
            w.double(a, "scale", axis.2)
            w.double(a, "offset", 0)
            w.int(a, "size", axis.4)
            w.bool(a, "navigate", axis.3)
        }
    }

    static func ramp(_ k: Int, _ r: Int, _ c: Int) -> Double { Double(100 * k + 10 * r + c) }

    @Test func format3StackFramesCalibrationTimesAndName() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("stack.hspy")
        try Self.writeStack(url, type: chdf5_std_i16le(), values: Self.ramp)
        let r = try FrameFiles.open(url)
        #expect(r.format == .hspy)
        let s = try #require(r.signals.first)
        #expect(s.index == 0 && s.name == "HAADF")
        #expect(s.frameCount == 3 && s.height == 4 && s.width == 5 && s.sampleType == .int16)
        #expect(abs(try #require(s.pixelSizeXNm) - 2) < 1e-12)      // 0.002 µm
        #expect(abs(try #require(s.pixelSizeYNm) - 0.5) < 1e-12)
        for k in 0..<3 {
            let want = (0..<4).flatMap { row in (0..<5).map { c in Self.ramp(k, row, c) } }
            #expect(try r.plane(signal: 0, frame: k).doubleValues() == want, "frame \(k)")
            let md = try r.metadata(signal: 0, frame: k)
            #expect(md.relativeTime_s == 2.0 * Double(k))
            #expect(md.pixelSizeXNm == s.pixelSizeXNm)
        }
        let t = try #require(try r.metadata(signal: 0, frame: 0).acquisitionTime)
        #expect(abs(t.timeIntervalSince1970 - 1_709_634_030.5) < 1e-6)   // 2024-03-05T10:20:30.5Z
        #expect(r.fileMetadata["metadata.General.title"] == "HAADF")
    }

    /// Metadata groups linked back to `metadata` (here three times from `General`) are read
    /// once: walked by path, every level multiplied the paths by three, and the walk repeated
    /// the attributes under `General.up.General…` down to its depth cap.
    @Test func metadataGroupsLinkedBackAreReadOnce() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("loops.hspy")
        try Self.writeStack(url, type: chdf5_std_i16le(), values: Self.ramp)
        let w = try HDF5Writer(url, reopen: true)
        let metadata = "/Experiments/HAADF series/metadata"
        for name in ["up", "back", "again"] { w.hardLink(metadata, metadata + "/General/" + name) }
        w.close()
        let r = try FrameFiles.open(url)
        #expect(r.fileMetadata["metadata.General.title"] == "HAADF")
        #expect(r.fileMetadata.keys.filter { $0.contains(".up.") || $0.contains(".back.") }.isEmpty)
    }

    @Test func float16IsWidenedExactly() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("half.hdf5")
        let t = HDF5Access.serialized { HDF5Writer.float16Type() }
        defer { _ = HDF5Access.serialized { H5Tclose(t) } }
        // Halves: 0.5 steps and a subnormal-free range representable exactly.
        try Self.writeStack(url, type: t, values: { k, r, c in Double(k) + Double(r) * 0.25 - Double(c) * 0.5 })
        let r = try HyperSpyReader(url: url)
        #expect(r.signals[0].sampleType == .float16)
        let p = try r.plane(signal: 0, frame: 2)
        guard case .float16(let v) = p.values else { Issue.record("not float16"); return }
        #expect(v[0] == 2 && v[19] == 2 + 0.75 - 2)
    }

    /// HyperSpy 2.x: no `navigate`; `metadata/Signal/record_by` names the signal axes;
    /// `_None_` units leave the image uncalibrated.
    @Test(arguments: [("image", true), ("spectrum", false)])
    func format2RecordBy(_ recordBy: String, _ listed: Bool) throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("v2.hdf5")
        do {
            let w = try HDF5Writer(url)
            defer { w.close() }
            w.string("/", "file_format", "HyperSpy")
            w.string("/", "file_format_version", "2.2")
            let g = "/Experiments/__unnamed__"
            w.group(g + "/metadata/Signal")
            w.string(g + "/metadata/Signal", "record_by", recordBy)
            w.dataset(g + "/data", dims: [2, 3, 4], type: chdf5_ieee_f64le(), values: (0..<24).map(Double.init))
            for i in 0..<3 {
                w.group(g + "/axis-\(i)")
                w.string(g + "/axis-\(i)", "units", "_None_")
                w.double(g + "/axis-\(i)", "scale", 0.25)
                w.int(g + "/axis-\(i)", "size", [2, 3, 4][i])
            }
        }
        if listed {
            let r = try HyperSpyReader(url: url)
            let s = r.signals[0]
            #expect(s.frameCount == 2 && s.height == 3 && s.width == 4 && s.name == "")
            #expect(s.pixelSizeXNm == nil && s.pixelSizeYNm == nil)
            #expect(try r.plane(signal: 0, frame: 1).doubleValues() == (12..<24).map(Double.init))
        } else {
            let e = #expect(throws: FrameIOError.self) { try HyperSpyReader(url: url) }
            #expect(e?.kind == .unsupported)
            #expect(e?.detail.contains("no image signal") == true, "\(String(describing: e))")
        }
    }

    @Test func reciprocalUnitsAreNotAPixelSize() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("fft.hspy")
        try Self.writeStack(url, type: chdf5_std_i16le(), values: Self.ramp, xUnits: "1/nm")
        let s = try HyperSpyReader(url: url).signals[0]
        #expect(s.pixelSizeXNm == nil)
        #expect(s.pixelSizeYNm == 0.5)
    }

    @Test func axisThatContradictsTheDataIsAnError() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("bad-axis.hspy")
        try Self.writeStack(url, type: chdf5_std_i16le(), values: Self.ramp, xSize: 6)
        let e = #expect(throws: FrameIOError.self) { try HyperSpyReader(url: url) }
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("axis-2 says 6 points but the data has 5") == true, "\(String(describing: e))")
    }

    /// A tiny file whose compressed dataset declares 4096 frames of 4096² float32 (256 GiB),
    /// one chunk of it written: refused at open, nothing allocated by the claim.
    @Test func hugeDeclaredDatasetIsRefusedAtOpen() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("bomb.hspy")
        do {
            let w = try HDF5Writer(url)
            defer { w.close() }
            w.string("/", "file_format_version", "3.1")
            let g = "/Experiments/bomb"
            w.group(g)
            w.dataset(g + "/data", dims: [4096, 4096, 4096], type: chdf5_ieee_f32le(), values: [1],
                      chunks: [1, 64, 64], gzip: true)
        }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(size < 100_000)
        let e = #expect(throws: FrameIOError.self) { try HyperSpyReader(url: url) }
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("far more than the") == true, "\(String(describing: e))")
    }

    @Test func notAHyperSpyFile() throws {
        let dir = ScratchFolder("hspy")
        let url = dir.file("other.hdf5")
        do {
            let w = try HDF5Writer(url)
            w.group("/entry")
            w.close()
        }
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.kind == .unsupported)
        #expect(e?.file == url.path)
        #expect(FrameFormat(fileExtension: "hspy") == .hspy && FrameFormat(fileExtension: "HDF5") == .hspy)
        #expect(FrameFormat.hspy.isRunFrameFormat && FrameFormat.zspy.isRunFrameFormat && FrameFormat.emdBerkeley.isRunFrameFormat)
    }

    /// A 6.8 kB file (found by the fuzzer) whose global heap collection holds an object of
    /// index 0 and size 0: HDF5 1.10 decodes that collection in a loop that never advances,
    /// so opening the file hung forever. HeatFront's read-only HDF5 driver refuses the
    /// collection before HDF5 decodes it: one error line naming the file.
    @Test func globalHeapCollectionThatNeverAdvancesIsRefused() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/seeds/hspy/regression-global-heap-loop.hspy")
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path)
    }

    @Test(.enabled(if: Corpus.available, "../shared/corpus is not beside this checkout"))
    func corpusFilesLayouts() throws {
        let stack = try HyperSpyReader(url: Corpus.root.appendingPathComponent("hspy/64x64x5_TEM_preview.hspy"))
        #expect(stack.signals[0].frameCount == 5)               // format 3.3, navigate on axis-0
        let holo = try HyperSpyReader(url: Corpus.root.appendingPathComponent("hspy/01_holo_Vbp_130V_0V_bin2_crop.hdf5"))
        #expect(holo.signals[0].name == "Hologram of Fe needle")  // format 2.2
        let fft = try HyperSpyReader(url: Corpus.root.appendingPathComponent("hspy/example2_v3.1.hspy"))
        #expect(fft.signals[0].pixelSizeXNm == nil)               // 1/nm
        let atomap = try HyperSpyReader(url: Corpus.root.appendingPathComponent("hspy/example_detector_image.hspy"))
        #expect(abs(try #require(atomap.signals[0].pixelSizeXNm) - 31.036470055905062) < 1e-9)   // "microns"
        let abf = try HyperSpyReader(url: Corpus.root.appendingPathComponent("hspy/test_ABF_cropped.hdf5"))
        #expect(abf.signals[0].sampleType == .float16 && abf.signals[0].pixelSizeXNm == nil)   // no unit
    }
}
