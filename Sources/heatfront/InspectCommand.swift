import ArgumentParser
import Foundation
import FrameIO
import FrameCore

/// `heatfront inspect PATH`: a frame file's signals, calibration, pixel fingerprints and
/// metadata as JSON (`FileInspection`), or for a folder the frame table a run would use.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a frame file's signals, pixel fingerprints and metadata (or a run folder's frame table) as JSON.")

    @Argument(help: "A frame file (.tif, .png, .dm3, .dm4, .emd, .ser, .emi, .mrc) or a run folder.")
    var path: String

    func run() throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ValidationError("\(path): no such file or folder")
        }
        if isDirectory.boolValue {
            Terminal.out(try inspectFolder(url))
            return
        }
        let json: String
        do {
            json = try FileInspection.inspect(url).jsonString()
        } catch let error as FrameIOError {
            // One line a shell script can grep: which file, what is wrong.
            Terminal.err("heatfront: \(error.file): \(error.detail)\n")
            throw ExitCode(1)
        }
        Terminal.out(json)
    }
}
