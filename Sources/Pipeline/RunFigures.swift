import Foundation
import FrameIO
import FrontTracking

/// The figures of `plots/`: what a scientist shows of a run. Every step is coloured by its
/// temperature on one scale (cold dark blue to hot orange), lengths are in nm when the pixel
/// size is known, and a value that could not be measured says why on the figure itself.
enum RunFigures {
    static let kB = 8.617333262e-5   // Boltzmann constant, eV/K

    struct Context {
        var table: FrameTable
        var results: [FrameResult]
        var steps: [StepResult]
        var summary: RunSummary
        var nm: Double? { table.pixelSizeNm }
        var unit: String { nm == nil ? "px" : "nm" }
        func length(_ px: Double?) -> Double? { px.map { $0 * (nm ?? 1) } }
        var temperatureRange: (Double, Double)? {
            let ts = table.steps.compactMap(\.temperatureC)
            guard let lo = ts.min(), let hi = ts.max() else { return nil }
            return (lo, hi)
        }
        func color(step k: Int) -> String {
            TemperatureColors.color(table.steps.indices.contains(k) ? table.steps[k].temperatureC : nil, in: temperatureRange)
        }
        func stepName(_ k: Int) -> String {
            table.steps[k].temperatureC.map { String(format: "%.0f °C", $0) } ?? "step \(k)"
        }
    }

    /// Every figure, by file stem, in the order the report shows them.
    static func all(table: FrameTable, results: [FrameResult], steps: [StepResult], summary: RunSummary) -> [(String, SVGPlot)] {
        let c = Context(table: table, results: results, steps: steps, summary: summary)
        return [("temperature_vs_time", RunPlots.temperature(table: table, results: results)),
                ("front_position_vs_time", frontPosition(c)), ("arrhenius", arrhenius(c)),
                ("front_velocity_vs_temperature", velocity(c)),
                ("li_tm_ratio_vs_time", ratioVsTime(c)), ("li_tm_ratio_vs_temperature", ratioVsTemperature(c)),
                ("drift_vs_time", driftVsTime(c)), ("drift_path", driftPath(c))]
    }

    /// Each frame's front position and, per hold, the least-squares line whose slope is the
    /// hold's velocity (`steps.csv`), with the velocity ± SEM in the legend.
    static func frontPosition(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Front position vs time", xLabel: "time (s)", yLabel: "front position (\(c.unit))")
        p.width = 720
        p.height = 450
        for (k, s) in c.table.steps.enumerated() {
            let pts = s.frameIndices.compactMap { f -> (x: Double, y: Double)? in
                guard c.results[f].status.isOK, let y = c.length(c.results[f].frontPositionPx) else { return nil }
                return (c.table.records[f].timeS, y)
            }
            guard !pts.isEmpty else { continue }
            let color = c.color(step: k)
            p.series.append(.init(name: "", points: pts, color: color))
            let r = c.steps.indices.contains(k) ? c.steps[k] : nil
            if let r, let v = c.length(r.velocityPxPerS), let a = c.length(r.frontStartPx), let b = c.length(r.frontEndPx) {
                let sem = c.length(r.velocitySEMPxPerS).map { String(format: " ± %.2g", $0) } ?? ""
                p.series.append(.init(name: "\(c.stepName(k)): v = \(String(format: "%.3g", v))\(sem) \(c.unit)/s",
                                      points: [(r.tStart, a), (r.tEnd, b)], color: color, line: true, markers: false))
            } else {
                p.series.append(.init(name: "\(c.stepName(k)): no velocity (\(pts.count) frames with a front, 3 needed)",
                                      points: [], color: color))
            }
        }
        if p.series.isEmpty { p.note = "no front position: \(Reasons.front(c))" }
        return p
    }

    /// ln v against 1000/T for the holds whose front moved forward, the least-squares line of
    /// `activation_energy_eV` (its slope is −Ea/(1000 k_B)), Ea ± SEM and the number of holds;
    /// the top axis gives the temperatures in °C.
    static func arrhenius(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Arrhenius plot of the front velocity", xLabel: "1000 / T (1/K)",
                        yLabel: "ln(v / (\(c.unit)/s))")
        p.topLabel = "temperature (°C)"
        p.legendBottom = true
        let moving = c.steps.filter { ($0.velocityPxPerS ?? 0) > 0 && $0.temperatureC != nil }
        let x = moving.map { 1000 / ($0.temperatureC! + 273.15) }
        let y = moving.map { log(c.length($0.velocityPxPerS)!) }
        let err = moving.map { s in s.velocitySEMPxPerS.map { $0 / s.velocityPxPerS! } }
        guard !moving.isEmpty else {
            p.note = "no Arrhenius plot: \(Reasons.activation(c))"
            return p
        }
        for (i, s) in moving.enumerated() {
            p.series.append(.init(name: i == 0 ? "holds (ln v ± SEM)" : "", points: [(x[i], y[i])], errors: [err[i]],
                                  color: c.color(step: s.stepIndex)))
        }
        if let ea = c.summary.activationEnergyEV {
            // The least-squares intercept, given the slope: mean of ln v + Ea/(kB T).
            let lnV0 = zip(moving, y).map { $1 + ea / (kB * ($0.temperatureC! + 273.15)) }.reduce(0, +) / Double(moving.count)
            let (x0, x1) = (x.min()!, x.max()!)
            let pad = max((x1 - x0) * 0.05, 0.002)
            let line = [x0 - pad, x1 + pad].map { (x: $0, y: lnV0 - ea * $0 / (1000 * kB)) }
            let sem = c.summary.activationEnergySEMEV.map { String(format: " ± %.2f", $0) } ?? ""
            p.series.append(.init(name: String(format: "fit: Ea = %.2f", ea) + sem + " eV, \(moving.count) holds",
                                  points: line, color: "#222222", line: true, markers: false))
        } else {
            p.note = "no fit: \(Reasons.activation(c))"
        }
        let dropped = c.steps.count - moving.count
        if dropped > 0, p.note == nil {
            p.note = "\(dropped) hold\(dropped == 1 ? "" : "s") without a forward-moving front not shown"
        }
        if let (lo, hi) = Gnuplot.ranges(p)?.x {
            p.topTicks = temperatureTicks(inverseKiloKelvin: lo, hi)
        }
        return p
    }

    /// Round temperatures (°C) whose 1000/T lies in [lo, hi].
    static func temperatureTicks(inverseKiloKelvin lo: Double, _ hi: Double) -> [(x: Double, label: String)] {
        guard lo > 0, hi > lo else { return [] }
        let tHot = 1000 / lo - 273.15, tCold = 1000 / hi - 273.15
        let step = [10.0, 20, 25, 50, 100, 200].first { (tHot - tCold) / $0 <= 6 } ?? 500
        var out: [(x: Double, label: String)] = []
        var t = (tCold / step).rounded(.up) * step
        while t <= tHot {
            out.append((1000 / (t + 273.15), String(format: "%.0f", t)))
            t += step
        }
        return out
    }

    static func velocity(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Front velocity vs temperature", xLabel: "temperature (°C)",
                        yLabel: "front velocity (\(c.unit)/s)")
        let measured = c.steps.filter { $0.velocityPxPerS != nil && $0.temperatureC != nil }
        for (i, s) in measured.enumerated() {
            p.series.append(.init(name: i == 0 ? "holds (± SEM)" : "", points: [(s.temperatureC!, c.length(s.velocityPxPerS)!)],
                                  errors: [c.length(s.velocitySEMPxPerS)], color: c.color(step: s.stepIndex)))
        }
        if measured.isEmpty { p.note = "no velocity: \(Reasons.front(c))" }
        return p
    }

    /// Each frame's Li/TM in time, every hold shaded, the hold's mean as a line across it
    /// and the onset marked at the start of its hold.
    static func ratioVsTime(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Li/TM site intensity ratio vs time", xLabel: "time (s)", yLabel: "Li/TM ratio")
        p.legendOutside = true
        p.width = 820
        for (k, s) in c.table.steps.enumerated() {
            let times = s.frameIndices.map { c.table.records[$0].timeS }
            if let a = times.min(), let b = times.max() { p.bands.append(.init(x0: a, x1: b, color: c.color(step: k))) }
            let pts = s.frameIndices.compactMap { f -> (x: Double, y: Double)? in
                guard c.results[f].status.isOK, let v = c.results[f].liTmRatio else { return nil }
                return (c.table.records[f].timeS, v)
            }
            guard !pts.isEmpty else { continue }
            p.series.append(.init(name: c.stepName(k), points: pts, color: c.color(step: k)))
            if c.steps.indices.contains(k), let m = c.steps[k].ratioMean {
                p.series.append(.init(name: "", points: [(c.steps[k].tStart, m), (c.steps[k].tEnd, m)],
                                      color: c.color(step: k), line: true, markers: false))
            }
        }
        let ramp = c.results.filter { $0.status.isOK && c.table.records[$0.frameIndex].stepIndex < 0 && $0.liTmRatio != nil }
        if !ramp.isEmpty {
            p.series.append(.init(name: "ramp frames", points: ramp.map { (c.table.records[$0.frameIndex].timeS, $0.liTmRatio!) },
                                  color: "#999999", hollow: true))
        }
        if let k = c.summary.onsetStep, c.steps.indices.contains(k) {
            p.markers.append(.init(x: c.steps[k].tStart, label: onsetLabel(c), color: "#b00020"))
        } else {
            p.note = "no onset: \(Reasons.onset(c))"
        }
        if p.series.isEmpty { p.note = "no Li/TM: \(Reasons.ratio(c))" }
        return p
    }

    static func ratioVsTemperature(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Li/TM site intensity ratio vs temperature", xLabel: "temperature (°C)", yLabel: "Li/TM ratio")
        let frames = c.results.compactMap { r -> (x: Double, y: Double)? in
            guard r.status.isOK, let t = c.table.records[r.frameIndex].temperatureC, let v = r.liTmRatio else { return nil }
            return (t, v)
        }
        p.series.append(.init(name: "frames", points: frames, color: "#bbbbbb"))
        let means = c.steps.filter { $0.temperatureC != nil && $0.ratioMean != nil }
        p.series.append(.init(name: "", points: means.map { ($0.temperatureC!, $0.ratioMean!) }, color: "#555555",
                              line: true, markers: false))
        for (i, s) in means.enumerated() {
            p.series.append(.init(name: i == 0 ? "hold mean ± SEM" : "", points: [(s.temperatureC!, s.ratioMean!)],
                                  errors: [s.ratioSEM], color: c.color(step: s.stepIndex)))
        }
        if let t = c.summary.onsetTemperatureC {
            p.markers.append(.init(x: t, label: onsetLabel(c), color: "#b00020"))
        } else {
            p.note = "no onset: \(Reasons.onset(c))"
        }
        if frames.isEmpty && means.isEmpty { p.note = "no Li/TM: \(Reasons.ratio(c))" }
        return p
    }

    static func onsetLabel(_ c: Context) -> String {
        c.summary.onsetTemperatureC.map { String(format: "onset %.0f °C", $0) } ?? "onset"
    }

    /// The registration shifts: where the specimen was, relative to the run's reference, in nm.
    static func drift(_ c: Context) -> [(frame: Int, t: Double, x: Double, y: Double)] {
        c.results.compactMap { r in
            guard let dx = r.shiftX, let dy = r.shiftY else { return nil }
            return (r.frameIndex, c.table.records[r.frameIndex].timeS, c.length(dx)!, c.length(dy)!)
        }
    }

    static func driftVsTime(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Specimen drift vs time", xLabel: "time (s)", yLabel: "drift (\(c.unit))")
        p.legendOutside = true
        p.width = 820
        let d = drift(c)
        p.series.append(.init(name: "x", points: d.map { ($0.t, $0.x) }, color: "#1f77b4", line: true))
        p.series.append(.init(name: "y (down in the image)", points: d.map { ($0.t, $0.y) }, color: "#d62728", line: true))
        for (k, s) in c.table.steps.enumerated() {
            let times = s.frameIndices.map { c.table.records[$0].timeS }
            guard let a = times.min(), let b = times.max() else { continue }
            p.bands.append(.init(x0: a, x1: b, color: c.color(step: k)))
            p.markers.append(.init(x: a, label: c.stepName(k), color: "#666666"))
        }
        if d.isEmpty { p.note = "no drift: no frame was registered" }
        return p
    }

    /// The drift as a path in the image plane (y down, as in the image), one colour per hold.
    static func driftPath(_ c: Context) -> SVGPlot {
        var p = SVGPlot(title: "Specimen drift path", xLabel: "drift x (\(c.unit))", yLabel: "drift y (\(c.unit), down in the image)")
        p.equalAspect = true
        p.reverseY = true
        p.legendOutside = true
        p.width = 720
        p.height = 480
        let d = drift(c)
        p.series.append(.init(name: "", points: d.map { ($0.x, $0.y) }, color: "#bbbbbb", line: true, markers: false))
        for (k, s) in c.table.steps.enumerated() {
            let members = Set(s.frameIndices)
            let pts = d.filter { members.contains($0.frame) }.map { (x: $0.x, y: $0.y) }
            if !pts.isEmpty { p.series.append(.init(name: c.stepName(k), points: pts, color: c.color(step: k))) }
        }
        if let first = d.first { p.series.append(.init(name: "first frame", points: [(first.x, first.y)], color: "#000000", hollow: true)) }
        if d.isEmpty { p.note = "no drift: no frame was registered" }
        return p
    }
}

/// Why a run-level value is missing, in the words the report and figures show.
enum Reasons {
    static func onset(_ c: RunFigures.Context) -> String {
        let s = c.steps
        guard !s.isEmpty else { return "the run has no temperature step" }
        if let f = s[0].rocksaltFraction, f > 0.02 {
            return String(format: "the first hold already shows rock salt (fraction %.2f), so no later hold can mark its start", f)
        }
        guard s.count > 1 else { return "one hold only: there is no later hold to compare with the first" }
        if s.allSatisfy({ $0.ratioMean == nil && $0.rocksaltFraction == nil }) { return "no hold has a Li/TM or rock-salt measurement" }
        return "no hold differs from the first (baseline) hold by more than 3 SEM and 0.02 in Li/TM, or shows rock salt above 2 %"
    }

    static func activation(_ c: RunFigures.Context) -> String {
        let moving = c.steps.filter { ($0.velocityPxPerS ?? 0) > 0 && $0.temperatureC != nil }.count
        if c.steps.allSatisfy({ $0.velocityPxPerS == nil }) { return "no hold has a front velocity (\(front(c)))" }
        return "\(moving) hold\(moving == 1 ? "" : "s") with a forward-moving front at a known temperature; the fit needs 3"
    }

    static func front(_ c: RunFigures.Context) -> String {
        if c.steps.isEmpty { return "the run has no temperature step" }
        if c.steps.allSatisfy({ $0.rocksaltFraction == nil }) { return "no hold was analysed (see the warnings)" }
        if c.results.allSatisfy({ $0.frontPositionPx == nil }) {
            return "no front between the layered and rock-salt regions was found in any hold"
        }
        return "fewer than 3 frames with a front position in every hold"
    }

    static func ratio(_ c: RunFigures.Context) -> String {
        c.steps.isEmpty ? "the run has no temperature step" : "no hold's columns were measured (see the warnings)"
    }
}

/// Step colours from their temperatures: matplotlib's "plasma" map (van der Walt & Smith
/// 2015, perceptually uniform), sampled at 0, 0.13, …, 0.8: the hottest step stays readable
/// on white.
enum TemperatureColors {
    static let anchors: [SIMD3<Double>] = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137],
                                           [219, 92, 104], [244, 136, 73], [254, 188, 43]]

    static func color(_ t: Double?, in range: (Double, Double)?) -> String {
        guard let t, let (lo, hi) = range else { return "#777777" }
        let u = hi > lo ? min(1, max(0, (t - lo) / (hi - lo))) : 0.5
        let x = u * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2), f = x - Double(i)
        let c = anchors[i] * (1 - f) + anchors[i + 1] * f
        return String(format: "#%02x%02x%02x", Int(c.x.rounded()), Int(c.y.rounded()), Int(c.z.rounded()))
    }
}
