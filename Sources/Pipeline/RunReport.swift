import Foundation
import FrameCore
import FrameIO
import Registration

/// The four plots of `plots/` and the self-contained `report.html`.
extension RunOutputs {
    func writePlotsAndReport(results: [FrameResult], steps: [StepResult], averages: [AlignedAverage],
                             summary: RunSummary) throws {
        let plots = RunPlots.all(table: table, results: results, steps: steps, summary: summary)
        for (name, plot) in plots {
            try AtomicFile.write(plot.svg(), to: url("plots/\(name).svg"))
        }
        var html = RunReport.header(summary: summary, liveReloadSeconds: liveReloadSeconds)
        html += "<h2>Plots</h2>\n<div class=\"plots\">\n"
        for (_, plot) in plots { html += "<figure>\(plot.svg())</figure>\n" }
        html += "</div>\n<h2>Steps</h2>\n"
        html += RunReport.table(RunTables.steps(steps, pixelSizeNm: table.pixelSizeNm))
        html += "<h2>Aligned averages and phase maps</h2>\n<div class=\"steps\">\n"
        let previews = try ResultSlots<Data?>.map(averages.count) { k in
            try? RunReport.pngData(greyscale: averages[k].image, scratch: outDir, name: "report-preview-\(k).png")
        }
        for k in averages.indices {
            let t = steps.indices.contains(k) ? steps[k].temperatureC.map { String(format: "%.0f °C", $0) } ?? "" : ""
            html += "<figure><figcaption>step \(k) \(t)</figcaption>"
            if let png = previews[k] {
                html += "<img alt=\"step \(k) average\" src=\"data:image/png;base64,\(png.base64EncodedString())\">"
            }
            if let map = try? Data(contentsOf: outDir.appendingPathComponent("maps/step_\(k)_phase.png")) {
                html += "<img alt=\"step \(k) phase map\" src=\"data:image/png;base64,\(map.base64EncodedString())\">"
            }
            html += "</figure>\n"
        }
        html += "</div>\n<h2>Frames</h2>\n<details><summary>\(results.count) frames</summary>\n"
        html += RunReport.table(RunTables.frames(table, results, registrationOnly: false))
        html += "</details>\n</body>\n</html>\n"
        try AtomicFile.write(html, to: url("report.html"))
    }
}

enum RunReport {
    static func header(summary s: RunSummary, liveReloadSeconds: Int? = nil) -> String {
        func v(_ x: Double?, _ fmt: String, _ unit: String = "") -> String {
            x.map { String(format: fmt, $0) + unit } ?? "—"
        }
        let rows: [(String, String)] = [
            ("Run folder", s.runDir),
            ("Frames (used / total)", "\(s.nUsed) / \(s.nFrames)"),
            ("Frame size", "\(s.frameWidth) × \(s.frameHeight) px"),
            ("Pixel size", v(s.pixelSizeNm, "%.5f", " nm") + " (\(s.pixelSizeSource))"),
            ("Time from", s.timeSource), ("Temperature from", s.temperatureSource),
            ("Temperature steps", "\(s.nSteps)"),
            ("Registration", s.registration.mode),
            ("Onset temperature", v(s.onsetTemperatureC, "%.0f", " °C")),
            ("Activation energy", s.activationEnergyEV.map { String(format: "%.2f ± %.2f eV", $0, s.activationEnergySEMEV ?? .nan) } ?? "—"),
        ]
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>HeatFront report — \(HTML.escape(URL(fileURLWithPath: s.runDir).lastPathComponent))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
        table { border-collapse: collapse; font-size: 13px; margin-bottom: 16px; }
        td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
        th { background: #f3f3f3; }
        table.summary td:first-child { text-align: left; font-weight: bold; }
        table.summary td { text-align: left; }
        .plots, .steps { display: flex; flex-wrap: wrap; gap: 12px; }
        figure { margin: 0; }
        .steps img { width: 320px; height: auto; image-rendering: pixelated; margin-right: 4px; }
        .warn { color: #a33; }
        </style>
        </head>
        <body>
        <h1>HeatFront report — \(HTML.escape(URL(fileURLWithPath: s.runDir).lastPathComponent))</h1>
        <p>HeatFront \(HeatFrontVersion.string), run contract \(HeatFrontVersion.contract).</p>
        <table class="summary">

        """
        for (k, val) in rows { html += "<tr><td>\(HTML.escape(k))</td><td>\(HTML.escape(val))</td></tr>\n" }
        html += "</table>\n"
        if let liveReloadSeconds {
            html = html.replacingOccurrences(of: "<meta charset=\"utf-8\">\n",
                                             with: "<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"\(liveReloadSeconds)\">\n")
            html += "<p class=\"warn\">Live analysis (heatfront watch): frames registered one by one against their step's running average; provisional numbers, replaced by the full analysis when the run ends.</p>\n"
        }
        if !s.warnings.isEmpty {
            html += "<h2>Warnings</h2>\n<ul class=\"warn\">\n"
            for w in s.warnings { html += "<li>\(HTML.escape(w))</li>\n" }
            html += "</ul>\n"
        }
        return html
    }

    static func table(_ csv: CSVTable) -> String {
        var html = "<table>\n<tr>" + csv.header.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr>\n"
        for r in csv.rows { html += "<tr>" + r.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>\n" }
        return html + "</table>\n"
    }

    /// 8-bit greyscale PNG bytes of an image, contrast stretched between its 0.5 and 99.5 percentiles.
    static func pngData(greyscale image: Image, scratch: URL, name: String) throws -> Data {
        // Display range from a sample of the covered pixels (every 7th): the 0.5–99.5 % quantiles.
        var sample: [Float] = []
        sample.reserveCapacity(image.pixels.count / 7 + 1)
        for i in stride(from: 0, to: image.pixels.count, by: 7) where image.pixels[i] != 0 { sample.append(image.pixels[i]) }
        sample.sort()
        guard !sample.isEmpty else { throw CocoaError(.featureUnsupported) }
        let lo = sample[sample.count / 200], hi = sample[sample.count - 1 - sample.count / 200]
        let scale = hi > lo ? 255 / (hi - lo) : 0
        let grey = Image(width: image.width, height: image.height,
                         pixels: image.pixels.map { max(0, min(255, (($0 - lo) * scale).rounded())) })
        let tmp = scratch.appendingPathComponent(".heatfront-cache/\(name)")
        try PNGWriter.writeGray(Frame(image: grey), bitDepth: 8, compression: 1, to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        return try Data(contentsOf: tmp)
    }
}

/// The plots a person looks at first.
enum RunPlots {
    static func all(table: FrameTable, results: [FrameResult], steps: [StepResult], summary: RunSummary) -> [(String, SVGPlot)] {
        let nm = table.pixelSizeNm
        let lengthUnit = nm == nil ? "px" : "nm"
        func len(_ px: Double?) -> Double? { px.map { $0 * (nm ?? 1) } }
        let colors = SVGPlot.palette

        var front = SVGPlot(title: "Front position vs time", xLabel: "time (s)", yLabel: "front position (\(lengthUnit))")
        for (k, s) in table.steps.enumerated() {
            let pts = s.frameIndices.compactMap { f -> (x: Double, y: Double)? in
                guard let p = len(results[f].frontPositionPx) else { return nil }
                return (table.records[f].timeS, p)
            }
            if !pts.isEmpty {
                front.series.append(.init(name: "step \(k)" + (s.temperatureC.map { String(format: " (%.0f °C)", $0) } ?? ""),
                                          points: pts, color: colors[k % colors.count]))
            }
        }

        var velocity = SVGPlot(title: "Front velocity vs temperature", xLabel: "temperature (°C)",
                               yLabel: "front velocity (\(lengthUnit)/s)")
        let moving = steps.filter { $0.velocityPxPerS != nil && $0.temperatureC != nil }
        velocity.series.append(.init(name: "steps (± SEM)", points: moving.map { ($0.temperatureC!, len($0.velocityPxPerS)!) },
                                     errors: moving.map { len($0.velocitySEMPxPerS) }, color: colors[0]))
        if let ea = summary.activationEnergyEV {
            // ln v0 from the positive velocities, given Ea: the fitted Arrhenius curve.
            let kB = 8.617333262e-5
            let pos = moving.filter { $0.velocityPxPerS! > 0 }
            let lnV0 = pos.map { log(len($0.velocityPxPerS)!) + ea / (kB * ($0.temperatureC! + 273.15)) }.reduce(0, +) / Double(pos.count)
            let t0 = pos.map { $0.temperatureC! }.min()!, t1 = pos.map { $0.temperatureC! }.max()!
            let curve = (0...40).map { i -> (x: Double, y: Double) in
                let t = t0 + (t1 - t0) * Double(i) / 40
                return (t, exp(lnV0 - ea / (kB * (t + 273.15))))
            }
            velocity.series.append(.init(name: String(format: "Arrhenius fit, Ea = %.2f ± %.2f eV", ea, summary.activationEnergySEMEV ?? .nan),
                                         points: curve, color: colors[1], line: true, markers: false))
        }

        var ratio = SVGPlot(title: "Li/TM site intensity ratio vs temperature", xLabel: "temperature (°C)", yLabel: "Li/TM ratio")
        let framePts = results.compactMap { r -> (x: Double, y: Double)? in
            guard r.status == "ok", let t = table.records[r.frameIndex].temperatureC, let v = r.liTmRatio else { return nil }
            return (t, v)
        }
        ratio.series.append(.init(name: "frames", points: framePts, color: "#bbbbbb"))
        let stepPts = steps.filter { $0.temperatureC != nil && $0.ratioMean != nil }
        ratio.series.append(.init(name: "step mean ± SEM", points: stepPts.map { ($0.temperatureC!, $0.ratioMean!) },
                                  errors: stepPts.map(\.ratioSEM), color: colors[1], line: true))
        if let onset = summary.onsetTemperatureC { ratio.note = String(format: "onset %.0f °C", onset) }

        var drift = SVGPlot(title: "Drift (registration shifts)", xLabel: "time (s)", yLabel: "shift (px)")
        let ok = results.filter { $0.shiftX != nil }
        drift.series.append(.init(name: "shift x", points: ok.map { (table.records[$0.frameIndex].timeS, $0.shiftX!) },
                                  color: colors[0], line: true))
        drift.series.append(.init(name: "shift y", points: ok.map { (table.records[$0.frameIndex].timeS, $0.shiftY!) },
                                  color: colors[1], line: true))
        return [("temperature_vs_time", temperature(table: table, results: results)),
                ("front_position_vs_time", front), ("front_velocity_vs_temperature", velocity),
                ("li_tm_ratio_vs_temperature", ratio), ("drift", drift)]
    }

    /// Temperature against time: the heating log on the frames' clock, every frame marked
    /// (coloured by step, ramp frames grey, unused frames as rings) and each step shaded, so
    /// a log whose clock is not the frames' shows at a glance.
    static func temperature(table: FrameTable, results: [FrameResult]) -> SVGPlot {
        let colors = SVGPlot.palette
        var plot = SVGPlot(title: "Temperature vs time", xLabel: "time (s)", yLabel: "temperature (°C)")
        if !table.logTrace.times_s.isEmpty {
            plot.series.append(.init(name: "heating log", points: Array(zip(table.logTrace.times_s, table.logTrace.temperaturesC)),
                                     color: "#999999", line: true, markers: false))
        }
        func points(_ frames: [Int]) -> [(x: Double, y: Double)] {
            frames.compactMap { f in table.records[f].temperatureC.map { (table.records[f].timeS, $0) } }
        }
        let used = table.records.indices.filter { results[$0].status == "ok" }
        for (k, s) in table.steps.enumerated() {
            let members = s.frameIndices.filter { results[$0].status == "ok" }
            let times = s.frameIndices.map { table.records[$0].timeS }
            if let a = times.min(), let b = times.max() { plot.bands.append(.init(x0: a, x1: b, color: colors[k % colors.count])) }
            if !members.isEmpty {
                plot.series.append(.init(name: "step \(k)" + (s.temperatureC.map { String(format: " (%.0f °C)", $0) } ?? ""),
                                         points: points(members), color: colors[k % colors.count]))
            }
        }
        let ramp = used.filter { table.records[$0].stepIndex < 0 }
        if !ramp.isEmpty { plot.series.append(.init(name: "ramp frames", points: points(ramp), color: "#555555")) }
        let unused = table.records.indices.filter { results[$0].status != "ok" }
        if !unused.isEmpty {
            plot.series.append(.init(name: "rejected or unreadable", points: points(unused), color: "#000000", hollow: true))
        }
        return plot
    }
}
