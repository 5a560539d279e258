import ArgumentParser
import Foundation
import Simulation

/// `heatfront simulate`: a synthetic heating run with ground truth (run contract §7).
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write a synthetic in-situ heating run (frames, heatfront.yaml, heating_log.csv, ground truth).",
        discussion: "Presets: \(SimulationPreset.allCases.map(\.cliName).joined(separator: ", ")). The same seed and options give the same bytes.")

    @Option(name: .long, help: "Output run folder (created if needed).")
    var out: String

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Preset: \(SimulationPreset.allCases.map(\.cliName).joined(separator: ", ")).")
    var preset: String = SimulationPreset.boundaryFront.cliName

    @Option(name: .long, help: "Frame width in pixels; the height keeps the preset's aspect ratio (1:1, slow-front 2:1) and the field of view stays the same, so the pixel size follows (preset default when absent: 512, slow-front 1024).")
    var size: Int?

    @Option(name: .long, help: "Frames per temperature hold (preset default when absent).")
    var framesPerStep: Int?

    @Option(name: .long, help: "Frame format: tiff, png or dm4 (preset default when absent).")
    var format: String?

    func run() throws {
        guard let p = SimulationPreset(cliName: preset) else {
            throw ValidationError("unknown preset '\(preset)'; expected one of \(SimulationPreset.allCases.map(\.cliName).joined(separator: ", "))")
        }
        var options = SimulationOptions(preset: p, seed: seed, size: size)
        if let n = framesPerStep { options.framesPerStep = n }
        if let f = format {
            guard let fmt = SimulatedFormat(rawValue: f.lowercased()) else { throw ValidationError("unknown format '\(f)'; expected tiff, png or dm4") }
            options.format = fmt
        }
        do { try options.validate() } catch { throw ValidationError("\(error)") }
        let sim = HeatingRunSimulator(options)
        let dir = URL(fileURLWithPath: out, isDirectory: true)
        try sim.write(to: dir)
        print("wrote \(sim.frameCount) frames of \(options.size)×\(options.height) px (\(p.cliName), seed \(seed)) to \(dir.path)")
    }
}
