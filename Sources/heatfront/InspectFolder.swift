import ArgumentParser
import Foundation

/// The frame table `heatfront run` would build for a run folder, as JSON.
/// Placeholder until the run-folder reader is wired in by the integrator.
func inspectFolder(_ url: URL) throws -> String {
    throw ValidationError("folder inspection is not built yet")
}
