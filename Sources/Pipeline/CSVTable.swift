import Foundation

/// A CSV table written the way run contract §2 requires: UTF-8, comma-separated, a header
/// row, `.` as decimal point, `true`/`false`, and an empty cell where a value was not
/// measured (never `NaN`, never 0 as a stand-in). Numbers are printed with fixed precision
/// so that two runs over the same inputs write identical bytes.
public struct CSVTable {
    public let header: [String]
    public private(set) var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    public mutating func append(_ cells: [String]) {
        precondition(cells.count == header.count, "CSV row has \(cells.count) cells for \(header.count) columns")
        rows.append(cells)
    }

    public var text: String {
        var out = header.map(Self.quote).joined(separator: ",") + "\n"
        for r in rows { out += r.map(Self.quote).joined(separator: ",") + "\n" }
        return out
    }

    static func quote(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// Cell formatting shared by every table.
public enum Cell {
    /// A number with `digits` decimals; empty for nil or non-finite values.
    public static func fixed(_ v: Double?, _ digits: Int) -> String {
        guard let v, v.isFinite else { return "" }
        let s = String(format: "%.\(digits)f", v)
        return s == "-0" || s.hasPrefix("-0.") && Double(s) == 0 ? String(s.dropFirst()) : s
    }

    /// A number with `digits` significant digits (intensities spanning decades).
    public static func significant(_ v: Double?, _ digits: Int = 7) -> String {
        guard let v, v.isFinite else { return "" }
        return String(format: "%.\(digits)g", v)
    }

    public static func int(_ v: Int?) -> String { v.map(String.init) ?? "" }
    public static func bool(_ v: Bool) -> String { v ? "true" : "false" }
}
