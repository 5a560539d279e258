import Foundation
import Testing
import CHDF5
import FrameCore
import FrameIO

@Suite struct FileInspectionTests {
    /// Parses the JSON back, to check keys and values as a reader of the output would.
    static func parse(_ json: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test(.enabled(if: Corpus.available, "../shared/corpus is not beside this checkout"))
    func corpusFileMatchesManifest() throws {
        // FFTComplexEven.emd: signal 0 is a complex half-FFT (not listed), 1 is HAADF.
        let row = try #require(Corpus.rows(format: "emd").first { $0["file"] == "emd/FFTComplexEven.emd" })
        let inspection = try FileInspection.inspect(Corpus.root.appendingPathComponent(row["file"]))
        #expect(inspection.format == .emd)
        #expect(inspection.signals.count == 1)
        let s = try #require(inspection.signals.first)
        #expect(s.index == 1 && s.name == "HAADF")
        #expect(s.frameCount == 1 && s.height == 128 && s.width == 128 && s.sampleType == .uint16)
        #expect(s.sha256Float64 == row["sha256_float64"])
        #expect(s.min == Double(row["min"]) && s.max == Double(row["max"]))
        let mean = Double(row["mean"])!
        #expect(abs(try #require(s.mean) - mean) <= 1e-12 * mean)
        // 0.027115295630818652 µm in the manifest.
        #expect(abs(try #require(s.pixelSizeXNm) - 27.115295630818652) < 1e-9)

        let json = try inspection.jsonString()
        let top = try Self.parse(json)
        #expect(Set(top.keys) == ["file", "format", "primary_signal", "signals", "metadata"])
        #expect(top["format"] as? String == "emd")
        let sig = try #require((top["signals"] as? [[String: Any]])?.first)
        #expect(Set(sig.keys) == ["index", "name", "n_frames", "height", "width", "dtype", "pixel_size_nm",
                                  "pixel_size_y_nm", "min", "max", "mean", "sha256_float64"])
        #expect(sig["sha256_float64"] as? String == row["sha256_float64"])
        #expect(sig["dtype"] as? String == "uint16")
        #expect((sig["index"] as? NSNumber)?.intValue == 1)
        let metadata = try #require(top["metadata"] as? [String: String])
        #expect(metadata["BinaryResult.Detector"] == "HAADF")
    }

    @Test func writtenEMDWithUncalibratedSignal() throws {
        let url = VeloxFixture.temporaryURL("inspect.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        // Two detectors: DF2 calibrated, HAADF without a pixel size. Values 0..<24 and 100..<124.
        func signal(_ uuid: String, _ detector: String, pixel: Double?, offset: Double) -> VeloxFixture.Signal {
            VeloxFixture.Signal(uuid: uuid, height: 4, width: 3, frames: 2, type: chdf5_std_u16le(),
                                value: { k, r, c in offset + Double(12 * k + 3 * r + c) },
                                metadata: { _ in VeloxFixture.veloxJSON(detector: detector, detectorIndex: 1,
                                                                        pixelSizeM: pixel, start: 1_650_000_000) })
        }
        try VeloxFixture.write(url, signals: [signal("aa", "DF2", pixel: 5e-11, offset: 0),
                                              signal("bb", "HAADF", pixel: nil, offset: 100)])
        let inspection = try FileInspection.inspect(url)
        #expect(inspection.primarySignal == 1)
        #expect(inspection.signals.map(\.name) == ["DF2", "HAADF"])
        let haadf = inspection.signals[1]
        #expect(haadf.min == 100 && haadf.max == 123 && haadf.mean == 111.5)
        #expect(haadf.pixelSizeXNm == nil && haadf.pixelSizeYNm == nil)
        let hasher = SHA256Hasher()
        hasher.updateFloat64LE((0..<24).map { 100 + Double($0) })
        #expect(haadf.sha256Float64 == hasher.finalizeHex())
        #expect(abs(try #require(inspection.signals[0].pixelSizeXNm) - 0.05) < 1e-12)

        let json = try inspection.jsonString()
        #expect(json == (try FileInspection.inspect(url).jsonString()), "same file, same bytes")
        #expect(json.hasSuffix("}\n"))
        let sigs = try #require(try Self.parse(json)["signals"] as? [[String: Any]])
        #expect(sigs[1]["pixel_size_nm"] is NSNull, "uncalibrated must be an explicit null")
        #expect(sigs[1]["pixel_size_y_nm"] is NSNull)
        #expect((sigs[0]["pixel_size_nm"] as? NSNumber)?.doubleValue == 0.05)
        #expect((sigs[1]["n_frames"] as? NSNumber)?.intValue == 2)
        // Sorted keys: "dtype" precedes "height" precedes "index" in each signal object.
        let d = try #require(json.range(of: "\"dtype\"")), h = try #require(json.range(of: "\"height\"")),
            i = try #require(json.range(of: "\"index\""))
        #expect(d.lowerBound < h.lowerBound && h.lowerBound < i.lowerBound)
    }

    @Test func decodeErrorsPropagateAsFrameIOError() throws {
        let url = VeloxFixture.temporaryURL("broken.emd")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(repeating: 0x41, count: 300).write(to: url)
        let e = #expect(throws: FrameIOError.self) { try FileInspection.inspect(url) }
        #expect(e?.file == url.path)
    }
}
