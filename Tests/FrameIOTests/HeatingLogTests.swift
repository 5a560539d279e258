import Foundation
import Testing
import FrameIO

@Suite("HeatingLog")
struct HeatingLogTests {
    @Test("plain CSV with time_s: linear interpolation, nil beyond the log")
    func plainTimeS() throws {
        let log = try HeatingLog.parse(text: "\u{FEFF}time_s,temperature_C\r\n0,25\r\n10,45\r\n\r\n20,45\r\n30,105\r\n", file: "log.csv")
        #expect(log.format == .plain && log.startDate == nil)
        #expect(log.times_s == [0, 10, 20, 30])
        #expect(log.temperature(at: 5) == 35)
        #expect(log.temperature(at: 25) == 75)
        #expect(log.temperature(at: 30) == 105)
        #expect(log.temperature(at: 35) == 105)      // within one sample spacing: the end value
        #expect(log.temperature(at: 41) == nil)
        #expect(log.temperature(at: -11) == nil)
    }

    @Test("plain CSV with ISO-8601 timestamps carries absolute times")
    func plainTimestamps() throws {
        let text = """
        timestamp,temperature_C,setpoint_C
        2024-05-01T12:00:00Z,25.0,25
        2024-05-01 14:00:30.5+02:00,50.0,50
        "2024-05-01T12:01:00",75,75
        """
        let log = try HeatingLog.parse(text: text, file: "log.csv")
        #expect(log.startDate == Date(timeIntervalSince1970: 1_714_564_800))
        #expect(log.times_s == [0, 30.5, 60])
        #expect(log.temperaturesC == [25, 50, 75])
    }

    @Test("ISO-8601 parsing")
    func iso8601() {
        #expect(ISO8601Time.parse("1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601Time.parse("2000-02-29T23:59:59.25-01:30") == Date(timeIntervalSince1970: 951_868_799.25 + 5400))
        #expect(ISO8601Time.parse("2024-13-01T00:00:00") == nil)
        #expect(ISO8601Time.parse("2024-01-01") == nil)
        #expect(ISO8601Time.parse("2024-01-01T00:00:00Zjunk") == nil)
    }

    @Test("Protochips holder log: Time in ms, Notes metadata rows, start date and time")
    func protochips() throws {
        let text = """
        Time, Notes, Channel A Temperature, Channel B Current
        , Time units = Milliseconds,,
        , Temperature units = Degrees C,,
        , Current units = Amps,,
        , Calibration file = C:\\\\Cal\\\\AD21013_8.cal,,
        , Date (yyyy.mm.dd) = 2014.12.03,,
        , Time (hh:mm:ss.ms) = 17:15:37.192,,
        , User = eric,,
        0, , 24.9, 0.001
        250, , 25.1, 0.001
        500, Ramp started, 30.0, 0.002
        1000, , 40.0, 0.003
        """
        let log = try HeatingLog.parse(text: text, file: "prot.csv")
        #expect(log.format == .protochips)
        #expect(log.times_s == [0, 0.25, 0.5, 1.0])
        #expect(log.temperaturesC == [24.9, 25.1, 30, 40])
        let start = try #require(log.startDate)
        #expect(abs(start.timeIntervalSince1970 - 1_417_626_937.192) < 1e-6)
        #expect(abs(log.temperature(at: 0.75)! - 35) < 1e-12)
    }

    @Test("DENSsolutions Impulse export: Experiment time and Temperature Measured")
    func impulse() throws {
        let text = """
        TimeStamp,Experiment time,Temperature Measured (degC),MixValve,Pin Measured
        13:40:19.000,0,21.0,0;0;0,1.0
        13:40:19.511,0.511,21.5,0;0;0,1.0
        13:40:20.022,1.022,22.0,0;0;0,1.0
        """
        let log = try HeatingLog.parse(text: text, file: "StubExperiment_Synchronized data.csv")
        #expect(log.format == .densImpulse)
        #expect(log.times_s == [0, 0.511, 1.022])
        #expect(log.temperaturesC == [21, 21.5, 22])
        #expect(log.startDate == nil)
        let clock = try HeatingLog.parse(text: "TimeStamp,Experiment time,Temperature Measured\na,00:00:01.5,30\nb,00:01:00,40\n", file: "x.csv")
        #expect(clock.times_s == [1.5, 60])
    }

    @Test("holds: set-points found, ramps excluded, short plateaus ignored")
    func holdsAndRamps() throws {
        // 25 °C 0–100 s, ramp 5 °C/s to 175 by 130 s, 175 °C ± 0.5 to 300 s, a 10 s plateau at
        // 190 °C inside a ramp (too short), 250 °C from 340 s to 500 s.
        var t: [Double] = [], T: [Double] = []
        for s in stride(from: 0.0, through: 500, by: 0.5) {
            let noise = 0.5 * sin(s * 1.7)
            let v: Double
            switch s {
            case ..<100: v = 25
            case ..<130: v = 25 + (s - 100) * 5
            case ..<300: v = 175
            case ..<305: v = 175 + (s - 300) * 3
            case ..<315: v = 190
            case ..<340: v = 190 + (s - 315) * 2.4
            default: v = 250
            }
            t.append(s); T.append(v + noise)
        }
        let log = HeatingLog(format: .plain, file: "x", times_s: t, temperaturesC: T)
        let holds = log.holds(toleranceC: 3, minHoldS: 30)
        #expect(holds.count == 3)
        #expect(holds.map { $0.levelC.rounded() } == [25, 175, 250])
        #expect(abs(holds[0].start_s - 0) < 1e-9 && abs(holds[0].end_s - 100) <= 1)
        #expect(abs(holds[1].start_s - 130) <= 1 && abs(holds[1].end_s - 300) <= 1)
        #expect(abs(holds[2].start_s - 340) <= 1 && holds[2].end_s == 500)
        // With a shorter minimum the 190 °C plateau is a hold too.
        #expect(log.holds(toleranceC: 3, minHoldS: 5).map { $0.levelC.rounded() } == [25, 175, 190, 250])
    }

    @Test("neighbouring holds whose levels differ by less than the tolerance merge")
    func mergeHolds() throws {
        // 175 °C for 40 s, a 4 s excursion to 182 °C, then 176.5 °C for 40 s.
        var t: [Double] = [], T: [Double] = []
        for s in 0...84 {
            t.append(Double(s))
            T.append(s < 40 ? 175 : s < 44 ? 182 : 176.5)
        }
        let log = HeatingLog(format: .plain, file: "x", times_s: t, temperaturesC: T)
        let holds = log.holds(toleranceC: 3, minHoldS: 30)
        #expect(holds.count == 1)
        #expect(holds.first?.start_s == 0 && holds.first?.end_s == 84)
        // With a 1 °C tolerance the two levels are separate holds.
        #expect(log.holds(toleranceC: 1, minHoldS: 30).count == 2)
    }

    @Test("errors name the file and the line")
    func errors() throws {
        let e1 = try #require(throws: HeatingLogError.self) { try HeatingLog.parse(text: "time_s,temp\n0,25\n", file: "h.csv") }
        #expect(e1.description.hasPrefix("h.csv:1: ") && e1.description.contains("temperature_C"))
        let e2 = try #require(throws: HeatingLogError.self) { try HeatingLog.parse(text: "time_s,temperature_C\n0,25\n1,hot\n", file: "h.csv") }
        #expect(e2.line == 3 && e2.description.contains("not a number"))
        let e3 = try #require(throws: HeatingLogError.self) { try HeatingLog.parse(text: "temperature_C\n25\n", file: "h.csv") }
        #expect(e3.description.contains("time_s or timestamp"))
        let e4 = try #require(throws: HeatingLogError.self) { try HeatingLog.parse(text: "time_s,temperature_C\n0,25\n", file: "h.csv") }
        #expect(e4.description.contains("fewer than 2"))
        #expect(throws: HeatingLogError.self) { try HeatingLog.parse(text: "", file: "h.csv") }
        #expect(throws: HeatingLogError.self) { try HeatingLog.load(URL(fileURLWithPath: "/nonexistent/heating_log.csv")) }
    }

    @Test("unsorted samples are sorted by time")
    func unsorted() throws {
        let log = try HeatingLog.parse(text: "time_s,temperature_C\n10,30\n0,20\n5,25\n", file: "h.csv")
        #expect(log.times_s == [0, 5, 10] && log.temperaturesC == [20, 25, 30])
    }

    @Test("an empty or non-regular log file is one error naming it")
    func emptyOrFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("heating_log.csv")
        try Data().write(to: empty)
        #expect(throws: HeatingLogError.self) { try HeatingLog.load(empty) }
        let e = #expect(throws: HeatingLogError.self) { try HeatingLog.load(dir) }
        #expect(e.map { "\($0)".contains(dir.path) } == true)
    }
}
