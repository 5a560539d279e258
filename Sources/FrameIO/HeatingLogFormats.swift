import Foundation
import FrameCore

// The three heating-log formats `HeatingLog` reads, row by row from a `LogLines` stream.
extension HeatingLog {
    static func parsePlain(names: [String], lines: inout LogLines, into samples: inout LogSamples) throws -> HeatingLog {
        let file = samples.file
        guard let tc = names.firstIndex(of: "temperature_c") else {
            throw HeatingLogError(file: file, line: 1, "no temperature_C column (columns: \(names.joined(separator: ", ")))")
        }
        let ts = names.firstIndex(of: "timestamp"), tsec = names.firstIndex(of: "time_s")
        guard ts != nil || tsec != nil else {
            throw HeatingLogError(file: file, line: 1, "no time column: expected time_s or timestamp")
        }
        var dates: [Date] = []
        while let (n, text) = try lines.next() {
            if text.utf8.first == UInt8(ascii: "#") || isBlank(text) { continue }
            let f = csvFields(text)
            guard let tString = field(f, tc), !tString.isEmpty else { continue }   // no reading in this row
            guard let t = number(tString) else {
                throw HeatingLogError(file: file, line: n, "temperature_C: not a number: '\(tString)'")
            }
            if let ts {
                let s = field(f, ts) ?? ""
                guard let d = ISO8601Time.parse(String(s)) else {
                    throw HeatingLogError(file: file, line: n, "timestamp: not an ISO-8601 time: '\(s)'")
                }
                dates.append(d)
                try samples.append(time: 0, temperature: t, line: n, column: "temperature_C")
            } else {
                let s = field(f, tsec!) ?? ""
                guard let x = number(s) else { throw HeatingLogError(file: file, line: n, "time_s: not a number: '\(s)'") }
                try samples.append(time: x, temperature: t, line: n, column: "temperature_C")
            }
        }
        if ts != nil {
            guard let origin = dates.min() else { throw HeatingLogError(file: file, "no temperature samples") }
            return HeatingLog(format: .plain, file: file, times_s: dates.map { $0.timeIntervalSince(origin) },
                              temperaturesC: samples.temperatures, startDate: origin)
        }
        return HeatingLog(format: .plain, file: file, times_s: samples.times, temperaturesC: samples.temperatures)
    }

    static func parseProtochips(names: [String], lines: inout LogLines, into samples: inout LogSamples) throws -> HeatingLog {
        let file = samples.file
        let lower = names.map { $0.lowercased() }
        let timeCol = lower.firstIndex(of: "time")!, notesCol = lower.firstIndex(of: "notes")!
        guard let tc = lower.firstIndex(where: { $0.hasSuffix("temperature") }) else {
            throw HeatingLogError(file: file, line: 1, "Protochips log without a '… Temperature' column")
        }
        var meta: [String: String] = [:]
        while let (n, text) = try lines.next() {
            if isBlank(text) { continue }
            let f = csvFields(text)
            let timeValue = field(f, timeCol).flatMap(number)
            if samples.isEmpty, let note = field(f, notesCol), let eq = note.range(of: " = ") {
                meta[String(note[..<eq.lowerBound]).lowercased()] = String(note[eq.upperBound...])
                continue
            }
            guard let tm = timeValue else {
                if samples.isEmpty { continue }   // other header rows
                throw HeatingLogError(file: file, line: n, "Time: not a number: '\(field(f, timeCol) ?? "")'")
            }
            guard let s = field(f, tc), !s.isEmpty else { continue }
            guard let t = number(s) else {
                throw HeatingLogError(file: file, line: n, "\(names[tc]): not a number: '\(s)'")
            }
            try samples.append(time: tm, temperature: t, line: n, column: names[tc])
        }
        let units = meta["time units"]?.lowercased() ?? "milliseconds"
        let scale: Double = units.hasPrefix("milli") ? 1e-3 : units.hasPrefix("sec") ? 1 : 1e-3
        if let u = meta["temperature units"], !u.lowercased().contains("c") {
            throw HeatingLogError(file: file, "temperature units '\(u)' are not degrees C")
        }
        var start: Date?
        if let d = meta["date (yyyy.mm.dd)"], let t = meta["time (hh:mm:ss.ms)"] {
            start = ISO8601Time.parse(d.replacingOccurrences(of: ".", with: "-") + "T" + t)
        }
        var times = samples.times
        samples.times = []
        for i in times.indices { times[i] *= scale }
        return HeatingLog(format: .protochips, file: file, times_s: times, temperaturesC: samples.temperatures, startDate: start)
    }

    static func parseImpulse(names: [String], lines: inout LogLines, into samples: inout LogSamples) throws -> HeatingLog {
        let file = samples.file
        let lower = names.map { $0.lowercased() }
        let timeCol = lower.firstIndex(of: "experiment time")!
        guard let tc = lower.firstIndex(where: { $0.hasPrefix("temperature measured") }) else {
            throw HeatingLogError(file: file, line: 1, "Impulse log without a 'Temperature Measured' column")
        }
        while let (n, text) = try lines.next() {
            if isBlank(text) { continue }
            let f = csvFields(text)
            guard let s = field(f, tc), !s.isEmpty else { continue }
            let ts = field(f, timeCol) ?? ""
            guard let tm = number(ts) ?? clockSeconds(ts) else {
                throw HeatingLogError(file: file, line: n, "Experiment time: not a time: '\(ts)'")
            }
            guard let t = number(s) else {
                throw HeatingLogError(file: file, line: n, "\(names[tc]): not a number: '\(s)'")
            }
            try samples.append(time: tm, temperature: t, line: n, column: names[tc])
        }
        return HeatingLog(format: .densImpulse, file: file, times_s: samples.times, temperaturesC: samples.temperatures)
    }
}

/// A log's samples as they are read, with the checks every row gets: a temperature a holder
/// can report, and no more than `HeatingLog.maxSamples` rows.
struct LogSamples {
    let file: String
    var times: [Double] = []
    var temperatures: [Double] = []

    init(file: String, capacity: Int) {
        self.file = file
        times.reserveCapacity(capacity)
        temperatures.reserveCapacity(capacity)
    }

    var isEmpty: Bool { temperatures.isEmpty }

    mutating func append(time: Double, temperature: Double, line: Int, column: String) throws {
        guard HeatingLog.plausibleC.contains(temperature) else {
            throw HeatingLogError(file: file, line: line,
                                  "\(column): \(temperature) °C is not a temperature a heating holder reports (expected -273.15 to 3000 °C)")
        }
        guard temperatures.count < HeatingLog.maxSamples else {
            throw HeatingLogError(file: file, line: line,
                                  "more than \(HeatingLog.maxSamples) samples, the most HeatFront reads: decimate the log")
        }
        times.append(time)
        temperatures.append(temperature)
    }
}

/// The lines of a log, from text in memory or streamed from a file in blocks of at most 1 MiB.
/// Lines end at `\n`, `\r\n` or `\r` and are numbered from 1; a UTF-8 byte-order mark is
/// dropped; a line that is not UTF-8 is read as Latin-1 (logs written on Windows locales).
struct LogLines {
    static let maxLineBytes = 1 << 20
    let file: String
    private var buffer: [UInt8]
    private var pos = 0
    private var scanned = 0            // buffer[pos..<scanned] holds no line end
    private var fd: Int32 = -1
    private var eof: Bool
    private var number = 0
    /// Bytes asked of one `read`: at most 1 MiB.
    private var blockBytes = 1 << 20

    init(text: String, file: String) {
        self.file = file
        buffer = Array(text.utf8)
        eof = true
        dropByteOrderMark()
    }

    /// `bytes`: the file's length when it was opened, which sizes the read blocks (a log
    /// still being written is read on to its end all the same).
    init(fd: Int32, file: String, bytes: Int) {
        self.file = file
        buffer = []
        self.fd = fd
        eof = false
        blockBytes = min(Self.maxLineBytes, max(4096, bytes + 1))
    }

    mutating func next() throws -> (number: Int, text: Substring)? {
        while true {
            if let e = buffer[scanned...].firstIndex(where: { $0 == 10 || $0 == 13 }) {
                var after = e + 1
                if buffer[e] == 13 {
                    if after == buffer.count && !eof { scanned = e; try refill(); continue }
                    if after < buffer.count && buffer[after] == 10 { after += 1 }
                }
                return emit(end: e, next: after)
            }
            scanned = buffer.count
            if eof {
                guard pos < buffer.count else { return nil }
                return emit(end: buffer.count, next: buffer.count)
            }
            guard buffer.count - pos <= Self.maxLineBytes else {
                throw HeatingLogError(file: file, line: number + 1, "a line longer than 1 MiB: not a heating log")
            }
            try refill()
        }
    }

    private mutating func emit(end: Int, next: Int) -> (number: Int, text: Substring) {
        let bytes = buffer[pos..<end]
        let text = String(validating: bytes, as: UTF8.self) ?? String(bytes.map { Character(Unicode.Scalar($0)) })
        pos = next
        scanned = next
        number += 1
        return (number, Substring(text))
    }

    private mutating func refill() throws {
        if pos > 0 {
            buffer.removeFirst(pos)
            scanned -= pos
            pos = 0
        }
        let atStart = number == 0 && buffer.isEmpty
        // Read into a block of its own and append what came: the block is no larger than the
        // file (a short log costs a few kB, not a zero-filled MiB on every read).
        var block = [UInt8](repeating: 0, count: blockBytes)
        var n = -1
        repeat {
            n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        } while n < 0 && errno == EINTR
        guard n >= 0 else { throw HeatingLogError(file: file, "cannot read: \(RegularFile.reading(errno))") }
        buffer.append(contentsOf: block[..<n])
        if n == 0 { eof = true }
        if atStart { dropByteOrderMark() }
    }

    private mutating func dropByteOrderMark() {
        if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { buffer.removeFirst(3) }
    }
}

private func isBlank(_ s: Substring) -> Bool {
    s.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 } || s.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
}

/// The fields of one CSV row: split at commas directly when the row has no quotes (every
/// row of a machine-written log), else by RFC 4180 rules (`CSVTable.fields`).
private func csvFields(_ line: Substring) -> [Substring] {
    guard line.utf8.contains(UInt8(ascii: "\"")) else {
        return line.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { Substring($0) }
    }
    return CSVTable.fields(line).map { Substring($0) }
}

/// Field `i`, without surrounding spaces and tabs; nil when the row is shorter.
private func field(_ f: [Substring], _ i: Int) -> Substring? {
    guard i < f.count else { return nil }
    let u = f[i].utf8
    guard let a = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return f[i][f[i].endIndex...] }
    let z = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
    return Substring(u[a...z])
}

private func number(_ s: Substring) -> Double? {
    guard !s.isEmpty, let x = Double(s), x.isFinite else { return nil }
    return x
}

/// `hh:mm:ss(.fff)` or `mm:ss(.fff)` → seconds.
private func clockSeconds(_ s: Substring) -> Double? {
    let p = s.split(separator: ":")
    guard (2...3).contains(p.count) else { return nil }
    var total = 0.0
    for part in p {
        guard let x = Double(part), x >= 0 else { return nil }
        total = total * 60 + x
    }
    return total
}
