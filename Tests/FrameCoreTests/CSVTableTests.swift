import Testing
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
}
