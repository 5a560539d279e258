import ArgumentParser

// STUB: replaced when the run command is built.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "(not built yet)")
    func run() throws { throw ValidationError("heatfront run is not built yet") }
}
