import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings

@Suite("RunConfig")
struct RunConfigTests {
    let file = URL(fileURLWithPath: "/runs/lco/heatfront.yaml")

    func parse(_ yaml: String) throws -> RunConfig { try RunConfig.parse(yaml: yaml, file: file) }

    func failure(_ yaml: String) throws -> RunConfigError {
        try #require(throws: RunConfigError.self) { try parse(yaml) }
    }

    @Test("the contract's example config reads into every field")
    func fullExample() throws {
        let c = try parse("""
        pixel_size_nm: 0.0195        # overrides metadata when set
        frame_interval_s: 2.0
        heating_log: heating_log.csv
        roi: [10, 20, 200, 220]
        step_tolerance_C: 3
        min_hold_s: 30
        material:
          layer_spacing_nm: 0.468
        registration:
          mode: nonrigid
          max_shift_px: 200
        profile:
          line: [0, 5.5, 100, 5.5]
          width_px: 16
        front:
          boundary: [0, 0, 0, 127]
        steps:
          - {glob: "hold_175/*", temperature_C: 175}
          - {frames: [0, 39], temperature_C: 25}
        """)
        #expect(c.pixelSizeNm == 0.0195 && c.frameIntervalS == 2 && c.heatingLog == "heating_log.csv")
        #expect(c.roi == PixelRect(x0: 10, y0: 20, x1: 200, y1: 220))
        #expect(c.stepToleranceC == 3 && c.minHoldS == 30 && c.layerSpacingNm == 0.468)
        #expect(c.registrationMode == .nonrigid && c.maxShiftPx == 200)
        #expect(c.profileLine == LineSegment(x0: 0, y0: 5.5, x1: 100, y1: 5.5) && c.profileWidthPx == 16)
        #expect(c.frontBoundary == LineSegment(x0: 0, y0: 0, x1: 0, y1: 127))
        #expect(c.steps == [StepRule(glob: "hold_175/*", temperatureC: 175), StepRule(frames: 0...39, temperatureC: 25)])
        #expect(c.sourceFile == file)
    }

    @Test("contrast and the registration band are read, and impossible values named")
    func contrastAndBand() throws {
        let c = try parse("contrast: dark_columns\nregistration:\n  band: [0.02, 0.18]\n")
        #expect(c.contrast == .darkColumns)
        #expect(c.registrationBand == FrequencyBand(low: 0.02, high: 0.18))
        #expect(RunConfig().contrast == .auto && RunConfig().registrationBand == nil)
        #expect(try failure("contrast: abf\n").description.contains("contrast: expected auto, bright_columns or dark_columns"))
        #expect(try failure("registration:\n  band: [0.3, 0.2]\n").key == "registration.band")
        #expect(try failure("registration:\n  band: [0.01, 0.7]\n").key == "registration.band")
    }

    @Test("an empty file, comments only, or null values give the defaults")
    func defaults() throws {
        var d = RunConfig()
        d.sourceFile = file
        #expect(try parse("") == d)
        #expect(try parse("# nothing here\n") == d)
        #expect(try parse("pixel_size_nm:\nregistration:\n  mode: ~\n") == d)
        let c = RunConfig()
        #expect(c.stepToleranceC == 3 && c.minHoldS == 30 && c.layerSpacingNm == 0.468 && c.registrationMode == .rigid
                && c.maxShiftPx == 200 && c.profileWidthPx == 16 && c.steps.isEmpty && c.pixelSizeNm == nil)
    }

    @Test("the contract's own error message for a bad registration mode")
    func badMode() throws {
        let e = try failure("registration:\n  mode: fast\n")
        #expect(e.description == "/runs/lco/heatfront.yaml: registration.mode: expected rigid or nonrigid, got 'fast' (line 2)")
    }

    @Test("every bad value is an error naming its key and the file", arguments: [
        ("pixel_size: 0.02\n", "pixel_size", "unknown key"),
        ("registration:\n  speed: 2\n", "registration.speed", "unknown key"),
        ("material:\n  spacing: 2\n", "material.spacing", "unknown key"),
        ("pixel_size_nm: -0.02\n", "pixel_size_nm", "positive"),
        ("pixel_size_nm: 0\n", "pixel_size_nm", "positive"),
        ("pixel_size_nm: \"0.02\"\n", "pixel_size_nm", "expected a number"),
        ("pixel_size_nm: abc\n", "pixel_size_nm", "expected a number"),
        ("pixel_size_nm: [1, 2]\n", "pixel_size_nm", "expected a number"),
        ("pixel_size_nm: .nan\n", "pixel_size_nm", "finite"),
        ("frame_interval_s: -1\n", "frame_interval_s", "positive"),
        ("step_tolerance_C: 0\n", "step_tolerance_C", "positive"),
        ("min_hold_s: -5\n", "min_hold_s", "negative"),
        ("material:\n  layer_spacing_nm: -0.4\n", "material.layer_spacing_nm", "positive"),
        ("registration: rigid\n", "registration", "expected a mapping"),
        ("registration:\n  max_shift_px: 0\n", "registration.max_shift_px", "positive"),
        ("registration:\n  mode: 3\n", "registration.mode", "expected rigid or nonrigid"),
        ("roi: [0, 0, 10]\n", "roi", "list of 4"),
        ("roi: [0, 0, 10.5, 10]\n", "roi", "whole pixels"),
        ("roi: [10, 0, 5, 10]\n", "roi", "x1 > x0"),
        ("roi: [-1, 0, 5, 10]\n", "roi", "negative"),
        ("profile:\n  width_px: -16\n", "profile.width_px", "positive"),
        ("profile:\n  line: [0, 0, 0, 0]\n", "profile.line", "same point"),
        ("profile:\n  line: [0, -3, 10, 0]\n", "profile.line", "negative"),
        ("front:\n  boundary: yes\n", "front.boundary", "list of 4"),
        ("heating_log: 5\n", "heating_log", "expected text"),
        ("steps: {glob: a}\n", "steps", "list"),
        ("steps:\n  - {glob: \"a/*\"}\n", "steps[0]", "missing temperature_C"),
        ("steps:\n  - {glob: \"a/*\", frames: [0, 1], temperature_C: 20}\n", "steps[0]", "exactly one of glob or frames"),
        ("steps:\n  - {temperature_C: 20}\n", "steps[0]", "exactly one of glob or frames"),
        ("steps:\n  - {frames: [5, 1], temperature_C: 20}\n", "steps[0].frames", "first <= last"),
        ("steps:\n  - {frames: [0, 1], temperature_C: -300}\n", "steps[0].temperature_C", "absolute zero"),
        ("steps:\n  - {frames: [0, 1], temperature_C: 20, note: x}\n", "steps[0].note", "unknown key"),
    ])
    func badValues(yaml: String, key: String, fragment: String) throws {
        let e = try failure(yaml)
        #expect(e.key == key)
        #expect(e.description.hasPrefix("/runs/lco/heatfront.yaml: \(key): "), "\(e)")
        #expect(e.message.contains(fragment), "\(e)")
        #expect(e.line != nil)
    }

    @Test("YAML syntax errors and unreadable files name the file")
    func syntaxAndIO() throws {
        let e = try failure("registration: [unclosed\n")
        #expect(e.description.hasPrefix("/runs/lco/heatfront.yaml: not valid YAML"))
        let dup = try failure("min_hold_s: 1\nmin_hold_s: 2\n")
        #expect(dup.description.hasPrefix("/runs/lco/heatfront.yaml: ") && dup.description.contains("min_hold_s"))
        let missing = URL(fileURLWithPath: "/nonexistent/heatfront.yaml")
        let e2 = try #require(throws: RunConfigError.self) { try RunConfig.load(missing) }
        #expect(e2.file == missing.path)
        #expect(throws: RunConfigError.self) { try RunFolder.loadConfig(runDir: URL(fileURLWithPath: "/tmp"), configURL: missing) }
    }

    @Test("roi and lines are checked against the frame size")
    func frameSizeChecks() throws {
        let c = try parse("roi: [0, 0, 512, 512]\nprofile:\n  line: [0, 0, 511, 511]\n")
        try c.validate(frameWidth: 512, frameHeight: 512)
        let e = try #require(throws: RunConfigError.self) { try c.validate(frameWidth: 256, frameHeight: 512) }
        #expect(e.description.hasPrefix("/runs/lco/heatfront.yaml: roi: "))
        var c2 = c
        c2.roi = nil
        let e2 = try #require(throws: RunConfigError.self) { try c2.validate(frameWidth: 256, frameHeight: 256) }
        #expect(e2.key == "profile.line" && e2.message.contains("outside the 256×256 frame"))
    }

    @Test("step rules: globs match the relative path (and the file name when they have no '/'), ranges the frame index")
    func stepRuleMatching() {
        let folder = StepRule(glob: "hold_175/*", temperatureC: 175)
        #expect(folder.matches(relativePath: "hold_175/a.tif", fileName: "a.tif", frameIndex: 0))
        #expect(folder.matches(relativePath: "hold_175/sub/a.tif", fileName: "a.tif", frameIndex: 0))
        #expect(!folder.matches(relativePath: "hold_200/a.tif", fileName: "a.tif", frameIndex: 0))
        #expect(!folder.matches(relativePath: "x/hold_175/a.tif", fileName: "a.tif", frameIndex: 0))
        let name = StepRule(glob: "*_175C_*.tif", temperatureC: 175)
        #expect(name.matches(relativePath: "day1/img_175C_01.tif", fileName: "img_175C_01.tif", frameIndex: 3))
        #expect(!name.matches(relativePath: "day1/img_200C_01.tif", fileName: "img_200C_01.tif", frameIndex: 3))
        let range = StepRule(frames: 0...39, temperatureC: 25)
        #expect(range.matches(relativePath: "x", fileName: "x", frameIndex: 39))
        #expect(!range.matches(relativePath: "x", fileName: "x", frameIndex: 40))
    }

    @Test("the effective config encodes with the YAML's names and explicit nulls")
    func effectiveJSON() throws {
        let c = try parse("registration:\n  mode: nonrigid\nsteps:\n  - {frames: [0, 3], temperature_C: 25}\n")
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = String(decoding: try enc.encode(c.effective), as: UTF8.self)
        #expect(json.contains("\"registration\":{\"band\":null,\"max_shift_px\":200,\"mode\":\"nonrigid\"}"))
        #expect(json.contains("\"contrast\":\"auto\""))
        #expect(json.contains("\"pixel_size_nm\":null"))
        #expect(json.contains("\"steps\":[{\"frames\":[0,3],\"temperature_C\":25}]"))
        #expect(json.contains("\"material\":{\"layer_spacing_nm\":0.468}"))
        #expect(!json.contains("runs/lco"))
    }
}
