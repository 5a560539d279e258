import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings

/// Heating logs read as streams, checked row by row, and matched to the frames' clock.
@Suite("Heating-log clock and limits")
struct LogClockTests {
    // MARK: Parsing limits

    @Test("impossible temperatures are errors naming the file and the row")
    func impossibleTemperatures() throws {
        for bad in ["1e308", "-1000"] {
            let e = try #require(throws: HeatingLogError.self) {
                try HeatingLog.parse(text: "time_s,temperature_C\n0,25\n1,\(bad)\n2,30\n", file: "h.csv")
            }
            #expect(e.line == 3 && e.description.hasPrefix("h.csv:3: ") && e.description.contains("not a temperature"))
        }
        let p = try #require(throws: HeatingLogError.self) {
            try HeatingLog.parse(text: "Time, Notes, Channel A Temperature\n0, , 25\n250, , 5000\n", file: "p.csv")
        }
        #expect(p.line == 3)
    }

    @Test("a log streamed from a file over several blocks reads as the same text does, line numbers included")
    func streamedFile() throws {
        var text = "\u{FEFF}time_s,temperature_C\r\n"
        var times: [Double] = [], temps: [Double] = []
        for i in 0..<150_000 {
            let t = Double(i) * 0.1, T = 25 + Double(i % 1000) * 0.01
            text += i % 50_000 == 7 ? "\r\n# a comment\r\n" : ""
            text += "\(t),\(T)\r\n"
            times.append(t); temps.append(T)
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-stream-\(UUID()).csv")
        defer { try? FileManager.default.removeItem(at: url) }
        try text.write(to: url, atomically: true, encoding: .utf8)
        let fromFile = try HeatingLog.load(url)
        #expect(fromFile.times_s == times && fromFile.temperaturesC == temps)
        #expect(try HeatingLog.parse(text: text, file: url.path) == HeatingLog(format: .plain, file: url.path, times_s: times, temperaturesC: temps))
        // An error past the first 1 MiB block names its line.
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        var broken = lines
        broken[120_000] = "12000,hot"
        try broken.joined(separator: "\r\n").write(to: url, atomically: true, encoding: .utf8)
        let e = try #require(throws: HeatingLogError.self) { try HeatingLog.load(url) }
        #expect(e.line == 120_001 && e.description.contains("not a number: 'hot'"))
    }

    @Test("holds from one sliding pass equal the greedy definition, on random logs")
    func holdsMatchGreedyDefinition() throws {
        var rng = LogSplitMix(seed: 7)
        for trial in 0..<200 {
            var t: [Double] = [], T: [Double] = []
            var level = 25.0, now = 0.0
            for _ in 0..<(5 + Int(rng.next() % 6)) {
                let hold = 20 + Double(rng.next() % 80), ramp = Double(rng.next() % 30)
                let target = level + Double(rng.next() % 200) - 60
                for s in stride(from: 0.0, to: ramp, by: 1) { t.append(now + s); T.append(level + (target - level) * s / max(ramp, 1)) }
                now += ramp
                level = target
                for s in stride(from: 0.0, to: hold, by: 1) {
                    t.append(now + s); T.append(level + (Double(rng.next() % 1000) / 1000 - 0.5) * Double(trial % 5))
                }
                now += hold
            }
            let log = HeatingLog(format: .plain, file: "x", times_s: t, temperaturesC: T)
            for (tol, minHold) in [(3.0, 30.0), (1.0, 10.0), (5.0, 60.0)] {
                #expect(log.holds(toleranceC: tol, minHoldS: minHold) == Self.greedyHolds(t, T, tol, minHold), "trial \(trial)")
            }
        }
    }

    /// The definition of `HeatingLog.holds`, written out directly: O(n × stretch) and
    /// sorting medians, as a reference.
    static func greedyHolds(_ t: [Double], _ T: [Double], _ tol: Double, _ minHold: Double) -> [TemperatureHold] {
        var spans: [(Int, Int)] = [], i = 0
        while i < t.count {
            var lo = T[i], hi = lo, j = i
            while j + 1 < t.count, max(hi, T[j + 1]) - min(lo, T[j + 1]) < tol { lo = min(lo, T[j + 1]); hi = max(hi, T[j + 1]); j += 1 }
            if t[j] - t[i] >= minHold { spans.append((i, j)); i = j + 1 } else { i += 1 }
        }
        func level(_ s: (Int, Int)) -> Double {
            let v = T[s.0...s.1].sorted()
            return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
        }
        var merged: [(Int, Int)] = []
        for s in spans {
            if let last = merged.last, abs(level(last) - level(s)) < tol { merged[merged.count - 1] = (last.0, s.1) } else { merged.append(s) }
        }
        return merged.map { TemperatureHold(start_s: t[$0.0], end_s: t[$0.1], levelC: level($0)) }
    }

    // MARK: Config keys

    @Test("heating_log_offset_s, heating_log_start and signal are read, checked and recorded")
    func clockKeys() throws {
        let file = URL(fileURLWithPath: "/runs/heatfront.yaml")
        let c = try RunConfig.parse(yaml: "heating_log_offset_s: -42.5\nsignal: DF4\n", file: file)
        #expect(c.heatingLogOffsetS == -42.5 && c.signal == "DF4")
        let d = try RunConfig.parse(yaml: "heating_log_start: 2024-05-01T12:00:00Z\nsignal: 2\n", file: file)
        #expect(d.heatingLogStart == Date(timeIntervalSince1970: 1_714_564_800) && d.signal == "2")
        let json = String(decoding: try JSONEncoder().encode(d), as: UTF8.self)
        #expect(json.contains("\"heating_log_start\":\"2024-05-01T12:00:00.000Z\""))
        let both = try #require(throws: RunConfigError.self) {
            try RunConfig.parse(yaml: "heating_log_offset_s: 1\nheating_log_start: '2024-05-01T12:00:00'\n", file: file)
        }
        #expect(both.description.contains("not both"))
        #expect(throws: RunConfigError.self) { try RunConfig.parse(yaml: "heating_log_start: yesterday\n", file: file) }
        #expect(throws: RunConfigError.self) { try RunConfig.parse(yaml: "signal: [HAADF]\n", file: file) }
        #expect(throws: RunConfigError.self) { try RunConfig.parse(yaml: "steps: [{glob: '*', temperature_C: 1.0e308}]\n", file: file) }
    }

    @Test("a deeply nested or huge YAML error is one short line")
    func deepYAML() throws {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let e = try #require(throws: RunConfigError.self) { try RunConfig.parse(yaml: text, file: URL(fileURLWithPath: "/r/heatfront.yaml")) }
        #expect(e.description.count < 400 && !e.description.contains("\n"))
    }

    // MARK: Matching the clock

    /// Three holds (100, 200, 300 °C) of 90 s with 10 s ramps on the frames' clock, 5 frames
    /// 20 s apart in each, in folders named by temperature; the log starts `preheat` s before
    /// the first frame at 25 °C.
    static func preheatRun(preheat: Double, folders: [String] = ["100C", "200C", "300C"], yaml: String? = nil) throws -> FakeRun {
        var log = "time_s,temperature_C\n"
        for s in 0...Int(preheat + 400) {
            let f = Double(s) - preheat
            let T: Double = f < -60 ? 25 : f < 0 ? 25 + 75 * (f + 60) / 60 : f < 90 ? 100 : f < 100 ? 100 + (f - 90) * 10
                : f < 190 ? 200 : f < 200 ? 200 + (f - 190) * 10 : 300
            log += "\(s),\(T + (s % 2 == 0 ? 0.2 : -0.2))\n"
        }
        var files: [String: FakeFile] = [:]
        for i in 0..<15 { files["\(folders[i / 5])/f_\(String(format: "%02d", i)).tif"] = .frames(1) }
        var text = ["heating_log.csv": log, "heatfront.yaml": "frame_interval_s: 20\n"]
        if let yaml { text["heatfront.yaml"]! += yaml }
        return try FakeRun(files, text: text)
    }

    static func scan(_ run: FakeRun) throws -> FrameTable {
        try RunFolder.scan(run.dir, config: try RunFolder.loadConfig(runDir: run.dir, configURL: nil), open: run.open)
    }

    @Test("a log that started before the first frame is detected, its offset estimated and reported")
    func preheatLogIsShifted() throws {
        let run = try Self.preheatRun(preheat: 600)
        defer { run.remove() }
        let t = try Self.scan(run)
        let clock = try #require(t.logClock)
        #expect(clock.basis == .estimated)
        #expect(clock.offsetS > 598 && clock.offsetS < 612)
        #expect(t.steps.map { $0.temperatureC.map { ($0 / 10).rounded() * 10 } } == [100, 200, 300])
        #expect(t.steps.map(\.frameIndices) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
        let w = try #require(t.warnings.first { $0.contains("disagrees with the folder and file-name temperatures") })
        #expect(w.contains("15 of 15 frames") && w.contains("heating_log_offset_s: ") && w.contains("100C/f_00.tif"))
        #expect(!t.logTrace.times_s.isEmpty && t.logTrace.times_s.count <= 2000)
    }

    @Test("heating_log_offset_s states the clock: no estimate, no warning")
    func configOffset() throws {
        let run = try Self.preheatRun(preheat: 600, yaml: "heating_log_offset_s: 600\n")
        defer { run.remove() }
        let t = try Self.scan(run)
        #expect(t.logClock?.offsetS == 600 && t.logClock?.basis == .configOffset)
        #expect(t.steps.map(\.frameIndices) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
        #expect(!t.warnings.contains { $0.contains("heating log") })
        // A wrong offset is kept (the user said so) but named.
        let wrong = try Self.preheatRun(preheat: 600, yaml: "heating_log_offset_s: 0\n")
        defer { wrong.remove() }
        #expect(try Self.scan(wrong).warnings.contains { $0.contains("check heating_log_offset_s in") })
    }

    @Test("frames without folder temperatures: holds no frame falls into are named")
    func uncoveredHolds() throws {
        let run = try Self.preheatRun(preheat: 600, folders: ["a", "b", "c"])
        defer { run.remove() }
        let t = try Self.scan(run)
        #expect(t.logClock?.basis == .firstFrame)
        let w = try #require(t.warnings.first { $0.contains("no frame falls into") })
        #expect(w.contains("3 hold(s)") && w.contains("heating_log_offset_s"))
    }

    @Test("folder temperatures no clock shift can match are named, and the log is kept")
    func irreconcilable() throws {
        let run = try Self.preheatRun(preheat: 0, folders: ["1_300C", "2_100C", "3_200C"])
        defer { run.remove() }
        let t = try Self.scan(run)
        #expect(t.logClock?.basis == .firstFrame)
        #expect(t.warnings.contains { $0.contains("no single shift of the log's clock reconciles them") })
        #expect(t.temperatureSource == "heating_log")
    }

    @Test("heating_log_start needs frames with absolute times")
    func logStartNeedsAbsoluteFrames() throws {
        let run = try Self.preheatRun(preheat: 0, yaml: "heating_log_start: 2024-05-01T12:00:00Z\n")
        defer { run.remove() }
        let e = try #require(throws: RunConfigError.self) { try Self.scan(run) }
        #expect(e.key == "heating_log_start")
    }
}

/// SplitMix64, for reproducible random logs.
private struct LogSplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
