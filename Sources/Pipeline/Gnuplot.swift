import Foundation
import FrameCore
import FrameIO

/// Draws figures with gnuplot (Debian's `gnuplot-nox`, 5.4; Williams & Kelley, gnuplot.info),
/// run as a subprocess on a script written here: the data inline as datablocks, every range,
/// colour and label set explicitly, so the same figure gives the same bytes. Each figure is
/// drawn twice from one script: SVG (`svg` terminal, which writes no date) and PNG through
/// cairo at 3× the SVG's size, marked 300 dpi, so a 640 × 400 figure is 6.4 × 4 in on a slide.
/// `HEATFRONT_GNUPLOT` names another executable (or one that does not exist, to run without).
enum Gnuplot {
    /// PNG pixels per SVG pixel: 300 dpi for a figure laid out at 100 px per inch.
    static let pngScale = 3
    static let pngDPI = 300.0

    /// The gnuplot executable, or nil when none is installed.
    static let executable: URL? = {
        let fm = FileManager.default
        if let given = ProcessInfo.processInfo.environment["HEATFRONT_GNUPLOT"] {
            return fm.isExecutableFile(atPath: given) ? URL(fileURLWithPath: given) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin"] {
            let candidate = URL(fileURLWithPath: dir).appendingPathComponent("gnuplot")
            if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }()

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One plot for gnuplot to draw, as SVG and 300-dpi PNG.
    struct Job {
        var name: String
        var body: String
        var size: (width: Int, height: Int)

        init(plot: SVGPlot, name: String) {
            (self.name, body, size) = (name, Gnuplot.script(plot), (Int(plot.width), Int(plot.height)))
        }
    }

    /// Draws `jobs` with up to `processes` gnuplot processes side by side, each drawing its share
    /// one figure after another (starting gnuplot with cairo costs about as much CPU as drawing
    /// a figure). Returns each job's SVG and PNG bytes (marked 300 dpi), or why gnuplot could
    /// not draw it. `scratch/.heatfront-cache/gnuplot` must exist.
    static func draw(_ jobs: [Job], with exe: URL, scratch: URL,
                     processes: Int = ProcessInfo.processInfo.activeProcessorCount) -> [Result<(svg: Data, png: Data), Error>] {
        let dir = scratch.appendingPathComponent(".heatfront-cache/gnuplot", isDirectory: true)
        let n = Swift.max(1, Swift.min(processes, jobs.count))
        // Process p draws jobs p, p + n, ….
        let shares = ResultSlots<[Result<(svg: Data, png: Data), Error>]>.map(n) { p in
            run(exe, Array(stride(from: p, to: jobs.count, by: n).map { jobs[$0] }), dir: dir)
        }
        return jobs.indices.map { shares[$0 % n][$0 / n] }
    }

    /// One gnuplot process drawing `jobs` in order. gnuplot goes on after an error, so each
    /// figure's script ends by printing whether one of its commands failed (`GPVAL_ERRNO`); a
    /// figure counts as drawn when none did and its files are there. From the first that is
    /// not, that and every later one fail with gnuplot's last message.
    private static func run(_ exe: URL, _ jobs: [Job], dir: URL) -> [Result<(svg: Data, png: Data), Error>] {
        let files = jobs.map { (svg: dir.appendingPathComponent("\($0.name).svg"), png: dir.appendingPathComponent("\($0.name).png")) }
        defer { for f in files { try? FileManager.default.removeItem(at: f.svg); try? FileManager.default.removeItem(at: f.png) } }
        let text = zip(jobs, files).map { script($0, svg: $1.svg, png: $1.png) }.joined()
        let process = Process()
        process.executableURL = exe
        process.arguments = ["-"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        // gnuplot's own locale would print decimal commas into the SVG.
        var env = ProcessInfo.processInfo.environment
        env["LC_ALL"] = "C.UTF-8"
        process.environment = env
        do { try process.run() } catch {
            let failure = Failure(description: "gnuplot (\(exe.path)) could not be started: \(error.localizedDescription)")
            return jobs.map { _ in .failure(failure) }
        }
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        let drawn = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").filter { $0.hasPrefix(drawnMark) }.map { $0 == "\(drawnMark)0" }
        process.waitUntilExit()
        var failed: Failure?
        return jobs.indices.map { k in
            let job = jobs[k], file = files[k]
            if failed == nil, k < drawn.count, drawn[k], let png = try? Data(contentsOf: file.png), !png.isEmpty {
                if let svg = try? Data(contentsOf: file.svg), !svg.isEmpty {
                    return .success((svg, PNGResolution.marked(png, dotsPerInch: pngDPI)))
                }
            }
            let why = String(decoding: message, as: UTF8.self).split(separator: "\n").last
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? "exit \(process.terminationStatus)"
            failed = failed ?? Failure(description: "gnuplot could not draw \(job.name): \(why)")
            return .failure(failed!)
        }
    }

    /// A job's script: the SVG, then the same plot replotted on the PNG terminal, each file
    /// closed at the end; `reset` first, so each figure starts afresh.
    private static func script(_ job: Job, svg svgURL: URL, png pngURL: URL) -> String {
        let s = pngScale
        let png = """
        set terminal pngcairo size \(job.size.width * s),\(job.size.height * s) noenhanced font "Helvetica,12" fontscale \(s) linewidth \(s) pointscale \(s) background "#ffffff"
        set output \(quote(pngURL.path))
        """
        let draw = """
        set terminal svg size \(job.size.width),\(job.size.height) fixed noenhanced font "Helvetica,12" background "#ffffff"
        set output \(quote(svgURL.path))
        \(job.body)
        \(png)
        replot
        """
        return "reset\nreset errors\nset encoding utf8\nset print \"-\"\n\(draw)\nset output\n"
            + "print sprintf(\"\(drawnMark)%d\", GPVAL_ERRNO)\n\n"
    }

    /// What each figure's script prints to standard output at its end, followed by gnuplot's
    /// error number (0: none of its commands failed).
    private static let drawnMark = "heatfront figure, gnuplot error "

    // MARK: Scripts

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func number(_ v: Double) -> String {
        v == 0 ? "0" : String(format: "%.9g", v)
    }

    /// Words in lines of at most `width` characters.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        return line.isEmpty ? lines : lines + [line]
    }

    /// The plot's extent: its ranges, else the finite data (error bars included) with a 4 % margin.
    static func ranges(_ p: SVGPlot) -> (x: (Double, Double), y: (Double, Double))? {
        var xs: [Double] = [], ys: [Double] = []
        for s in p.series {
            for (i, pt) in s.points.enumerated() where pt.x.isFinite && pt.y.isFinite {
                xs.append(pt.x); ys.append(pt.y)
                if i < s.errors.count, let e = s.errors[i], e.isFinite { ys.append(pt.y - e); ys.append(pt.y + e) }
            }
        }
        func padded(_ v: [Double]) -> (Double, Double)? {
            guard let lo = v.min(), let hi = v.max() else { return nil }
            let span = hi - lo > 0 ? hi - lo : max(abs(hi) * 0.1, 1)
            return (lo - 0.04 * span, hi + 0.04 * span)
        }
        guard var x = p.xRange ?? padded(xs), var y = p.yRange ?? padded(ys) else { return nil }
        if p.equalAspect {
            // Neither axis under half the other's span, so a path along one axis is not a sliver.
            func widen(_ r: (Double, Double), to span: Double) -> (Double, Double) {
                let c = (r.0 + r.1) / 2, half = max(r.1 - r.0, span) / 2
                return (c - half, c + half)
            }
            let (sx, sy) = (x.1 - x.0, y.1 - y.0)
            x = widen(x, to: sy / 2)
            y = widen(y, to: sx / 2)
        }
        return (x, y)
    }

    /// The script body for a scatter/line plot (terminal and output are set by `run`).
    static func script(_ p: SVGPlot) -> String {
        var g = "set title \(quote(p.title)) font \",13\"\n"
        g += "set xlabel \(quote(p.xLabel))\nset ylabel \(quote(p.yLabel))\n"
        g += "set border 3 lc rgb \"#333333\"\nset tics nomirror out\nset grid lc rgb \"#e4e4e4\" lw 1\n"
        g += "set style fill transparent solid 0.1 noborder\n"
        g += p.legendOutside ? "set key outside right top vertical Left reverse samplen 2 spacing 1.1\n"
                             : "set key inside \(p.legendBottom ? "bottom" : "top") left Left reverse samplen 2 box lc rgb \"#cccccc\" opaque\n"
        guard let (xr, yr) = ranges(p) else {
            g += "unset key\nunset tics\nunset border\nunset xlabel\nunset ylabel\nset xrange [0:1]\nset yrange [0:1]\n"
            for (i, line) in wrap(p.note ?? "no data", width: 60).enumerated() {
                g += "set label \(i + 1) \(quote(line)) at 0.5, \(number(0.55 - 0.08 * Double(i))) center tc rgb \"#555555\"\n"
            }
            return g + "plot NaN notitle\n"
        }
        g += "set xrange [\(number(xr.0)):\(number(xr.1))]\n"
        g += p.reverseY ? "set yrange [\(number(yr.1)):\(number(yr.0))]\n" : "set yrange [\(number(yr.0)):\(number(yr.1))]\n"
        if p.equalAspect { g += "set size ratio -1\n" }
        if !p.topTicks.isEmpty {
            g += "set x2range [\(number(xr.0)):\(number(xr.1))]\nset border 7 lc rgb \"#333333\"\n"
            g += "set x2tics nomirror out (" + p.topTicks.map { "\(quote($0.label)) \(number($0.x))" }.joined(separator: ", ") + ")\n"
            if let t = p.topLabel { g += "set x2label \(quote(t))\n" }
        }
        for (i, b) in p.bands.enumerated() where b.x1 > xr.0 && b.x0 < xr.1 {
            g += "set object \(i + 1) rect from \(number(max(b.x0, xr.0))), graph 0 to \(number(min(b.x1, xr.1))), graph 1 behind fc rgb \(quote(b.color)) fs transparent solid 0.1 noborder\n"
        }
        for (i, m) in p.markers.enumerated() where m.x >= xr.0 && m.x <= xr.1 {
            g += "set arrow \(i + 1) from \(number(m.x)), graph 0 to \(number(m.x)), graph 1 nohead lc rgb \(quote(m.color)) lw 1.2 \(m.dashed ? "dt 2" : "dt 1") back\n"
            if !m.label.isEmpty {
                // Neighbouring labels alternate in height, so close markers stay readable.
                g += "set label \(i + 1) \(quote(m.label)) at \(number(m.x)), graph \(i % 2 == 0 ? "0.04" : "0.11") left offset 0.4,0 tc rgb \(quote(m.color)) front\n"
            }
        }
        // A note (why a value is missing) goes under the axes, clear of the data.
        if let note = p.note {
            let lines = wrap(note, width: Int(p.width / 6.5))
            g += "set bmargin \(4 + lines.count)\n"
            for (i, line) in lines.enumerated() {
                let y = (Double(lines.count - i) * 15 - 8) / p.height
                g += "set label \(p.markers.count + 1 + i) \(quote(line)) at screen 0.015, screen \(number(y)) left font \",10\" tc rgb \"#444444\" front\n"
            }
        }
        var plots = seriesClauses(p, data: &g)
        if plots.isEmpty { plots = ["NaN notitle"] }
        return g + "plot " + plots.joined(separator: ", \\\n     ") + "\n"
    }

    /// Each series with points as an inline data block (appended to `data`) and its plot clause.
    static func seriesClauses(_ p: SVGPlot, data: inout String) -> [String] {
        var plots: [String] = []
        for (i, s) in p.series.enumerated() {
            let pts = s.points.enumerated().filter { $0.element.x.isFinite && $0.element.y.isFinite }
            guard !pts.isEmpty else { continue }
            let hasErrors = !s.errors.isEmpty
            data += "$s\(i) << EOD\n"
            for (j, pt) in pts {
                let e = j < s.errors.count ? (s.errors[j].flatMap { $0.isFinite ? $0 : nil } ?? 0) : 0
                data += "\(number(pt.x)) \(number(pt.y))" + (hasErrors ? " \(number(e))" : "") + "\n"
            }
            data += "EOD\n"
            let title = s.name.isEmpty ? "notitle" : "title \(quote(s.name))"
            let color = "lc rgb \(quote(s.color))"
            let point = s.hollow ? "pt 6 ps 1.3" : "pt 7 ps 0.8"
            if hasErrors && s.markers {
                plots.append("$s\(i) using 1:2:3 with yerrorbars \(color) \(point) \(title)")
                if s.line { plots.append("$s\(i) using 1:2 with lines \(color) lw 1.5 notitle") }
            } else if s.line && s.markers {
                plots.append("$s\(i) using 1:2 with linespoints \(color) lw 1.5 \(point) \(title)")
            } else if s.line {
                plots.append("$s\(i) using 1:2 with lines \(color) lw 2 \(title)")
            } else {
                plots.append("$s\(i) using 1:2 with points \(color) \(point) \(title)")
            }
        }
        return plots
    }
}

/// A scale bar's length: 1, 2 or 5 × 10ⁿ nm (px without calibration), the longest not above
/// a fifth of the image's width.
enum ScaleBar {
    static func choose(widthPx: Double, pixelSizeNm: Double?) -> (lengthPx: Double, label: String) {
        let perPx = pixelSizeNm ?? 1
        let target = max(widthPx * perPx / 5, 1e-9)
        let mag = pow(10, floor(log10(target)))
        let length = [5.0, 2, 1].map { $0 * mag }.first { $0 <= target } ?? mag
        let text = length >= 1 ? String(format: "%.0f", length) : Cell.significant(length, 3)
        return (length / perPx, pixelSizeNm == nil ? "\(text) px" : "\(text) nm")
    }
}
