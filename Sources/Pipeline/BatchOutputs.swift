import Foundation
import FrameCore

/// The outputs of a batch of runs in one OUT_DIR: `runs.csv` and the combined `report.html`,
/// one row per run. They are written from the runs' finished outputs on disk (each run's
/// `summary.json`), never from a run's memory, so that `heatfront run A B C` and the cluster
/// job that ends `heatfront submit A B C` write the same bytes. Neither holds a wall-clock
/// value.
public enum BatchOutputs {
    /// One run of the batch, as the batch saw it end.
    public struct Entry: Sendable, Codable, Equatable {
        /// The run folder as given on the command line (absolute).
        public var runDir: String
        /// Its sub-folder of OUT_DIR.
        public var name: String
        /// Why the run failed (one line); nil when it finished.
        public var error: String?

        public init(runDir: String, name: String, error: String?) {
            self.runDir = runDir
            self.name = name
            self.error = error
        }
    }

    /// A finished run's numbers, read back from its `summary.json`.
    struct Finished: Decodable {
        var nFrames: Int
        var nUsed: Int
        var nSteps: Int
        var frameSize: [Int]
        var pixelSizeNm: Double?
        var onsetTemperatureC: Double?
        var activationEnergyEV: Double?
        var activationEnergySEMEV: Double?
        var warnings: [String]
        var registration: Registration

        struct Registration: Decodable { var mode: String }

        enum CodingKeys: String, CodingKey {
            case nFrames = "n_frames", nUsed = "n_used", nSteps = "n_steps", frameSize = "frame_size"
            case pixelSizeNm = "pixel_size_nm", onsetTemperatureC = "onset_temperature_C"
            case activationEnergyEV = "activation_energy_eV", activationEnergySEMEV = "activation_energy_sem_eV"
            case warnings, registration
        }
    }

    struct Row {
        var entry: Entry
        var run: Finished?
        var error: String?
    }

    /// Writes `runs.csv` and `report.html` into `outDir` for `entries`, in their order.
    public static func write(_ entries: [Entry], outDir: URL) throws {
        let rows = entries.map { read($0, outDir: outDir) }
        try AtomicFile.write(runsTable(rows).text, to: outDir.appendingPathComponent("runs.csv"))
        try AtomicFile.write(report(rows, outDir: outDir), to: outDir.appendingPathComponent("report.html"))
    }

    /// The entry with its summary; a finished run whose `summary.json` cannot be read is a
    /// failed one (it did not finish writing its outputs).
    static func read(_ entry: Entry, outDir: URL) -> Row {
        if let error = entry.error { return Row(entry: entry, run: nil, error: error) }
        let url = outDir.appendingPathComponent(entry.name).appendingPathComponent("summary.json")
        guard let data = try? Data(contentsOf: url),
              let run = try? JSONDecoder().decode(Finished.self, from: data) else {
            return Row(entry: entry, run: nil, error: "\(url.path): missing or unreadable: the run did not finish")
        }
        return Row(entry: entry, run: run, error: nil)
    }

    static func runsTable(_ rows: [Row]) -> CSVTable {
        var csv = CSVTable(columns: BatchRunsColumn.self)
        for r in rows {
            let s = r.run   // nil for a failed run: its numbers stay empty
            csv.append { (c: BatchRunsColumn) -> CellValue in
                switch c {
                case .run: .text(r.entry.runDir)
                case .outDir: .text(r.entry.name)
                case .status: .text(s == nil ? "failed" : "ok")
                case .nFrames: .int(s?.nFrames)
                case .nUsed: .int(s?.nUsed)
                case .pixelSizeNm: .number(s?.pixelSizeNm)
                case .onsetTemperatureC: .number(s?.onsetTemperatureC)
                case .activationEnergyEV: .number(s?.activationEnergyEV)
                case .activationEnergySEMEV: .number(s?.activationEnergySEMEV)
                case .nWarnings: .int(s?.warnings.count)
                case .error: .text(s == nil ? r.error ?? "" : "")
                }
            }
        }
        return csv
    }

    /// One self-contained page: a row per run with its status, key numbers and a link to the
    /// run's own report (its `frames.csv` when it has no report: `heatfront register`).
    static func report(_ rows: [Row], outDir: URL) -> String {
        let failed = rows.filter { $0.run == nil }.count
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>HeatFront batch report — \(rows.count) runs</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
        table { border-collapse: collapse; font-size: 13px; }
        td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
        th { background: #f3f3f3; }
        td.text { text-align: left; }
        .failed { color: #a33; }
        </style>
        </head>
        <body>
        <h1>HeatFront batch report — \(rows.count) runs</h1>
        <p>HeatFront \(HeatFrontVersion.string), run contract \(HeatFrontVersion.contract). \
        \(rows.count - failed) finished, \(failed) failed. Each run's own report has its plots, maps and tables.</p>
        <table>
        <tr><th>run</th><th>run folder</th><th>status</th><th>frames used / total</th><th>steps</th>\
        <th>frame size (px)</th><th>pixel size (nm)</th><th>registration</th><th>onset (°C)</th>\
        <th>activation energy (eV)</th><th>warnings</th><th>error</th></tr>

        """
        for r in rows { html += reportRow(r, outDir: outDir) }
        html += "</table>\n</body>\n</html>\n"
        return html
    }

    static func reportRow(_ r: Row, outDir: URL) -> String {
        func td(_ s: String, text: Bool = false) -> String {
            "<td\(text ? " class=\"text\"" : "")>\(HTML.escape(s))</td>"
        }
        let name = HTML.escape(r.entry.name)
        guard let s = r.run else {
            return "<tr class=\"failed\"><td class=\"text\">\(name)</td>" + td(r.entry.runDir, text: true) + td("failed", text: true)
                + String(repeating: "<td></td>", count: 8) + td(r.error ?? "", text: true) + "</tr>\n"
        }
        let page = ["report.html", "frames.csv"].first {
            FileManager.default.fileExists(atPath: outDir.appendingPathComponent("\(r.entry.name)/\($0)").path)
        } ?? "summary.json"
        let link = r.entry.name.split(separator: "/").map {
            String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0)
        }.joined(separator: "/") + "/" + page
        let ea = s.activationEnergyEV.map { String(format: "%.2f ± %.2f", $0, s.activationEnergySEMEV ?? .nan) } ?? "—"
        let cells = [
            td(r.entry.runDir, text: true), td("ok", text: true), td("\(s.nUsed) / \(s.nFrames)"), td("\(s.nSteps)"),
            td(s.frameSize.map(String.init).joined(separator: " × ")), td(s.pixelSizeNm.map { String(format: "%.5f", $0) } ?? "—"),
            td(s.registration.mode, text: true), td(s.onsetTemperatureC.map { String(format: "%.0f", $0) } ?? "—"), td(ea),
            td("\(s.warnings.count)"), td(""),
        ]
        return "<tr><td class=\"text\"><a href=\"\(HTML.escape(link))\">\(name)</a></td>" + cells.joined() + "</tr>\n"
    }
}
