import Foundation
import Testing

/// The `heatfront` executable built beside the test bundle (`swift test` builds every product).
private let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("heatfront")

@Suite("heatfront command exits")
struct CommandExitTests {
    /// A run that stops at once (the folder does not exist) exits while the build digest is
    /// still being hashed on another thread. libcrypto's exit-time cleanup used to free the
    /// hashing context under it: a segmentation fault in about one run in four.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path)))
    func aMissingRunFolderIsAnErrorNotACrash() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-missing-\(UUID())")
        for _ in 0..<30 {
            let p = Process()
            p.executableURL = heatfront
            p.arguments = ["register", missing.path, "--out", missing.appendingPathExtension("out").path]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationReason == .exit && p.terminationStatus == 1)
            #expect(message.contains(missing.path) && message.contains("not a folder"))
        }
    }
}
