import Foundation
import FrameCore
import FrameIO
import Yams

/// How frames are aligned (`registration.mode` in heatfront.yaml).
public enum RegistrationMode: String, Sendable, Codable, CaseIterable {
    case rigid, nonrigid
}

/// How atomic columns appear in the frames (`contrast:` in heatfront.yaml).
public enum ColumnContrast: String, Sendable, Codable, CaseIterable {
    /// Decided from the images: bright columns are measured, dark columns get no intensities.
    case auto
    /// Bright columns on a dark background (HAADF, ADF).
    case brightColumns = "bright_columns"
    /// Dark columns on a bright background (ABF, BF): intensities are measured on the
    /// inverted image, as dip depths.
    case darkColumns = "dark_columns"
}

/// Frequencies registration correlates, cycles/px (`registration.band: [low, high]`): the
/// high-pass σ and the cut-off.
public struct FrequencyBand: Sendable, Equatable, Encodable {
    public var low: Double
    public var high: Double
    public init(low: Double, high: Double) { self.low = low; self.high = high }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode([low, high])
    }
}

/// A rectangle of pixels `x0..<x1`, `y0..<y1` (`roi:` in heatfront.yaml).
public struct PixelRect: Sendable, Equatable, Encodable {
    public var x0, y0, x1, y1: Int
    public init(x0: Int, y0: Int, x1: Int, y1: Int) {
        self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1
    }
    public var width: Int { x1 - x0 }
    public var height: Int { y1 - y0 }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode([x0, y0, x1, y1])
    }
}

/// The settings of one heating run, read from heatfront.yaml (docs/user-guide.md,
/// "heatfront.yaml"; the keys are declared in `ConfigKey.all`). Every key is optional;
/// `init()` gives the defaults. Encodes (snake_case, nested as in the YAML,
/// unset values as null) to the `config` object of `summary.json`.
public struct RunConfig: Sendable, Equatable, Encodable {
    public var pixelSizeNm: Double?
    public var frameIntervalS: Double?
    public var heatingLog: String?
    /// The log time at the first frame, s (`heating_log_offset_s`): 600 when logging
    /// started 10 minutes before the first frame.
    public var heatingLogOffsetS: Double?
    /// The absolute time of the log's time 0 (`heating_log_start`), for frames with absolute times.
    public var heatingLogStart: Date?
    /// The image signal to analyse in files with several (`signal:`): a name such as `HAADF`,
    /// `ABF`, `DF4` or `iDPC`, or a position in the file's signals.
    public var signal: String?
    public var roi: PixelRect?
    public var stepToleranceC: Double = 3
    public var minHoldS: Double = 30
    public var layerSpacingNm: Double = 0.468
    public var contrast: ColumnContrast = .auto
    public var registrationMode: RegistrationMode = .rigid
    public var maxShiftPx: Double = 200
    /// nil: chosen from the first frame's lattice (`CorrelationBand`).
    public var registrationBand: FrequencyBand?
    public var profileLine: LineSegment?
    public var profileWidthPx: Double = 16
    public var frontBoundary: LineSegment?
    public var steps: [StepRule] = []
    /// The file this config was read from (nil for defaults); used in error messages and
    /// to resolve a relative `heating_log:`. Not part of the effective config.
    public var sourceFile: URL?

    public init() {}

    /// The name used for this config in error messages.
    public var fileLabel: String { sourceFile?.path ?? "config" }

    /// The effective config, as `summary.json` records it.
    public var effective: RunConfig { self }

    /// What the run-folder scan uses of these settings.
    public var folderSettings: FolderSettings {
        let config = self
        return FolderSettings(pixelSizeNm: pixelSizeNm, frameIntervalS: frameIntervalS, heatingLog: heatingLog,
                              heatingLogOffsetS: heatingLogOffsetS, heatingLogStart: heatingLogStart, signal: signal,
                              stepToleranceC: stepToleranceC, minHoldS: minHoldS, steps: steps, sourceFile: sourceFile,
                              checkFrameSize: { w, h in try config.validate(frameWidth: w, frameHeight: h) })
    }

    // MARK: Loading

    /// Reads and validates a heatfront.yaml. Unknown keys, wrong types and impossible
    /// values throw a `RunConfigError` naming the file and the key.
    public static func load(_ url: URL) throws -> RunConfig {
        if let why = RegularFile.problem(url.path) { throw RunConfigError(file: url.path, key: "", "cannot read: \(why)") }
        var st = stat()
        if stat(url.path, &st) == 0, st.st_size > 1 << 20 {
            throw RunConfigError(file: url.path, key: "", "config file larger than 1 MiB")
        }
        let text: String
        do {
            let data: Data
            do { data = try readWholeFile(url, limit: 1 << 20) }
            catch let e as FrameIOError {
                throw RunConfigError(file: url.path, key: "", e.kind == .corrupt ? "config file larger than 1 MiB" : "cannot read: \(e.detail)")
            }
            guard let s = String(data: data, encoding: .utf8) else {
                throw RunConfigError(file: url.path, key: "", "not UTF-8 text")
            }
            text = s
        } catch let e as RunConfigError {
            throw e
        } catch {
            throw RunConfigError(file: url.path, key: "", "cannot read: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: url)
    }

    /// Parses config text; `file` names it in errors. Every key is read as `ConfigKey.all`
    /// declares it, in the document's order, so the first bad key is the one named.
    public static func parse(yaml text: String, file: URL) throws -> RunConfig {
        var config = RunConfig()
        config.sourceFile = file
        let p = ConfigNodes(file: file.path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RunConfigError(file: file.path, key: "", "not valid YAML: \(error)")
        }
        guard let root, !p.isNull(root) else { return config }   // empty file: all defaults
        let keys = ConfigKey.byPath
        for (k, v) in try p.mapping(root, key: "") {
            guard !p.isNull(v) else { continue }
            if let key = keys[k] { try key.read(p, v, &config); continue }
            guard ConfigKey.sections.contains(k) else { throw p.unknown(k, v) }
            for (k2, v2) in try p.mapping(v, key: k) {
                let path = "\(k).\(k2)"
                guard !p.isNull(v2) else { continue }
                guard let key = keys[path] else { throw p.unknown(path, v2) }
                try key.read(p, v2, &config)
            }
        }
        if config.heatingLogOffsetS != nil, config.heatingLogStart != nil {
            throw RunConfigError(file: file.path, key: "heating_log_offset_s",
                                 "give heating_log_offset_s or heating_log_start, not both")
        }
        return config
    }

    /// Checks the values that depend on the frame size (roi, profile line, front boundary).
    public func validate(frameWidth w: Int, frameHeight h: Int) throws {
        if let r = roi, r.x1 > w || r.y1 > h {
            throw RunConfigError(file: fileLabel, key: "roi",
                                 "[\(r.x0), \(r.y0), \(r.x1), \(r.y1)] lies outside the \(w)×\(h) frame")
        }
        for (key, line) in [("profile.line", profileLine), ("front.boundary", frontBoundary)] {
            guard let l = line else { continue }
            let inside = [l.x0, l.x1].allSatisfy { $0 >= 0 && $0 <= Double(w) }
                && [l.y0, l.y1].allSatisfy { $0 >= 0 && $0 <= Double(h) }
            if !inside {
                throw RunConfigError(file: fileLabel, key: key,
                                     "[\(fmt([l.x0, l.y0, l.x1, l.y1]))] lies outside the \(w)×\(h) frame")
            }
        }
    }

    // MARK: Encoding (summary.json "config")

    private enum Keys: String, CodingKey {
        case pixelSizeNm = "pixel_size_nm", frameIntervalS = "frame_interval_s", heatingLog = "heating_log"
        case heatingLogOffsetS = "heating_log_offset_s", heatingLogStart = "heating_log_start", signal
        case roi, stepToleranceC = "step_tolerance_C", minHoldS = "min_hold_s"
        case material, registration, profile, front, steps
        case layerSpacingNm = "layer_spacing_nm", mode, maxShiftPx = "max_shift_px", contrast, band
        case line, widthPx = "width_px", boundary
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(pixelSizeNm, forKey: .pixelSizeNm)
        try c.encode(frameIntervalS, forKey: .frameIntervalS)
        try c.encode(heatingLog, forKey: .heatingLog)
        try c.encode(heatingLogOffsetS, forKey: .heatingLogOffsetS)
        try c.encode(heatingLogStart.map(ISO8601Time.format), forKey: .heatingLogStart)
        try c.encode(signal, forKey: .signal)
        try c.encode(roi, forKey: .roi)
        try c.encode(stepToleranceC, forKey: .stepToleranceC)
        try c.encode(minHoldS, forKey: .minHoldS)
        var m = c.nestedContainer(keyedBy: Keys.self, forKey: .material)
        try m.encode(layerSpacingNm, forKey: .layerSpacingNm)
        try c.encode(contrast, forKey: .contrast)
        var r = c.nestedContainer(keyedBy: Keys.self, forKey: .registration)
        try r.encode(registrationMode, forKey: .mode)
        try r.encode(maxShiftPx, forKey: .maxShiftPx)
        try r.encode(registrationBand, forKey: .band)
        var p = c.nestedContainer(keyedBy: Keys.self, forKey: .profile)
        try p.encode(profileLine.map { [$0.x0, $0.y0, $0.x1, $0.y1] }, forKey: .line)
        try p.encode(profileWidthPx, forKey: .widthPx)
        var f = c.nestedContainer(keyedBy: Keys.self, forKey: .front)
        try f.encode(frontBoundary.map { [$0.x0, $0.y0, $0.x1, $0.y1] }, forKey: .boundary)
        try c.encode(steps, forKey: .steps)
    }
}

