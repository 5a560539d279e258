import ArgumentParser
import FrameCore

@main
struct HeatFrontCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heatfront",
        abstract: "In-situ STEM heating runs → aligned frames, column intensities, reaction-front kinetics.",
        version: HeatFrontVersion.string,
        subcommands: [Run.self, Watch.self, Register.self, Submit.self, Inspect.self, Simulate.self, Validate.self, SlurmTask.self]
    )

    static func main() {
        FrameMemory.reuseFrameBuffers()
        Terminal.ignoreBrokenPipes()
        main(nil)
    }
}
