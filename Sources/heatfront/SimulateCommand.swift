import ArgumentParser

// STUB: replaced when the simulate command is built.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "simulate", abstract: "(not built yet)")
    func run() throws { throw ValidationError("heatfront simulate is not built yet") }
}
