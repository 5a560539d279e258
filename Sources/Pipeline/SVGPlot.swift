import Foundation

/// A scatter/line figure: axes labelled with units, series as markers, lines and error
/// bars, shaded stretches of x, marked x values and a legend. `Gnuplot` draws it as SVG and
/// 300-dpi PNG; `svg()` is the built-in drawing used when gnuplot is not installed.
struct SVGPlot {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var errors: [Double?] = []
        var color: String
        var line = false
        var markers = true
        /// Markers drawn as rings (frames that were not used).
        var hollow = false
    }

    /// A shaded stretch of x (a temperature step), drawn under the series.
    struct Band {
        var x0: Double
        var x1: Double
        var color: String
    }

    /// A marked x value (the onset, a step boundary), drawn as a vertical line.
    struct Marker {
        var x: Double
        var label: String
        var color: String
        var dashed = true
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series] = []
    var bands: [Band] = []
    var markers: [Marker] = []
    var note: String? = nil
    /// Labels of a second x axis along the top, at these x values (the Arrhenius plot's °C).
    var topTicks: [(x: Double, label: String)] = []
    var topLabel: String? = nil
    /// Axis ranges; nil: the data's extent and a small margin, so no axis runs empty.
    var xRange: (Double, Double)? = nil
    var yRange: (Double, Double)? = nil
    /// One nm on x as long as one on y (a drift path).
    var equalAspect = false
    /// y growing downwards, as image rows do.
    var reverseY = false
    /// The legend beside the axes rather than inside (many entries).
    var legendOutside = false
    /// The legend in the lower left corner (where a falling line leaves room).
    var legendBottom = false
    var width = 640.0
    var height = 400.0

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                          "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]

    func svg() -> String {
        let left = 72.0, right = 16.0, top = 34.0, bottom = 52.0
        let pw = width - left - right, ph = height - top - bottom
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for (i, p) in s.points.enumerated() where p.x.isFinite && p.y.isFinite {
                xs.append(p.x); ys.append(p.y)
                if i < s.errors.count, let e = s.errors[i], e.isFinite { ys.append(p.y - e); ys.append(p.y + e) }
            }
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(esc(title))</text>\n"
        guard let x0 = xs.min(), let x1 = xs.max(), let y0 = ys.min(), let y1 = ys.max() else {
            out += "<text x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\" fill=\"#666\">no data</text>\n</svg>\n"
            return out
        }
        let xt = Self.ticks(x0, x1), yt = Self.ticks(y0, y1)
        let xa = xt.first!, xb = xt.last!, ya = yt.first!, yb = yt.last!
        func px(_ x: Double) -> Double { left + (x - xa) / (xb - xa) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - ya) / (yb - ya) * ph }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        for t in xt {
            out += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in yt {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(t)))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        for b in bands where b.x1 > xa && b.x0 < xb {
            let a = px(max(b.x0, xa)), z = px(min(b.x1, xb))
            out += "<rect x=\"\(f(a))\" y=\"\(f(top))\" width=\"\(f(max(z - a, 1)))\" height=\"\(f(ph))\" fill=\"\(b.color)\" fill-opacity=\"0.15\"/>\n"
        }
        out += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        out += seriesMarks(px: px, py: py)
        // Legend, top-left inside the axes.
        for (i, s) in series.filter({ !$0.name.isEmpty }).enumerated() {
            let y = top + 14 + Double(i) * 16
            out += "<rect x=\"\(f(left + 8))\" y=\"\(f(y - 9))\" width=\"10\" height=\"10\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(f(left + 22))\" y=\"\(f(y))\">\(esc(s.name))</text>\n"
        }
        for m in markers where m.x >= xa && m.x <= xb {
            out += "<line x1=\"\(f(px(m.x)))\" y1=\"\(f(top))\" x2=\"\(f(px(m.x)))\" y2=\"\(f(top + ph))\" stroke=\"\(m.color)\" stroke-dasharray=\"\(m.dashed ? "5 3" : "none")\"/>"
            out += "<text x=\"\(f(px(m.x) + 3))\" y=\"\(f(top + ph - 6))\" fill=\"\(m.color)\">\(esc(m.label))</text>\n"
        }
        if let note {
            out += "<text x=\"\(f(left + pw - 6))\" y=\"\(f(top + 16))\" text-anchor=\"end\" fill=\"#333\">\(esc(note))</text>\n"
        }
        return out + "</svg>\n"
    }

    /// Every series' line, error bars and markers, one series per line of SVG.
    func seriesMarks(px: (Double) -> Double, py: (Double) -> Double) -> String {
        var out = ""
        for s in series {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if s.line, pts.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\""
                out += pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>\n"
            }
            for (i, p) in s.points.enumerated() where p.x.isFinite && p.y.isFinite {
                if i < s.errors.count, let e = s.errors[i], e.isFinite, e > 0 {
                    out += "<line x1=\"\(f(px(p.x)))\" y1=\"\(f(py(p.y - e)))\" x2=\"\(f(px(p.x)))\" y2=\"\(f(py(p.y + e)))\" stroke=\"\(s.color)\"/>"
                }
                if s.markers && s.hollow {
                    out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3.5\" fill=\"none\" stroke=\"\(s.color)\"/>"
                } else if s.markers {
                    out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(s.color)\"/>"
                }
            }
            out += "\n"
        }
        return out
    }

    /// Round tick values covering [lo, hi] (Heckbert's "nice numbers", Graphics Gems 1990).
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        var lo = lo, hi = hi
        if hi - lo < 1e-12 * max(1, abs(lo)) { lo -= max(0.5, abs(lo) * 0.05); hi += max(0.5, abs(hi) * 0.05) }
        let raw = (hi - lo) / Double(count - 1)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let start = floor(lo / step) * step, end = ceil(hi / step) * step
        return stride(from: start, through: end + step * 0.5, by: step).map { ($0 / step).rounded() * step }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.1e", v) }
        var s = String(format: "%.4f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private func esc(_ s: String) -> String { HTML.escape(s) }
}

enum HTML {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
