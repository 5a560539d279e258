import CCairo
import Foundation
import FrameIO

/// A figure made of an image: a phase map or an aligned average (the bytes of an RGBA or grey PNG),
/// drawn at its pixel aspect with a scale bar in nm and a legend of its colours. Its title,
/// scale bar and legend (`marks`) are laid out once, in SVG pixels: `svg()` writes them over
/// the PNG embedded as it is, `raster` draws them with cairo over the picture for the 300-dpi
/// PNG, so the two files show the same figure.
struct ImageFigure {
    var title: String
    /// The picture: its PNG bytes, and the file they stand for (named in errors).
    var png: Data
    var source: URL
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

    /// What is drawn over the picture, in SVG pixels (y down; a text's y is its baseline).
    enum Mark {
        case rect(x: Double, y: Double, width: Double, height: Double, color: String, opacity: Double)
        case text(x: Double, y: Double, centred: Bool, size: Double, color: String, String)
    }

    /// The title above the image box; the scale bar in the box's lower left corner, white on a
    /// dark backing, as microscopists draw it; the legend beside the box.
    var marks: [Mark] {
        let (fw, _) = size, box = imageBox
        let w = Double(max(widthPx, 1)), h = Double(max(heightPx, 1))
        // Image pixel (x, y from the bottom row up) to SVG coordinates.
        func sx(_ x: Double) -> Double { box.x + (x + 0.5) * box.width / w }
        func sy(_ y: Double) -> Double { box.y + (h - 0.5 - y) * box.height / h }
        let bar = ScaleBar.choose(widthPx: w, pixelSizeNm: pixelSizeNm)
        let x0 = w * 0.05, y0 = -0.5 + h * 0.05
        var marks: [Mark] = [
            .text(x: Double(fw) / 2, y: 24, centred: true, size: 13, color: "#000000", title),
            .rect(x: sx(x0 - w * 0.02), y: sy(y0 + h * 0.085), width: (bar.lengthPx + w * 0.04) * box.width / w,
                  height: 0.11 * box.height, color: "#000000", opacity: 0.6),
            .rect(x: sx(x0), y: sy(y0 + h * 0.014), width: bar.lengthPx * box.width / w, height: 0.014 * box.height,
                  color: "#ffffff", opacity: 1),
            .text(x: sx(x0 + bar.lengthPx / 2), y: sy(y0 + h * 0.05) + 4, centred: true, size: 12, color: "#ffffff", bar.label),
        ]
        for (i, entry) in legend.enumerated() {
            let x = box.x + box.width + 8, y = box.y + 17 * Double(i)
            marks.append(.rect(x: x, y: y + 2, width: 14, height: 10, color: entry.color, opacity: 1))
            marks.append(.text(x: x + 20, y: y + 11, centred: false, size: 12, color: "#000000", entry.label))
        }
        return marks
    }

    /// The figure's pixels at `scale` PNG pixels per SVG pixel (RGB, rows top to bottom): white,
    /// the picture scaled into the image box by nearest neighbour (each image pixel a uniform
    /// block, nothing interpolated), and over it the marks, drawn with cairo's image backend
    /// (cairographics.org; text in the toy font API's sans-serif face through fontconfig).
    /// Nil when cairo cannot draw.
    func raster(picture: PNGPicture, scale: Int) -> [UInt8]? {
        let (fw, fh) = size, box = imageBox
        let width = fw * scale, height = fh * scale
        guard picture.width > 0, picture.height > 0, width > 0, height > 0 else { return nil }
        // cairo's RGB24: one native-endian 32-bit word per pixel, 0x00RRGGBB.
        let rowWords = Int(cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, Int32(width))) / 4
        var words = [UInt32](repeating: 0x00FF_FFFF, count: rowWords * height)
        let x0 = Int(box.x) * scale, y0 = Int(box.y) * scale
        let bw = min(Int(box.width) * scale, width - x0), bh = min(Int(box.height) * scale, height - y0)
        // Picture column (row) of each box column (row), sampled at the pixel's centre.
        let columns = (0..<bw).map { ((2 * $0 + 1) * picture.width) / (2 * bw) }
        picture.rgba.withUnsafeBufferPointer { p in
            for y in 0..<bh {
                let source = ((2 * y + 1) * picture.height) / (2 * bh) * picture.width, row = (y0 + y) * rowWords + x0
                for x in 0..<bw {
                    let j = 4 * (source + columns[x])
                    words[row + x] = UInt32(p[j]) << 16 | UInt32(p[j + 1]) << 8 | UInt32(p[j + 2])
                }
            }
        }
        let drawn = words.withUnsafeMutableBytes { buffer -> Bool in
            guard let surface = cairo_image_surface_create_for_data(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                                    CAIRO_FORMAT_RGB24, Int32(width), Int32(height),
                                                                    Int32(rowWords * 4)) else { return false }
            defer { cairo_surface_destroy(surface) }
            guard let cr = cairo_create(surface) else { return false }
            defer { cairo_destroy(cr) }
            cairo_scale(cr, Double(scale), Double(scale))
            cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
            for mark in marks { Self.draw(mark, on: cr) }
            cairo_surface_flush(surface)
            return cairo_status(cr) == CAIRO_STATUS_SUCCESS
        }
        guard drawn else { return nil }
        var rgb = [UInt8](repeating: 0, count: 3 * width * height)
        for y in 0..<height {
            for x in 0..<width {
                let v = words[y * rowWords + x], o = 3 * (y * width + x)
                rgb[o] = UInt8(truncatingIfNeeded: v >> 16)
                rgb[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                rgb[o + 2] = UInt8(truncatingIfNeeded: v)
            }
        }
        return rgb
    }

    /// The figure's 300-dpi PNG (`Gnuplot.pngScale` pixels per SVG pixel, filter Up for the
    /// picture's repeated rows, zlib level 1). `name`: the figure's file name, for errors.
    /// - Throws: when the picture cannot be read or cairo cannot draw.
    func png(name: String) throws -> Data {
        let picture = try PNGPicture(png: png, source: source)
        let (fw, fh) = size, scale = Gnuplot.pngScale
        guard let rgb = raster(picture: picture, scale: scale) else {
            throw Gnuplot.Failure(description: "cairo could not draw its title, scale bar and legend")
        }
        return try PNGWriter.encodeRGB(width: fw * scale, height: fh * scale, rgb: rgb, compression: 1, scaledPicture: true,
                                       dotsPerInch: Gnuplot.pngDPI, for: "\(name).png")
    }

    private static func draw(_ mark: Mark, on cr: OpaquePointer) {
        switch mark {
        case let .rect(x, y, width, height, color, opacity):
            let c = rgb(color)
            cairo_set_source_rgba(cr, c.x, c.y, c.z, opacity)
            cairo_rectangle(cr, x, y, width, height)
            cairo_fill(cr)
        case let .text(x, y, centred, size, color, text):
            let c = rgb(color)
            cairo_set_source_rgb(cr, c.x, c.y, c.z)
            cairo_set_font_size(cr, size)
            var extents = cairo_text_extents_t()
            cairo_text_extents(cr, text, &extents)
            cairo_move_to(cr, centred ? x - extents.x_advance / 2 : x, y)
            cairo_show_text(cr, text)
        }
    }

    /// `#rrggbb` as components in 0…1 (black when malformed).
    private static func rgb(_ hex: String) -> SIMD3<Double> {
        guard hex.count == 7, hex.hasPrefix("#"), let v = UInt32(hex.dropFirst(), radix: 16) else { return .zero }
        return SIMD3(Double(v >> 16 & 0xFF), Double(v >> 8 & 0xFF), Double(v & 0xFF)) / 255
    }

    /// The figure as SVG: white, the picture (its PNG bytes, base64; `xlink:href`, which SVG
    /// 1.1 readers need) in the image box, and the marks.
    func svg() -> String {
        let (fw, fh) = size, box = imageBox
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"\(fw)\" height=\"\(fh)\" viewBox=\"0 0 \(fw) \(fh)\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<image x=\"\(Int(box.x))\" y=\"\(Int(box.y))\" width=\"\(f(box.width))\" height=\"\(f(box.height))\" preserveAspectRatio=\"none\" xlink:href=\"data:image/png;base64,\(png.base64EncodedString())\"/>\n"
        for mark in marks {
            switch mark {
            case let .rect(x, y, width, height, color, opacity):
                out += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"\(HTML.escape(color))\""
                    + (opacity < 1 ? " fill-opacity=\"\(opacity)\"" : "") + "/>\n"
            case let .text(x, y, centred, size, color, text):
                out += "<text x=\"\(f(x))\" y=\"\(f(y))\"" + (centred ? " text-anchor=\"middle\"" : "")
                    + (size != 12 ? " font-size=\"\(Int(size))\"" : "") + (color != "#000000" ? " fill=\"\(HTML.escape(color))\"" : "")
                    + ">\(HTML.escape(text))</text>\n"
            }
        }
        return out + "</svg>\n"
    }
}
