import ArgumentParser

// STUB: replaced when the validate command is built.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate", abstract: "(not built yet)")
    func run() throws { throw ValidationError("heatfront validate is not built yet") }
}
