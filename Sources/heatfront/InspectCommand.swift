import ArgumentParser

// STUB: replaced when the inspect command is built.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "(not built yet)")
    func run() throws { throw ValidationError("heatfront inspect is not built yet") }
}
