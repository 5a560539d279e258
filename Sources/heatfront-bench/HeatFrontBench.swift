import ArgumentParser
import ColumnIntensities
import Foundation
import FrameCore
import FrameIO

/// Timing and comparison helpers the benchmark scripts call; they print one result line each.
@main
struct HeatFrontBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heatfront-bench", abstract: "Benchmark helpers for scripts/bench-*.sh.",
        subcommands: [Decode.self, Columns.self, Precision.self, Sites.self])
}

private func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// Decodes every frame of the files `repeat` times (one thread) and prints MB/s of pixel data.
struct Decode: ParsableCommand {
    @Argument var files: [String]
    @Option var `repeat` = 5

    func run() throws {
        var bytes = 0
        let readers = try files.map { try FrameFiles.open(URL(fileURLWithPath: $0)) }
        _ = try readers.map { try $0.plane(signal: $0.primarySignal, frame: 0) }   // warm the page cache
        let t = try seconds {
            for _ in 0..<`repeat` {
                for r in readers {
                    let s = r.signals[r.primarySignal]
                    for f in 0..<s.frameCount {
                        let image = try r.frame(signal: r.primarySignal, frame: f).image
                        bytes += s.width * s.height * s.sampleType.byteCount
                        precondition(image.count == s.width * s.height)
                    }
                }
            }
        }
        print(String(format: "decode: %.0f MB of pixel data in %.3f s = %.0f MB/s (one core, to float32 frames)",
                     Double(bytes) / 1e6, t, Double(bytes) / 1e6 / t))
    }
}

/// Finds and refines the TM columns of an image (lattice, sites, 2-D Gaussian refinement),
/// writes their positions as CSV and prints the time.
struct Columns: ParsableCommand {
    @Argument var image: String
    @Option var out: String
    @Option(name: .customLong("layer-spacing-nm")) var layerSpacingNm = 0.468

    func run() throws {
        let reader = try FrameFiles.open(URL(fileURLWithPath: image))
        let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
        var sites: ColumnSites? = nil
        let t = try seconds {
            let lattice = try LatticeFinder.find(in: frame.image, pixelSizeNm: frame.metadata.pixelSizeNm,
                                                 layerSpacingNm: layerSpacingNm)
            let region = CrystalRegion.detect(in: frame.image, lattice: lattice)
            sites = ColumnFinder.sites(in: frame.image, lattice: lattice, region: region, refine: true)
        }
        var csv = "x,y\n"
        for s in sites!.tm { csv += String(format: "%.4f,%.4f\n", s.x, s.y) }
        try AtomicFile.write(csv, to: URL(fileURLWithPath: out))
        print(String(format: "heatfront columns: %d TM columns found and refined in %.3f s", sites!.tm.count, t))
    }
}

/// TM column precision of an aligned average: RMS deviation from the best-fit ideal lattice.
struct Precision: ParsableCommand {
    @Argument var image: String
    @Option(name: .customLong("layer-spacing-nm")) var layerSpacingNm = 0.468

    func run() throws {
        let reader = try FrameFiles.open(URL(fileURLWithPath: image))
        let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
        let lattice = try LatticeFinder.find(in: frame.image, pixelSizeNm: frame.metadata.pixelSizeNm,
                                             layerSpacingNm: layerSpacingNm)
        let region = CrystalRegion.detect(in: frame.image, lattice: lattice)
        let tm = ColumnFinder.sites(in: frame.image, lattice: lattice, region: region).tm
        guard let px = LatticePrecision.rms(tm, lattice: lattice) else { throw ValidationError("too few columns") }
        let pm = frame.metadata.pixelSizeNm.map { String(format: " = %.2f pm", px * $0 * 1000) } ?? ""
        print(String(format: "precision: %.4f px", px) + pm + " RMS over \(tm.count) TM columns")
    }
}

/// Column intensities at fixed sites: finds the sites on an aligned average (lattice, crystal
/// region, sites), measures them there, then measures each given single frame at those
/// sites (`SiteIntensity.measure`, as the pipeline does per frame), printing every
/// aggregate in full precision and the time per measurement.
struct Sites: ParsableCommand {
    @Argument var average: String
    @Argument var frames: [String] = []
    @Option(name: .customLong("layer-spacing-nm")) var layerSpacingNm = 0.468

    func run() throws {
        let reader = try FrameFiles.open(URL(fileURLWithPath: average))
        let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
        let lattice = try LatticeFinder.find(in: frame.image, pixelSizeNm: frame.metadata.pixelSizeNm,
                                             layerSpacingNm: layerSpacingNm)
        let region = CrystalRegion.detect(in: frame.image, lattice: lattice)
        let found = ColumnFinder.sites(in: frame.image, lattice: lattice, region: region)
        var measured: (sites: ColumnSites, aggregate: SiteIntensities)? = nil
        let t = seconds { measured = SiteIntensity.measure(frame.image, sites: found, region: region) }
        let a = measured!.aggregate
        print(String(format: "average: %d TM, %d Li sites; tm %.9g li %.9g ratio %.9g; measured in %.3f s",
                     a.tmCount, a.liCount, a.tm, a.li, a.ratio, t))
        for path in frames {
            let r = try FrameFiles.open(URL(fileURLWithPath: path))
            let image = try r.frame(signal: r.primarySignal, frame: 0).image
            var agg: SiteIntensities? = nil
            let tf = seconds { agg = SiteIntensity.measure(image, sites: measured!.sites, region: region).aggregate }
            print(String(format: "frame %@: tm %.9g li %.9g ratio %.9g; measured in %.3f s",
                         (path as NSString).lastPathComponent, agg!.tm, agg!.li, agg!.ratio, tf))
        }
    }
}
