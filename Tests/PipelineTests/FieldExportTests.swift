import Foundation
import FrameCore
import FrameIO
import Pipeline
import Simulation
import Testing

/// `--export-fields`: every corrected frame's displacement, readable back, consistent with
/// its rigid shift in frames.csv, and a real scan distortion (not a constant).
@Suite("Displacement field export")
struct FieldExportTests {
    @Test func nonrigidFieldsAreWrittenPerFrame() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-fields-\(getpid())")
        try? FileManager.default.removeItem(at: base)
        defer { try? FileManager.default.removeItem(at: base) }
        var o = SimulationOptions(preset: .scanDistortion, size: 256)
        o.framesPerStep = 4
        let run = base.appendingPathComponent("run"), out = base.appendingPathComponent("out")
        try HeatingRunSimulator(o).write(to: run)
        var options = RunOptions()
        options.mode = .nonrigid
        options.registrationOnly = true
        options.exportFields = true
        _ = try RunPipeline.run(runDir: run, outDir: out, options: options,
                                progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        let rows = try String(contentsOf: out.appendingPathComponent("frames.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        // Steps whose correction was not kept (less regular columns than rigid alignment)
        // have no fields: on this run step 1's correction measures 0.124 px against 0.068 px
        // rigid, with 4 frames per step.
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
        let warnings = summary["warnings"] as? [String] ?? []
        func rigidKept(_ step: Substring) -> Bool {
            warnings.contains { $0.hasPrefix("step \(step):") && $0.hasSuffix("rigid alignment kept") }
        }
        let used = rows.filter { $0[9] == "ok" }
        let corrected = used.filter { !rigidKept($0[3]) }
        #expect(!corrected.isEmpty)
        for r in used where rigidKept(r[3]) {
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("fields/frame_\(r[0])_ux.tif").path))
        }
        for r in corrected {
            let i = String(r[0])
            let ux = try FrameFiles.open(out.appendingPathComponent("fields/frame_\(i)_ux.tif")).frame(signal: 0, frame: 0).image
            let uy = try FrameFiles.open(out.appendingPathComponent("fields/frame_\(i)_uy.tif")).frame(signal: 0, frame: 0).image
            #expect(ux.width == 256 && ux.height == 256 && uy.width == 256)
            // The field is the rigid shift plus a distortion of a few px at most.
            let dx = Double(r[6])!, dy = Double(r[7])!
            #expect(abs(ux.mean - dx) < 3 && abs(uy.mean - dy) < 3, "frame \(i)")
            // Flyback: the first columns are displaced differently from the rest.
            let spread = (ux.pixels.max() ?? 0) - (ux.pixels.min() ?? 0)
            #expect(spread > 0.3, "frame \(i): x displacement varies by \(spread) px only")
        }
    }
}
