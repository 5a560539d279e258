import Foundation

/// How a column's values are printed (see `Cell`).
public enum CellFormat: Sendable, Equatable {
    /// A whole number.
    case integer
    /// A number with this many decimals.
    case fixed(Int)
    /// A number with this many significant digits (intensities spanning decades).
    case significant(Int)
    /// `true` or `false`.
    case boolean
    /// Text, quoted when it holds a comma, a quote or a line break.
    case text

    /// The format in words, for the docs' column tables.
    public var description: String {
        switch self {
        case .integer: "integer"
        case .fixed(let d): "\(d) decimals"
        case .significant(let d): "\(d) significant digits"
        case .boolean: "`true`/`false`"
        case .text: "text"
        }
    }

    /// The cell for `value`: empty when the value is absent (not measured).
    public func cell(_ value: CellValue) -> String {
        switch (self, value) {
        case (.integer, .int(let v)): Cell.int(v)
        case (.fixed(let d), .number(let v)): Cell.fixed(v, d)
        case (.significant(let d), .number(let v)): Cell.significant(v, d)
        case (.boolean, .bool(let v)): v.map(Cell.bool) ?? ""
        case (.text, .text(let v)): v
        default: preconditionFailure("a \(self) column given \(value)")
        }
    }
}

/// One cell's value before formatting; nil where the value was not measured.
public enum CellValue: Sendable {
    case int(Int?)
    case number(Double?)
    case bool(Bool?)
    case text(String)
}

/// What one column of an output table is: its header name, unit, format and meaning.
public struct ColumnSpec: Sendable {
    public let unit: String
    public let format: CellFormat
    public let meaning: String

    public init(_ format: CellFormat, unit: String = "", _ meaning: String) {
        self.format = format; self.unit = unit; self.meaning = meaning
    }
}

/// The columns of one output table, declared once as an enum whose cases are the columns in
/// table order and whose raw values are the header names. The header, every row's cells (the
/// writer supplies one `CellValue` per case, in an exhaustive switch), the docs' column table
/// and the readers' look-ups all come from it.
public protocol TableColumn: CaseIterable, Sendable, RawRepresentable where RawValue == String {
    var spec: ColumnSpec { get }
}

extension TableColumn {
    /// The header name.
    public var name: String { rawValue }

    /// The header row, in declaration order.
    public static var header: [String] { allCases.map(\.rawValue) }

    /// One row's cells from each column's value.
    public static func cells(_ value: (Self) -> CellValue) -> [String] {
        allCases.map { $0.spec.format.cell(value($0)) }
    }

    /// The columns as a Markdown table (name, unit, format, meaning), as the output
    /// reference in the docs prints them.
    public static var markdownTable: String {
        var s = "| column | unit | format | meaning |\n| --- | --- | --- | --- |\n"
        for c in allCases {
            let unit = c.spec.unit.isEmpty ? "—" : c.spec.unit
            s += "| `\(c.rawValue)` | \(unit) | \(c.spec.format.description) | \(c.spec.meaning) |\n"
        }
        return s
    }
}

extension CSVTable {
    /// An empty table with the columns of `C`.
    public init<C: TableColumn>(columns: C.Type) { self.init(header: C.header) }

    /// Appends a row from each column's value.
    public mutating func append<C: TableColumn>(_ value: (C) -> CellValue) {
        append(C.cells(value))
    }

    public func string<C: TableColumn>(_ row: [String], _ column: C) -> String? { string(row, column.rawValue) }
    public func double<C: TableColumn>(_ row: [String], _ column: C) -> Double? { double(row, column.rawValue) }
    public func int<C: TableColumn>(_ row: [String], _ column: C) -> Int? { int(row, column.rawValue) }
}
