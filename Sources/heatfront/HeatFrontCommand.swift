import ArgumentParser
import FrameCore

@main
struct HeatFrontCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heatfront",
        abstract: "In-situ STEM heating runs → aligned frames, column intensities, reaction-front kinetics.",
        version: HeatFrontVersion.string,
        subcommands: [Run.self, Register.self, Inspect.self, Simulate.self, Validate.self]
    )

    static func main() {
        FrameMemory.reuseFrameBuffers()
        Terminal.ignoreBrokenPipes()
        main(nil)
    }
}
