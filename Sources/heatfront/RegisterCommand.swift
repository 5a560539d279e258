import ArgumentParser

struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Decode and register a run only: frames.csv (registration columns) and aligned/ averages.",
        discussion: RunArguments.exitCodes)

    @OptionGroup var arguments: RunArguments

    func run() throws { try arguments.execute(registrationOnly: true) }
}
