import ArgumentParser
import Foundation
import Simulation
import FrameCore

/// `heatfront simulate`: a synthetic heating run with ground truth (docs/user-guide.md, "Commands").
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

    @Option(name: .long, help: "Frame width in pixels; the height keeps the preset's aspect ratio (1:1, slow-front 2:1) and the field of view stays the same, so the pixel size follows (preset default when absent: 1024 for dose-floor and slow-front, 512 otherwise).")
    var size: Int?

    @Option(name: .long, help: "Frame height over width, e.g. 1 for square frames of a slow-front run (preset default when absent: 1, slow-front 0.5); the field of view along the width stays the same.")
    var aspect: Double?

    @Option(name: .long, help: "Frames per temperature hold (preset default when absent).")
    var framesPerStep: Int?

    @Option(name: .long, help: "Frame format: tiff, png or dm4 (preset default when absent).")
    var format: String?

    @Option(name: .customLong("dose-scale"),
            help: "Multiply the preset's electron dose by this factor, e.g. 20 for a high-dose reference run of the same specimen (recorded in ground_truth.json).")
    var doseScale: Double?

    @Flag(name: .customLong("inverted-contrast"),
          help: "Dark columns on a bright background (as ABF shows them): the detector records 1.5 TM column peaks minus the model intensity.")
    var invertedContrast = false

    @Option(name: .customLong("interference"),
            help: "Scan interference: AMPLITUDE,CYCLES_PER_LINE (detector counts; stripes fixed in the scan, e.g. 40,0.113).")
    var interference: String?

    @Option(name: .long,
            help: "What lies beyond the boundary the front starts from: amorphous, vacuum, or grain:ANGLE (a grain of the same phase with its layers at ANGLE degrees, which does not transform) (preset default when absent).")
    var neighbour: String?

    func run() throws {
        guard let p = SimulationPreset(cliName: preset) else {
            throw ValidationError("unknown preset '\(preset)'; expected one of \(SimulationPreset.allCases.map(\.cliName).joined(separator: ", "))")
        }
        let size = self.size ?? p.defaultSize
        var options = SimulationOptions(preset: p, seed: seed, size: size)
        if let n = framesPerStep { options.framesPerStep = n }
        if let aspect {
            guard aspect > 0, aspect <= 4 else { throw ValidationError("--aspect must be in (0, 4], got \(aspect)") }
            options.aspectRatio = aspect
            guard options.height >= 32, options.height <= 8192 else {
                throw ValidationError("--aspect \(aspect) gives frames \(options.height) px high; 32…8192 px are possible")
            }
        }
        if let doseScale { options.doseScale = doseScale }
        if invertedContrast { options.invertedContrastLevel = 1.5 }
        if let interference {
            let q = interference.split(separator: ",").compactMap { Double($0) }
            guard q.count == 2, q[0] > 0, q[1] > 0, q[1] < 0.5 else {
                throw ValidationError("--interference expects AMPLITUDE,CYCLES_PER_LINE with 0 < cycles < 0.5, got '\(interference)'")
            }
            options.interference = ScanInterference(amplitudeADU: q[0], cyclesPerLine: q[1])
        }
        if let neighbour {
            guard let region = NeighbourRegion(cliValue: neighbour) else {
                throw ValidationError("--neighbour expects amorphous, vacuum or grain:ANGLE (degrees), got '\(neighbour)'")
            }
            options.neighbour = region
        }
        if let f = format {
            guard let fmt = SimulatedFormat(rawValue: f.lowercased()) else { throw ValidationError("unknown format '\(f)'; expected tiff, png or dm4") }
            options.format = fmt
        }
        do { try options.validate() } catch { throw ValidationError("\(error)") }
        let sim = HeatingRunSimulator(options)
        let dir = URL(fileURLWithPath: out, isDirectory: true)
        try sim.write(to: dir)
        Terminal.out("wrote \(sim.frameCount) frames of \(options.size)×\(options.height) px (\(p.cliName), seed \(seed)) to \(dir.path)\n")
    }
}
