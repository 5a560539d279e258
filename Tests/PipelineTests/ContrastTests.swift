import Foundation
import Testing
import FrameIO
import Pipeline
import Simulation

/// Dark-column (ABF-like) frames: registered as usual, no Li/TM unless the config states the
/// contrast, and then the same Li/TM as bright-column frames of the same specimen.
@Suite(.serialized) struct ContrastTests {
    static func simulate(_ name: String, inverted: Bool) -> URL {
        let dir = RunPipelineTests.scratch(name)
        var o = SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)
        o.framesPerStep = 5
        if inverted { o.invertedContrastLevel = 1.5 }
        try! HeatingRunSimulator(o).write(to: dir)
        return dir
    }

    static func run(_ runDir: URL, out: URL, config: URL? = nil) throws -> (RunSummary, [[String: String]]) {
        var options = RunOptions()
        options.configURL = config
        let progress = ProgressReporter(style: .quiet)
        let summary = try RunPipeline.run(runDir: runDir, outDir: out, options: options, progress: progress,
                                          cancel: Cancellation())
        let text = try String(contentsOf: out.appendingPathComponent("steps.csv"), encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return (summary, lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(lines[0], $0)) })
    }

    @Test func darkColumnsGetNoLiTmAndOneWarning() throws {
        let run = Self.simulate("dark", inverted: true)
        let out = RunPipelineTests.scratch("dark-out")
        let (summary, steps) = try Self.run(run, out: out)
        #expect(summary.nUsed == summary.nFrames)
        #expect(steps.allSatisfy { $0["li_tm_ratio_mean"] == "" })
        #expect(summary.warnings.contains { $0.contains("columns are dark") })
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json")))
            as! [String: Any]
        let lattice = try #require(json["lattice"] as? [String: Any])
        #expect(lattice["contrast"] as? String == "dark_columns")
        #expect(lattice["layered_model_applies"] as? Bool == false)
    }

    @Test func statedDarkContrastMeasuresTheSameLiTmAsBrightColumns() throws {
        let bright = try Self.run(Self.simulate("bright", inverted: false), out: RunPipelineTests.scratch("bright-out")).1
        let run = Self.simulate("dark-stated", inverted: true)
        let config = run.appendingPathComponent("dark.yaml")
        let yaml = try String(contentsOf: run.appendingPathComponent("heatfront.yaml"), encoding: .utf8)
        try (yaml + "\ncontrast: dark_columns\n").write(to: config, atomically: true, encoding: .utf8)
        let dark = try Self.run(run, out: RunPipelineTests.scratch("dark-stated-out"), config: config).1
        #expect(dark.count == bright.count)
        for (d, b) in zip(dark, bright) {
            let rd = try #require(Double(d["li_tm_ratio_mean"] ?? "")), rb = try #require(Double(b["li_tm_ratio_mean"] ?? ""))
            #expect(abs(rd - rb) < 0.02, "step \(d["step_index"] ?? ""): Li/TM \(rd) dark against \(rb) bright")
        }
    }
}
