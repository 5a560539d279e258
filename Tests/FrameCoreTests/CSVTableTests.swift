import Testing
import Foundation
import FrameCore

/// The one CSV type writes and reads back the same cells, whatever they hold.
struct CSVTableTests {
    @Test func roundTripsQuotesCommasAndLineBreaks() throws {
        var table = CSVTable(header: ["frame_index", "error", "x"])
        table.append(["0", "bad \"frame\", see log\nsecond line", "1.5"])
        table.append(["1", "", ""])
        let back = try #require(CSVTable.parse(table.text))
        #expect(back.header == table.header)
        #expect(back.rows == table.rows)
        #expect(back.string(back.rows[0], "error") == "bad \"frame\", see log\nsecond line")
        #expect(back.double(back.rows[0], "x") == 1.5)
        #expect(back.string(back.rows[1], "error") == nil)
    }

    @Test func readsOneLineOfALog() {
        #expect(CSVTable.fields("12.5, \"a,b\",\"say \"\"hi\"\"\"") == ["12.5", "a,b", "say \"hi\""])
        #expect(CSVTable.fields("") == [""])
    }

    /// Cells are C's printf conversions, as `String(format:)` gives them, for every magnitude
    /// (numbers past 31 characters take the long path) and sign, with −0 written as 0.
    @Test func numbersAreFormattedAsStringFormatDoes() {
        var values: [Double] = [0, -0.0, 1, -1, 0.5, -0.0004, 1e-300, 123456.789, 2.5, 0.125, -2.675, 1e20, -3e35, 1e300]
        var state: UInt64 = 3
        for _ in 0..<2000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let mantissa = Double(state >> 11) / Double(1 << 53) - 0.5
            values.append(mantissa * pow(10, Double(Int(state % 41) - 20)))
        }
        for v in values {
            for digits in [0, 3, 6] {
                var fixed = String(format: "%.\(digits)f", v)
                if fixed == "-0" || fixed.hasPrefix("-0.") && Double(fixed) == 0 { fixed.removeFirst() }
                #expect(Cell.fixed(v, digits) == fixed)
            }
            #expect(Cell.significant(v) == String(format: "%.7g", v))
            #expect(Cell.significant(v, 3) == String(format: "%.3g", v))
        }
        #expect(Cell.fixed(1e300, 2).count > 300)
        #expect(Cell.fixed(.nan, 3) == "" && Cell.significant(.infinity) == "")
    }
}
