import ArgumentParser
import Foundation
import Simulation
import FrameCore

/// `heatfront validate`: compares a run's outputs with a simulated run's ground truth.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Compare OUT_DIR (from heatfront run) with the ground truth in a simulated RUN_DIR; exit 1 when a target is missed.")

    @Argument(help: "Output folder of heatfront run.")
    var outDir: String

    @Option(name: .long, help: "The simulated run folder holding ground_truth.csv and ground_truth.json.")
    var truth: String

    func run() throws {
        let report = RunValidation.validate(outDir: URL(fileURLWithPath: outDir, isDirectory: true),
                                            truthDir: URL(fileURLWithPath: truth, isDirectory: true))
        Terminal.out(report.text())
        if !report.allPassed { throw ExitCode(1) }
    }
}
