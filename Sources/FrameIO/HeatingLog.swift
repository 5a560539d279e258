import Foundation

/// A heating log that cannot be used: names the file, the line when there is one, and the problem.
public struct HeatingLogError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let line: Int?
    public let message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)"
    }
}

/// One hold of a heating log: a stretch at one set-point.
public struct TemperatureHold: Sendable, Equatable {
    /// First and last log time of the hold, seconds on the log's own axis.
    public var start_s: Double
    public var end_s: Double
    /// The hold's level: median of the log samples in it, °C.
    public var levelC: Double

    public init(start_s: Double, end_s: Double, levelC: Double) {
        self.start_s = start_s
        self.end_s = end_s
        self.levelC = levelC
    }
}

/// The temperature record of a heating holder (run contract §1, temperature source 2).
///
/// Three formats are read, recognised by their header row:
/// - **plain CSV**: a `time_s` (seconds) or `timestamp` (ISO-8601) column and a
///   `temperature_C` column; a `timestamp` log carries absolute times.
/// - **Protochips** (Fusion/Atmosphere/Poseidon "AXON"/Clarity holder log, as read by
///   RosettaSciIO's `protochips` reader): header `Time, Notes, <Channel/Holder> Temperature, …`,
///   then metadata rows whose `Notes` cell is `key = value` (`Time units = Milliseconds`,
///   `Date (yyyy.mm.dd) = …`, `Time (hh:mm:ss.ms) = …`, …, `User = …`), then data rows with
///   `Time` in milliseconds since the start. The start date and time give absolute times
///   (read as UTC, the same convention as frame metadata without a zone).
/// - **DENSsolutions Impulse** export (RosettaSciIO `impulse` reader): columns
///   `TimeStamp, Experiment time, Temperature Measured …`; `Experiment time` in seconds
///   (or `hh:mm:ss.fff`) since the experiment start. Treated as relative times, since the
///   date lives in a separate `_Metadata.log`.
public struct HeatingLog: Sendable, Equatable {
    public enum Format: String, Sendable {
        case plain = "plain_csv", protochips, densImpulse = "dens_impulse"
    }

    public let format: Format
    public let file: String
    /// Sample times in seconds, ascending. 0 is the log's origin: `time_s = 0` of a plain log,
    /// the first row of a `timestamp` log, the start of a Protochips or Impulse experiment.
    public let times_s: [Double]
    public let temperaturesC: [Double]
    /// The absolute time of `times_s == 0`, when the log records one.
    public let startDate: Date?
    /// The median spacing of the samples, seconds.
    public let sampleSpacing_s: Double

    /// A log from samples in any order (sorted here by time, stably).
    public init(format: Format, file: String, times_s: [Double], temperaturesC: [Double], startDate: Date? = nil) {
        precondition(times_s.count == temperaturesC.count, "HeatingLog: \(times_s.count) times for \(temperaturesC.count) temperatures")
        self.format = format
        self.file = file
        self.startDate = startDate
        if zip(times_s, times_s.dropFirst()).contains(where: { $0 > $1 }) {
            let order = times_s.indices.sorted { (times_s[$0], $0) < (times_s[$1], $1) }
            self.times_s = order.map { times_s[$0] }
            self.temperaturesC = order.map { temperaturesC[$0] }
        } else {
            self.times_s = times_s
            self.temperaturesC = temperaturesC
        }
        let d = zip(self.times_s.dropFirst(), self.times_s).map { $0 - $1 }.sorted()
        sampleSpacing_s = d.isEmpty ? 0 : d[d.count / 2]
    }

    /// Reads a heating log, recognising its format from the header.
    public static func load(_ url: URL) throws -> HeatingLog {
        let data: Data
        do {
            data = try readWholeFile(url, limit: 1 << 30)
        } catch let e as FrameIOError {
            throw HeatingLogError(file: url.path, e.kind == .corrupt ? "larger than 1 GiB" : "cannot read: \(e.detail)")
        }
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) else {
            throw HeatingLogError(file: url.path, "not text")
        }
        return try parse(text: text, file: url.path)
    }

    public static func parse(text: String, file: String) throws -> HeatingLog {
        var lines: [(number: Int, text: Substring)] = []
        for (i, l) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).enumerated() {
            var s = l
            if i == 0, s.first == "\u{FEFF}" { s = s.dropFirst() }
            if s.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            lines.append((i + 1, s))
        }
        guard let header = lines.first else { throw HeatingLogError(file: file, "empty file") }
        let names = splitCSV(header.text).map { $0.trimmingCharacters(in: .whitespaces) }
        let lower = names.map { $0.lowercased() }
        let body = lines.dropFirst()
        let log: HeatingLog
        if lower.contains("time"), lower.contains("notes") {
            log = try parseProtochips(names: names, body: body, file: file)
        } else if lower.contains("experiment time") {
            log = try parseImpulse(names: names, body: body, file: file)
        } else {
            log = try parsePlain(names: lower, body: body, file: file)
        }
        guard log.times_s.count >= 2 else {
            throw HeatingLogError(file: file, "fewer than 2 temperature samples")
        }
        return log
    }

    // MARK: Formats

    private static func parsePlain(names: [String], body: ArraySlice<(number: Int, text: Substring)>, file: String) throws -> HeatingLog {
        guard let tc = names.firstIndex(of: "temperature_c") else {
            throw HeatingLogError(file: file, line: 1, "no temperature_C column (columns: \(names.joined(separator: ", ")))")
        }
        let ts = names.firstIndex(of: "timestamp"), tsec = names.firstIndex(of: "time_s")
        guard ts != nil || tsec != nil else {
            throw HeatingLogError(file: file, line: 1, "no time column: expected time_s or timestamp")
        }
        var times: [Double] = [], temps: [Double] = []
        var dates: [Date] = []
        for (n, text) in body {
            if text.hasPrefix("#") { continue }
            let f = splitCSV(text)
            guard let tString = field(f, tc), !tString.isEmpty else { continue }   // no reading in this row
            guard let t = number(tString) else {
                throw HeatingLogError(file: file, line: n, "temperature_C: not a number: '\(tString)'")
            }
            if let ts {
                let s = field(f, ts) ?? ""
                guard let d = ISO8601Time.parse(s) else {
                    throw HeatingLogError(file: file, line: n, "timestamp: not an ISO-8601 time: '\(s)'")
                }
                dates.append(d)
            } else {
                let s = field(f, tsec!) ?? ""
                guard let x = number(s) else { throw HeatingLogError(file: file, line: n, "time_s: not a number: '\(s)'") }
                times.append(x)
            }
            temps.append(t)
        }
        if ts != nil {
            guard let origin = dates.min() else { throw HeatingLogError(file: file, "no temperature samples") }
            return HeatingLog(format: .plain, file: file, times_s: dates.map { $0.timeIntervalSince(origin) },
                              temperaturesC: temps, startDate: origin)
        }
        return HeatingLog(format: .plain, file: file, times_s: times, temperaturesC: temps)
    }

    private static func parseProtochips(names: [String], body: ArraySlice<(number: Int, text: Substring)>, file: String) throws -> HeatingLog {
        let lower = names.map { $0.lowercased() }
        let timeCol = lower.firstIndex(of: "time")!, notesCol = lower.firstIndex(of: "notes")!
        guard let tc = lower.firstIndex(where: { $0.hasSuffix("temperature") }) else {
            throw HeatingLogError(file: file, line: 1, "Protochips log without a '… Temperature' column")
        }
        var meta: [String: String] = [:]
        var times: [Double] = [], temps: [Double] = []
        for (n, text) in body {
            let f = splitCSV(text).map { $0.trimmingCharacters(in: .whitespaces) }
            let timeValue = field(f, timeCol).flatMap(number)
            if times.isEmpty, let note = field(f, notesCol), let eq = note.range(of: " = ") {
                meta[String(note[..<eq.lowerBound]).lowercased()] = String(note[eq.upperBound...])
                continue
            }
            guard let tm = timeValue else {
                if times.isEmpty { continue }   // other header rows
                throw HeatingLogError(file: file, line: n, "Time: not a number: '\(field(f, timeCol) ?? "")'")
            }
            guard let s = field(f, tc), !s.isEmpty else { continue }
            guard let t = number(s) else {
                throw HeatingLogError(file: file, line: n, "\(names[tc]): not a number: '\(s)'")
            }
            times.append(tm); temps.append(t)
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
        return HeatingLog(format: .protochips, file: file, times_s: times.map { $0 * scale },
                          temperaturesC: temps, startDate: start)
    }

    private static func parseImpulse(names: [String], body: ArraySlice<(number: Int, text: Substring)>, file: String) throws -> HeatingLog {
        let lower = names.map { $0.lowercased() }
        let timeCol = lower.firstIndex(of: "experiment time")!
        guard let tc = lower.firstIndex(where: { $0.hasPrefix("temperature measured") }) else {
            throw HeatingLogError(file: file, line: 1, "Impulse log without a 'Temperature Measured' column")
        }
        var times: [Double] = [], temps: [Double] = []
        for (n, text) in body {
            let f = splitCSV(text).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let s = field(f, tc), !s.isEmpty else { continue }
            let ts = field(f, timeCol) ?? ""
            guard let tm = number(ts) ?? clockSeconds(ts) else {
                throw HeatingLogError(file: file, line: n, "Experiment time: not a time: '\(ts)'")
            }
            guard let t = number(s) else {
                throw HeatingLogError(file: file, line: n, "\(names[tc]): not a number: '\(s)'")
            }
            times.append(tm); temps.append(t)
        }
        return HeatingLog(format: .densImpulse, file: file, times_s: times, temperaturesC: temps)
    }

    // MARK: Use

    /// The log's temperature at log time `t` by linear interpolation between the samples on
    /// either side; nil outside the log (beyond one sample spacing from its ends).
    public func temperature(at t: Double) -> Double? {
        guard let first = times_s.first, let last = times_s.last, t.isFinite else { return nil }
        let slack = sampleSpacing_s
        if t < first { return t >= first - slack ? temperaturesC[0] : nil }
        if t > last { return t <= last + slack ? temperaturesC[temperaturesC.count - 1] : nil }
        var lo = 0, hi = times_s.count - 1          // bisect: times_s[lo] <= t <= times_s[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if times_s[mid] <= t { lo = mid } else { hi = mid }
        }
        let dt = times_s[hi] - times_s[lo]
        guard dt > 0 else { return temperaturesC[lo] }
        let w = (t - times_s[lo]) / dt
        return temperaturesC[lo] * (1 - w) + temperaturesC[hi] * w
    }

    /// Holds of constant temperature (run contract §1, "Temperature steps").
    ///
    /// A hold is a maximal stretch of samples whose spread (max − min) stays below
    /// `toleranceC` for at least `minHoldS` seconds, found greedily from the start of the log:
    /// each start sample is extended as far as the spread allows; if that reaches `minHoldS`
    /// the stretch is a hold and the search resumes after it, otherwise the start moves one
    /// sample on (a ramp). Neighbouring holds whose levels (sample medians) differ by less
    /// than `toleranceC` are then merged into one, gap included, so a brief controller
    /// excursion does not split a hold. Holds are returned in time order.
    public func holds(toleranceC: Double, minHoldS: Double) -> [TemperatureHold] {
        let n = times_s.count
        var spans: [(Int, Int)] = []
        var i = 0
        while i < n {
            var lo = temperaturesC[i], hi = lo, j = i
            while j + 1 < n {
                let x = temperaturesC[j + 1]
                if max(hi, x) - min(lo, x) >= toleranceC { break }
                lo = min(lo, x); hi = max(hi, x); j += 1
            }
            if times_s[j] - times_s[i] >= minHoldS {
                spans.append((i, j))
                i = j + 1
            } else {
                i += 1
            }
        }
        func level(_ s: (Int, Int)) -> Double { median(Array(temperaturesC[s.0...s.1])) }
        var merged: [(Int, Int)] = []
        for s in spans {
            if let last = merged.last, abs(level(last) - level(s)) < toleranceC {
                merged[merged.count - 1] = (last.0, s.1)
            } else {
                merged.append(s)
            }
        }
        return merged.map { TemperatureHold(start_s: times_s[$0.0], end_s: times_s[$0.1], levelC: level($0)) }
    }
}

func median(_ v: [Double]) -> Double {
    precondition(!v.isEmpty)
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

private func field(_ f: [String], _ i: Int) -> String? {
    i < f.count ? f[i].trimmingCharacters(in: .whitespaces) : nil
}

private func number(_ s: String) -> Double? {
    let t = s.trimmingCharacters(in: .whitespaces)
    guard !t.isEmpty, let x = Double(t), x.isFinite else { return nil }
    return x
}

/// `hh:mm:ss(.fff)` or `mm:ss(.fff)` → seconds.
private func clockSeconds(_ s: String) -> Double? {
    let p = s.split(separator: ":")
    guard (2...3).contains(p.count) else { return nil }
    var total = 0.0
    for part in p {
        guard let x = Double(part), x >= 0 else { return nil }
        total = total * 60 + x
    }
    return total
}

/// One CSV line split into fields (RFC 4180 quoting, no line breaks inside fields).
func splitCSV(_ line: Substring) -> [String] {
    var out: [String] = []
    var cur = ""
    var quoted = false
    var it = line.makeIterator()
    var pending: Character? = nil
    while let c = pending ?? it.next() {
        pending = nil
        if quoted {
            if c == "\"" {
                if let n = it.next() {
                    if n == "\"" { cur.append("\"") } else { quoted = false; pending = n }
                } else { quoted = false }
            } else { cur.append(c) }
        } else if c == "\"" && cur.trimmingCharacters(in: .whitespaces).isEmpty {
            quoted = true; cur = ""
        } else if c == "," {
            out.append(cur); cur = ""
        } else {
            cur.append(c)
        }
    }
    out.append(cur)
    return out
}

/// ISO-8601 date-times as loggers write them: `2024-05-01T12:00:00Z`,
/// `2024-05-01 12:00:00.250+02:00`, or without a zone (read as UTC).
public enum ISO8601Time {
    public static func parse(_ text: String) -> Date? {
        let s = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var i = 0
        func int(_ n: Int) -> Int? {
            guard i + n <= s.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = s[i + k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < s.count, s[i] == c else { return false }
            i += 1
            return true
        }
        guard let y = int(4), expect(45), let mo = int(2), expect(45), let d = int(2) else { return nil }
        guard i < s.count, s[i] == 84 || s[i] == 32 || s[i] == 116 else { return nil }   // 'T', ' ', 't'
        i += 1
        guard let h = int(2), expect(58), let mi = int(2), expect(58), let sec = int(2) else { return nil }
        var frac = 0.0
        if i < s.count, s[i] == 46 || s[i] == 44 {             // '.' or ','
            i += 1
            var scale = 0.1
            let start = i
            while i < s.count, s[i] >= 48, s[i] <= 57 { frac += Double(s[i] - 48) * scale; scale /= 10; i += 1 }
            guard i > start else { return nil }
        }
        var offset = 0
        if i < s.count {
            if s[i] == 90 || s[i] == 122 { i += 1 }            // 'Z'
            else if s[i] == 43 || s[i] == 45 {                 // '+' or '-'
                let sign = s[i] == 43 ? 1 : -1
                i += 1
                guard let oh = int(2) else { return nil }
                _ = expect(58)
                guard let om = int(2) else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            } else { return nil }
        }
        guard i == s.count, (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        // Days from the civil date (H. Hinnant's algorithm), proleptic Gregorian calendar.
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let t = Double(days * 86400 + h * 3600 + mi * 60 + sec - offset) + frac
        return Date(timeIntervalSince1970: t)
    }
}
