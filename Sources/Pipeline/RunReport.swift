import Foundation
import FrameCore
import FrameIO
import Registration
import FrontTracking

/// `plots/`, every figure as SVG and 300-dpi PNG, and the self-contained `report.html`.
extension RunOutputs {
    /// Writes the figures and the report; returns the warnings it raised (gnuplot missing or
    /// failing), each said once, for the terminal and `summary.json`.
    func writePlotsAndReport(results: [FrameResult], steps: [StepResult], averages: [AlignedAverage],
                             summary: RunSummary) throws -> [String] {
        let plots = RunFigures.all(table: table, results: results, steps: steps, summary: summary)
        let range = Self.displayRange(averages)
        // The averages' grey pictures (each figure's SVG embeds its picture, its PNG lies over it), in parallel.
        let greys = ResultSlots<Data?>.map(averages.count) { k in
            try? RunReport.averagePNG(Self.coveredImage(averages[k]), range: range, name: "average_step_\(k).png")
        }
        // Every figure in the report's order: the plots, then per hold its average and phase map.
        var jobs: [(name: String, figure: FigurePainter.Figure)] = plots.map { ($0.0, .plot($0.1)) }
        var stepJobs: [(average: Int?, phase: Int?)] = []
        for k in averages.indices {
            let title = RunReport.stepTitle(k, steps: steps)
            var slots: (average: Int?, phase: Int?) = (nil, nil)
            if let grey = greys[k] {
                slots.average = jobs.count
                jobs.append(("average_step_\(k)", .image(ImageFigure(title: "Aligned average, \(title)", png: grey,
                    source: url("plots/average_step_\(k).png"),
                    widthPx: averages[k].image.width, heightPx: averages[k].image.height, pixelSizeNm: table.pixelSizeNm,
                    legend: [(RunReport.neutralHex, "no frame covers")]))))
            }
            let map = url("maps/step_\(k)_phase.png")
            if let picture = try? Data(contentsOf: map) {
                slots.phase = jobs.count
                jobs.append(("phase_map_step_\(k)", .image(ImageFigure(title: "Phase map, \(title)", png: picture, source: map,
                    widthPx: averages[k].image.width, heightPx: averages[k].image.height, pixelSizeNm: table.pixelSizeNm,
                    legend: RunReport.phaseLegend))))
            }
            stepJobs.append(slots)
        }
        var painter = FigurePainter(outputs: self)
        let drawn = try painter.draw(jobs)
        let figures = plots.indices.map { (name: plots[$0].0, title: plots[$0].1.title, svg: drawn[$0]!) }
        let stepFigures = stepJobs.map { (average: $0.average.flatMap { drawn[$0] }, phase: $0.phase.flatMap { drawn[$0] }) }
        var shown = summary
        shown.warnings += painter.warnings.filter { !shown.warnings.contains($0) }
        let context = RunFigures.Context(table: table, results: results, steps: steps, summary: shown)
        var html = RunReport.header(summary: shown, context: context, liveReloadSeconds: liveReloadSeconds)
        html += "<h2>Figures</h2>\n<div class=\"plots\">\n"
        for f in figures {
            html += "<figure id=\"\(f.name)\">\(RunReport.svgImage(f.svg, alt: f.title))<figcaption>plots/\(f.name).svg, .png</figcaption></figure>\n"
        }
        html += "</div>\n<h2 id=\"holds\">Holds</h2>\n" + RunReport.stepsTable(steps, context: context)
        html += mapsSection(stepFigures, steps: steps)
        html += "<h2>Frames</h2>\n<details><summary>\(results.count) frames (frames.csv)</summary>\n<div class=\"scroll\">\n"
        html += RunReport.table(RunTables.frames(table, results, registrationOnly: false), headers: RunReport.frameHeaders)
        html += "</div>\n</details>\n</body>\n</html>\n"
        try AtomicFile.write(html, to: url("report.html"))
        return painter.warnings
    }

    /// The phase maps and aligned averages, hold by hold: each hold's figures, or why it has
    /// no phase map.
    func mapsSection(_ stepFigures: [(average: Data?, phase: Data?)], steps: [StepResult]) -> String {
        var html = "<h2>Phase maps and aligned averages</h2>\n"
        html += "<p class=\"note\">One grey scale for every hold (0.5–99.5 % of all holds' covered pixels). "
            + "Areas no frame covers are flat grey.</p>\n<div class=\"maps\">\n"
        for (k, f) in stepFigures.enumerated() {
            if let phase = f.phase {
                html += "<figure id=\"phase_map_step_\(k)\">\(RunReport.svgImage(phase, alt: "phase map, \(RunReport.stepTitle(k, steps: steps))"))</figure>\n"
            } else {
                html += "<figure class=\"missing\">\(HTML.escape(RunReport.stepTitle(k, steps: steps))): no phase map (the hold was not analysed; see the warnings)</figure>\n"
            }
            if let average = f.average {
                html += "<figure>\(RunReport.svgImage(average, alt: "aligned average, \(RunReport.stepTitle(k, steps: steps))"))</figure>\n"
            }
        }
        return html + "</div>\n"
    }

    /// The average with NaN where no frame covers the pixel (the average holds 0 there).
    static func coveredImage(_ a: AlignedAverage) -> Image {
        var image = a.image
        for i in image.pixels.indices where a.weight.pixels[i] <= 0 { image.pixels[i] = .nan }
        return image
    }

    /// One display range for every hold's average: the 0.5 and 99.5 % quantiles of a sample of
    /// all covered pixels, so a hold's brightness compares with another's.
    static func displayRange(_ averages: [AlignedAverage]) -> (lo: Double, hi: Double) {
        var sample: [Float] = []
        for a in averages {
            let stride = max(1, a.image.pixels.count / 65_536)
            for i in Swift.stride(from: 0, to: a.image.pixels.count, by: stride)
            where a.weight.pixels[i] > 0 && a.image.pixels[i].isFinite { sample.append(a.image.pixels[i]) }
        }
        sample.sort()
        guard !sample.isEmpty else { return (0, 1) }
        let lo = Double(sample[sample.count / 200]), hi = Double(sample[sample.count - 1 - sample.count / 200])
        return (lo, hi > lo ? hi : lo + 1)
    }
}

/// Draws figures and writes them to `plots/`: plots with gnuplot (without it, or when it fails,
/// the built-in SVG drawing, one warning saying so), image figures with HeatFront's own SVG and
/// cairo-drawn PNG.
struct FigurePainter {
    let outputs: RunOutputs
    private(set) var warnings: [String] = []
    private var gnuplot: URL?

    /// `gnuplot`: the executable to draw plots with; nil draws them with the built-in SVG code.
    init(outputs: RunOutputs, gnuplot: URL? = Gnuplot.executable) {
        self.outputs = outputs
        self.gnuplot = gnuplot
        if gnuplot == nil {
            warnings.append("gnuplot is not installed: plots in plots/ are SVG only, with no PNG; install gnuplot-nox (scripts/install-deps.sh)")
        }
    }

    /// A figure to draw: a plot (gnuplot's, or the built-in SVG code's without it) or an image
    /// figure (`ImageFigure`).
    enum Figure {
        case plot(SVGPlot)
        case image(ImageFigure)
    }

    /// Draws `figures` and writes them to `plots/`; returns each one's SVG (nil for an image
    /// figure whose picture cannot be read). gnuplot draws the plots one process per core
    /// (`Gnuplot.draw`) while the image figures are drawn side by side; the plots are taken in
    /// order, so the files are those of drawing one after another: from the first plot gnuplot
    /// fails on, that and every later plot are drawn without it.
    mutating func draw(_ figures: [(name: String, figure: Figure)]) throws -> [Data?] {
        let dir = outputs.outDir
        let plots: [(index: Int, job: Gnuplot.Job)] = figures.indices.compactMap { i in
            guard case .plot(let p) = figures[i].figure else { return nil }
            return (i, Gnuplot.Job(plot: p, name: figures[i].name))
        }
        let exe = plots.isEmpty ? nil : gnuplot
        // The first slot runs gnuplot (its own processes) while the others draw the image figures.
        let slots = ResultSlots<Drawn>.map(1 + figures.count) { slot in
            guard slot > 0 else {
                guard let exe else { return .plots([]) }
                try? FileManager.default.createDirectory(at: dir.appendingPathComponent(".heatfront-cache/gnuplot", isDirectory: true),
                                                         withIntermediateDirectories: true)
                return .plots(Gnuplot.draw(plots.map(\.job), with: exe, scratch: dir))
            }
            let (name, figure) = figures[slot - 1]
            guard case .image(let f) = figure else { return .image(nil) }
            return .image((Data(f.svg().utf8), Result { try f.png(name: name) }))
        }
        var plotted: [Int: Result<(svg: Data, png: Data), Error>] = [:]
        if case .plots(let results) = slots[0] {
            for (k, r) in results.enumerated() { plotted[plots[k].index] = r }
        }
        var out: [Data?] = []
        var files: [(Data, String)] = []
        for (i, (name, figure)) in figures.enumerated() {
            var drawn: (svg: Data?, png: Data?) = (nil, nil)
            switch figure {
            case .plot(let p):
                if gnuplot != nil, let r = plotted[i] {
                    switch r {
                    case .success(let d): drawn = (d.svg, d.png)
                    case .failure(let error):
                        gnuplot = nil
                        warnings.append("\(error); this and the remaining plots are drawn without gnuplot (SVG only)")
                    }
                }
                drawn.svg = drawn.svg ?? Data(p.svg().utf8)
            case .image:
                if case .image(let d?) = slots[1 + i] {
                    drawn.svg = d.svg
                    switch d.png {
                    case .success(let png): drawn.png = png
                    case .failure(let error): warnings.append("plots/\(name).png is not written: \(error); the figure is in plots/\(name).svg")
                    }
                }
            }
            guard let svg = drawn.svg else { out.append(nil); continue }
            files.append((svg, "plots/\(name).svg"))
            if let png = drawn.png { files.append((png, "plots/\(name).png")) }
            out.append(svg)
        }
        let (outputs, written) = (self.outputs, files)
        _ = try ResultSlots<Void>.map(written.count) { i in try AtomicFile.write(written[i].0, to: outputs.url(written[i].1)) }
        return out
    }

    /// What one slot of `draw` made: an image figure's SVG and PNG, or gnuplot's plots.
    private enum Drawn {
        case image((svg: Data, png: Result<Data, Error>)?)
        case plots([Result<(svg: Data, png: Data), Error>])
    }
}

enum RunReport {
    static let neutral: SIMD3<Double> = PhaseMapRendering.uncoveredColour
    static var neutralHex: String { hex(neutral) }

    static func hex(_ c: SIMD3<Double>) -> String {
        String(format: "#%02x%02x%02x", Int(c.x.rounded()), Int(c.y.rounded()), Int(c.z.rounded()))
    }

    /// The phase map's colours as they appear over mid-grey.
    static var phaseLegend: [(color: String, label: String)] {
        let grey = SIMD3<Double>(128, 128, 128)
        return [(hex(0.7 * grey + 0.3 * PhaseMapRendering.layeredTint), "layered"),
                (hex(0.6 * grey + 0.4 * PhaseMapRendering.rocksaltTint), "rock salt"),
                (hex(PhaseMapRendering.frontColour), "front"),
                (hex(PhaseMapRendering.boundaryColour), "position origin line"),
                ("#808080", "not analysed"),
                (neutralHex, "no frame covers")]
    }

    static func stepTitle(_ k: Int, steps: [StepResult]) -> String {
        stepTitle(k, temperatureC: steps.indices.contains(k) ? steps[k].temperatureC : nil)
    }

    static func stepTitle(_ k: Int, temperatureC: Double?) -> String {
        "hold \(k)" + (temperatureC.map { String(format: " (%.0f °C)", $0) } ?? "")
    }

    /// An `<img>` of an SVG, with the SVG's own size (from its `viewBox`), so the page lays out
    /// before the pictures decode.
    static func svgImage(_ svg: Data, alt: String) -> String {
        let head = String(decoding: svg.prefix(600), as: UTF8.self)
        var size = ""
        if let r = head.range(of: "viewBox=\"") {
            let box = head[r.upperBound...].prefix { $0 != "\"" }.split(separator: " ")
            if box.count == 4 { size = " width=\"\(box[2])\" height=\"\(box[3])\"" }
        }
        return "<img class=\"figure\"\(size) alt=\"\(HTML.escape(alt))\" src=\"data:image/svg+xml;base64,\(svg.base64EncodedString())\">"
    }

    /// Machine words of `summary.json` as a reader says them.
    static func words(_ source: String) -> String {
        let known = ["frame_metadata": "frame metadata", "heating_log": "heating log", "config_steps": "steps in the config",
                     "folder_name": "folder names", "file_name": "file names", "gatan_folder_tree": "Gatan folder tree",
                     "config_frame_interval_s": "frame interval in the config", "frame_index": "frame order (no times)",
                     "config": "config", "metadata": "frame metadata", "none": "not known", "unknown": "not known",
                     "rigid": "rigid", "nonrigid": "non-rigid (scan distortion corrected)"]
        if let w = known[source] { return w }
        return source.replacingOccurrences(of: "_", with: " ")
    }

    /// The report's style sheet.
    static let style = """
    <style>
    body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; padding: 0 16px; color: #222; max-width: 1400px; }
    table { border-collapse: collapse; font-size: 13px; margin-bottom: 16px; }
    td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
    th { background: #f3f3f3; font-weight: 600; }
    table.summary td:first-child { font-weight: bold; white-space: nowrap; }
    table.summary td { text-align: left; }
    td.missing { color: #777; text-align: left; font-size: 12px; }
    .scroll { max-width: 100%; overflow-x: auto; }
    .plots, .maps { display: flex; flex-wrap: wrap; gap: 16px; }
    figure { margin: 0; }
    figcaption { font-size: 12px; color: #666; }
    img.figure { max-width: 100%; height: auto; }
    .warnings { border: 1px solid #d9a; background: #fff4f4; padding: 8px 16px; margin: 12px 0 20px; }
    .warnings h2 { margin: 4px 0; font-size: 18px; color: #a33; }
    .warnings li { margin: 2px 0; }
    .note { color: #555; font-size: 13px; }
    </style>
    """

    static func header(summary s: RunSummary, context c: RunFigures.Context, liveReloadSeconds: Int? = nil) -> String {
        func v(_ x: Double?, _ fmt: String, _ unit: String = "") -> String {
            x.map { String(format: fmt, $0) + unit } ?? "—"
        }
        let onset = s.onsetTemperatureC.map { String(format: "%.0f °C", $0) + (s.onsetStep.map { " (hold \($0))" } ?? "") }
            ?? "— \(Reasons.onset(c))"
        let widened = s.activation.flatMap { $0.scaleFactor > 1 ? $0.scaleFactor : nil }
            .map { String(format: "; SEM widened ×%.2f: the holds scatter about the line more than their SEMs allow", $0) } ?? ""
        let ea = s.activationEnergyEV.map { String(format: "%.2f ± %.2f eV", $0, s.activationEnergySEMEV ?? .nan) + " (Arrhenius fit\(widened))" }
            ?? "— \(Reasons.activation(c))"
        let rows: [(String, String)] = [
            ("Run", s.runDir),
            ("Frames used", "\(s.nUsed) of \(s.nFrames)"),
            ("Frame size", "\(s.frameWidth) × \(s.frameHeight) px"),
            ("Pixel size", s.pixelSizeNm.map { String(format: "%.5f nm, from the ", $0) + words(s.pixelSizeSource) }
                ?? "— not known: lengths are in px (set pixel_size_nm in heatfront.yaml)"),
            ("Frame times from", words(s.timeSource)), ("Temperatures from", words(s.temperatureSource)),
            ("Temperature holds", "\(s.nSteps)"),
            ("Registration", words(s.registration.mode)),
            ("Onset temperature", onset),
            ("Activation energy", ea),
        ]
        let name = HTML.escape(URL(fileURLWithPath: s.runDir).lastPathComponent)
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>HeatFront report — \(name)</title>
        \(style)
        </head>
        <body>
        <h1>HeatFront report — \(name)</h1>
        <p class="note">HeatFront \(HeatFrontVersion.string), run contract \(HeatFrontVersion.contract).</p>

        """
        if let liveReloadSeconds {
            html = html.replacingOccurrences(of: "<meta charset=\"utf-8\">\n",
                                             with: "<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"\(liveReloadSeconds)\">\n")
            html += "<p class=\"note\">Live analysis (heatfront watch): frames registered one by one against their step's running average; provisional numbers, replaced by the full analysis when the run ends.</p>\n"
        }
        if !s.warnings.isEmpty {
            html += "<div class=\"warnings\">\n<h2>Warnings (\(s.warnings.count))</h2>\n<ul>\n"
            for w in s.warnings { html += "<li>\(HTML.escape(w))</li>\n" }
            html += "</ul>\n</div>\n"
        }
        html += "<table class=\"summary\">\n"
        for (k, val) in rows { html += "<tr><td>\(HTML.escape(k))</td><td>\(HTML.escape(val))</td></tr>\n" }
        return html + "</table>\n"
    }

    /// One row per hold, in words and units, with the reason where a value is missing.
    static func stepsTable(_ steps: [StepResult], context c: RunFigures.Context) -> String {
        let u = c.unit
        var html = "<div class=\"scroll\"><table>\n<tr><th>Hold</th><th>Temperature (°C)</th><th>Time (s)</th><th>Frames used</th>"
            + "<th>Li/TM (mean ± SEM)</th><th>Rock-salt fraction</th><th>Front start → end (\(u))</th>"
            + "<th>Velocity (\(u)/s, ± SEM)</th><th>Front width (\(u))</th><th>Column precision (pm)</th></tr>\n"
        func cell(_ text: String?, missing: String) -> String {
            text.map { "<td>\(HTML.escape($0))</td>" } ?? "<td class=\"missing\">— \(HTML.escape(missing))</td>"
        }
        for s in steps {
            let analysed = s.ratioOfAverage != nil || s.rocksaltFraction != nil
            let notAnalysed = "hold not analysed (see the warnings)"
            let noFront = analysed ? "no front in this hold" : notAnalysed
            var row = "<tr><td>\(s.stepIndex)</td>"
            row += cell(s.temperatureC.map { String(format: "%.1f", $0) }, missing: "not known")
            row += "<td>\(String(format: "%.1f – %.1f", s.tStart, s.tEnd))</td><td>\(s.nUsed) of \(s.nFrames)</td>"
            row += cell(s.ratioMean.map { String(format: "%.4f", $0) + (s.ratioSEM.map { String(format: " ± %.4f", $0) } ?? "") },
                        missing: analysed ? "no columns measured" : notAnalysed)
            row += cell(s.rocksaltFraction.map { String(format: "%.3f", $0) }, missing: notAnalysed)
            row += cell(c.length(s.frontStartPx).flatMap { a in c.length(s.frontEndPx).map { String(format: "%.2f → %.2f", a, $0) } },
                        missing: noFront)
            row += cell(c.length(s.velocityPxPerS).map { String(format: "%.3g", $0) + (c.length(s.velocitySEMPxPerS).map { String(format: " ± %.2g", $0) } ?? "") },
                        missing: noFront)
            row += cell(c.length(s.frontWidthPx).map { String(format: "%.2f", $0) }, missing: noFront)
            row += cell(c.nm.flatMap { n in s.columnPrecisionPx.map { String(format: "%.1f", $0 * n * 1000) } },
                        missing: c.nm == nil ? "no pixel size" : notAnalysed)
            html += row + "</tr>\n"
        }
        return html + "</table></div>\n"
    }

    /// `frames.csv`'s columns as the report names them; a column not listed keeps its name.
    static let frameHeaders: [String: String] = [
        "frame_index": "Frame", "file": "File", "page": "Page", "step_index": "Hold", "temperature_C": "Temperature (°C)",
        "time_s": "Time (s)", "shift_x_px": "Shift x (px)", "shift_y_px": "Shift y (px)", "registration_score": "Registration score",
        "status": "Status", "tm_intensity": "TM intensity", "li_intensity": "Li intensity", "li_tm_ratio": "Li/TM",
        "rocksalt_fraction": "Rock-salt fraction", "front_position_nm": "Front position (nm)", "front_position_px": "Front position (px)",
    ]

    static func table(_ csv: CSVTable, headers: [String: String] = [:]) -> String {
        var html = "<table>\n<tr>" + csv.header.map { "<th>\(HTML.escape(headers[$0] ?? words($0)))</th>" }.joined() + "</tr>\n"
        for r in csv.rows { html += "<tr>" + r.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>\n" }
        return html + "</table>\n"
    }

    /// The bytes of an RGBA PNG of an average on a given grey scale, uncovered (NaN) pixels
    /// neutral: the picture of its `ImageFigure`. `name`: the file it stands for, in errors.
    static func averagePNG(_ image: Image, range: (lo: Double, hi: Double), name: String) throws -> Data {
        let span = range.hi > range.lo ? range.hi - range.lo : 1
        var rgba = [UInt8](repeating: 255, count: image.pixels.count * 4)
        for (i, v) in image.pixels.enumerated() {
            let c: SIMD3<Double>
            if v.isFinite {
                let g = min(1, max(0, (Double(v) - range.lo) / span)) * 255
                c = SIMD3(g, g, g)
            } else {
                c = neutral
            }
            rgba[4 * i] = UInt8(c.x.rounded()); rgba[4 * i + 1] = UInt8(c.y.rounded()); rgba[4 * i + 2] = UInt8(c.z.rounded())
        }
        return try PNGWriter.encodeRGBA(width: image.width, height: image.height, rgba: rgba, compression: 1, for: name)
    }
}

/// The temperature-against-time plot (the other figures are `RunFigures`).
enum RunPlots {
    /// Temperature against time: the heating log on the frames' clock, every frame marked
    /// (coloured by step, ramp frames grey, unused frames as rings) and each step shaded, so
    /// a log whose clock is not the frames' shows at a glance.
    static func temperature(table: FrameTable, results: [FrameResult]) -> SVGPlot {
        let temps = table.steps.compactMap(\.temperatureC)
        let range = temps.min().map { ($0, temps.max()!) }
        let colors = table.steps.map { TemperatureColors.color($0.temperatureC, in: range) }
        var plot = SVGPlot(title: "Temperature vs time", xLabel: "time (s)", yLabel: "temperature (°C)")
        plot.legendOutside = true
        plot.width = 820
        if !table.logTrace.times_s.isEmpty {
            plot.series.append(.init(name: "heating log", points: Array(zip(table.logTrace.times_s, table.logTrace.temperaturesC)),
                                     color: "#999999", line: true, markers: false))
        }
        func points(_ frames: [Int]) -> [(x: Double, y: Double)] {
            frames.compactMap { f in table.records[f].temperatureC.map { (table.records[f].timeS, $0) } }
        }
        let used = table.records.indices.filter { results[$0].status.isOK }
        for (k, s) in table.steps.enumerated() {
            let members = s.frameIndices.filter { results[$0].status.isOK }
            let times = s.frameIndices.map { table.records[$0].timeS }
            if let a = times.min(), let b = times.max() { plot.bands.append(.init(x0: a, x1: b, color: colors[k])) }
            if !members.isEmpty {
                plot.series.append(.init(name: s.temperatureC.map { String(format: "%.0f °C", $0) } ?? "step \(k)",
                                         points: points(members), color: colors[k]))
            }
        }
        let ramp = used.filter { table.records[$0].stepIndex < 0 }
        if !ramp.isEmpty { plot.series.append(.init(name: "ramp frames", points: points(ramp), color: "#555555")) }
        let unused = table.records.indices.filter { !results[$0].status.isOK }
        if !unused.isEmpty {
            plot.series.append(.init(name: "rejected or unreadable", points: points(unused), color: "#000000", hollow: true))
        }
        return plot
    }
}
