import ArgumentParser
import Foundation
import FrameIO

/// The frame table `heatfront run` would build for a run folder, as JSON: each frame's
/// index, file, page, time, temperature, step and pixel size, with where each came from.
func inspectFolder(_ url: URL) throws -> String {
    do {
        let config = try RunFolder.loadConfig(runDir: url, configURL: nil)
        return try RunFolder.scan(url, config: config).inspectJSON()
    } catch let e as RunConfigError {
        throw ValidationError(e.description)
    } catch let e as HeatingLogError {
        throw ValidationError(e.description)
    }
}
