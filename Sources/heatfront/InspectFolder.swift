import ArgumentParser
import Foundation
import FrameCore
import FrameIO
import RunSettings

/// The frame table `heatfront run` would build for a run folder, as JSON: each frame's
/// index, file, page, time, temperature, step and pixel size, with where each came from.
/// Config and heating-log errors exit with 2, an unreadable folder with 1, as `run` does.
func inspectFolder(_ url: URL) throws -> String {
    do {
        let config = try RunFolder.loadConfig(runDir: url, configURL: nil)
        return try RunFolder.scan(url, config: config).inspectJSON()
    } catch let e as RunConfigError {
        Terminal.err("heatfront: \(e.description)\n")
        throw ExitCode(2)
    } catch let e as HeatingLogError {
        Terminal.err("heatfront: \(e.description)\n")
        throw ExitCode(2)
    } catch let e as FrameIOError {
        Terminal.err("heatfront: \(e.description)\n")
        throw ExitCode(1)
    }
}
