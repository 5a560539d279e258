import Foundation
import FrameCore
import FrameIO

/// Where each frame of a simulated run goes, by the preset's folder convention.
struct RunLayout: Sendable {
    let layout: FolderLayout
    let ext: String

    init(options o: SimulationOptions, programme: TemperatureProgramme) {
        layout = o.layout
        ext = o.format.fileExtension
    }

    static func temperatureName(_ t: Double) -> String {
        abs(t - 25) < 0.5 ? "RT" : "\(Int(t.rounded()))C"
    }

    func relativePath(frame i: Int, hold: Int?, temperatureC: Double?) -> String {
        let n = String(format: "%04d", i)
        switch layout {
        case .flat:
            return "frames/frame_\(n).\(ext)"
        case .temperatureFolders:
            let folder = temperatureC.map(RunLayout.temperatureName) ?? "ramp"
            return "\(folder)/frame_\(n).\(ext)"
        case .fileNameTokens(let prefix, let tPrefix):
            guard let t = temperatureC else { return "\(prefix)_ramp_\(n).\(ext)" }
            let token = tPrefix ? "T\(Int(t.rounded()))C" : "\(Int(t.rounded()))C"
            return "\(prefix)_\(token)_\(n).\(ext)"
        case .stack(let name):
            return "\(name).\(ext)"
        }
    }
}

/// Collects the first error thrown inside a `concurrentPerform` loop.
private final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    func record(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    var value: Error? { lock.lock(); defer { lock.unlock() }; return error }
}

extension HeatingRunSimulator {
    /// Writes the whole run folder (docs/user-guide.md, "Commands"): frames (rendered in parallel, each written
    /// atomically), `heatfront.yaml`, `heating_log.csv`, `ground_truth.csv`, `ground_truth.json`.
    /// The same options give the same bytes: nothing depends on the wall clock or thread timing.
    ///
    /// An existing non-empty folder is accepted only if it holds an earlier simulated run;
    /// that run's frames are removed first, so no stale frame joins the new run.
    public func write(to dir: URL) throws {
        try clearPreviousRun(in: dir)
        try writeTruthFiles(to: dir)
        if case .stack = options.layout { return try writeStack(in: dir) }
        let errors = FirstError()
        let n = frameCount
        DispatchQueue.concurrentPerform(iterations: n) { i in
            guard errors.value == nil else { return }
            do { try writeFrame(i, in: dir) } catch { errors.record(error) }
        }
        if let e = errors.value { throw e }
    }

    /// Every frame as a page of one multi-page TIFF (rendered in parallel; the whole stack is
    /// held once, as uint16-valued floats, before the atomic write).
    func writeStack(in dir: URL) throws {
        let n = frameCount
        let pages = ResultSlots<Frame>.map(n) { i in
            Frame(image: render(frame: i), metadata: frameMetadata(i), sampleType: .uint16)
        }
        let url = dir.appendingPathComponent(frameTruth(0).file)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try TIFFWriter.write(pages, as: .uint16, to: url)
    }

    func clearPreviousRun(in dir: URL) throws {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: dir.path), !entries.isEmpty else { return }
        let csv = dir.appendingPathComponent("ground_truth.csv")
        guard fm.fileExists(atPath: dir.appendingPathComponent("ground_truth.json").path),
              let text = try? String(contentsOf: csv, encoding: .utf8) else {
            throw SimulationError.write("\(dir.path) exists and is not empty (and holds no earlier simulated run)")
        }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false),
              let col = header.firstIndex(of: "file") else { return }
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard col < f.count, !f[col].isEmpty, !f[col].contains(".."), !f[col].hasPrefix("/") else { continue }
            try? fm.removeItem(at: dir.appendingPathComponent(String(f[col])))
        }
    }

    /// Everything but the frames: config, heating log and ground truth.
    public func writeTruthFiles(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try AtomicFile.write(heatfrontYAML(), to: dir.appendingPathComponent("heatfront.yaml"))
        try AtomicFile.write(heatingLogCSV(), to: dir.appendingPathComponent("heating_log.csv"))
        try AtomicFile.write(groundTruthCSV(), to: dir.appendingPathComponent("ground_truth.csv"))
        try AtomicFile.write(groundTruthJSON(), to: dir.appendingPathComponent("ground_truth.json"))
    }

    /// The metadata a microscope would store with frame `i`.
    public func frameMetadata(_ i: Int) -> FrameMetadata {
        let o = options
        let t = frameTruth(i)
        return FrameMetadata(pixelSizeXNm: o.pixelSizeNm, pixelSizeYNm: o.pixelSizeNm,
                             acquisitionTime: Date(timeIntervalSince1970: o.programmeStartEpochS + frameStartS(i)),
                             dwellTime_s: o.dwellTimeS,
                             temperatureC: o.format == .png ? (t.temperatureC * 10).rounded() / 10 : nil,
                             original: ["HeatFront.simulator.preset": o.preset.cliName,
                                        "HeatFront.simulator.frame_index": String(i)])
    }

    func writeFrame(_ i: Int, in dir: URL) throws {
        let url = dir.appendingPathComponent(frameTruth(i).file)
        let frame = Frame(image: render(frame: i), metadata: frameMetadata(i), sampleType: .uint16)
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Temporary name keeps the extension, in case a writer looks at it.
        let tmp = folder.appendingPathComponent(".partial-\(url.lastPathComponent)")
        do {
            switch options.format {
            case .tiff: try TIFFWriter.write([frame], as: .uint16, to: tmp)
            case .png: try PNGWriter.writeGray(frame, bitDepth: 16, to: tmp)
            case .dm4: try DM4Writer.write([frame], as: .uint16, to: tmp)
            }
            if rename(tmp.path, url.path) != 0 { throw SimulationError.write("cannot rename \(tmp.path) to \(url.path)") }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    // MARK: Text outputs

    public func groundTruthCSV() -> String {
        var s = FrameTruth.csvHeader + "\n"
        for i in 0..<frameCount { s += frameTruth(i).csvRow + "\n" }
        return s
    }

    public func groundTruthJSON() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(truth), as: UTF8.self) + "\n"
    }

    /// What an experimenter would put in the config; never the truth.
    public func heatfrontYAML() -> String {
        let o = options
        var s = """
        # heatfront.yaml for a simulated \(o.preset.cliName) run (\(o.materialName)).
        # Written as a user would; the true values are in ground_truth.json.
        heating_log: heating_log.csv
        material:
          layer_spacing_nm: \(TextFormat.f(o.layerSpacingNm, 3))
        registration:
          mode: \(o.registrationMode)

        """
        if o.preset == .registrationStress { s += "  max_shift_px: \(min(o.size, o.height) / 2)\n" }
        return s
    }

    /// The holder's 1 Hz temperature log in the preset's flavour. Relative logs start at the
    /// first frame (log time 0 = first frame; docs/user-guide.md, "The heating log's clock");
    /// absolute ones at the programme start.
    public func heatingLogCSV() -> String {
        let o = options
        var rng = SeededRandom.stream(o.seed, 0x106)
        let t0 = frameStartS(0)
        let end = programme.durationS
        let absolute = o.heatingLog == .plainTimestamp || o.heatingLog == .protochips
        let first = absolute ? 0.0 : t0
        let n = Int(floor(end - first)) + 1
        func reading(_ t: Double) -> Double { programme.temperature(at: t) + 0.12 * rng.gaussian() }
        var s = ""
        switch o.heatingLog {
        case .plainRelative:
            s = "time_s,temperature_C\n"
            for k in 0..<n { s += "\(k).000,\(TextFormat.f(reading(first + Double(k)), 2))\n" }
        case .plainTimestamp:
            s = "timestamp,temperature_C\n"
            for k in 0..<n {
                let t = first + Double(k)
                s += "\(Self.clockText(o.programmeStartEpochS + t, date: true))Z,\(TextFormat.f(reading(t), 2))\n"
            }
        case .protochips:
            let start = Self.clockText(o.programmeStartEpochS, date: true)
            let date = start.prefix(10).replacingOccurrences(of: "-", with: ".")
            s = "Time,Notes,Holder Temperature,Setpoint Temperature,Heater Current\n"
            s += ",Time units = Milliseconds,,,\n,Temperature units = C,,,\n"
            s += ",Date (yyyy.mm.dd) = \(date),,,\n,Time (hh:mm:ss.ms) = \(start.suffix(12)),,,\n"
            s += ",User = HeatFront simulator,,,\n"
            for k in 0..<n {
                let t = first + Double(k)
                let set = programme.temperature(at: t)
                s += "\(k * 1000),,\(TextFormat.f(reading(t), 2)),\(TextFormat.f(set, 2)),\(TextFormat.f(0.2 + 0.0011 * set, 4))\n"
            }
        case .densImpulse:
            s = "TimeStamp,Experiment time,Temperature Measured,Temperature Setpoint,Power Measured,Resistance Measured\n"
            for k in 0..<n {
                let t = first + Double(k)
                let set = programme.temperature(at: t)
                s += "\(Self.clockText(o.programmeStartEpochS + t, date: false)),\(k).000,\(TextFormat.f(reading(t), 2)),"
                s += "\(TextFormat.f(set, 2)),\(TextFormat.f(0.8 + 0.004 * set, 4)),\(TextFormat.f(180 * (1 + 0.0035 * (set - 20)), 3))\n"
            }
        }
        return s
    }

    /// `hh:mm:ss.fff` of an epoch time in UTC, with `date`: `YYYY-MM-DDThh:mm:ss.fff`.
    static func clockText(_ epoch: Double, date: Bool) -> String {
        var ms = Int64((epoch * 1000).rounded())
        let msPart = ms % 1000; ms /= 1000
        let sec = ms % 60, min = (ms / 60) % 60, hour = (ms / 3600) % 24
        let days = ms / 86400
        let time = String(format: "%02lld:%02lld:%02lld.%03lld", hour, min, sec, msPart)
        guard date else { return time }
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), no calendar APIs.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return String(format: "%04lld-%02lld-%02lld", y, m, d) + "T" + time
    }
}
