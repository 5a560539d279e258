import Foundation
import FrameCore
import FrameIO
import Yams

/// The kind of value a config key takes, with its allowed range: parsing enforces it and the
/// docs' table of keys states it.
public enum ConfigValue: Sendable, Equatable {
    case number(NumberRange)
    case fileName
    case choice([String])
    case dateTime
    case signal
    case pixelRect
    case band
    case line
    case stepRules

    public enum NumberRange: Sendable, Equatable { case any, positive, nonNegative }

    /// What the docs say a value must be.
    public var docText: String {
        switch self {
        case .number(.any): "number"
        case .number(.positive): "number > 0"
        case .number(.nonNegative): "number ≥ 0"
        case .fileName: "file name"
        case .choice(let names): Self.oneOf(names.map { "`\($0)`" })
        case .dateTime: "ISO-8601 date and time"
        case .signal: "name, or position ≥ 0"
        case .pixelRect: "[x0, y0, x1, y1]: whole numbers ≥ 0, x1 > x0, y1 > y0, inside the frame"
        case .band: "[low, high]: 0 ≤ low < high ≤ 0.5"
        case .line: "[x0, y0, x1, y1]: numbers ≥ 0, two distinct points, inside the frame"
        case .stepRules: "list of `{glob: …, temperature_C: …}` or `{frames: [first, last], temperature_C: …}`"
        }
    }

    /// `a`, `a or b`, `a, b or c`.
    static func oneOf(_ names: [String]) -> String {
        names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}

/// One key of heatfront.yaml, declared once: its dotted path, the value it takes, its unit,
/// its default, a one-line meaning, and how a value is read into `RunConfig`. Parsing, the
/// checks and the table of keys in docs/user-guide.md all come from `ConfigKey.all`.
public struct ConfigKey {
    /// `registration.max_shift_px`: a section and a key, or a top-level key.
    public let path: String
    public let value: ConfigValue
    /// Empty for values without a unit.
    public let unit: String
    /// The default as the docs state it (for keys with a stored default, that value).
    public let defaultText: String
    public let doc: String
    let reader: (ConfigNodes, Node, String, inout RunConfig) throws -> Void

    init(_ path: String, _ value: ConfigValue, unit: String = "", default defaultText: String, doc: String,
         read: @escaping (ConfigNodes, Node, String, inout RunConfig) throws -> Void) {
        self.path = path
        self.value = value
        self.unit = unit
        self.defaultText = defaultText
        self.doc = doc
        self.reader = read
    }

    /// Reads `node` into `config`, or throws a `RunConfigError` naming this key.
    func read(_ nodes: ConfigNodes, _ node: Node, _ config: inout RunConfig) throws {
        try reader(nodes, node, path, &config)
    }

    /// A number with a default stored in `RunConfig`.
    static func number(_ path: String, _ field: WritableKeyPath<RunConfig, Double>, _ range: ConfigValue.NumberRange,
                       unit: String, doc: String) -> ConfigKey {
        ConfigKey(path, .number(range), unit: unit, default: fmt([RunConfig()[keyPath: field]]), doc: doc) { p, v, key, c in
            c[keyPath: field] = try p.number(v, key: key, positive: range == .positive, nonNegative: range == .nonNegative)
        }
    }

    /// A number that is unset by default (`default` says what is used instead).
    static func number(_ path: String, _ field: WritableKeyPath<RunConfig, Double?>, _ range: ConfigValue.NumberRange,
                       unit: String, default unset: String, doc: String) -> ConfigKey {
        ConfigKey(path, .number(range), unit: unit, default: unset, doc: doc) { p, v, key, c in
            c[keyPath: field] = try p.number(v, key: key, positive: range == .positive, nonNegative: range == .nonNegative)
        }
    }

    /// One of an enumeration's raw values.
    static func choice<E: RawRepresentable & CaseIterable>(_ path: String, _ field: WritableKeyPath<RunConfig, E>,
                                                           doc: String) -> ConfigKey where E.RawValue == String {
        let names = E.allCases.map(\.rawValue)
        return ConfigKey(path, .choice(names), default: "`\(RunConfig()[keyPath: field].rawValue)`", doc: doc) { p, v, key, c in
            c[keyPath: field] = E(rawValue: try p.choice(v, key: key, among: names))!
        }
    }
}

extension ConfigKey {
    /// Every key of heatfront.yaml, in the order the docs list them.
    public static var all: [ConfigKey] {
        [
            .number("pixel_size_nm", \.pixelSizeNm, .positive, unit: "nm", default: "from metadata",
                    doc: "the pixel size; overrides the files' calibration"),
            .number("frame_interval_s", \.frameIntervalS, .positive, unit: "s", default: "—",
                    doc: "time between frames when the files carry no time"),
            ConfigKey("heating_log", .fileName, default: "`\(RunFolder.defaultHeatingLogName)`",
                      doc: "the holder's temperature log; a relative name is looked for in RUN_DIR, then beside the config file") { p, v, key, c in
                c.heatingLog = try p.fileName(v, key: key)
            },
            .number("heating_log_offset_s", \.heatingLogOffsetS, .any, unit: "s", default: "—",
                    doc: "the log time at the first frame (600: logging started 10 min before the first frame); see \"The heating log's clock\""),
            ConfigKey("heating_log_start", .dateTime, default: "—",
                      doc: "the absolute time of the log's time 0 (e.g. `2024-05-01T09:12:30Z`; no zone: UTC), for frames with absolute times; not together with `heating_log_offset_s`") { p, v, key, c in
                c.heatingLogStart = try p.time(v, key: key)
            },
            ConfigKey("signal", .signal, default: "HAADF, else the first",
                      doc: "the image signal to analyse in files with several: a name (`HAADF`, `ABF`, `DF4`, `iDPC`, any case) or its position, from 0, in the `signals` list of `heatfront inspect FILE`") { p, v, key, c in
                c.signal = try p.signal(v, key: key)
            },
            ConfigKey("roi", .pixelRect, unit: "px", default: "whole frame",
                      doc: "limits the analysis to this rectangle") { p, v, key, c in
                c.roi = try p.pixelRect(v, key: key)
            },
            .number("step_tolerance_C", \.stepToleranceC, .positive, unit: "°C",
                    doc: "temperature change that still counts as one hold"),
            .number("min_hold_s", \.minHoldS, .nonNegative, unit: "s", doc: "shortest hold"),
            .number("material.layer_spacing_nm", \.layerSpacingNm, .positive, unit: "nm",
                    doc: "(003) spacing of the layered phase (NCM811 ≈ 0.474); found within ±15 %"),
            .choice("contrast", \.contrast,
                    doc: "`bright_columns`: HAADF, ADF; `dark_columns`: ABF, BF; `auto`: decided from the images; see \"Is it the layered lattice?\""),
            .choice("registration.mode", \.registrationMode,
                    doc: "`nonrigid` also corrects scan distortion (see \"Non-rigid mode\")"),
            .number("registration.max_shift_px", \.maxShiftPx, .positive, unit: "px",
                    doc: "largest drift accepted between frames"),
            ConfigKey("registration.band", .band, unit: "cycles/px", default: "from the image",
                      doc: "frequencies correlated: high-pass σ and cut-off (see \"Registration's band\")") { p, v, key, c in
                c.registrationBand = try p.band(v, key: key)
            },
            ConfigKey("profile.line", .line, unit: "px", default: "automatic",
                      doc: "line of the intensity profile, in the first frame") { p, v, key, c in
                c.profileLine = try p.line(v, key: key)
            },
            .number("profile.width_px", \.profileWidthPx, .positive, unit: "px", doc: "width the profile integrates over"),
            ConfigKey("front.boundary", .line, unit: "px", default: "automatic",
                      doc: "the line the front starts from") { p, v, key, c in
                c.frontBoundary = try p.line(v, key: key)
            },
            ConfigKey("steps", .stepRules, default: "—",
                      doc: "explicit temperatures (°C), the first matching rule per frame: a `glob` matches the path relative to RUN_DIR (and the file name, when it has no `/`), `frames` a range of frame indices, e.g. `{glob: \"hold_175/*\", temperature_C: 175}`, `{frames: [0, 39], temperature_C: 25}`") { p, v, key, c in
                c.steps = try p.stepRules(v, key: key)
            },
        ]
    }

    static var byPath: [String: ConfigKey] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })
    }

    /// The mappings that group keys (`registration`, `profile`, …).
    static var sections: Set<String> {
        Set(all.compactMap { key in key.path.firstIndex(of: ".").map { String(key.path[..<$0]) } })
    }

    /// The table of keys in docs/user-guide.md, as markdown.
    public static var markdownTable: String {
        var lines = ["| key | value | unit | default | meaning |", "| --- | --- | --- | --- | --- |"]
        for key in all {
            lines.append("| `\(key.path)` | \(key.value.docText) | \(key.unit.isEmpty ? "—" : key.unit) | \(key.defaultText) | \(key.doc) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
