import ArgumentParser
import CFFTW
import ColumnIntensities
import Foundation
import FrameCore
import FrameIO
import Pipeline
import Registration
import Simulation

/// Timing and comparison helpers the benchmark scripts call; they print one result line each.
@main
struct HeatFrontBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heatfront-bench", abstract: "Benchmark helpers for scripts/bench-*.sh.",
        subcommands: [Decode.self, BandFFT.self, FFTPlans.self, Rigid.self, Columns.self, Precision.self, Sites.self, Floors.self, FrontBound.self, FrontInformation.self,
                      LatticeCheck.self, WatchReplay.self])

    static func main() {
        FrameMemory.reuseFrameBuffers()
        main(nil)
    }
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

/// The full r2c transform of a `size`² frame against the band-limited one on its first
/// `columns` columns (`FFTWorkspace.forward(columns:)`), one core, mean of `repeat` runs.
struct BandFFT: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "band-fft")
    @Option var size = 1024
    @Option var columns = 145
    @Option var `repeat` = 50

    func run() throws {
        let ws = FFTWorkspace(width: size, height: size)
        ws.load(Image(width: size, height: size) { x, y in Float((x * 7 + y * 13) % 17) })
        ws.forward(); ws.forward(columns: columns)   // plans made, caches warm
        let full = seconds { for _ in 0..<`repeat` { ws.forward() } } / Double(`repeat`)
        let band = seconds { for _ in 0..<`repeat` { ws.forward(columns: columns) } } / Double(`repeat`)
        print(String(format: "forward %d²: full %.2f ms, first %d columns %.2f ms (one core)",
                     size, full * 1e3, columns, band * 1e3))
        // The inverse of a correlation on the band's grid (2·(columns − 1) square), whole or
        // column transforms plus rows (`Correlator` makes the rows its searches read).
        let n = 2 * (columns - 1)
        let grid = FFTWorkspace(width: n, height: n)
        let spectrum = (0..<(n * (n / 2 + 1))).map { Complex(Float($0 % 17), Float($0 % 5)) }
        let input = grid.columnInput, hw = n / 2 + 1
        func load() { for i in spectrum.indices { grid.spectrum[i] = spectrum[i] } }
        func loadColumns() { for r in 0..<n { for c in 0..<hw { input[c * n + r] = spectrum[r * hw + c] } } }
        load(); grid.inverse(); loadColumns(); grid.inverseColumns(); grid.inverseRow(0)   // plans made
        let reps = 20 * `repeat`
        let copy = seconds { for _ in 0..<reps { load() } } / Double(reps)
        let copyColumns = seconds { for _ in 0..<reps { loadColumns() } } / Double(reps)
        let whole = seconds { for _ in 0..<reps { load(); grid.inverse() } } / Double(reps) - copy
        let columnsOnly = seconds { for _ in 0..<reps { loadColumns(); grid.inverseColumns() } } / Double(reps) - copyColumns
        let rows = seconds { for _ in 0..<reps { for y in 0..<n { grid.inverseRow(y) } } } / Double(reps * n)
        print(String(format: "inverse %d²: whole %.1f µs; columns %.1f µs + %.2f µs per row (one core)",
                     n, whole * 1e6, columnsOnly * 1e6, rows * 1e6))
    }
}

/// In-place 2-D complex transforms as HeatFront plans them (`FFTW_ESTIMATE`: the same plan,
/// hence the same bits, on every run) against plans FFTW picks by timing candidates
/// (`FFTW_MEASURE`), one core, mean of `repeat` runs, for each size (px, square).
struct FFTPlans: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fft-plans")
    @Argument var sizes: [Int] = [512, 576, 640, 1024, 1152, 1280]
    @Option var `repeat` = 20

    func run() throws {
        for n in sizes {
            let ws = ComplexFFTWorkspace(width: n, height: n)
            for i in 0..<(n * n) { ws.data[i] = Complex(Float((i * 7) % 17), 0) }
            ws.forward()   // plan made
            let estimate = seconds { for _ in 0..<`repeat` { ws.forward() } } / Double(`repeat`)
            let buffer = fftwf_alloc_complex(n * n)!
            defer { fftwf_free(buffer) }
            let plan = fftwf_plan_dft_2d(Int32(n), Int32(n), buffer, buffer, FFTW_FORWARD, UInt32(FFTW_MEASURE))!
            defer { fftwf_destroy_plan(plan) }
            for i in 0..<(n * n) { buffer[i] = ((Float((i * 7) % 17)), 0) }
            let measure = seconds { for _ in 0..<`repeat` { fftwf_execute(plan) } } / Double(`repeat`)
            print(String(format: "complex %d² in place: estimated plan %.2f ms, measured plan %.2f ms (%.1f×)",
                         n, estimate * 1e3, measure * 1e3, estimate / measure))
        }
    }
}

/// Rigid registration of a run folder in process, as `heatfront register` does it but with
/// nothing cached or written (scan, decode, register, per-step averages: the work the
/// scikit-image baseline does); prints the median of `repeat` runs after a first one, and the
/// first one alone (a fresh process: plans made, memory faulted in).
struct Rigid: ParsableCommand {
    @Argument var runDir: String
    @Option var `repeat` = 3

    func run() throws {
        let url = URL(fileURLWithPath: runDir)
        var frames = 0
        let first = try seconds { frames = try RegistrationStage.alignRigid(runDir: url).shifts.count }
        let times = try (0..<max(1, `repeat`)).map { _ in
            try seconds { frames = try RegistrationStage.alignRigid(runDir: url).shifts.count }
        }.sorted()
        let median = times[times.count / 2]
        print(String(format: "HeatFront in process (no checksums, cache or files): %d frames in %.2f s = %.1f frames/s "
                     + "(median of %d runs; the first run in the process: %.3f s = %.1f frames/s)",
                     frames, median, Double(frames) / median, times.count, first, Double(frames) / first))
    }
}

/// Finds and refines the TM columns of an image (lattice, sites, 2-D Gaussian refinement),
/// writes their positions as CSV and prints the time. As in the pipeline, the analysed region
/// is the crystal within the frames' common coverage: the pipeline knows the coverage from the
/// frame weights; an aligned average on disk shows it only as its exact zeros
/// (`FrameMeasurement.meanImage` writes 0 where no frame covers a pixel).
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
            var region = CrystalRegion.detect(in: frame.image, lattice: lattice)
            for k in region.bits.indices where frame.image.pixels[k] == 0 { region.bits[k] = false }
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
        let (frame, lattice, _, found) = try averageSites(image, layerSpacingNm: layerSpacingNm)
        let tm = found.tm
        guard let px = LatticePrecision.rms(tm, lattice: lattice) else { throw ValidationError("too few columns") }
        let pm = frame.metadata.pixelSizeNm.map { String(format: " = %.2f pm", px * $0 * 1000) } ?? ""
        print(String(format: "precision: %.4f px", px) + pm + " RMS over \(tm.count) TM columns")
    }
}

/// Column intensities at fixed sites: finds the sites on an aligned average (lattice, crystal
/// region, sites), measures them there, then measures each given single frame at those
/// sites three ways, printing every aggregate in full precision and the time per frame:
/// `SiteIntensity.measure` (width refitted per frame), a `SiteIntensityEstimator` refitting
/// the width (same numbers, shared precomputation) and one at the average's fitted width
/// (fixed, as the pipeline measures single frames).
struct Sites: ParsableCommand {
    @Argument var average: String
    @Argument var frames: [String] = []
    @Option(name: .customLong("layer-spacing-nm")) var layerSpacingNm = 0.468

    func run() throws {
        let (frame, _, region, found) = try averageSites(average, layerSpacingNm: layerSpacingNm)
        var measured: (sites: ColumnSites, aggregate: SiteIntensities, columnSigmaPx: Double?)? = nil
        let t = seconds { measured = SiteIntensity.measureWithWidth(frame.image, sites: found, region: region) }
        let m = measured!, a = m.aggregate
        print(String(format: "average: %d sites (%d TM, %d Li in region); sigma %.6f px; tm %.9g li %.9g ratio %.9g; %.3f s",
                     m.sites.sites.count, a.tmCount, a.liCount, m.columnSigmaPx ?? .nan, a.tm, a.li, a.ratio, t))
        let w = frame.image.width, h = frame.image.height
        var refit: SiteIntensityEstimator? = nil, fixed: SiteIntensityEstimator? = nil
        let tr = seconds { refit = SiteIntensityEstimator(sites: m.sites, width: w, height: h) }
        let tf = seconds { fixed = m.columnSigmaPx.flatMap { SiteIntensityEstimator(sites: m.sites, width: w, height: h, columnSigmaPx: $0) } }
        print(String(format: "estimators prepared in %.3f s (refit width) and %.3f s (fixed width)", tr, tf))
        var totals = [0.0, 0.0, 0.0]
        for path in frames {
            let r = try FrameFiles.open(URL(fileURLWithPath: path))
            let image = try r.frame(signal: r.primarySignal, frame: 0).image
            var results: [SiteIntensities] = []
            let times = [
                seconds { results.append(SiteIntensity.measure(image, sites: m.sites, region: region).aggregate) },
                seconds { results.append(refit?.measure(image, region: region) ?? SiteIntensities(tm: .nan, li: .nan, tmCount: 0, liCount: 0)) },
                seconds { results.append(fixed?.measure(image, region: region) ?? SiteIntensities(tm: .nan, li: .nan, tmCount: 0, liCount: 0)) },
            ]
            for k in 0..<3 { totals[k] += times[k] }
            let name = (path as NSString).lastPathComponent
            for (label, (res, time)) in zip(["measure", "refit  ", "fixed  "], zip(results, times)) {
                print(String(format: "%@ %@: tm %.9g li %.9g ratio %.9g; %.4f s", name, label, res.tm, res.li, res.ratio, time))
            }
        }
        if !frames.isEmpty {
            let n = Double(frames.count)
            print(String(format: "per frame: measure %.4f s, estimator (refit width) %.4f s, estimator (fixed width) %.4f s",
                         totals[0] / n, totals[1] / n, totals[2] / n))
        }
    }
}

/// An aligned average's first frame, its lattice, crystal region and column sites.
func averageSites(_ path: String, layerSpacingNm: Double) throws -> (Frame, Lattice, Mask, ColumnSites) {
    let reader = try FrameFiles.open(URL(fileURLWithPath: path))
    let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
    let lattice = try LatticeFinder.find(in: frame.image, pixelSizeNm: frame.metadata.pixelSizeNm,
                                         layerSpacingNm: layerSpacingNm)
    let region = CrystalRegion.detect(in: frame.image, lattice: lattice)
    return (frame, lattice, region, ColumnFinder.sites(in: frame.image, lattice: lattice, region: region))
}

/// Reference points for a simulated run's column precision (TM sites of the step average
/// against the true lattice, scored as `heatfront validate` scores `columns/step_<k>.csv`):
/// the ideal acquisition (the same frames, dose and specimen without drift within a frame,
/// jitter, flyback or vibration, averaged at the true shifts) and perfect rigid alignment
/// (the real frames averaged at the true shifts). The run is re-simulated from the preset,
/// seed and size in its `ground_truth.json`.
struct Floors: ParsableCommand {
    @Argument var runDir: String

    func run() throws {
        let (sim, truth) = try presetRun(runDir)
        for step in truth.steps {
            let members = usedFrames(sim, step: step.stepIndex)
            let trueShifts = members.map { FrameShift(dx: sim.frameTruth($0).shiftXPx, dy: sim.frameTruth($0).shiftYPx, score: 1, rejection: nil) }
            let idealShifts = members.map { k -> FrameShift in
                let s = sim.idealShiftPx(frame: k)
                return FrameShift(dx: s.x, dy: s.y, score: 1, rejection: nil)
            }
            func precision(_ images: [Image], _ shifts: [FrameShift]) throws -> Double? {
                let average = try StackAverage.average(ImageArray(images), indices: Array(images.indices), shifts: shifts,
                                                       interpolation: .bicubic)
                let sites = AverageColumns.tmSites(of: average, layerSpacingNm: truth.layerSpacingNm, pixelSizeNm: truth.pixelSizeNm)
                return LatticeFit.rmsDeviation(sites, lattice: truth.tmLattice).map { $0 * truth.pixelSizeNm * 1000 }
            }
            let ideal = try precision(members.map { sim.renderIdeal(frame: $0) }, idealShifts)
            let rigid = try precision(members.map { sim.render(frame: $0) }, trueShifts)
            print(String(format: "step %d: ideal acquisition %.3f pm, perfect rigid alignment %.3f pm (%d frames)",
                         step.stepIndex, ideal ?? .nan, rigid ?? .nan, members.count))
        }
    }
}

/// A simulated run's simulator, re-created from the preset, seed and size in its
/// `ground_truth.json`, and that truth; throws unless the run is the preset's default there.
func presetRun(_ runDir: String) throws -> (HeatingRunSimulator, RunTruth) {
    let dir = URL(fileURLWithPath: runDir)
    let truth = try JSONDecoder().decode(RunTruth.self, from: Data(contentsOf: dir.appendingPathComponent("ground_truth.json")))
    guard let preset = SimulationPreset(cliName: truth.preset) else { throw ValidationError("unknown preset \(truth.preset)") }
    var options = SimulationOptions(preset: preset, seed: truth.seed, size: truth.width)
    options.aspectRatio = Double(truth.height) / Double(truth.width)
    options.doseScale = truth.doseScale ?? 1
    let sim = HeatingRunSimulator(options)
    guard sim.truth.tmLattice == truth.tmLattice, sim.frameCount == truth.frameCount else {
        throw ValidationError("the run is not the preset's default at this seed and size")
    }
    return (sim, truth)
}

/// The frames of hold `step` that the truth expects an analysis to use.
func usedFrames(_ sim: HeatingRunSimulator, step: Int) -> [Int] {
    (0..<sim.frameCount).filter { sim.frameTruth($0).stepIndex == step && sim.frameTruth($0).expectedStatus == "ok" }
}

/// The information limit of a simulated run's front kinetics (`frontPositionInformation`,
/// Cramér–Rao): per hold with a moving front, the bound on one frame's front position
/// (median and range over the hold's frames) and on the hold's velocity, as a share of the
/// true velocity — the smallest velocity error SD any estimator can have on these frames.
struct FrontBound: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "front-bound")
    @Argument var runDir: String

    func run() throws {
        let (sim, truth) = try presetRun(runDir)
        for step in truth.steps {
            guard let v = step.frontVelocityNmPerS, v > 0, let start = step.frontPositionStartNm,
                  let end = step.frontPositionEndNm else { continue }
            let members = usedFrames(sim, step: step.stepIndex)
            let measured = ResultSlots<(Double, Double)?>.map(members.count) { j in
                sim.frontPositionInformation(frame: members[j]).map { (sim.frameTruth(members[j]).timeS, $0) }
            }.compactMap { $0 }
            let bounds = measured.map { 1 / $0.1.squareRoot() }.sorted()
            guard !bounds.isEmpty, let vBound = HeatingRunSimulator.velocityBound(timesS: measured.map(\.0),
                                                                                   information: measured.map(\.1)) else { continue }
            let withShape = sim.holdVelocityBound(frames: members, unknown: [.width, .mixing])
            let withDose = sim.holdVelocityBound(frames: members, unknown: [.width, .mixing, .dose])
            let share = { (b: Double?) in b.map { String(format: "%.2f %%", 100 * $0 / v) } ?? "-" }
            print(String(format: "step %d (%.0f °C): %d frames, travel %.2f nm; position bound %.4f nm (%.4f–%.4f); velocity bound %.2f %%",
                         step.stepIndex, step.temperatureC, measured.count, end - start, bounds[bounds.count / 2],
                         bounds.first!, bounds.last!, 100 * vBound / v)
                  + "; with width and mixing unknown \(share(withShape)), and each frame's dose \(share(withDose))")
        }
    }
}

/// Where a simulated run's front information lies (`frontInformationShares`): per hold with a
/// moving front, the share of the frames' Fisher information about their front positions that
/// sums over distance bins keep — of all pixels, of TM-site and Li-site discs, and weighted by
/// the layer fringe (the in-phase lock-in at g) — so a channel's ceiling can be read off.
struct FrontInformation: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "front-information")
    @Argument var runDir: String
    /// Radius of the site discs (px): about 0.3 of the nearest-site distance keeps each disc
    /// on its own column (3 px at the presets' 0.025 nm/px).
    @Option(name: .customLong("disc-px")) var discPx = 3.0

    func run() throws {
        let (sim, truth) = try presetRun(runDir)
        for step in truth.steps where (step.frontVelocityNmPerS ?? 0) > 0 {
            let members = usedFrames(sim, step: step.stepIndex)
            let s = ResultSlots<FrontInformationShares?>.map(members.count) {
                sim.frontInformationShares(frame: members[$0], discPx: discPx)
            }.compactMap { $0 }.reduce(FrontInformationShares(), +)
            guard s.total > 0 else { continue }
            func share(_ x: Double) -> String { String(format: "%.0f %%", 100 * x / s.total) }
            print("step \(step.stepIndex) (\(Int(step.temperatureC.rounded())) °C): kept by distance bins of all pixels \(share(s.distance)), "
                  + "TM discs \(share(s.tmDiscs)), Li discs \(share(s.liDiscs)), both \(share(s.sites)), lock-in at g \(share(s.lockIn))")
        }
    }
}

/// The layered lattice found in an image and whether the Li/TM model applies to it
/// (`LayeredProjectionCheck`), and the correlation band it would give registration
/// (`CorrelationBand`): two lines per image (`scripts/lattice-check.sh`).
struct LatticeCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lattice")
    @Argument var images: [String]
    @Option(name: .customLong("layer-spacing-nm")) var layerSpacingNm = 0.468
    @Flag var invert = false
    @Flag(name: .customLong("no-pixel-size")) var noPixelSize = false

    func run() throws {
        for path in images {
            let reader = try FrameFiles.open(URL(fileURLWithPath: path))
            let frame = try reader.frame(signal: reader.primarySignal, frame: 0)
            var image = frame.image
            if invert { image = image.negated }
            let px = noPixelSize ? nil : frame.metadata.pixelSizeNm
            let band = CorrelationBand.choose(for: image)
            print(String(format: "  band: high %.4f g %@ basis %@ notches %@", band.high,
                         band.highestReflection.map { String(format: "%.4f", $0) } ?? "-",
                         band.basis.map { String(format: "(%.4f,%.4f)", $0.x, $0.y) }.joined(separator: " "),
                         band.notches.map { String(format: "(%.4f,%.4f)", $0.x, $0.y) }.joined(separator: " ")))
            do {
                let lattice = try LatticeFinder.find(in: image, pixelSizeNm: px, layerSpacingNm: layerSpacingNm)
                var region = CrystalRegion.detect(in: image, lattice: lattice)
                for k in region.bits.indices where image.pixels[k] == 0 { region.bits[k] = false }
                let found = ColumnFinder.sites(in: image, lattice: lattice, region: region, refine: true)
                let measured = SiteIntensity.measure(image, sites: found, region: region)
                let c = LayeredProjectionCheck(image: image, sites: measured.sites, region: region, layered: nil)
                print(String(format: "%@: layer %.2f px, column %.2f px, stacking %@, skewness %.3f, on columns %.3f, Li/TM %.4f: %@",
                             (path as NSString).lastPathComponent, lattice.layerSpacingPx, lattice.columnSpacingPx,
                             c.stackingOffset.map { String(format: "%.3f", $0) } ?? "-", c.cellSkewness, c.tmSitesOnColumns,
                             measured.aggregate.ratio,
                             c.failure ?? "applies"))
            } catch {
                print("\((path as NSString).lastPathComponent): \(error)")
            }
        }
    }
}
