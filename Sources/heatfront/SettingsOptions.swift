import ArgumentParser
import Foundation
import RunSettings

/// The options `run`, `register`, `watch` and `submit` share: where a run's settings and
/// heating log come from, and the registration mode that overrides the config's.
struct SettingsOptions: ParsableArguments {
    @Option(name: .long, help: "Registration mode: rigid or nonrigid (overrides registration.mode).")
    var mode: RegistrationMode?

    @Option(name: .long, help: "Config file (overrides RUN_DIR/heatfront.yaml).")
    var config: String?

    @Option(name: .customLong("heating-log"), help: "Heating log CSV (overrides RUN_DIR/heating_log.csv and the config).")
    var heatingLog: String?

    var configURL: URL? { config.map { URL(fileURLWithPath: $0) } }
    var heatingLogURL: URL? { heatingLog.map { URL(fileURLWithPath: $0) } }
}

extension RegistrationMode: ExpressibleByArgument {}

/// Every command's `--help` text, rendered by ArgumentParser, for the help snapshot tests.
public enum CommandHelp {
    /// (command path, help text) for the root command and each subcommand, hidden ones too.
    public static func all(columns: Int = 100) -> [(command: String, text: String)] {
        let root = HeatFrontCommand.self
        var out = [("heatfront", root.helpMessage(columns: columns))]
        for sub in root.configuration.subcommands {
            out.append(("heatfront \(sub.configuration.commandName ?? "\(sub)".lowercased())", root.helpMessage(for: sub, columns: columns)))
        }
        return out
    }
}
