import Foundation
import Testing
import FrameCore
import FrameIO
import Simulation

/// Writing whole run folders. These go through FrameIO's TIFF/PNG/DM4 writers and readers,
/// so they pass only once those are in the build.
@Suite struct RunWriterTests {
    func files(under dir: URL) -> [String] {
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)!
        return e.compactMap { ($0 as? URL).map { String($0.path.dropFirst(dir.path.count + 1)) } }
            .filter { !$0.isEmpty && !FileManager.default.isDirectory(dir.appendingPathComponent($0)) }.sorted()
    }

    @Test(arguments: [SimulatedFormat.tiff, .png, .dm4])
    func writesAReadableDeterministicRun(format: SimulatedFormat) throws {
        var o = SimulationOptions(preset: .gradualOnset, size: 64)
        o.framesPerStep = 2
        o.format = format
        let sim = HeatingRunSimulator(o)
        let a = try tempDir("run-a"), b = try tempDir("run-b")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        try sim.write(to: a)
        try HeatingRunSimulator(o).write(to: b)
        let expected = (["ground_truth.csv", "ground_truth.json", "heatfront.yaml", "heating_log.csv"]
            + (0..<sim.frameCount).map { sim.frameTruth($0).file }).sorted()
        #expect(files(under: a) == expected)
        for f in expected {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f) differs")
        }
        // Frames read back: same counts, calibration and acquisition time.
        for i in [0, sim.frameCount - 1] {
            let reader = try FrameFiles.open(a.appendingPathComponent(sim.frameTruth(i).file))
            let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
            #expect(frame.image == sim.render(frame: i))
            #expect(abs((frame.metadata.pixelSizeNm ?? 0) - o.pixelSizeNm) < 1e-6)
            let t = try #require(frame.metadata.acquisitionTime)
            #expect(abs(t.timeIntervalSince1970 - (o.programmeStartEpochS + sim.frameStartS(i))) < 1e-3)
        }
    }
}

extension FileManager {
    func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }
}
