import Foundation

/// Calibration and times from the vendor metadata microscopes put in TIFF tags.
///
/// Which tag gives which scale follows RosettaSciIO's `rsciio/tiff/_api.py` (which reads
/// them through Christoph Gohlke's tifffile), so pixel sizes agree with HyperSpy:
/// - FEI/Thermo (tag 34682): INI text, `[Scan] PixelWidth/PixelHeight` in metres.
/// - Zeiss SmartSEM (tag 34118, CZ_SEM): the fourth unnamed leading value is the pixel size
///   in metres for a 1024-pixel-wide display, so scale = value · 1024 / image width.
/// - TVIPS EM-MENU (tag 37706 → TemData header at that offset): v2 `PixelSizeX/Y` in nm.
/// - Olympus SIS (tag 33560 → `SIS0` structure): `xcal · 10^lenexp` metres, rounded to 1 fm
///   as RosettaSciIO does.
/// - DigitalMicrograph export (tags 65003/65004 units, 65009/65010 scales).
/// - ImageJ (`ImageJ=` description with `unit=`; X/YResolution are pixels per unit).
/// - OME-TIFF (OME-XML description, `PhysicalSizeX/Y` with `PhysicalSizeXUnit`, default µm).
public enum TIFFMetadata {

    /// Nanometres in one `unit` as written by microscope software, or nil for
    /// "pixel"/unknown units (an uncalibrated axis).
    public static func nanometres(per unit: String) -> Double? {
        let u = unit.trimmingCharacters(in: .whitespacesAndNewlines)
        switch u.lowercased() {
        case "m", "meter", "metre", "meters", "metres": return 1e9
        case "mm", "millimeter", "millimetre", "millimeters": return 1e6
        case "µm", "μm", "um", "micron", "microns", "micrometer", "micrometre", "micrometers", "\\u00b5m": return 1e3
        case "nm", "nanometer", "nanometre", "nanometers": return 1
        case "a", "å", "angstrom", "angstroms", "ångström", "\\u00c5": return 0.1
        case "pm", "picometer", "picometre": return 1e-3
        default: return nil
        }
    }

    // MARK: FEI / Thermo Fisher

    /// Parses FEI's INI text into `Section.Key → value`.
    public static func parseINI(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        var section = ""
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
            } else if let eq = line.firstIndex(of: "=") {
                let key = line[..<eq].trimmingCharacters(in: .whitespaces)
                let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                out[section.isEmpty ? key : "\(section).\(key)"] = value
            }
        }
        return out
    }

    /// FEI pixel size in nm (x, y) from the parsed INI: `[Scan] PixelWidth/Height` (m), else
    /// `[IRBeam] HFW/VFW` over `[Image] ResolutionX/Y`, as RosettaSciIO.
    public static func feiPixelSizeNm(_ ini: [String: String]) -> (x: Double, y: Double)? {
        if let x = ini["Scan.PixelWidth"].flatMap(Double.init), let y = ini["Scan.PixelHeight"].flatMap(Double.init),
           x > 0, y > 0 {
            return (x * 1e9, y * 1e9)
        }
        if let hfw = ini["IRBeam.HFW"].flatMap(Double.init), let vfw = ini["IRBeam.VFW"].flatMap(Double.init),
           let nx = ini["Image.ResolutionX"].flatMap(Double.init), let ny = ini["Image.ResolutionY"].flatMap(Double.init),
           nx > 0, ny > 0, hfw > 0, vfw > 0 {
            return (hfw / nx * 1e9, vfw / ny * 1e9)
        }
        return nil
    }

    /// Parses FEI's acquisition time (`[User] Date=MM/DD/YYYY`, `Time=hh:mm:ss AM`) as UTC.
    public static func feiDate(_ ini: [String: String]) -> Date? {
        guard let d = ini["User.Date"], let t = ini["User.Time"] else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        for fmt in ["MM/dd/yyyy hh:mm:ss a", "MM/dd/yyyy HH:mm:ss"] {
            f.dateFormat = fmt
            if let date = f.date(from: "\(d) \(t)") { return date }
        }
        return nil
    }

    // MARK: Zeiss SmartSEM (CZ_SEM)

    /// Parses CZ_SEM text: the leading unnamed values, and the named `AP_…` entries
    /// (an upper-case key line followed by `Name = value unit`).
    public static func parseCZSEM(_ text: String) -> (unnamed: [String], named: [String: String]) {
        var unnamed: [String] = [], named: [String: String] = [:]
        var key: String? = nil
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: CharacterSet(charactersIn: "\r\0"))
            // Python's str.isupper(): at least one cased letter and no lower-case ones.
            let isUpper = line.contains(where: { $0.isUppercase }) && !line.contains(where: { $0.isLowercase })
            if isUpper {
                key = line.lowercased()
            } else if let k = key {
                if let sep = line.firstIndex(of: "=") ?? line.firstIndex(of: ":") {
                    named[k] = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
                    key = nil
                }
            } else {
                unnamed.append(line.trimmingCharacters(in: .whitespaces))
            }
        }
        return (unnamed, named)
    }

    /// Zeiss pixel size in nm for an image `width` pixels wide.
    public static func zeissPixelSizeNm(_ cz: (unnamed: [String], named: [String: String]), width: Int) -> Double? {
        if cz.unnamed.count > 3, let v = Double(cz.unnamed[3]), v > 0, width > 0 {
            return v * 1024 / Double(width) * 1e9
        }
        // Older files: `AP_IMAGE_PIXEL_SIZE` → "Image Pixel Size = 5.825 nm".
        if let s = cz.named["ap_image_pixel_size"] ?? cz.named["ap_pixel_size"] {
            let parts = s.split(separator: " ")
            if parts.count == 2, let v = Double(parts[0]), let perNm = nanometres(per: String(parts[1])) {
                return v * perNm
            }
        }
        return nil
    }

    /// Zeiss acquisition time from `AP_DATE` ("18 Apr 2016") and `AP_TIME` ("22:42:02"),
    /// read as UTC (SmartSEM records local time without a zone).
    public static func zeissDate(_ named: [String: String]) -> Date? {
        guard let d = named["ap_date"], let t = named["ap_time"] else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "d MMM yyyy HH:mm:ss"
        return f.date(from: "\(d) \(t)")
    }

    /// Zeiss pixel dwell time (`DP_DWELL_TIME`, "100 ns") in seconds.
    public static func zeissDwell(_ named: [String: String]) -> Double? {
        guard let s = named["dp_dwell_time"] else { return nil }
        let p = s.split(separator: " ")
        guard p.count == 2, let v = Double(p[0]) else { return nil }
        switch p[1] {
        case "ns": return v * 1e-9
        case "µs", "us": return v * 1e-6
        case "ms": return v * 1e-3
        case "s": return v
        default: return nil
        }
    }

    // MARK: TVIPS EM-MENU

    /// PixelSizeX/Y (nm) of a TVIPS TemData header (`bytes` from the tag's offset).
    /// v1 header is 244 bytes; the v2 header follows, with PixelSizeX at byte 2724 of it.
    public static func tvipsPixelSizeNm(_ bytes: [UInt8], littleEndian: Bool) -> (x: Double, y: Double)? {
        guard bytes.count >= 244 + 2732 else { return nil }
        let version: UInt32 = readInt(bytes, at: 0, littleEndian: littleEndian)
        guard version == 2 else { return nil }
        let x = Float(bitPattern: readInt(bytes, at: 244 + 2724, littleEndian: littleEndian) as UInt32)
        let y = Float(bitPattern: readInt(bytes, at: 244 + 2728, littleEndian: littleEndian) as UInt32)
        guard x.isFinite, y.isFinite, x > 0, y > 0 else { return nil }
        return (Double(x), Double(y))
    }

    // MARK: Olympus SIS

    /// Olympus SIS structure (tag 33560 points to `SIS0`; little-endian whatever the file):
    /// returns the pixel size in nm and the acquisition time it records.
    /// `read(offset, count)` reads bytes of the file, nil when out of range.
    public static func olympusSIS(read: (Int, Int) -> [UInt8]?, at offset: Int) -> (x: Double, y: Double, date: Date?)? {
        guard let head = read(offset, 60), head.count == 60, Array(head[0..<4]) == Array("SIS0".utf8) else { return nil }
        let minute = Int(readInt(head, at: 10, littleEndian: true) as Int16)
        let hour = Int(readInt(head, at: 12, littleEndian: true) as Int16)
        let day = Int(readInt(head, at: 14, littleEndian: true) as Int16)
        let month = Int(readInt(head, at: 16, littleEndian: true) as Int16)
        let year = Int(readInt(head, at: 18, littleEndian: true) as Int16)
        let tagCount = Int(readInt(head, at: 58, littleEndian: true) as Int16)
        guard tagCount > 0, tagCount < 4096, let entries = read(offset + 60, 8 * tagCount) else { return nil }
        var comps = DateComponents()
        (comps.year, comps.month, comps.day, comps.hour, comps.minute) = (1900 + year, month + 1, day, hour, minute)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let date = cal.date(from: comps)
        for i in 0..<tagCount {
            let type = readInt(entries, at: 8 * i, littleEndian: true) as Int16
            let off = Int(readInt(entries, at: 8 * i + 4, littleEndian: true) as UInt32)
            guard type == 1, let g = read(off, 112), g.count == 112 else { continue }
            // '<10x h d d 8x d …': lenexp, xcal, ycal, (skip), magnification
            let lenexp = Int(readInt(g, at: 10, littleEndian: true) as Int16)
            let xcal = Double(bitPattern: readInt(g, at: 12, littleEndian: true) as UInt64)
            let ycal = Double(bitPattern: readInt(g, at: 20, littleEndian: true) as UInt64)
            guard xcal.isFinite, ycal.isFinite, xcal > 0, ycal > 0, abs(lenexp) < 30 else { return nil }
            let m = pow(10.0, Double(lenexp))
            // RosettaSciIO rounds the metre value to 15 decimals (1 fm).
            func fm(_ v: Double) -> Double { (v * 1e15).rounded() / 1e15 }
            return (fm(xcal * m) * 1e9, fm(ycal * m) * 1e9, date)
        }
        return nil
    }

    // MARK: ImageJ

    /// Parses an ImageJ description (`ImageJ=1.51a\nimages=2\nunit=micron\n…`), or nil.
    public static func parseImageJ(_ description: String) -> [String: String]? {
        guard description.hasPrefix("ImageJ=") else { return nil }
        var out: [String: String] = [:]
        for line in description.split(whereSeparator: \.isNewline) {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\0"))
        }
        return out
    }

    // MARK: OME-TIFF

    /// Pixel size (nm) and per-plane DeltaT (s) from OME-XML.
    public static func parseOME(_ xml: String) -> (x: Double?, y: Double?, deltaT: [Double?]) {
        guard xml.contains("<OME") || xml.contains(":OME") else { return (nil, nil, []) }
        let pixels = TIFFMetadata.XMLScanner.elements(named: "Pixels", in: xml).first
        func size(_ axis: String) -> Double? {
            guard let p = pixels, let v = p.attributes["physicalsize\(axis)"].flatMap(Double.init), v > 0 else { return nil }
            let unit = p.attributes["physicalsize\(axis)unit"] ?? "µm"
            return nanometres(per: unit).map { v * $0 }
        }
        let planes = TIFFMetadata.XMLScanner.elements(named: "Plane", in: xml).map { p -> Double? in
            guard let t = p.attributes["deltat"].flatMap(Double.init) else { return nil }
            switch (p.attributes["deltatunit"] ?? "s").lowercased() {
            case "ms": return t / 1e3
            case "µs", "us": return t / 1e6
            case "min": return t * 60
            case "h": return t * 3600
            default: return t
            }
        }
        return (size("x"), size("y"), planes)
    }

    // MARK: Times

    /// TIFF DateTime `YYYY:MM:DD HH:MM:SS` (no zone in the format: read as UTC, which is how
    /// `TIFFWriter` writes it) plus EXIF SubSecTime digits (fractions of a second).
    public static func tiffDate(_ text: String, subSec: String? = nil) -> Date? {
        let digits = text.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        let parts = digits.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "-" || $0 == "T" || $0 == "/" })
        guard parts.count >= 6, let y = Int(parts[0]), let mo = Int(parts[1]), let d = Int(parts[2]),
              let h = Int(parts[3]), let mi = Int(parts[4]), let s = Int(parts[5]),
              (1...12).contains(mo), (1...31).contains(d), y > 0 else { return nil }
        var comps = DateComponents()
        (comps.year, comps.month, comps.day, comps.hour, comps.minute, comps.second) = (y, mo, d, h, mi, s)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard let base = cal.date(from: comps) else { return nil }
        var frac = 0.0
        if let ss = subSec?.trimmingCharacters(in: CharacterSet(charactersIn: " \0")), !ss.isEmpty,
           ss.allSatisfy(\.isNumber), let v = Double("0." + ss) {
            frac = v
        }
        return base.addingTimeInterval(frac)
    }

    /// `date` as TIFF DateTime and SubSecTime (milliseconds... microseconds, 6 digits), UTC.
    public static func tiffDateStrings(_ date: Date) -> (dateTime: String, subSec: String) {
        let t = date.timeIntervalSince1970
        var whole = t.rounded(.down)
        var micro = Int(((t - whole) * 1e6).rounded())
        if micro >= 1_000_000 { micro -= 1_000_000; whole += 1 }
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: whole))
        let dt = String(format: "%04d:%02d:%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        return (dt, String(format: "%06d", micro))
    }

    // MARK: Bytes

    static func readInt<T: FixedWidthInteger>(_ b: [UInt8], at o: Int, littleEndian: Bool) -> T {
        var v: T = 0
        let n = MemoryLayout<T>.size
        guard o >= 0, o + n <= b.count else { return 0 }
        for i in 0..<n {
            let byte = T(truncatingIfNeeded: b[o + (littleEndian ? n - 1 - i : i)])
            v = (v << 8) | byte
        }
        return v
    }
}

extension TIFFMetadata {
    /// A tolerant scanner for the small XML documents microscopes embed (OME-XML, AXON's
    /// `MicroscopeControlImage`): finds elements by local name (case-insensitive, namespace
    /// prefixes ignored) and returns their attributes (lower-cased names) and text.
    /// Not a validating parser: malformed input gives fewer matches, never a crash.
    enum XMLScanner {
        struct Element {
            var name: String
            var attributes: [String: String]
            var text: String
            /// Names of the enclosing elements, outermost first.
            var parents: [String]
        }

        /// Every element (any name), in document order, with its direct text if it has no children.
        static func allElements(in xml: String) -> [Element] {
            var out: [Element] = []
            var stack: [String] = []
            let s = Array(xml.unicodeScalars)
            var i = 0
            while i < s.count {
                guard s[i] == "<" else { i += 1; continue }
                var j = i + 1
                if j < s.count, s[j] == "/" {
                    // Closing tag: pop back to the matching open element (tolerates missing closes).
                    var k = j + 1
                    while k < s.count, s[k] != ">" { k += 1 }
                    var name = String(String.UnicodeScalarView(s[(j + 1)..<min(k, s.count)])).trimmingCharacters(in: .whitespaces)
                    if let colon = name.lastIndex(of: ":") { name = String(name[name.index(after: colon)...]) }
                    if let at = stack.lastIndex(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) {
                        stack.removeSubrange(at...)
                    }
                    i = k + 1
                    continue
                }
                if j < s.count, s[j] == "?" || s[j] == "!" { i = j; continue }
                // Tag name.
                while j < s.count, !CharacterSet.whitespacesAndNewlines.contains(s[j]), s[j] != ">", s[j] != "/" { j += 1 }
                var name = String(String.UnicodeScalarView(s[(i + 1)..<j]))
                if let colon = name.lastIndex(of: ":") { name = String(name[name.index(after: colon)...]) }
                // Attributes up to '>'.
                var k = j
                let (attrs, selfClosing) = attributes(s, &k)
                var text = ""
                if !selfClosing, k < s.count {
                    var t = k + 1
                    while t < s.count, s[t] != "<" { t += 1 }
                    if t + 1 < s.count, s[t + 1] == "/" {
                        text = unescape(String(String.UnicodeScalarView(s[(k + 1)..<t]))).trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
                out.append(Element(name: name, attributes: attrs, text: text, parents: stack))
                if !selfClosing { stack.append(name) }
                i = k + 1
            }
            return out
        }

        /// A tag's attributes from `k` up to its `>` (where `k` is left; names lower-cased,
        /// namespace prefixes dropped), and whether the tag closes itself.
        static func attributes(_ s: [Unicode.Scalar], _ k: inout Int) -> (attributes: [String: String], selfClosing: Bool) {
            var attrs: [String: String] = [:]
            var selfClosing = false
            while k < s.count, s[k] != ">" {
                if s[k] == "/" { selfClosing = true; k += 1; continue }
                if CharacterSet.whitespacesAndNewlines.contains(s[k]) { k += 1; continue }
                let a0 = k
                while k < s.count, s[k] != "=", s[k] != ">", !CharacterSet.whitespacesAndNewlines.contains(s[k]) { k += 1 }
                var aname = String(String.UnicodeScalarView(s[a0..<k])).lowercased()
                if let colon = aname.lastIndex(of: ":") { aname = String(aname[aname.index(after: colon)...]) }
                while k < s.count, CharacterSet.whitespacesAndNewlines.contains(s[k]) { k += 1 }
                guard k < s.count, s[k] == "=" else { continue }
                k += 1
                while k < s.count, CharacterSet.whitespacesAndNewlines.contains(s[k]) { k += 1 }
                guard k < s.count, s[k] == "\"" || s[k] == "'" else { continue }
                let q = s[k]; k += 1
                let v0 = k
                while k < s.count, s[k] != q { k += 1 }
                attrs[aname] = unescape(String(String.UnicodeScalarView(s[v0..<min(k, s.count)])))
                k += 1
                selfClosing = false
            }
            return (attrs, selfClosing)
        }

        static func elements(named name: String, in xml: String) -> [Element] {
            allElements(in: xml).filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }
        }

        static func unescape(_ s: String) -> String {
            guard s.contains("&") else { return s }
            return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        }

        static func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
    }
}
