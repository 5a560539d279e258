import Foundation
import FrameCore
import Yams

/// How frames are aligned (run contract §1 `registration.mode`).
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

/// An explicit temperature for the frames a rule selects (`steps:` in heatfront.yaml).
/// Exactly one of `glob` (matched against the path relative to RUN_DIR) or `frames`
/// (an inclusive `frame_index` range) is set.
public struct StepRule: Sendable, Equatable, Encodable {
    public var glob: String?
    public var frames: ClosedRange<Int>?
    public var temperatureC: Double

    public init(glob: String? = nil, frames: ClosedRange<Int>? = nil, temperatureC: Double) {
        self.glob = glob
        self.frames = frames
        self.temperatureC = temperatureC
    }

    enum CodingKeys: String, CodingKey { case glob, frames, temperatureC = "temperature_C" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let glob { try c.encode(glob, forKey: .glob) }
        if let frames { try c.encode([frames.lowerBound, frames.upperBound], forKey: .frames) }
        try c.encode(temperatureC, forKey: .temperatureC)
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

/// A config file that cannot be used: names the file, the key and what is wrong, e.g.
/// `heatfront.yaml: registration.mode: expected rigid or nonrigid, got 'fast' (line 9)`.
public struct RunConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let key: String
    public let message: String
    public let line: Int?

    /// Messages longer than `maxMessage` characters (a parser's error quoting a huge or
    /// deeply nested document) are cut there.
    public static let maxMessage = 300

    public init(file: String, key: String, _ message: String, line: Int? = nil) {
        self.file = file
        self.key = key
        let flat = message.replacingOccurrences(of: "\n", with: " ")
        self.message = flat.count > Self.maxMessage ? String(flat.prefix(Self.maxMessage)) + " …" : flat
        self.line = line
    }

    public var description: String {
        let where_ = line.map { " (line \($0))" } ?? ""
        return key.isEmpty ? "\(file): \(message)\(where_)" : "\(file): \(key): \(message)\(where_)"
    }
}

/// The settings of one heating run (run contract §1, "Config file"). Every key is optional;
/// `init()` gives the documented defaults. Encodes (snake_case, nested as in the YAML,
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

    /// Parses config text; `file` names it in errors.
    public static func parse(yaml text: String, file: URL) throws -> RunConfig {
        var config = RunConfig()
        config.sourceFile = file
        let p = Parser(file: file.path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RunConfigError(file: file.path, key: "", "not valid YAML: \(error)")
        }
        guard let root, !p.isNull(root) else { return config }   // empty file: all defaults
        let top = try p.mapping(root, key: "")
        for (k, v) in top {
            guard !p.isNull(v) else { continue }
            switch k {
            case "pixel_size_nm": config.pixelSizeNm = try p.number(v, key: k, positive: true)
            case "frame_interval_s": config.frameIntervalS = try p.number(v, key: k, positive: true)
            case "heating_log":
                let s = try p.string(v, key: k)
                guard !s.isEmpty else { throw p.error(k, "expected a file name, got an empty string", v) }
                config.heatingLog = s
            case "roi":
                let q = try p.numbers(v, key: k, count: 4, integral: true)
                let r = PixelRect(x0: Int(q[0]), y0: Int(q[1]), x1: Int(q[2]), y1: Int(q[3]))
                guard r.x0 >= 0, r.y0 >= 0 else { throw p.error(k, "corners must not be negative, got \(fmt(q))", v) }
                guard r.x1 > r.x0, r.y1 > r.y0 else { throw p.error(k, "expected [x0, y0, x1, y1] with x1 > x0 and y1 > y0, got \(fmt(q))", v) }
                config.roi = r
            case "contrast":
                let s = try p.string(v, key: k)
                guard let c = ColumnContrast(rawValue: s) else {
                    throw p.error(k, "expected auto, bright_columns or dark_columns, got '\(s)'", v)
                }
                config.contrast = c
            case "heating_log_offset_s": config.heatingLogOffsetS = try p.number(v, key: k)
            case "heating_log_start": config.heatingLogStart = try p.time(v, key: k)
            case "signal": config.signal = try p.signal(v, key: k)
            case "step_tolerance_C": config.stepToleranceC = try p.number(v, key: k, positive: true)
            case "min_hold_s": config.minHoldS = try p.number(v, key: k, nonNegative: true)
            case "material":
                for (k2, v2) in try p.mapping(v, key: k) {
                    let key = "material.\(k2)"
                    guard !p.isNull(v2) else { continue }
                    switch k2 {
                    case "layer_spacing_nm": config.layerSpacingNm = try p.number(v2, key: key, positive: true)
                    default: throw p.unknown(key, v2)
                    }
                }
            case "registration":
                for (k2, v2) in try p.mapping(v, key: k) {
                    let key = "registration.\(k2)"
                    guard !p.isNull(v2) else { continue }
                    switch k2 {
                    case "mode":
                        // Any scalar is named back in the message (`mode: 3` → got '3').
                        guard case .scalar(let sc) = v2 else {
                            throw p.error(key, "expected rigid or nonrigid, got \(p.describe(v2))", v2)
                        }
                        let s = sc.string
                        guard let m = RegistrationMode(rawValue: s) else {
                            throw p.error(key, "expected rigid or nonrigid, got '\(s)'", v2)
                        }
                        config.registrationMode = m
                    case "max_shift_px": config.maxShiftPx = try p.number(v2, key: key, positive: true)
                    case "band":
                        let q = try p.numbers(v2, key: key, count: 2)
                        guard q[0] >= 0, q[1] > q[0], q[1] <= 0.5 else {
                            throw p.error(key, "expected [low, high] in cycles/px with 0 <= low < high <= 0.5, got [\(fmt(q))]", v2)
                        }
                        config.registrationBand = FrequencyBand(low: q[0], high: q[1])
                    default: throw p.unknown(key, v2)
                    }
                }
            case "profile":
                for (k2, v2) in try p.mapping(v, key: k) {
                    let key = "profile.\(k2)"
                    guard !p.isNull(v2) else { continue }
                    switch k2 {
                    case "line": config.profileLine = try p.line(v2, key: key)
                    case "width_px": config.profileWidthPx = try p.number(v2, key: key, positive: true)
                    default: throw p.unknown(key, v2)
                    }
                }
            case "front":
                for (k2, v2) in try p.mapping(v, key: k) {
                    let key = "front.\(k2)"
                    guard !p.isNull(v2) else { continue }
                    switch k2 {
                    case "boundary": config.frontBoundary = try p.line(v2, key: key)
                    default: throw p.unknown(key, v2)
                    }
                }
            case "steps":
                guard case .sequence(let seq) = v else { throw p.error(k, "expected a list of {glob|frames, temperature_C}", v) }
                for (i, item) in seq.enumerated() {
                    config.steps.append(try p.stepRule(item, key: "steps[\(i)]"))
                }
            default:
                throw p.unknown(k, v)
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

private func fmt(_ q: [Double]) -> String {
    q.map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int($0)) : String($0) }.joined(separator: ", ")
}

/// Typed access to YAML nodes, every failure a `RunConfigError` naming file, key and line.
private struct Parser {
    let file: String

    func error(_ key: String, _ message: String, _ node: Node) -> RunConfigError {
        RunConfigError(file: file, key: key, message, line: node.mark?.line)
    }

    func unknown(_ key: String, _ node: Node) -> RunConfigError {
        error(key, "unknown key", node)
    }

    func hasTag(_ node: Node, _ name: Tag.Name) -> Bool { node.tag.rawValue == name.rawValue }

    func isNull(_ node: Node) -> Bool {
        if case .scalar(let s) = node, s.style == .plain || s.style == .any {
            return hasTag(node, .null)
        }
        return false
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            switch node.tag.rawValue {
            case Tag.Name.str.rawValue: return "string '\(s.string)'"
            case Tag.Name.bool.rawValue: return "boolean \(s.string)"
            default: return "'\(s.string)'"
            }
        case .mapping: return "a mapping"
        case .sequence(let q): return "a list of \(q.count)"
        case .alias: return "an alias"
        }
    }

    func mapping(_ node: Node, key: String) throws -> [(String, Node)] {
        guard case .mapping(let m) = node else {
            throw error(key, "expected a mapping of keys, got \(describe(node))", node)
        }
        var out: [(String, Node)] = []
        var seen = Set<String>()
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw error(key, "keys must be plain names", k) }
            let full = key.isEmpty ? ks.string : "\(key).\(ks.string)"
            guard seen.insert(ks.string).inserted else { throw error(full, "key given twice", k) }
            out.append((ks.string, v))
        }
        return out
    }

    func number(_ node: Node, key: String, positive: Bool = false, nonNegative: Bool = false) throws -> Double {
        guard case .scalar = node, hasTag(node, .int) || hasTag(node, .float),
              let x = node.float ?? node.int.map(Double.init) else {
            throw error(key, "expected a number, got \(describe(node))", node)
        }
        guard x.isFinite else { throw error(key, "expected a finite number, got \(x)", node) }
        if positive, !(x > 0) { throw error(key, "must be positive, got \(fmt([x]))", node) }
        if nonNegative, !(x >= 0) { throw error(key, "must not be negative, got \(fmt([x]))", node) }
        return x
    }

    func string(_ node: Node, key: String) throws -> String {
        guard case .scalar(let s) = node, hasTag(node, .str) else {
            throw error(key, "expected text, got \(describe(node))", node)
        }
        return s.string
    }

    /// An ISO-8601 date and time, quoted or not (`2024-05-01T12:00:00Z`; no zone: UTC).
    func time(_ node: Node, key: String) throws -> Date {
        guard case .scalar(let s) = node, let d = ISO8601Time.parse(s.string) else {
            throw error(key, "expected an ISO-8601 date and time such as 2024-05-01T12:00:00Z, got \(describe(node))", node)
        }
        return d
    }

    /// A signal name, or a position in a file's signals.
    func signal(_ node: Node, key: String) throws -> String {
        guard case .scalar(let s) = node, hasTag(node, .str) || hasTag(node, .int), !s.string.isEmpty else {
            throw error(key, "expected a signal name such as HAADF, ABF, DF4 or iDPC, or its position, got \(describe(node))", node)
        }
        if hasTag(node, .int), (Int(s.string) ?? -1) < 0 { throw error(key, "a signal position must not be negative", node) }
        return s.string
    }

    func numbers(_ node: Node, key: String, count: Int, integral: Bool = false) throws -> [Double] {
        guard case .sequence(let seq) = node, seq.count == count else {
            throw error(key, "expected a list of \(count) numbers, got \(describe(node))", node)
        }
        return try seq.map { item in
            let x = try number(item, key: key)
            if integral, x != x.rounded() { throw error(key, "expected whole pixels, got \(x)", item) }
            return x
        }
    }

    func line(_ node: Node, key: String) throws -> LineSegment {
        let q = try numbers(node, key: key, count: 4)
        guard q.allSatisfy({ $0 >= 0 }) else { throw error(key, "end points must not be negative, got [\(fmt(q))]", node) }
        let l = LineSegment(x0: q[0], y0: q[1], x1: q[2], y1: q[3])
        guard l.length > 0 else { throw error(key, "start and end are the same point", node) }
        return l
    }

    func stepRule(_ node: Node, key: String) throws -> StepRule {
        var glob: String?, frames: ClosedRange<Int>?, temperature: Double?
        for (k, v) in try mapping(node, key: key) {
            let full = "\(key).\(k)"
            switch k {
            case "glob":
                let s = try string(v, key: full)
                guard !s.isEmpty else { throw error(full, "empty pattern", v) }
                glob = s
            case "frames":
                let q = try numbers(v, key: full, count: 2, integral: true)
                guard q[0] >= 0, q[1] >= q[0], q[1] < 1e12 else {
                    throw error(full, "expected [first, last] with 0 <= first <= last, got [\(fmt(q))]", v)
                }
                frames = Int(q[0])...Int(q[1])
            case "temperature_C":
                let t = try number(v, key: full)
                guard t > -273.15 else { throw error(full, "below absolute zero: \(t)", v) }
                guard t <= HeatingLog.plausibleC.upperBound else { throw error(full, "\(t) °C is not a temperature a heating holder reaches", v) }
                temperature = t
            default:
                throw unknown(full, v)
            }
        }
        guard let temperature else { throw error(key, "missing temperature_C", node) }
        guard (glob == nil) != (frames == nil) else {
            throw error(key, "needs exactly one of glob or frames", node)
        }
        return StepRule(glob: glob, frames: frames, temperatureC: temperature)
    }
}
