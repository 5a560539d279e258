import Foundation
import FrameIO

/// A figure made of an image: a phase map or an aligned average (an RGBA or grey PNG),
/// drawn at its pixel aspect with a scale bar in nm and a legend of its colours. `svg()`
/// draws it with the PNG embedded as it is; for the 300-dpi PNG, gnuplot draws the same
/// layout without the picture and `raster` lays that over the picture.
struct ImageFigure {
    var title: String
    /// The picture, a PNG file.
    var png: URL
    var widthPx: Int
    var heightPx: Int
    var pixelSizeNm: Double?
    /// Legend entries: colour as `#rrggbb`, and what it marks.
    var legend: [(color: String, label: String)] = []

    /// The image's box in SVG pixels: at most 520 px on its longer side, 20 px from the
    /// figure's left edge and 40 px from its top (room for the title).
    var imageBox: (x: Double, y: Double, width: Double, height: Double) {
        let side = 520.0, longer = Double(max(widthPx, heightPx, 1))
        return (20, 40, (Double(widthPx) * side / longer).rounded(), (Double(heightPx) * side / longer).rounded())
    }

    /// Figure size in SVG pixels: the image box with 20 px below it, and on its right 20 px,
    /// or 200 px for the legend.
    var size: (Int, Int) {
        let box = imageBox
        return (Int(box.x + box.width) + (legend.isEmpty ? 20 : 200), Int(box.y + box.height) + 20)
    }

    /// The figure's pixels at `scale` PNG pixels per SVG pixel (RGB, rows top to bottom): the
    /// picture scaled into the image box by nearest neighbour (each image pixel a uniform
    /// block, nothing interpolated), white around it, and over both `layer` (gnuplot's
    /// drawing of the title, scale bar and legend at that scale, transparent elsewhere),
    /// alpha-blended. Nil when the layer is not the figure's size at that scale.
    func raster(layer: PNGPicture, picture: PNGPicture, scale: Int) -> [UInt8]? {
        let (fw, fh) = size, box = imageBox
        let width = fw * scale, height = fh * scale
        guard layer.width == width, layer.height == height, picture.width > 0, picture.height > 0 else { return nil }
        let x0 = Int(box.x) * scale, y0 = Int(box.y) * scale
        let bw = min(Int(box.width) * scale, width - x0), bh = min(Int(box.height) * scale, height - y0)
        // Picture column (row) of each box column (row), sampled at the pixel's centre.
        let columns = (0..<bw).map { ((2 * $0 + 1) * picture.width) / (2 * bw) }
        let rows = (0..<bh).map { ((2 * $0 + 1) * picture.height) / (2 * bh) }
        var out = [UInt8](repeating: 255, count: width * height * 3)
        out.withUnsafeMutableBufferPointer { o in
            layer.rgba.withUnsafeBufferPointer { l in
                picture.rgba.withUnsafeBufferPointer { p in
                    for y in 0..<height {
                        let inRows = y >= y0 && y < y0 + bh
                        let source = inRows ? rows[y - y0] * picture.width : 0
                        for x in 0..<width {
                            let i = y * width + x, a = Int(l[4 * i + 3])
                            // Most of the layer is either fully transparent or fully opaque.
                            if a == 255 {
                                for c in 0..<3 { o[3 * i + c] = l[4 * i + c] }
                                continue
                            }
                            let inBox = inRows && x >= x0 && x < x0 + bw
                            let j = inBox ? 4 * (source + columns[x - x0]) : 0
                            for c in 0..<3 {
                                let under = inBox ? Int(p[j + c]) : 255
                                o[3 * i + c] = a == 0 ? UInt8(under) : UInt8((Int(l[4 * i + c]) * a + under * (255 - a) + 127) / 255)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The figure as SVG: title, the picture (its PNG bytes, base64; `xlink:href`, which SVG 1.1
    /// readers need), the scale bar in the lower left corner, white on a dark backing, and the
    /// legend beside it.
    /// - Throws: when the PNG cannot be read.
    func svg() throws -> String {
        let png = try Data(contentsOf: png)
        let (fw, fh) = size, box = imageBox, (bw, bh) = (box.width, box.height)
        let w = Double(max(widthPx, 1)), h = Double(max(heightPx, 1))
        // Image pixel (x, y from the bottom row up) to SVG coordinates.
        func sx(_ x: Double) -> Double { box.x + (x + 0.5) * bw / w }
        func sy(_ y: Double) -> Double { box.y + (h - 0.5 - y) * bh / h }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"\(fw)\" height=\"\(fh)\" viewBox=\"0 0 \(fw) \(fh)\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(Double(fw) / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"13\">\(HTML.escape(title))</text>\n"
        out += "<image x=\"\(Int(box.x))\" y=\"\(Int(box.y))\" width=\"\(f(bw))\" height=\"\(f(bh))\" preserveAspectRatio=\"none\" xlink:href=\"data:image/png;base64,\(png.base64EncodedString())\"/>\n"
        let bar = ScaleBar.choose(widthPx: w, pixelSizeNm: pixelSizeNm)
        let x0 = w * 0.05, y0 = -0.5 + h * 0.05
        out += "<rect x=\"\(f(sx(x0 - w * 0.02)))\" y=\"\(f(sy(y0 + h * 0.085)))\" width=\"\(f((bar.lengthPx + w * 0.04) * bw / w))\" height=\"\(f(0.11 * bh))\" fill=\"#000000\" fill-opacity=\"0.6\"/>\n"
        out += "<rect x=\"\(f(sx(x0)))\" y=\"\(f(sy(y0 + h * 0.014)))\" width=\"\(f(bar.lengthPx * bw / w))\" height=\"\(f(0.014 * bh))\" fill=\"#ffffff\"/>\n"
        out += "<text x=\"\(f(sx(x0 + bar.lengthPx / 2)))\" y=\"\(f(sy(y0 + h * 0.05) + 4))\" text-anchor=\"middle\" fill=\"#ffffff\">\(HTML.escape(bar.label))</text>\n"
        for (i, entry) in legend.enumerated() {
            let x = box.x + bw + 8, y = box.y + 17 * Double(i)
            out += "<rect x=\"\(f(x))\" y=\"\(f(y + 2))\" width=\"14\" height=\"10\" fill=\"\(HTML.escape(entry.color))\"/>"
            out += "<text x=\"\(f(x + 20))\" y=\"\(f(y + 11))\">\(HTML.escape(entry.label))</text>\n"
        }
        return out + "</svg>\n"
    }
}
