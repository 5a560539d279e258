import Foundation
import FrameCore
import FrameIO
import RunSettings
import Registration
import ColumnIntensities
import FrontTracking

/// Writes OUT_DIR (docs/outputs.md). The only place that knows the output folder's layout;
/// every file goes through `AtomicFile` (the TIFF and PNG writers use it themselves), so an
/// interrupted run never leaves a partial one, and through `OutputFolder`, which records it
/// as this run's.
struct RunOutputs {
    let folder: OutputFolder
    let table: FrameTable
    /// Set while `heatfront watch` follows a run: the report reloads itself every so many
    /// seconds and says that its numbers are provisional.
    var liveReloadSeconds: Int? = nil

    var outDir: URL { folder.url }

    func url(_ path: String) -> URL { folder.file(path) }

    func writeFrames(_ results: [FrameResult], registrationOnly: Bool) throws {
        try AtomicFile.write(RunTables.frames(table, results, registrationOnly: registrationOnly).text, to: url("frames.csv"))
    }

    func writeSteps(_ steps: [StepResult]) throws {
        try AtomicFile.write(RunTables.steps(steps, pixelSizeNm: table.pixelSizeNm).text, to: url("steps.csv"))
    }

    func writeSummary(_ summary: RunSummary) throws {
        try AtomicFile.write(try summary.json(), to: url("summary.json"))
    }

    /// `fields/frame_<index>_ux.tif` and `_uy.tif` (`--export-fields`, non-rigid mode): each
    /// corrected frame's whole displacement u, rigid shift plus scan-distortion field, in px,
    /// float32 on the frame's own pixels: frame pixel (x, y) shows what the run reference
    /// shows at (x − ux, y − uy). A map acquired with the same scans (a spectrum image
    /// recorded frame by frame) is brought onto the reference with the same u. (Two
    /// single-page files: ImageJ-style readers take a multi-page file's pages as contiguous.)
    func writeFields(_ fields: [Int: ScanDistortionField], shifts: [FrameShift], frameIndices: [Int]) throws {
        for p in fields.keys.sorted() {
            let f = fields[p]!, s = shifts[p]
            let ux = Image(width: f.width, height: f.height) { x, y in Float(s.dx) + f.displacement(x: x, y: y).ux }
            let uy = Image(width: f.width, height: f.height) { x, y in Float(s.dy) + f.displacement(x: x, y: y).uy }
            for (name, u) in [("ux", ux), ("uy", uy)] {
                try TIFFWriter.write([Frame(image: u)], as: .float32, to: url("fields/frame_\(frameIndices[p])_\(name).tif"))
            }
        }
    }

    /// `aligned/step_<k>_average.tif`: float32 on the run's reference frame, ImageJ calibration,
    /// NaN where no frame covers the pixel; `aligned/step_<k>_coverage.tif`: how many frames
    /// cover each pixel (float32, same calibration).
    func writeAverages(_ averages: [AlignedAverage], pixelSizeNm: Double?) throws {
        let calibration = FrameMetadata(pixelSizeXNm: pixelSizeNm, pixelSizeYNm: pixelSizeNm)
        _ = try ResultSlots<Void>.map(2 * averages.count) { i in
            let k = i / 2
            let image = i % 2 == 0 ? Self.coveredImage(averages[k]) : averages[k].weight
            try TIFFWriter.write([Frame(image: image, metadata: calibration)], as: .float32,
                                 to: url("aligned/step_\(k)_\(i % 2 == 0 ? "average" : "coverage").tif"))
        }
    }

    /// Per step: `columns/step_<k>.csv` (every site of the aligned average, `SitesColumn`),
    /// `profiles/step_<k>.csv` (`ProfileColumn`) and `maps/step_<k>_phase.png`.
    func writeStepDetails(_ analyses: [StepAnalysis?], averages: [AlignedAverage], pixelSizeNm nm: Double?,
                          config: RunConfig, boundary: LineSegment?) throws {
        let range = Self.displayRange(averages)
        _ = try ResultSlots<Void>.map(analyses.count) { k in
            guard let a = analyses[k] else { return }
            var columns = CSVTable(columns: SitesColumn.self)
            for s in a.sites.sites {
                columns.append { (c: SitesColumn) -> CellValue in
                    switch c {
                    case .xPx: .number(s.x)
                    case .yPx: .number(s.y)
                    case .xNm: .number(nm.map { s.x * $0 })
                    case .yNm: .number(nm.map { s.y * $0 })
                    case .sublattice: .text(s.sublattice.rawValue)
                    case .intensity: .number(s.intensity)
                    }
                }
            }
            try AtomicFile.write(columns.text, to: url("columns/step_\(k).csv"))

            let profile = LineProfile.profile(averages[k].image, line: config.profileLine, widthPx: config.profileWidthPx,
                                              sites: a.sites, region: a.region)
            var csv = CSVTable(columns: ProfileColumn.self)
            for p in profile.points {
                csv.append { (c: ProfileColumn) -> CellValue in
                    switch c {
                    case .distanceNm: .number(nm.map { p.distancePx * $0 })
                    case .intensity: .number(p.intensity)
                    case .site: .text(p.site?.rawValue ?? "")
                    case .distancePx: .number(p.distancePx)
                    }
                }
            }
            try AtomicFile.write(csv.text, to: url("profiles/step_\(k).csv"))

            // The front already located on this average from the same boundary is not located
            // again (its lines depend on the order parameter, the labels and the boundary only).
            let front = boundary.map { b in
                a.front.flatMap { $0.boundary == b ? $0 : nil } ?? FrontLocator.locate(a.orderParameter, phase: a.phase, boundary: b)
            }
            let rgba = PhaseMapRendering.rgba(average: Self.coveredImage(averages[k]), phase: a.phase, front: front,
                                              displayRange: range)
            try PNGWriter.writeRGBA(width: averages[k].image.width, height: averages[k].image.height, rgba: rgba,
                                    compression: 1, to: url("maps/step_\(k)_phase.png"))
        }
    }
}
