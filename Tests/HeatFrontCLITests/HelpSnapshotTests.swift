import Foundation
import Testing
import TestSupport
import heatfront

private let snapshots = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")

@Suite("Command help")
struct HelpSnapshotTests {
    @Test("every command's --help matches its snapshot in Tests/HeatFrontCLITests/Snapshots")
    func helpTexts() {
        let rendered = CommandHelp.all()
        #expect(rendered.count >= 9)
        for (command, text) in rendered {
            let file = snapshots.appendingPathComponent(command.replacingOccurrences(of: " ", with: "_") + ".txt")
            let mismatch = snapshotMismatch(text, file: file, regenerate: "swift test -c release --filter HelpSnapshotTests")
            #expect(mismatch == nil, "\(command) --help: \(mismatch ?? "")")
        }
    }

    @Test("the options run, register, watch and submit share are declared once, with one help text")
    func sharedOptions() {
        let rendered = Dictionary(uniqueKeysWithValues: CommandHelp.all(columns: 400).map { ($0.command, $0.text) })
        let line = "Config file (overrides RUN_DIR/heatfront.yaml)."
        for command in ["run", "register", "watch", "submit"] {
            let help = rendered["heatfront \(command)"] ?? ""
            #expect(help.contains("--mode <mode>") && help.contains("--heating-log <heating-log>") && help.contains(line),
                    "heatfront \(command) --help lacks a shared option")
        }
    }
}
