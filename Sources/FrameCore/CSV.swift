import Foundation

/// A CSV table as HeatFront writes and reads them (RFC 4180): UTF-8, comma-separated, a
/// header row, fields holding a comma, a quote or a line break in double quotes with inner
/// quotes doubled. Written tables use `.` as decimal point, `true`/`false`, and an empty
/// cell where a value was not measured (never `NaN`, never 0 as a stand-in); numbers are
/// printed with fixed precision (`Cell`) so that two runs over the same inputs write
/// identical bytes. `validate` and the batch outputs read them back with the same type.
public struct CSVTable: Sendable {
    public let header: [String]
    public private(set) var rows: [[String]] = []
    /// Column index by header name (the first column of that name).
    public let columns: [String: Int]

    public init(header: [String]) {
        self.header = header
        var columns: [String: Int] = [:]
        for (i, name) in header.enumerated() where columns[name] == nil { columns[name] = i }
        self.columns = columns
    }

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
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    // MARK: Reading

    /// The table in a file; nil when it cannot be read or has no header. Header names are
    /// trimmed of spaces; blank lines are skipped; short rows read as empty cells.
    public static func load(_ url: URL) -> CSVTable? {
        guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8) else { return nil }
        return parse(text)
    }

    public static func parse(_ text: String) -> CSVTable? {
        var records = Self.records(Substring(text))
        guard !records.isEmpty else { return nil }
        var table = CSVTable(header: records.removeFirst().map { $0.trimmingCharacters(in: .whitespaces) })
        table.rows = records.filter { $0 != [""] }
        return table
    }

    /// One line's fields (a line break inside quotes cannot occur: the line ends there).
    public static func fields(_ line: Substring) -> [String] {
        records(line).first ?? [""]
    }

    /// The records of `text`. A quote opens a quoted field only at the field's start
    /// (spaces before it are dropped); elsewhere it is an ordinary character.
    static func records(_ text: Substring) -> [[String]] {
        var records: [[String]] = [], fields: [String] = [], field = ""
        var quoted = false, any = false
        var it = text.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? it.next() {
            pending = nil
            any = true
            if quoted {
                guard c == "\"" else { field.append(c); continue }
                if let n = it.next() {
                    if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                } else { quoted = false }
            } else if c == "\"" && field.allSatisfy({ $0 == " " || $0 == "\t" }) {
                quoted = true; field = ""
            } else if c == "," {
                fields.append(field); field = ""
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                fields.append(field); records.append(fields)
                fields = []; field = ""; any = false
            } else {
                field.append(c)
            }
        }
        if any { fields.append(field); records.append(fields) }
        return records
    }

    /// The cell of `name` in `row`, trimmed; nil when the column is absent or the cell empty.
    public func string(_ row: [String], _ name: String) -> String? {
        guard let i = columns[name], i < row.count else { return nil }
        let s = row[i].trimmingCharacters(in: .whitespaces)
        return s.isEmpty ? nil : s
    }

    /// A finite number, else nil.
    public func double(_ row: [String], _ name: String) -> Double? {
        string(row, name).flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil }
    }

    public func int(_ row: [String], _ name: String) -> Int? { string(row, name).flatMap { Int($0) } }
}

/// Cell formatting shared by every table.
public enum Cell {
    /// A number with `digits` decimals; empty for nil or non-finite values.
    public static func fixed(_ v: Double?, _ digits: Int) -> String {
        guard let v, v.isFinite else { return "" }
        let s = printf("%.*f", digits, v)
        return s == "-0" || s.hasPrefix("-0.") && Double(s) == 0 ? String(s.dropFirst()) : s
    }

    /// A number with `digits` significant digits (intensities spanning decades).
    public static func significant(_ v: Double?, _ digits: Int = 7) -> String {
        guard let v, v.isFinite else { return "" }
        return printf("%.*g", digits, v)
    }

    /// C's printf conversion of one number, as `String(format:)` gives it, without building
    /// a format string and a Foundation string for every cell: tables hold up to hundreds of
    /// thousands of them.
    static func printf(_ format: String, _ digits: Int, _ v: Double) -> String {
        let short = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer -> String? in
            let n = withVaList([Int32(digits), v]) { vsnprintf(buffer.baseAddress, 32, format, $0) }
            return n >= 0 && n < 32 ? String(cString: buffer.baseAddress!) : nil
        }
        return short ?? String(format: format, Int32(digits), v)
    }

    public static func int(_ v: Int?) -> String { v.map(String.init) ?? "" }
    public static func bool(_ v: Bool) -> String { v ? "true" : "false" }
}
