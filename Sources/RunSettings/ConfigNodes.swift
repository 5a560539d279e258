import Foundation
import FrameCore
import FrameIO
import Yams

/// Numbers as a config states them: whole ones without a decimal point.
func fmt(_ q: [Double]) -> String {
    q.map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int($0)) : String($0) }.joined(separator: ", ")
}

/// Typed access to YAML nodes, every failure a `RunConfigError` naming file, key and line.
struct ConfigNodes {
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

    /// A file name: text, not empty.
    func fileName(_ node: Node, key: String) throws -> String {
        let s = try string(node, key: key)
        guard !s.isEmpty else { throw error(key, "expected a file name, got an empty string", node) }
        return s
    }

    /// One of `names`; any scalar is named back in the message (`mode: 3` → got '3').
    func choice(_ node: Node, key: String, among names: [String]) throws -> String {
        let expected = "expected " + ConfigValue.oneOf(names)
        guard case .scalar(let sc) = node else { throw error(key, "\(expected), got \(describe(node))", node) }
        guard names.contains(sc.string) else { throw error(key, "\(expected), got '\(sc.string)'", node) }
        return sc.string
    }

    /// `[x0, y0, x1, y1]` in whole pixels, a non-empty rectangle.
    func pixelRect(_ node: Node, key: String) throws -> PixelRect {
        let q = try numbers(node, key: key, count: 4, integral: true)
        let r = PixelRect(x0: Int(q[0]), y0: Int(q[1]), x1: Int(q[2]), y1: Int(q[3]))
        guard r.x0 >= 0, r.y0 >= 0 else { throw error(key, "corners must not be negative, got \(fmt(q))", node) }
        guard r.x1 > r.x0, r.y1 > r.y0 else { throw error(key, "expected [x0, y0, x1, y1] with x1 > x0 and y1 > y0, got \(fmt(q))", node) }
        return r
    }

    /// `[low, high]` in cycles/px within the Nyquist limit.
    func band(_ node: Node, key: String) throws -> FrequencyBand {
        let q = try numbers(node, key: key, count: 2)
        guard q[0] >= 0, q[1] > q[0], q[1] <= 0.5 else {
            throw error(key, "expected [low, high] in cycles/px with 0 <= low < high <= 0.5, got [\(fmt(q))]", node)
        }
        return FrequencyBand(low: q[0], high: q[1])
    }

    /// A list of step rules.
    func stepRules(_ node: Node, key: String) throws -> [StepRule] {
        guard case .sequence(let seq) = node else { throw error(key, "expected a list of {glob|frames, temperature_C}", node) }
        return try seq.enumerated().map { i, item in try stepRule(item, key: "\(key)[\(i)]") }
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
