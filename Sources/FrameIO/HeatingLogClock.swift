import Foundation

/// How a heating log's clock is matched to the frames' (docs/user-guide.md, "The heating log's clock").
public struct LogClock: Sendable, Equatable {
    public enum Basis: String, Sendable {
        /// `heating_log_offset_s` in the config.
        case configOffset = "config_heating_log_offset_s"
        /// `heating_log_start` in the config, with the frames' absolute times.
        case configStart = "config_heating_log_start"
        /// The log's and the frames' absolute times.
        case absoluteTimes = "absolute_times"
        /// Log time 0 is the first frame (no absolute times on one side).
        case firstFrame = "first_frame"
        /// Shifted until the frames' folder, file-name or stored temperatures agree with the log.
        case estimated
    }

    /// The log time at frame time 0, s: a frame at `time_s` t is read at log time t + offset
    /// (plus half its scan time).
    public var offsetS: Double
    public var basis: Basis
    /// For `absoluteTimes` and `configStart`: the absolute time of frame time 0 and of log
    /// time 0, used as they are (their difference is `offsetS`).
    var origins: (frame: Date, log: Date)?

    public static func == (a: LogClock, b: LogClock) -> Bool { a.offsetS == b.offsetS && a.basis == b.basis }

    /// The log time of a frame taken at frame time `t` whose middle is `mid` s later.
    func logTime(_ t: Double, mid: Double) -> Double {
        if let o = origins { return o.frame.addingTimeInterval(t + mid).timeIntervalSince(o.log) }
        return t + mid + offsetS
    }
}

/// A frame's temperature from another source than the log, to check the log's clock with.
struct TemperatureEvidence {
    var temperatureC: Double
    var source: TemperatureSource
}

/// Matches a heating log's clock to the frames and checks the match (docs/user-guide.md, "The heating log's clock").
///
/// The clock comes from the config when it states one (`heating_log_offset_s`, or
/// `heating_log_start` with frames that carry absolute times), else from both sides'
/// absolute times, else log time 0 is the first frame. It is then checked against what else
/// the run says about temperature: folder and file-name temperatures and temperatures
/// stored with the frames. When more than a quarter of those frames differ from the log by
/// more than `disagreementC`, the clock is wrong (typically: logging started before the
/// first frame). Unless the config stated the clock, the log is then shifted to the one
/// offset that makes at least 90 % of them agree, with a warning that gives the offset to
/// put in the config; when no single offset does, a warning says so and the log is used as
/// matched. Holds of the log that no frame falls into are named too.
enum HeatingLogClock {
    /// Frames whose log temperature differs from their other temperature by more than this
    /// disagree with the log, °C (at least 5 step tolerances).
    static func disagreementC(toleranceC: Double) -> Double { max(15, 5 * toleranceC) }

    static func initial(_ log: HeatingLog, raws: [RawFrame], times: FrameTimes, config: FolderSettings,
                        warnings: inout [String]) throws -> LogClock {
        if let o = config.heatingLogOffsetS { return LogClock(offsetS: o, basis: .configOffset) }
        let origin = times.absolute ? raws.indices.first { raws[$0].absTime != nil }
            .map { raws[$0].absTime!.addingTimeInterval(-times.times[$0]) } : nil
        if let start = config.heatingLogStart {
            guard let origin else {
                throw RunConfigError(file: config.fileLabel, key: "heating_log_start",
                                     "the frames carry no absolute acquisition times to match it with: state the log's start with heating_log_offset_s instead")
            }
            return LogClock(offsetS: origin.timeIntervalSince(start), basis: .configStart, origins: (origin, start))
        }
        guard let origin, let start = log.startDate, let lo = log.times_s.first, let hi = log.times_s.last else {
            return LogClock(offsetS: 0, basis: .firstFrame)
        }
        let clock = LogClock(offsetS: origin.timeIntervalSince(start), basis: .absoluteTimes, origins: (origin, start))
        let inside = raws.indices.contains { i in
            let t = clock.logTime(times.times[i], mid: raws[i].midOffset)
            return t >= lo && t <= hi
        }
        if inside { return clock }
        warnings.append("the heating log's clock (\(log.file)) does not overlap the frames' acquisition times; aligned the log's start with the first frame instead")
        return LogClock(offsetS: 0, basis: .firstFrame)
    }

    /// Checks `clock` against `evidence` (per frame, nil where there is none or the frame's
    /// temperature does not come from the log) and returns the clock to use.
    static func checked(_ clock: LogClock, log: HeatingLog, raws: [RawFrame], times: [Double],
                        evidence: [TemperatureEvidence?], toleranceC: Double, configLabel: String,
                        warnings: inout [String]) -> LogClock {
        let limit = disagreementC(toleranceC: toleranceC)
        var idx = raws.indices.filter { evidence[$0] != nil && raws[$0].status.isOK }
        if idx.count > 400 { idx = (0..<400).map { idx[$0 * idx.count / 400] } }
        guard idx.count >= 2 else { return clock }
        let at = idx.map { clock.logTime(times[$0], mid: raws[$0].midOffset) }
        let expected = idx.map { evidence[$0]!.temperatureC }
        let off = (0..<idx.count).filter { k in !agrees(log.temperature(at: at[k]), expected[k], limit) }
        guard 4 * off.count > idx.count else { return clock }
        let kinds = Set(idx.map { evidence[$0]!.source })
        let what = kinds == [.frameMetadata] ? "the temperatures stored with the frames"
            : kinds.contains(.frameMetadata) ? "the frames' stored, folder and file-name temperatures" : "the folder and file-name temperatures"
        let e = off[0], shown = log.temperature(at: at[e]).map { String(format: "%.0f °C", $0) } ?? "nothing (outside the log)"
        let problem = "the heating log \(log.file) disagrees with \(what): \(off.count) of \(idx.count) frames differ by more than \(fmt(limit)) °C "
            + "(\(raws[idx[e]].rel) is \(fmt(expected[e])) °C but reads \(shown) from the log)"
        if clock.basis == .configOffset || clock.basis == .configStart {
            warnings.append(problem + "; check \(clock.basis == .configOffset ? "heating_log_offset_s" : "heating_log_start") in \(configLabel)")
            return clock
        }
        guard let shift = bestShift(log, at: at, expected: expected, limit: limit) else {
            warnings.append(problem + "; no single shift of the log's clock reconciles them, so the log is used as matched: "
                            + "check the log, or state its start with heating_log_offset_s or heating_log_start")
            return clock
        }
        let offset = clock.offsetS + shift.value
        warnings.append(problem + String(format: "; shifting the log by %+.1f s makes %d of %d agree (any shift from %+.1f to %+.1f s does), so the first frame is read at log time %.1f s: state it with heating_log_offset_s: %.1f in the config",
                                         shift.value, shift.agreeing, idx.count, shift.lo, shift.hi, offset, offset))
        return LogClock(offsetS: offset, basis: .estimated)
    }

    private static func agrees(_ logT: Double?, _ expected: Double, _ limit: Double) -> Bool {
        guard let logT else { return false }
        return abs(logT - expected) <= limit
    }

    /// The shift of the log times `at` that makes the most frames agree: searched on a grid
    /// of 20,000 shifts over every shift that keeps a frame inside the log, accepted when at
    /// least 90 % agree and the best shifts form one interval (its middle is returned).
    static func bestShift(_ log: HeatingLog, at: [Double], expected: [Double], limit: Double)
        -> (value: Double, lo: Double, hi: Double, agreeing: Int)? {
        guard let first = log.times_s.first, let last = log.times_s.last,
              let tMin = at.min(), let tMax = at.max() else { return nil }
        let lo = first - tMax, hi = last - tMin, n = 20_000
        guard hi > lo else { return nil }
        let h = (hi - lo) / Double(n)
        var best = 0, runs: [(Int, Int)] = []
        for g in 0...n {
            let s = lo + Double(g) * h
            let score = at.indices.reduce(0) { $0 + (agrees(log.temperature(at: at[$1] + s), expected[$1], limit) ? 1 : 0) }
            if score > best { best = score; runs = [(g, g)] }
            else if score == best, best > 0 {
                if let r = runs.last, r.1 == g - 1 { runs[runs.count - 1].1 = g } else { runs.append((g, g)) }
            }
        }
        guard runs.count == 1, 10 * best >= 9 * at.count else { return nil }
        let a = lo + Double(runs[0].0) * h, b = lo + Double(runs[0].1) * h
        return ((a + b) / 2, a, b, best)
    }

    /// Holds of the log that no frame falls into, leaving out those at the level the log
    /// starts at (pre-heat, cool-down to it): named in one warning, since frames that miss
    /// the set-points usually mean the clocks are not matched.
    static func uncoveredHolds(_ log: HeatingLog, holds: [TemperatureHold], logTimes: [Double?],
                               toleranceC: Double) -> String? {
        guard let t0 = log.temperaturesC.first, !holds.isEmpty else { return nil }
        let slack = log.sampleSpacing_s / 2
        let seen = logTimes.compactMap { $0 }
        guard let lo = seen.min(), let hi = seen.max() else { return nil }
        let empty = holds.filter { h in
            abs(h.levelC - t0) > toleranceC && !seen.contains { $0 >= h.start_s - slack && $0 <= h.end_s + slack }
        }
        guard !empty.isEmpty else { return nil }
        let list = empty.prefix(6).map { String(format: "%.0f °C at log time %.0f–%.0f s", $0.levelC, $0.start_s, $0.end_s) }
            .joined(separator: ", ") + (empty.count > 6 ? ", …" : "")
        return "the heating log \(log.file) has \(empty.count) hold(s) no frame falls into (\(list)); the frames are read at log times "
            + String(format: "%.0f–%.0f s", lo, hi) + ": if the log's clock differs from the frames', state it with heating_log_offset_s"
    }

    /// The log over the frames' time span (10 % margin each side) on the frames' clock, at
    /// most 2,000 points (each bin's lowest and highest sample, in time order), for the report.
    static func trace(_ log: HeatingLog, clock: LogClock, frameTimes: [Double]) -> LogTrace {
        guard let a = frameTimes.min(), let b = frameTimes.max() else { return LogTrace() }
        let margin = max(1, 0.1 * (b - a))
        let from = a - margin + clock.offsetS, to = b + margin + clock.offsetS
        let t = log.times_s
        let start = t.firstIndex { $0 >= from } ?? t.count
        let end = (t.lastIndex { $0 <= to } ?? -1) + 1
        guard end > start else { return LogTrace() }
        let bins = 1000, count = end - start
        var out = LogTrace()
        for k in 0..<min(bins, count) {
            let i0 = start + k * count / min(bins, count), i1 = start + (k + 1) * count / min(bins, count)
            let slice = i0..<i1
            let lo = slice.min { log.temperaturesC[$0] < log.temperaturesC[$1] }!
            let hi = slice.max { log.temperaturesC[$0] < log.temperaturesC[$1] }!
            for i in Set([lo, hi]).sorted() {
                out.times_s.append(t[i] - clock.offsetS)
                out.temperaturesC.append(log.temperaturesC[i])
            }
        }
        return out
    }

    private static func fmt(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x) }
}

/// A heating log on the frames' clock (`time_s`), thinned for plotting.
public struct LogTrace: Sendable, Equatable {
    public var times_s: [Double] = []
    public var temperaturesC: [Double] = []
    public init() {}
}
