import Foundation
import FrameCore

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

/// The temperature record of a heating holder (docs/user-guide.md, "The run folder": Temperature, and "The heating log's clock").
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
        sampleSpacing_s = Self.medianSpacing(self.times_s)
    }

    /// The median spacing of sorted sample times: over every spacing up to 100,000 of them,
    /// else over 100,000 spread evenly through the log (a 10-million-sample log then costs
    /// 1 MB here, not 80).
    static func medianSpacing(_ t: [Double]) -> Double {
        let n = t.count - 1
        guard n > 0 else { return 0 }
        let k = min(n, 100_000)
        let d = (0..<k).map { i -> Double in
            let j = k == n ? i : Int((Double(i) * Double(n) / Double(k)).rounded(.down))
            return t[j + 1] - t[j]
        }.sorted()
        return d[d.count / 2]
    }

    /// The most samples a log may hold (10 million: 160 MB in memory). A longer log is an
    /// error that says to decimate it; no holder's log of one experiment comes near.
    public static let maxSamples = 10_000_000
    /// Temperatures a heating holder can report, °C; others are errors naming the row.
    public static let plausibleC: ClosedRange<Double> = -273.15...3000

    /// Reads a heating log, recognising its format from the header. The file is streamed in
    /// blocks of at most 1 MiB, so memory is the samples' (16 bytes each), not the text's.
    public static func load(_ url: URL) throws -> HeatingLog {
        if let why = RegularFile.problem(url.path) { throw HeatingLogError(file: url.path, "cannot read: \(why)") }
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HeatingLogError(file: url.path, "cannot read: \(RegularFile.reading(errno))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HeatingLogError(file: url.path, "cannot read: \(RegularFile.reading(errno))") }
        guard st.st_size <= 1 << 30 else { throw HeatingLogError(file: url.path, "larger than 1 GiB") }
        var lines = LogLines(fd: fd, file: url.path, bytes: Int(st.st_size))
        return try parse(&lines, file: url.path, sizeHint: Int(st.st_size))
    }

    public static func parse(text: String, file: String) throws -> HeatingLog {
        var lines = LogLines(text: text, file: file)
        return try parse(&lines, file: file, sizeHint: text.utf8.count)
    }

    /// `sizeHint`: the text's length in bytes, which bounds the number of samples (a row
    /// takes at least 4 bytes), so the sample arrays are reserved once and touched only as used.
    static func parse(_ lines: inout LogLines, file: String, sizeHint: Int) throws -> HeatingLog {
        var header: (number: Int, text: Substring)?
        while let l = try lines.next() {
            if !l.text.allSatisfy({ $0 == " " || $0 == "\t" }) { header = l; break }
        }
        guard let header else { throw HeatingLogError(file: file, "empty file") }
        let names = CSVTable.fields(header.text).map { $0.trimmingCharacters(in: .whitespaces) }
        let lower = names.map { $0.lowercased() }
        var samples = LogSamples(file: file, capacity: min(maxSamples, sizeHint / 4 + 2))
        let log: HeatingLog
        if lower.contains("time"), lower.contains("notes") {
            log = try parseProtochips(names: names, lines: &lines, into: &samples)
        } else if lower.contains("experiment time") {
            log = try parseImpulse(names: names, lines: &lines, into: &samples)
        } else {
            log = try parsePlain(names: lower, lines: &lines, into: &samples)
        }
        guard log.times_s.count >= 2 else {
            throw HeatingLogError(file: file, "fewer than 2 temperature samples")
        }
        return log
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

    /// Holds of constant temperature (docs/user-guide.md, "The run folder": Steps).
    ///
    /// A hold is a maximal stretch of samples whose spread (max − min) stays below
    /// `toleranceC` for at least `minHoldS` seconds, found greedily from the start of the log:
    /// each start sample is extended as far as the spread allows; if that reaches `minHoldS`
    /// the stretch is a hold and the search resumes after it, otherwise the start moves one
    /// sample on (a ramp). Neighbouring holds whose levels (sample medians) differ by less
    /// than `toleranceC` are then merged into one, gap included, so a brief controller
    /// excursion does not split a hold. Holds are returned in time order.
    ///
    /// The stretches come from one pass with a sliding window whose minimum and maximum are
    /// kept in monotonic queues (the end of the stretch never moves back when its start moves
    /// on), and merged levels from a running median, so a log of millions of samples costs
    /// O(n log n) rather than the stretch length times n.
    public func holds(toleranceC: Double, minHoldS: Double) -> [TemperatureHold] {
        var merged: [(span: (Int, Int), level: RunningMedian)] = []
        for s in stretches(toleranceC: toleranceC, minHoldS: minHoldS) {
            let own = RunningMedian(temperaturesC[s.0...s.1])
            if let last = merged.last, abs(last.level.median - own.median) < toleranceC {
                // The merged hold's level is the median over all its samples, gap included.
                merged[merged.count - 1].level.insert(temperaturesC[(last.span.1 + 1)...s.1])
                merged[merged.count - 1].span.1 = s.1
            } else {
                merged.append((s, own))
            }
        }
        return merged.map { TemperatureHold(start_s: times_s[$0.span.0], end_s: times_s[$0.span.1], levelC: $0.level.median) }
    }

    /// The greedy stretches of `holds`, as index ranges, before merging.
    private func stretches(toleranceC: Double, minHoldS: Double) -> [(Int, Int)] {
        let n = times_s.count, T = temperaturesC
        var spans: [(Int, Int)] = []
        var lows = IndexQueue(), highs = IndexQueue()      // indices of increasing / decreasing T
        var i = 0, j = -1                                  // the window is i...j
        while i < n {
            if j < i {
                j = i; lows.reset(i); highs.reset(i)
            }
            while j + 1 < n {
                let x = T[j + 1]
                if max(T[highs.first], x) - min(T[lows.first], x) >= toleranceC { break }
                j += 1
                lows.push(j) { T[$0] >= T[j] }
                highs.push(j) { T[$0] <= T[j] }
            }
            if times_s[j] - times_s[i] >= minHoldS {
                spans.append((i, j))
                i = j + 1
            } else {
                i += 1
                lows.dropFront(before: i); highs.dropFront(before: i)
            }
        }
        return spans
    }
}

/// A queue of sample indices kept monotonic in value, for a sliding-window minimum or maximum.
private struct IndexQueue {
    private var items: [Int] = []
    private var head = 0
    var first: Int { items[head] }
    mutating func reset(_ i: Int) { items.removeAll(keepingCapacity: true); items.append(i); head = 0 }
    /// Appends `i` after dropping the tail entries `dominated` says it replaces.
    mutating func push(_ i: Int, dominated: (Int) -> Bool) {
        while items.count > head, dominated(items[items.count - 1]) { items.removeLast() }
        items.append(i)
        if head > 4096, head * 2 > items.count { items.removeFirst(head); head = 0 }
    }
    mutating func dropFront(before i: Int) {
        while head < items.count, items[head] < i { head += 1 }
    }
}

/// The median of a growing multiset: the lower half in a max-heap, the upper half in a
/// min-heap. Gives the same value as sorting (the mean of the two middle values for an even count).
struct RunningMedian {
    private var low = Heap(above: { $0 > $1 })     // max-heap
    private var high = Heap(above: { $0 < $1 })    // min-heap

    init<S: Sequence>(_ values: S) where S.Element == Double { insert(values) }

    mutating func insert<S: Sequence>(_ values: S) where S.Element == Double {
        for x in values {
            if let top = low.top, x > top { high.push(x) } else { low.push(x) }
            if low.count > high.count + 1 { high.push(low.pop()) }
            if high.count > low.count { low.push(high.pop()) }
        }
    }

    var median: Double {
        low.count > high.count ? low.top! : (low.top! + high.top!) / 2
    }

    private struct Heap {
        var items: [Double] = []
        let above: (Double, Double) -> Bool
        var count: Int { items.count }
        var top: Double? { items.first }
        mutating func push(_ x: Double) {
            items.append(x)
            var c = items.count - 1
            while c > 0, above(items[c], items[(c - 1) / 2]) { items.swapAt(c, (c - 1) / 2); c = (c - 1) / 2 }
        }
        mutating func pop() -> Double {
            let t = items[0]
            items[0] = items[items.count - 1]
            items.removeLast()
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var best = p
                if l < items.count, above(items[l], items[best]) { best = l }
                if r < items.count, above(items[r], items[best]) { best = r }
                if best == p { return t }
                items.swapAt(p, best); p = best
            }
        }
    }
}

func median(_ v: [Double]) -> Double {
    precondition(!v.isEmpty)
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}


/// ISO-8601 date-times as loggers write them: `2024-05-01T12:00:00Z`,
/// `2024-05-01 12:00:00.250+02:00`, or without a zone (read as UTC).
public enum ISO8601Time {
    /// `2024-05-01T12:00:00.250Z`: UTC, with milliseconds.
    public static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

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
