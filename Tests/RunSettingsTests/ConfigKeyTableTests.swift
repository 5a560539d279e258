import Foundation
import Testing
import FrameIO
import RunSettings
import TestSupport

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Config keys")
struct ConfigKeyTableTests {
    @Test("docs/user-guide.md lists every config key as ConfigKey.all declares it")
    func userGuideTable() {
        let mismatch = snapshotMismatch(ConfigKey.markdownTable, file: repository.appendingPathComponent("docs/user-guide.md"),
                                        regenerate: "swift test -c release --filter ConfigKeyTableTests",
                                        part: ("<!-- config-keys:", "<!-- /config-keys -->"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test("every declared key is read by the parser, and only those")
    func everyKeyParses() throws {
        let file = URL(fileURLWithPath: "/r/heatfront.yaml")
        let paths = ConfigKey.all.map(\.path)
        #expect(Set(paths).count == paths.count)
        // A key nobody declared is rejected by name, at the top level and inside a section.
        for path in paths {
            let parts = path.split(separator: ".").map(String.init)
            let yaml = parts.count == 2 ? "\(parts[0]):\n  \(parts[1])_x: 1\n" : "\(path)_x: 1\n"
            let e = try #require(throws: RunConfigError.self) { try RunConfig.parse(yaml: yaml, file: file) }
            #expect(e.key == path + "_x" && e.message == "unknown key", "\(e)")
        }
        // A value of the wrong type is answered with the key's own path.
        for path in paths {
            let parts = path.split(separator: ".").map(String.init)
            let yaml = parts.count == 2 ? "\(parts[0]):\n  \(parts[1]): {a: 1}\n" : "\(path): {a: 1}\n"
            let e = try #require(throws: RunConfigError.self) { try RunConfig.parse(yaml: yaml, file: file) }
            #expect(e.key == path, "\(e)")
        }
    }
}
