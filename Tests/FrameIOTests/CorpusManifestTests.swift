import Foundation
import Testing
import FrameIO

/// Conformance with real files: every row of `../shared/corpus/formats/MANIFEST.csv`
/// (reference values from RosettaSciIO) must be matched exactly by HeatFront's decoders,
/// opened as a run opens them (`FrameFiles.open`, by extension).
/// The corpus lives beside the checkout in `../shared/`, not in a user's clone: these
/// tests skip when it is absent.
enum Corpus {
    static let root: URL = {
        let here = URL(fileURLWithPath: #filePath)   // …/Tests/FrameIOTests/CorpusManifestTests.swift
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/corpus/formats")
    }()

    static var available: Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent("MANIFEST.csv").path) }

    struct Row: Sendable, CustomTestStringConvertible {
        var fields: [String: String]
        subscript(_ key: String) -> String { fields[key] ?? "" }
        var testDescription: String { "\(self["file"])[\(self["signal_index"])]" }
    }

    /// Parses RFC 4180 CSV (quoted fields may hold commas).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var it = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? { if let p = pending { pending = nil; return p }; return it.next() }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let n = next() { if n == "\"" { field.unicodeScalars.append(n) } else { quoted = false; pending = n } }
                    else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
            else if c != "\r" { field.unicodeScalars.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    /// The manifest's rows of one `format` column value (every row for nil).
    static func rows(format: String?) -> [Row] {
        guard available, let text = try? String(contentsOf: root.appendingPathComponent("MANIFEST.csv"), encoding: .utf8)
        else { return [] }
        let table = parseCSV(text)
        guard let header = table.first else { return [] }
        return table.dropFirst().map { Row(fields: Dictionary(uniqueKeysWithValues: zip(header, $0))) }
            .filter { format == nil || $0["format"] == format }
    }

    /// Length in nm of one `unit`, or nil for an uncalibrated (empty) unit.
    static func nanometres(per unit: String) -> Double? {
        switch unit {
        case "m": 1e9
        case "mm": 1e6
        case "µm", "um", "micron", "microns": 1e3   // "microns": Atomap's HyperSpy files
        case "nm", "n_m": 1                         // "n_m": nm in NCEM's EMD notation
        case "A", "Å": 0.1
        case "pm": 1e-3
        default: nil
        }
    }

    static func check(_ row: Row) throws {
        let url = root.appendingPathComponent(row["file"])
        let reader = try FrameFiles.open(url)
        let wanted = Int(row["signal_index"])!
        let pos = try #require(reader.signals.firstIndex { $0.index == wanted }, "signal \(wanted) not listed")
        let s = reader.signals[pos]
        #expect(s.frameCount == Int(row["n_frames"]))
        #expect(s.height == Int(row["height"]))
        #expect(s.width == Int(row["width"]))
        #expect(s.sampleType.rawValue == row["dtype"])
        let fp = try reader.fingerprint(signal: pos)
        #expect(fp.sha256 == row["sha256_float64"])
        #expect(fp.min == Double(row["min"]))
        #expect(fp.max == Double(row["max"]))
        let mean = Double(row["mean"])!
        #expect(abs(fp.mean - mean) <= 1e-12 * max(1, abs(mean)))
        // Pixel sizes compare as physical lengths. Units are `u` or `y_unit|x_unit`.
        let units = row["pixel_unit"].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let (uy, ux) = units.count == 2 ? (units[0], units[1]) : (units[0], units[0])
        for (value, unit, got) in [(row["pixel_size_x"], ux, s.pixelSizeXNm), (row["pixel_size_y"], uy, s.pixelSizeYNm)] {
            let v = Double(value)!
            if let perNm = nanometres(per: unit), v > 0 {
                let want = v * perNm
                let g = try #require(got, "pixel size missing, want \(want) nm")
                #expect(abs(g - want) <= 1e-6 * want, "pixel size \(g) nm, want \(want) nm")
            } else {
                // Uncalibrated (1.0 with no unit) or a sentinel (DE-Server's -1 nm): no pixel size.
                #expect(got == nil, "uncalibrated axis reported as \(got!) nm")
            }
        }
    }
}

@Suite(.enabled(if: Corpus.available, "../shared/corpus is not beside this checkout"))
struct CorpusManifestTests {
    @Test(arguments: Corpus.rows(format: "tiff")) func tiff(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "dm3")) func dm3(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "dm4")) func dm4(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "emd")) func emd(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "ser")) func ser(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "emi")) func emi(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "mrc")) func mrc(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "hspy")) func hspy(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "zspy")) func zspy(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "emd-berkeley")) func emdBerkeley(_ row: Corpus.Row) throws { try Corpus.check(row) }
    @Test(arguments: Corpus.rows(format: "tiff-resolution")) func tiffResolution(_ row: Corpus.Row) throws { try Corpus.check(row) }

    /// Every row of the manifest belongs to a format tested above.
    static let formats = ["tiff", "dm3", "dm4", "emd", "ser", "emi", "mrc", "hspy", "zspy", "emd-berkeley", "tiff-resolution"]

    @Test func manifestHasEveryRow() {
        let n = Self.formats.map { Corpus.rows(format: $0).count }.reduce(0, +)
        #expect(n == 72)
        #expect(Corpus.rows(format: nil).count == 72)
    }

    /// Each corpus file's extension names a run-frame format, so a run folder reads it.
    @Test func everyCorpusFileIsARunFrame() {
        for row in Corpus.rows(format: nil) {
            let ext = URL(fileURLWithPath: row["file"]).pathExtension
            let f = FrameFormat(fileExtension: ext)
            #expect(f != nil && (f!.isRunFrameFormat || f == .emi), "\(row["file"])")
        }
    }
}
