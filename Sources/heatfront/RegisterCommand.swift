import ArgumentParser

// STUB: replaced when the register command is built.
struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "register", abstract: "(not built yet)")
    func run() throws { throw ValidationError("heatfront register is not built yet") }
}
