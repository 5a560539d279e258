import Foundation

/// Reads a FEI/Thermo TIA `.emi` file: the metadata of an acquisition whose pixels live in
/// the sibling series files `<name>_1.ser`, `<name>_2.ser`, … (one per detector).
///
/// As in RosettaSciIO's `emi_reader` (`rsciio/tia/_api.py`): the `.emi` holds one
/// `<ObjectInfo>` XML block per series file, in file-number order; the series files are
/// taken in numeric order and numbered 0, 1, … as they open (a series without valid
/// elements is skipped). Units follow RosettaSciIO's guess from the XML: a camera
/// acquisition in STEM mode or a TEM "Diffraction" mode is in reciprocal units, so it gets
/// no pixel size. `AcquireDate` gives the acquisition time when a series lacks time tags;
/// `DwellTimePath` is the pixel dwell time of a STEM (non-camera) acquisition.
public final class EMIReader: FrameFileReader, Sendable {
    public let url: URL
    public var format: FrameFormat { .emi }
    public let signals: [SignalInfo]
    /// The first object's XML, flattened (`ObjectInfo.AcquireInfo.DwellTimePath → 0.000048`);
    /// later objects are prefixed `Object<n>.`.
    public let fileMetadata: [String: String]
    /// The series files behind `signals`, in the same order.
    public let seriesURLs: [URL]

    private let series: [SERReader]
    private let objects: [[String: String]]

    public init(url: URL) throws {
        self.url = url
        let file = try MappedFile(url: url)
        guard file.count > 0 else { throw FrameIOError(.truncated, url: url, "the file is empty (0 bytes)") }
        let xml = try file.withBytes(offset: 0, count: file.count, "EMI") { Self.objectInfoBlocks($0) }
        let objects = xml.map { Self.flattenXML($0) }
        self.objects = objects
        var md: [String: String] = [:]
        for (i, o) in objects.enumerated() {
            for (k, v) in o { md[i == 0 ? k : "Object\(i + 1).\(k)"] = v }
        }
        fileMetadata = md

        // Sibling series files, in numeric order.
        let dir = url.deletingLastPathComponent()
        let stem = url.deletingPathExtension().lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let numbered: [(Int, URL)] = names.compactMap { name in
            guard name.lowercased().hasSuffix(".ser"), name.hasPrefix(stem + "_") else { return nil }
            let middle = name.dropFirst(stem.count + 1).dropLast(4)
            guard let n = Int(middle), n > 0 else { return nil }
            return (n, dir.appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
        guard !numbered.isEmpty else {
            throw FrameIOError(.io, url: url, "no series file \(stem)_1.ser beside this .emi")
        }
        var readers: [SERReader] = [], urls: [URL] = [], infos: [SignalInfo] = []
        var index = 0
        for (n, ser) in numbered {
            let object = n - 1 < objects.count ? objects[n - 1] : [:]
            let reader: SERReader
            do {
                reader = try SERReader(url: ser, signalIndex: index, reciprocalUnits: Self.isReciprocal(object), allowEmpty: true)
            } catch let e as FrameIOError where e.kind == .unsupported {
                continue
            }
            if reader.fileMetadata["ValidNumberElements"] == "0" { continue }
            index += 1
            // Only 2-D image series are listed; others keep their number.
            guard let s = reader.signals.first else { continue }
            readers.append(reader)
            urls.append(ser)
            infos.append(s)
        }
        series = readers
        seriesURLs = urls
        signals = infos
    }

    public func plane(signal: Int, frame: Int) throws -> PixelPlane {
        guard series.indices.contains(signal) else { throw FrameIOError(.corrupt, url: url, "no signal \(signal) in this file") }
        return try series[signal].plane(signal: 0, frame: frame)
    }

    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        guard series.indices.contains(signal) else { throw FrameIOError(.corrupt, url: url, "no signal \(signal) in this file") }
        var m = try series[signal].metadata(signal: 0, frame: frame)
        let n = Int(seriesURLs[signal].deletingPathExtension().lastPathComponent.split(separator: "_").last ?? "") ?? 0
        let object = n - 1 >= 0 && n - 1 < objects.count ? objects[n - 1] : [:]
        if m.acquisitionTime == nil, let d = object["ObjectInfo.AcquireDate"] { m.acquisitionTime = Self.parseAcquireDate(d) }
        if object["ObjectInfo.AcquireInfo.CameraNamePath"] == nil,
           let d = object["ObjectInfo.AcquireInfo.DwellTimePath"].flatMap(Double.init), d > 0 {
            m.dwellTime_s = d
        }
        m.original = object
        return m
    }

    /// RosettaSciIO's `_guess_units_from_mode`, reduced to: is the image in 1/length units?
    static func isReciprocal(_ object: [String: String]) -> Bool {
        guard let mode = object["ObjectInfo.ExperimentalDescription.Mode"] else { return false }
        if mode.contains("STEM") { return object["ObjectInfo.AcquireInfo.CameraNamePath"] != nil }
        return mode.contains("Diffraction")
    }

    /// TIA's `AcquireDate`, C `asctime` style: `Sun Feb 21 17:53:06 2016` (local time, taken as UTC).
    public static func parseAcquireDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE MMM d HH:mm:ss yyyy"
        return f.date(from: s.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
    }

    /// The `<ObjectInfo>…</ObjectInfo>` blocks of the binary .emi, as text.
    static func objectInfoBlocks(_ bytes: UnsafeRawBufferPointer) -> [String] {
        let open = Array("<ObjectInfo>".utf8), close = Array("</ObjectInfo>".utf8)
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard needle.count <= bytes.count else { return nil }
            var i = from
            while i + needle.count <= bytes.count {
                if bytes[i] == needle[0] {
                    var ok = true
                    for j in 1..<needle.count where bytes[i + j] != needle[j] { ok = false; break }
                    if ok { return i }
                }
                i += 1
            }
            return nil
        }
        var out: [String] = [], from = 0
        while let s = find(open, from: from), let e = find(close, from: s) {
            let chunk = Array(UnsafeRawBufferPointer(rebasing: bytes[s..<(e + close.count)]))
            out.append(String(decoding: chunk, as: UTF8.self))
            from = e + close.count
        }
        return out
    }

    /// Flattens TIA's simple XML (elements and text, no attributes that matter) to
    /// `A.B.C → text`. `ExperimentalDescription` rows (`Data/Label, Value, Unit`) become
    /// `ExperimentalDescription.<Label>_<Unit> → Value`, as RosettaSciIO names them.
    static func flattenXML(_ xml: String) -> [String: String] {
        var out: [String: String] = [:]
        var stack: [String] = []
        var text = ""
        var row: [String: String] = [:]
        let s = Array(xml.unicodeScalars)
        var i = 0
        func unescape(_ t: String) -> String {
            guard t.contains("&") else { return t }
            return t.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        }
        // Text runs are appended whole, from `textStart` up to the next tag.
        var textStart = 0
        func appendText(upTo end: Int) {
            if end > textStart { text.unicodeScalars.append(contentsOf: s[textStart..<end]) }
        }
        while i < s.count {
            if s[i] == "<" {
                appendText(upTo: i)
                var j = i + 1
                while j < s.count, s[j] != ">" { j += 1 }
                guard j < s.count else { break }
                var tag = String(String.UnicodeScalarView(s[(i + 1)..<j]))
                i = j + 1
                textStart = i
                if tag.hasPrefix("?") || tag.hasPrefix("!") || tag.hasSuffix("/") { continue }
                if tag.hasPrefix("/") {
                    tag.removeFirst()
                    let value = unescape(text.trimmingCharacters(in: .whitespacesAndNewlines))
                    let inDescription = stack.contains("ExperimentalDescription")
                    if inDescription, ["Label", "Value", "Unit"].contains(tag) {
                        row[tag] = value
                    } else if inDescription, tag == "Data" {
                        if let label = row["Label"] {
                            let unit = row["Unit"] ?? ""
                            let key = (stack.prefix { $0 != "Root" } + [unit.isEmpty ? label : label + "_" + unit]).joined(separator: ".")
                            out[key] = row["Value"] ?? ""
                        }
                        row = [:]
                    } else if !value.isEmpty, stack.last == tag {
                        out[stack.joined(separator: ".")] = value
                    }
                    if stack.last == tag { stack.removeLast() }
                    text = ""
                } else {
                    let name = tag.split(separator: " ").first.map(String.init) ?? tag
                    guard stack.count < 64 else { return out }       // depth bomb
                    stack.append(name)
                    text = ""
                }
            } else {
                i += 1
            }
        }
        return out
    }
}
