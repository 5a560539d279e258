import Dispatch
import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings

// MARK: A fake decoder: whatever header and metadata a test needs, no real file format.

/// What a fake frame file holds: frames of one size with their metadata, or an open error.
struct FakeFile: Sendable {
    var width = 32
    var height = 32
    var metadata: [FrameMetadata] = [FrameMetadata()]
    var openError: FrameIOError? = nil
    var pixelSizeNm: Double? = nil

    static func frames(_ n: Int, width: Int = 32, height: Int = 32, _ meta: (Int) -> FrameMetadata = { _ in FrameMetadata() }) -> FakeFile {
        FakeFile(width: width, height: height, metadata: (0..<n).map(meta))
    }
}

final class FakeReader: FrameFileReader {
    let url: URL
    let spec: FakeFile
    init(url: URL, spec: FakeFile) { self.url = url; self.spec = spec }
    var format: FrameFormat { FrameFormat(fileExtension: url.pathExtension) ?? .tiff }
    var signals: [SignalInfo] {
        [SignalInfo(index: 0, name: "HAADF", frameCount: spec.metadata.count, height: spec.height, width: spec.width,
                    sampleType: .float32, pixelSizeXNm: spec.pixelSizeNm, pixelSizeYNm: spec.pixelSizeNm)]
    }
    var fileMetadata: [String: String] { [:] }
    /// Every pixel of page p is p + 1000 × (the file's name length), so tests can tell frames apart.
    func plane(signal: Int, frame: Int) throws -> PixelPlane {
        let v = Float(frame) + 1000 * Float(url.lastPathComponent.count)
        return PixelPlane(width: spec.width, height: spec.height,
                          values: .float32([Float](repeating: v, count: spec.width * spec.height)))
    }
    func metadata(signal: Int, frame: Int) throws -> FrameMetadata { spec.metadata[frame] }
}

/// A temporary RUN_DIR: empty files at the given relative paths, plus text files, and an
/// opener that serves each frame file's `FakeFile`.
struct FakeRun: Sendable {
    let dir: URL
    let files: [String: FakeFile]

    init(_ files: [String: FakeFile], text: [String: String] = [:]) throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("heatfront-runfolder-\(UUID().uuidString)", isDirectory: true)
        self.files = files
        for path in Array(files.keys) + Array(text.keys) {
            let url = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data((text[path] ?? "").utf8).write(to: url)
        }
    }

    var open: @Sendable (URL) throws -> any FrameFileReader {
        let root = dir.standardizedFileURL.path
        let files = files
        return { url in
            let rel = String(url.standardizedFileURL.path.dropFirst(root.count + 1))
            guard let spec = files[rel] else { throw FrameIOError(.unsupported, url: url, "not in the fake run") }
            if let e = spec.openError { throw e }
            return FakeReader(url: url, spec: spec)
        }
    }

    func scan(_ config: RunConfig = RunConfig(), heatingLog: URL? = nil) throws -> FrameTable {
        try RunFolder.scan(dir, config: config, heatingLog: heatingLog, open: open)
    }

    func url(_ rel: String) -> URL { dir.appendingPathComponent(rel) }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}

let t0 = Date(timeIntervalSince1970: 1_700_000_000)

@Suite("RunFolder")
struct RunFolderTests {
    @Test("natural order, pages in order, hidden files skipped, other files ignored")
    func orderAndIgnored() throws {
        let run = try FakeRun([
            "frame_10.tif": .frames(1), "frame_2.tif": .frames(1), "frame_1.tif": .frames(2),
            ".hidden.tif": .frames(1), ".cache/x.tif": .frames(1),
        ], text: ["notes.txt": "x", "ground_truth.csv": "a", "ground_truth.json": "{}", "run.emi": "", "sub/readme.md": ""])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.map(\.file) == ["frame_1.tif", "frame_1.tif", "frame_2.tif", "frame_10.tif"])
        #expect(t.records.map(\.page) == [0, 1, 0, 0])
        #expect(t.records.map(\.frameIndex) == [0, 1, 2, 3])
        #expect(t.ignored == ["ground_truth.csv", "ground_truth.json", "notes.txt", "run.emi", "sub/readme.md"])
        #expect(t.timeSource == "frame_index")
        #expect(t.records.map(\.timeS) == [0, 1, 2, 3])
        #expect(t.warnings.contains { $0.contains("time_s is the frame index") })
    }

    @Test("the config file and the heating log in RUN_DIR are used, not listed as ignored")
    func configAndLogNotIgnored() throws {
        let run = try FakeRun(["a.tif": .frames(1)],
                              text: ["heatfront.yaml": "frame_interval_s: 2\n", "heating_log.csv": "time_s,temperature_C\n0,25\n10,25\n"])
        defer { run.remove() }
        let config = try RunFolder.loadConfig(runDir: run.dir, configURL: nil)
        let t = try RunFolder.scan(run.dir, config: config, open: run.open)
        #expect(t.ignored.isEmpty)
        #expect(t.temperatureSource == "heating_log")
    }

    @Test("metadata acquisition times order the frames and give time_s")
    func metadataTimes() throws {
        let run = try FakeRun([
            "a.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(20)) },
            "b.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(35.5)) },
            "c.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(10)) },
        ])
        defer { run.remove() }
        let t = try run.scan({ var c = RunConfig(); c.frameIntervalS = 99; return c }())
        #expect(t.records.map(\.file) == ["c.tif", "a.tif", "b.tif"])
        #expect(t.records.map(\.timeS) == [0, 10, 25.5])
        #expect(t.timeSource == "frame_metadata")
    }

    @Test("a stack with one file time and per-page offsets is spread by the offsets")
    func stackRelativeTimes() throws {
        let run = try FakeRun(["stack.tif": .frames(4) { FrameMetadata(acquisitionTime: t0, relativeTime_s: Double($0) * 0.5) },
                               "stack2.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(10)) }])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.map(\.timeS) == [0, 0.5, 1.0, 1.5, 10])
        // One file with relative times only.
        let run2 = try FakeRun(["s.tif": .frames(3) { FrameMetadata(relativeTime_s: 7 + Double($0) * 2) }])
        defer { run2.remove() }
        let t2 = try run2.scan()
        #expect(t2.records.map(\.timeS) == [0, 2, 4])
        #expect(t2.timeSource == "frame_metadata")
    }

    @Test("an unreadable file is one frame, placed after its natural-order neighbour when times order the run")
    func unreadableFrames() throws {
        var bad = FakeFile()
        bad.openError = FrameIOError(.truncated, file: "f_2.dm4", "stops at byte 100")
        let run = try FakeRun([
            "f_1.dm4": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(5)) },
            "f_2.dm4": bad,
            "f_3.dm4": .frames(1) { _ in FrameMetadata(acquisitionTime: t0) },
        ])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.count == 3)
        #expect(t.records.map(\.file) == ["f_3.dm4", "f_1.dm4", "f_2.dm4"])
        #expect(t.records[2].status == .unreadable("truncated"))
        #expect(t.records[2].status.text == "unreadable:truncated")
        #expect(t.records[2].timeS == 5)
        #expect(t.okIndices == [0, 1])
    }

    @Test("Gatan in-situ folder tree gives times; frames within a second are spread")
    func gatanTree() throws {
        let base = "Capture/Hour_01/Minute_59"
        let run = try FakeRun([
            "\(base)/Second_58/cap_Frame_0001.dm4": .frames(1), "\(base)/Second_58/cap_Frame_0002.dm4": .frames(1),
            "\(base)/Second_58/cap_Frame_0003.dm4": .frames(1), "\(base)/Second_58/cap_Frame_0004.dm4": .frames(1),
            "\(base)/Second_59/cap_Frame_0005.dm4": .frames(1), "\(base)/Second_59/cap_Frame_0006.dm4": .frames(1),
            "Capture/Hour_02/Minute_00/Second_00/cap_Frame_0007.dm4": .frames(1),
        ])
        defer { run.remove() }
        let t = try run.scan({ var c = RunConfig(); c.frameIntervalS = 3; return c }())
        #expect(t.timeSource == "gatan_folder_tree")
        #expect(t.records.map(\.timeS) == [0, 0.25, 0.5, 0.75, 1, 1.5, 2])
    }

    @Test("whole-second DM time stamps shared by several files give way to the Gatan capture tree")
    func gatanTreeBeatsCoarseClock() throws {
        let dir = "Hour_00/Minute_00/Second_07"
        let stamp = FakeFile.frames(1) { _ in FrameMetadata(acquisitionTime: t0) }
        let run = try FakeRun(["\(dir)/c_Frame_0001.dm4": stamp, "\(dir)/c_Frame_0002.dm4": stamp,
                               "Hour_00/Minute_00/Second_08/c_Frame_0003.dm4": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(1)) }])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.timeSource == "gatan_folder_tree")
        #expect(t.records.map(\.timeS) == [0, 0.5, 1])
        #expect(t.records.map(\.file).map { $0.hasSuffix("0001.dm4") } == [true, false, false])
    }

    @Test("an output folder inside RUN_DIR can be excluded; symlink loops end")
    func excludeAndLoops() throws {
        let run = try FakeRun(["a.tif": .frames(1), "out/aligned/step_0_average.tif": .frames(1)])
        defer { run.remove() }
        try FileManager.default.createSymbolicLink(at: run.url("loop"), withDestinationURL: run.dir)
        let t = try RunFolder.scan(run.dir, config: RunConfig(), exclude: [run.url("out"), run.url("loop")], open: run.open)
        #expect(t.records.map(\.file) == ["a.tif"])
        let all = try run.scan()
        #expect(all.records.map(\.file) == ["a.tif", "out/aligned/step_0_average.tif"])   // loop → RUN_DIR: not read again
    }

    @Test("frame_interval_s from the config when no file gives times")
    func frameInterval() throws {
        let run = try FakeRun(["a_1.png": .frames(1), "a_2.png": .frames(1), "a_3.png": .frames(1)])
        defer { run.remove() }
        var c = RunConfig()
        c.frameIntervalS = 2.5
        let t = try run.scan(c)
        #expect(t.timeSource == "config_frame_interval_s")
        #expect(t.records.map(\.timeS) == [0, 2.5, 5])
        #expect(!t.warnings.contains { $0.contains("frame index") })
    }

    @Test("temperature sources apply in the contract's priority order")
    func temperaturePriority() throws {
        let withMeta = FakeFile.frames(1) { _ in FrameMetadata(temperatureC: 150) }
        let run = try FakeRun([
            "steps/175C/img_200C_1.tif": withMeta,   // config glob wins over everything
            "meta/175C/img_200C_2.tif": withMeta,    // metadata over folder and file name
            "plain/175C/img_200C_3.tif": .frames(1), // folder over file name
            "plain/x/img_200C_4.tif": .frames(1),    // file name
            "plain/x/img_5.tif": .frames(1),         // unknown
            "plain/x/img_6.tif": .frames(1),         // config frame range
        ])
        defer { run.remove() }
        var c = RunConfig()
        c.steps = [StepRule(glob: "steps/*", temperatureC: 300), StepRule(frames: 3...3, temperatureC: 400)]
        let t = try run.scan(c)
        let byName = Dictionary(uniqueKeysWithValues: t.records.map { ($0.file.split(separator: "/").last!.description, $0) })
        #expect(byName["img_200C_1.tif"]?.temperatureC == 300)
        #expect(byName["img_200C_1.tif"]?.temperatureSource == .configSteps)
        #expect(byName["img_200C_2.tif"]?.temperatureC == 150)
        #expect(byName["img_200C_2.tif"]?.temperatureSource == .frameMetadata)
        #expect(byName["img_200C_3.tif"]?.temperatureC == 175)
        #expect(byName["img_200C_3.tif"]?.temperatureSource == .folderName)
        #expect(byName["img_200C_4.tif"]?.temperatureC == 200)
        #expect(byName["img_200C_4.tif"]?.temperatureSource == .fileName)
        #expect(byName["img_5.tif"]?.temperatureC == nil)
        #expect(byName["img_5.tif"]?.temperatureSource == .unknown)
        #expect(byName["img_6.tif"]?.temperatureC == 400)
        #expect(t.temperatureSource.hasPrefix("mixed: config_steps (2), frame_metadata (1)"))
        #expect(t.warnings.contains { $0.contains("temperature unknown for 1 of 6") })
    }

    @Test("the heating log beats metadata, read at mid-acquisition time with linear interpolation")
    func heatingLogMidAcquisition() throws {
        // 100×100 pixels at 100 µs dwell: 1 s per frame, read at +0.5 s.
        let run = try FakeRun(["f_\(0).tif": .frames(1, width: 100, height: 100) { _ in FrameMetadata(dwellTime_s: 1e-4, temperatureC: 999) },
                               "f_\(1).tif": .frames(1, width: 100, height: 100) { _ in FrameMetadata(dwellTime_s: 1e-4) },
                               "f_\(2).tif": .frames(1, width: 100, height: 100)],
                              text: ["heating_log.csv": "time_s,temperature_C\n0,100\n10,120\n20,140\n"])
        defer { run.remove() }
        var c = RunConfig()
        c.frameIntervalS = 4
        let t = try run.scan(c)
        #expect(t.records.map(\.temperatureSource) == [.heatingLog, .heatingLog, .heatingLog])
        // T(t) = 100 + 2 t: frame 0 at 0.5 s, frame 1 at 4.5 s, frame 2 (no dwell) at 8 s.
        let temps = t.records.map { $0.temperatureC ?? .nan }
        #expect(abs(temps[0] - 101) < 1e-9 && abs(temps[1] - 109) < 1e-9 && abs(temps[2] - 116) < 1e-9)
    }

    @Test("absolute log and frame clocks are aligned; otherwise log time 0 is the first frame")
    func logClockAlignment() throws {
        // The log starts 100 s before the first frame and ramps 1 °C/s from 20 °C.
        var log = "timestamp,temperature_C\n"
        for s in stride(from: 0, through: 400, by: 10) {
            let d = t0.addingTimeInterval(Double(s) - 100)
            log += "\(ISO8601DateFormatter().string(from: d)),\(20 + Double(s))\n"
        }
        let run = try FakeRun(["a_1.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0) },
                               "a_2.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(50)) }],
                              text: ["heating_log.csv": log])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.map(\.temperatureC) == [120, 170])
        // Frames without absolute times: log start = first frame.
        let run2 = try FakeRun(["a_1.tif": .frames(1), "a_2.tif": .frames(1)], text: ["heating_log.csv": log])
        defer { run2.remove() }
        var c = RunConfig()
        c.frameIntervalS = 50
        #expect(try run2.scan(c).records.map(\.temperatureC) == [20, 70])
    }

    @Test("steps from heating-log holds; ramp frames get -1")
    func stepsFromLogHolds() throws {
        // 25 °C for 0–60 s, ramp to 175 over 60–75 s, 175 °C to 200 s, ramp to 200 by 210 s, hold to 330 s.
        var log = "time_s,temperature_C\n"
        for s in 0...330 {
            let t: Double = s <= 60 ? 25 : s <= 75 ? 25 + Double(s - 60) * 10 : s <= 200 ? 175 : s <= 210 ? 175 + Double(s - 200) * 2.5 : 200
            log += "\(s),\(t + (s % 2 == 0 ? 0.3 : -0.3))\n"
        }
        var files: [String: FakeFile] = [:]
        for i in 0..<33 { files["f_\(i).tif"] = .frames(1) }   // one frame every 10 s
        let run = try FakeRun(files, text: ["heating_log.csv": log])
        defer { run.remove() }
        var c = RunConfig()
        c.frameIntervalS = 10
        let t = try run.scan(c)
        #expect(t.holds.count == 3)
        #expect(t.holds.map { $0.levelC.rounded() } == [25, 175, 200])
        let steps = t.records.map(\.stepIndex)
        // Frames at 0…60 s: step 0; 70 s: ramp; 80…200: step 1 (hold begins ~75 s); 210…330: step 2.
        #expect(Array(steps[0...6]) == [0, 0, 0, 0, 0, 0, 0])
        #expect(steps[7] == -1)
        #expect(Array(steps[8...20]) == [Int](repeating: 1, count: 13))
        #expect(Array(steps[22...32]) == [Int](repeating: 2, count: 11))
        #expect(t.steps.count == 3)
        #expect(t.steps.map { $0.temperatureC.map { $0.rounded() } } == [25, 175, 200])
    }

    @Test("without a log, a step is a maximal run of frames within the tolerance")
    func stepsWithoutLog() throws {
        let temps: [Double] = [25, 25, 26.5, 175, 176, 177.9, 200, 201, 199]
        var files: [String: FakeFile] = [:]
        for (i, T) in temps.enumerated() { files["f_\(i).tif"] = .frames(1) { _ in FrameMetadata(temperatureC: T) } }
        let run = try FakeRun(files)
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.map(\.stepIndex) == [0, 0, 0, 1, 1, 1, 2, 2, 2])
        #expect(t.steps.map(\.temperatureC) == [25, 176, 200])
        #expect(t.steps.map(\.frameIndices) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
        // A drift beyond the tolerance inside one "hold" starts a new step.
        let assigned = try FakeRun(["a_1.tif": .frames(1) { _ in FrameMetadata(temperatureC: 100) },
                                    "a_2.tif": .frames(1) { _ in FrameMetadata(temperatureC: 102) },
                                    "a_3.tif": .frames(1) { _ in FrameMetadata(temperatureC: 104) }])
        defer { assigned.remove() }
        #expect(try assigned.scan().records.map(\.stepIndex) == [0, 0, 1])
    }

    @Test("unknown temperatures: one step and a warning")
    func unknownTemperatureOneStep() throws {
        let run = try FakeRun(["a_1.tif": .frames(3), "a_2.tif": .frames(2)])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.records.map(\.stepIndex) == [0, 0, 0, 0, 0])
        #expect(t.steps.count == 1 && t.steps[0].temperatureC == nil)
        #expect(t.temperatureSource == "unknown")
        #expect(t.warnings.contains { $0.contains("temperature unknown for 5 of 5") })
    }

    @Test("frames of another size than the most common are rejected:size")
    func mixedSizes() throws {
        let run = try FakeRun(["a_1.tif": .frames(2, width: 64, height: 48), "a_2.tif": .frames(1, width: 32, height: 32),
                               "a_3.tif": .frames(1, width: 64, height: 48)])
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.frameWidth == 64 && t.frameHeight == 48)
        #expect(t.records.map(\.status.text) == ["ok", "ok", "rejected:size", "ok"])
        #expect(t.okIndices == [0, 1, 3])
        #expect(t.warnings.contains { $0.contains("rejected:size") })
    }

    @Test("pixel size: config override, else metadata, else nil with a warning")
    func pixelSize() throws {
        let run = try FakeRun(["a.tif": .frames(1) { _ in FrameMetadata(pixelSizeXNm: 0.02) }])
        defer { run.remove() }
        let fromMeta = try run.scan()
        #expect(fromMeta.pixelSizeNm == 0.02 && fromMeta.pixelSizeSource == "metadata")
        var c = RunConfig()
        c.pixelSizeNm = 0.0195
        let fromConfig = try run.scan(c)
        #expect(fromConfig.pixelSizeNm == 0.0195 && fromConfig.pixelSizeSource == "config")
        #expect(fromConfig.records[0].pixelSizeNm == 0.02)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(fromConfig.inspectJSON().utf8)) as? [String: Any])
        let frame = try #require((json["frames"] as? [[String: Any]])?.first)
        #expect(frame["pixel_size_nm"] as? Double == 0.0195 && frame["pixel_size_source"] as? String == "config")
        #expect(frame["metadata_pixel_size_nm"] as? Double == 0.02)
        let bare = try FakeRun(["a.tif": .frames(1)])
        defer { bare.remove() }
        let none = try bare.scan()
        #expect(none.pixelSizeNm == nil && none.pixelSizeSource == "none")
        #expect(none.warnings.contains { $0.contains("no pixel size") })
    }

    @Test("heating_log: in the config names a log in RUN_DIR or beside the config; a Protochips log aligns by clock")
    func configHeatingLog() throws {
        let prot = """
        Time, Notes, Holder Temperature
        , Time units = Milliseconds,
        , Temperature units = Degrees C,
        , Date (yyyy.mm.dd) = 2023.11.14,
        , Time (hh:mm:ss.ms) = 22:12:20.000,
        , User = test,
        0, , 100
        120000, , 220
        """
        // The log starts 60 s before t0 (2023-11-14T22:13:20Z) and ramps 1 °C/s.
        let run = try FakeRun(["a_1.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0) },
                               "a_2.tif": .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(30)) }],
                              text: ["logs/holder.csv": prot])
        defer { run.remove() }
        var c = try RunConfig.parse(yaml: "heating_log: logs/holder.csv\n", file: URL(fileURLWithPath: "/elsewhere/heatfront.yaml"))
        let t = try run.scan(c)
        #expect(t.heatingLogFormat == "protochips")
        #expect(t.records.map(\.temperatureC) == [160, 190])
        #expect(t.ignored.isEmpty)
        c.heatingLog = "nope.csv"
        let e = try #require(throws: RunConfigError.self) { try run.scan(c) }
        #expect(e.description.hasPrefix("/elsewhere/heatfront.yaml: heating_log: no such file"))
        // --heating-log overrides the config; a missing one is an error naming it.
        #expect(throws: HeatingLogError.self) { try run.scan(c, heatingLog: run.url("missing.csv")) }
        #expect(try run.scan(c, heatingLog: run.url("logs/holder.csv")).records[0].temperatureC == 160)
    }

    @Test("roi and lines outside the frame are config errors naming key and file")
    func configAgainstFrameSize() throws {
        let run = try FakeRun(["a.tif": .frames(1, width: 64, height: 64)])
        defer { run.remove() }
        var c = try RunConfig.parse(yaml: "roi: [0, 0, 65, 10]\n", file: URL(fileURLWithPath: "/x/heatfront.yaml"))
        let e = try #require(throws: RunConfigError.self) { try run.scan(c) }
        #expect(e.key == "roi" && e.description.contains("/x/heatfront.yaml"))
        c.roi = PixelRect(x0: 0, y0: 0, x1: 64, y1: 64)
        c.frontBoundary = LineSegment(x0: 0, y0: 10, x1: 80, y1: 10)
        let e2 = try #require(throws: RunConfigError.self) { try run.scan(c) }
        #expect(e2.key == "front.boundary")
        c.frontBoundary = nil
        c.heatingLog = "missing.csv"
        let e3 = try #require(throws: RunConfigError.self) { try run.scan(c) }
        #expect(e3.key == "heating_log")
    }

    @Test("inspect JSON: sorted keys, nulls explicit, the same bytes twice")
    func inspectJSON() throws {
        let run = try FakeRun(["175C/a_1.tif": .frames(1) { _ in FrameMetadata(pixelSizeXNm: 0.02) }, "a_2.tif": .frames(1)])
        defer { run.remove() }
        let a = try run.scan().inspectJSON(), b = try run.scan().inspectJSON()
        #expect(a == b)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(a.utf8)) as? [String: Any])
        let frames = try #require(obj["frames"] as? [[String: Any]])
        #expect(frames.count == 2)
        #expect(frames[0]["file"] as? String == "175C/a_1.tif")
        #expect(frames[0]["temperature_C"] as? Double == 175)
        #expect(frames[0]["temperature_source"] as? String == "folder_name")
        #expect(frames[1]["temperature_C"] is NSNull)
        #expect(frames[1]["status"] as? String == "ok")
        #expect(obj["time_source"] as? String == "frame_index")
        #expect(a.range(of: "\"frame_index\"")!.lowerBound < a.range(of: "\"status\"")!.lowerBound)
    }

    @Test("a 3000-frame stack with a 20000-sample log scans quickly")
    func scale() throws {
        var log = "time_s,temperature_C\n"
        for i in 0..<20_000 {
            let s = Double(i) * 0.25   // 4 Hz for 5000 s: holds of 1000 s at 25, 100, 175, 250, 325 °C with 10 s ramps
            let k = min(4, Int(s / 1000)), u = s - Double(k) * 1000
            log += "\(s),\(25 + 75 * Double(k) - (u < 10 && k > 0 ? 75 * (1 - u / 10) : 0))\n"
        }
        let run = try FakeRun(["stack.tif": .frames(3000, width: 64, height: 64) { FrameMetadata(relativeTime_s: Double($0) * 1.6) }],
                              text: ["heating_log.csv": log])
        defer { run.remove() }
        let clock = ContinuousClock()
        let start = clock.now
        let t = try run.scan()
        let elapsed = clock.now - start
        #expect(t.records.count == 3000)
        #expect(t.steps.map { $0.temperatureC.map { $0.rounded() } } == [25, 100, 175, 250, 325])
        // Ramp frames: those dated strictly between a hold's last sample within 3 °C (ramp + 0.25 s) and
        // the next hold's first (ramp + 9.75 s), with half a sample of slack: 24 of the frames 1.6 s apart.
        #expect(t.records.filter { $0.stepIndex == -1 }.count == 24)
        #expect(elapsed < .seconds(20))
    }

    @Test("RunFrames decodes pages on demand from several threads and keeps few files open")
    func runFrames() throws {
        var files: [String: FakeFile] = [:]
        for i in 0..<6 { files["f_\(i).tif"] = .frames(3, width: 8, height: 8) }
        files["f_9.tif"] = .frames(1, width: 4, height: 4)
        let run = try FakeRun(files)
        defer { run.remove() }
        let t = try run.scan()
        let seq = RunFrames(table: t, indices: t.okIndices.reversed(), maxOpenReaders: 2, open: run.open)
        #expect(seq.count == 18 && seq.width == 8 && seq.height == 8)
        let results = Mutex18()
        DispatchQueue.concurrentPerform(iterations: seq.count) { i in
            let v = (try? seq.image(at: i))?.pixels.first
            results.set(i, v)
        }
        for i in 0..<seq.count {
            let r = seq.records[i]
            #expect(results.get(i) == Float(r.page) + 1000 * Float(r.file.count))
        }
        #expect(seq.openReaderCount <= 2)
        // A rejected frame read anyway throws a size error instead of returning a wrong image.
        let bad = RunFrames(table: t, indices: [18], open: run.open)
        #expect(t.records[18].status == .rejected("size"))
        #expect(throws: FrameIOError.self) { try bad.image(at: 0) }
    }
}

extension RunFolderTests {
    @Test("RunFrames decodes a frame once while it fits the budget, and keeps the first frames of a larger run")
    func decodedFramesKeptWithinBudget() throws {
        var files: [String: FakeFile] = [:]
        for i in 0..<6 { files["f_\(i).tif"] = .frames(3, width: 8, height: 8) }
        let run = try FakeRun(files)
        defer { run.remove() }
        let t = try run.scan()
        let decodes = DecodeCounter()
        let open: @Sendable (URL) throws -> any FrameFileReader = { url in
            CountingReader(try run.open(url), counter: decodes)
        }
        // Two passes over 18 frames of 256 bytes with room for all, for 4, and for none.
        for (budget, kept, expected) in [(1 << 20, 18, 18), (4 * 256 + 100, 4, 18 + 14), (0, 0, 36)] {
            decodes.reset()
            let seq = RunFrames(table: t, indices: t.okIndices, cacheBytes: budget, keepBelowBytesPerSecond: .infinity, open: open)
            var firstPass: [[Float]] = []
            for i in 0..<seq.count { firstPass.append(try seq.image(at: i).pixels) }
            let secondPass = try (0..<seq.count).map { try seq.image(at: $0).pixels }
            #expect(firstPass == secondPass)
            #expect(seq.keptFrameCount == kept)
            #expect(decodes.value == expected)
        }
        // Frames that decode faster than the page faults of keeping them would cost are not kept.
        let fast = RunFrames(table: t, indices: t.okIndices, cacheBytes: 1 << 20, keepBelowBytesPerSecond: 0, open: open)
        for i in 0..<fast.count { _ = try fast.image(at: i) }
        #expect(fast.keptFrameCount == 0)
    }
}

/// Counts decoded planes across threads.
final class DecodeCounter: @unchecked Sendable {
    private var n = 0
    private let lock = NSLock()
    func add() { lock.lock(); n += 1; lock.unlock() }
    func reset() { lock.lock(); n = 0; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// A reader that counts the planes it decodes.
final class CountingReader: FrameFileReader {
    let base: any FrameFileReader
    let counter: DecodeCounter
    init(_ base: any FrameFileReader, counter: DecodeCounter) { self.base = base; self.counter = counter }
    var url: URL { base.url }
    var format: FrameFormat { base.format }
    var signals: [SignalInfo] { base.signals }
    var fileMetadata: [String: String] { base.fileMetadata }
    func plane(signal: Int, frame: Int) throws -> PixelPlane {
        counter.add()
        return try base.plane(signal: signal, frame: frame)
    }
    func metadata(signal: Int, frame: Int) throws -> FrameMetadata { try base.metadata(signal: signal, frame: frame) }
}

/// A fixed-size result box for the concurrent test.
final class Mutex18: @unchecked Sendable {
    private var values = [Float?](repeating: nil, count: 64)
    private let lock = NSLock()
    func set(_ i: Int, _ v: Float?) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> Float? { lock.lock(); defer { lock.unlock() }; return values[i] }
}
