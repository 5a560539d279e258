import Foundation
import Testing
import FrameCore
import FrameIO
import Pipeline
import Simulation

/// The `heatfront` executable built beside the test bundle.
private let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("heatfront")
private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func executable(_ name: String) -> URL? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin"] {
        let url = URL(fileURLWithPath: dir).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return nil
}

/// Runs a program; returns its exit status, standard output and standard error.
@discardableResult
private func shell(_ exe: URL, _ args: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    // Standard error goes to a file, so a chatty program cannot block on a full pipe.
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-stderr-\(UUID())")
    _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errFile) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = try FileHandle(forWritingTo: errFile)
    try p.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let errData = (try? Data(contentsOf: errFile)) ?? Data()
    return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Ends the current test as skipped, saying why (where the toolchain can), else returns
/// after printing the reason.
private func skipTest(_ reason: String) throws {
    #if compiler(>=6.3)
    try Test.cancel(Comment(rawValue: reason))
    #else
    FileHandle.standardError.write(Data((reason + "\n").utf8))
    #endif
}

/// What a run writes for people and other programs: figures (SVG and 300-dpi PNG),
/// column tables in nm, NaN-masked averages with coverage maps, HyperSpy stacks that load
/// with their calibration, and a report that renders in a browser.
@Suite(.serialized) struct FigureOutputTests {
    static let gnuplotInstalled = executable("gnuplot") != nil

    /// A 256 px boundary-front run, 5 frames per hold, analysed once for the suite.
    static let run: (out: URL, summary: RunSummary) = {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-figures-\(getpid())")
        try? FileManager.default.removeItem(at: base)
        let runDir = base.appendingPathComponent("run"), out = base.appendingPathComponent("out")
        var o = SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)
        o.framesPerStep = 5
        try! HeatingRunSimulator(o).write(to: runDir)
        let summary = try! RunPipeline.run(runDir: runDir, outDir: out, options: RunOptions(),
                                           progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        return (out, summary)
    }()

    static func file(_ path: String) -> URL { run.out.appendingPathComponent(path) }

    @Test func everyFigureIsSVGAndA300DPIPNGWithoutDates() throws {
        let names = ["arrhenius", "front_position_vs_time", "li_tm_ratio_vs_time", "li_tm_ratio_vs_temperature",
                     "drift_vs_time", "drift_path", "temperature_vs_time", "phase_map_step_0", "average_step_0"]
        guard Self.gnuplotInstalled else {
            try skipTest("figure test skipped: gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox)"); return
        }
        for name in names {
            let svg = try String(contentsOf: Self.file("plots/\(name).svg"), encoding: .utf8)
            #expect(svg.contains("<svg"), "\(name).svg")
            #expect(!svg.contains("Date") && !svg.contains("2026") && !svg.contains("CreationDate"), "\(name).svg carries a date")
            let png = try Data(contentsOf: Self.file("plots/\(name).png"))
            // pHYs: 11811 px per metre on both axes, unit metre (300 dpi).
            let phys = try #require(png.range(of: Data("pHYs".utf8)), "\(name).png has no pHYs chunk")
            let body = [UInt8](png[phys.upperBound..<(phys.upperBound + 9)])
            #expect(body == [0, 0, 0x2e, 0x23, 0, 0, 0x2e, 0x23, 1], "\(name).png is not marked 300 dpi")
        }
        // The Arrhenius plot: a 1/T axis, the fit's Ea ± SEM and the number of holds in its legend.
        let svg = try String(contentsOf: Self.file("plots/arrhenius.svg"), encoding: .utf8)
        let ea = try #require(Self.run.summary.activationEnergyEV), sem = try #require(Self.run.summary.activationEnergySEMEV)
        #expect(svg.contains("1000 / T (1/K)"))
        #expect(svg.contains(String(format: "Ea = %.2f ± %.2f eV, 4 holds", ea, sem)))
    }

    /// Image figures show the picture the right way up, the file's first row at the top: the
    /// 300-dpi PNG's 16 × 16 px block means over the image box follow the average's own,
    /// not the average mirrored top to bottom; the SVG embeds the phase map's PNG as it is.
    @Test func imageFiguresShowThePictureTheRightWayUp() throws {
        let average = try FrameFiles.open(Self.file("aligned/step_0_average.tif")).frame(signal: 0, frame: 0).image
        let figure = try FrameFiles.open(Self.file("plots/average_step_0.png")).frame(signal: 0, frame: 0).image
        let (w, h) = (average.width, average.height), b = 16
        let scale = 520.0 / Double(max(w, h)), s = 3.0   // the PNG's pixels per SVG pixel
        var shown = [Double](), upright = [Double](), mirrored = [Double]()
        func blockMean(_ x0: Int, _ y0: Int) -> Double? {
            var sum = 0.0, n = 0
            for y in y0..<(y0 + b) { for x in x0..<(x0 + b) where average[x, y].isFinite { sum += Double(average[x, y]); n += 1 } }
            return n == b * b ? sum / Double(n) : nil
        }
        for by in 0..<(h / b) {
            // Blocks under the scale bar and its backing, in the lower left corner, show the marks.
            for bx in 0..<(w / b) where !(Double(bx * b) < 0.35 * Double(w) && Double((by + 1) * b) > 0.85 * Double(h)) {
                guard let a = blockMean(bx * b, by * b), let m = blockMean(bx * b, h - b - by * b) else { continue }
                var sum = 0.0, n = 0
                let fx0 = Int(s * (20 + Double(bx * b) * scale)), fy0 = Int(s * (40 + Double(by * b) * scale))
                let side = Int(s * Double(b) * scale)
                for y in (fy0 + 2)..<(fy0 + side - 2) { for x in (fx0 + 2)..<(fx0 + side - 2) { sum += Double(figure[x, y]); n += 1 } }
                shown.append(sum / Double(n)); upright.append(a); mirrored.append(m)
            }
        }
        func correlation(_ u: [Double], _ v: [Double]) -> Double {
            let mu = u.reduce(0, +) / Double(u.count), mv = v.reduce(0, +) / Double(v.count)
            let c = zip(u, v).map { ($0 - mu) * ($1 - mv) }.reduce(0, +)
            return c / (u.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) * v.map { ($0 - mv) * ($0 - mv) }.reduce(0, +)).squareRoot()
        }
        #expect(shown.count >= 100)
        let right = correlation(shown, upright), wrong = correlation(shown, mirrored)
        #expect(right > 0.95 && right > wrong + 0.3, "figure against the average: r = \(right), mirrored \(wrong)")
        // The marks lie over the picture: the title's dark glyphs above the image box,
        // and in the box's lower left quarter the scale bar, a long row of white pixels.
        let boxTop = Int(s * 40), boxWidth = Int(s * Double(w) * scale), boxHeight = Int(s * Double(h) * scale)
        let titleDark = (0..<boxTop).reduce(0) { n, y in n + (0..<figure.width).filter { figure[$0, y] < 100 }.count }
        #expect(titleDark > 100, "\(titleDark) dark pixels in the title band")
        let longestWhiteRun = ((boxTop + boxHeight / 2)..<(boxTop + boxHeight)).map { y -> Int in
            var best = 0, run = 0
            for x in Int(s * 20)..<(Int(s * 20) + boxWidth / 2) {
                run = figure[x, y] >= 250 ? run + 1 : 0
                best = max(best, run)
            }
            return best
        }.max() ?? 0
        #expect(longestWhiteRun > boxWidth / 12, "longest white run \(longestWhiteRun) px in the box's lower left")
        let svg = try String(contentsOf: Self.file("plots/phase_map_step_0.svg"), encoding: .utf8)
        let map = try Data(contentsOf: Self.file("maps/step_0_phase.png"))
        #expect(svg.contains("href=\"data:image/png;base64,\(map.base64EncodedString())\""))
        // The PNG draws the SVG's legend where the SVG does: each swatch's centre in its colour.
        let png = try PNGPicture(png: Data(contentsOf: Self.file("plots/phase_map_step_0.png")), source: Self.file("plots"))
        let swatches = try Regex(##"<rect x="([0-9.]+)" y="([0-9.]+)" width="14.00" height="10.00" fill="#([0-9a-f]{6})"/>"##)
        var checked = 0
        for m in svg.matches(of: swatches) {
            let x = Int(3 * (Double(m.output[1].substring!)! + 7)), y = Int(3 * (Double(m.output[2].substring!)! + 5))
            let colour = UInt32(m.output[3].substring!, radix: 16)!
            let i = 4 * (y * png.width + x)
            let drawn = UInt32(png.rgba[i]) << 16 | UInt32(png.rgba[i + 1]) << 8 | UInt32(png.rgba[i + 2])
            #expect(drawn == colour, "swatch at (\(x), \(y)): \(String(drawn, radix: 16)) against \(String(colour, radix: 16))")
            checked += 1
        }
        #expect(checked == 6, "\(checked) legend swatches")
    }

    @Test func columnTablesCarryNanometresBesidePixels() throws {
        let text = try String(contentsOf: Self.file("columns/step_1.csv"), encoding: .utf8)
        let rows = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows[0] == ["x_px", "y_px", "x_nm", "y_nm", "sublattice", "intensity"])
        let nm = try #require(Self.run.summary.pixelSizeNm)
        #expect(rows.count > 50)
        // px printed to 0.001, nm to 0.00001: they agree to the rounding of both.
        var worst = 0.0
        for r in rows.dropFirst() {
            let xp = try #require(Double(r[0])), yp = try #require(Double(r[1]))
            let xn = try #require(Double(r[2])), yn = try #require(Double(r[3]))
            worst = max(worst, abs(xn - xp * nm), abs(yn - yp * nm))
        }
        #expect(worst <= 0.0005 * nm + 0.000005 + 1e-12, "nm and px columns differ by \(worst) nm")
    }

    @Test func averagesAreNaNWhereNoFrameCoversWithACoverageMap() throws {
        for k in 0..<4 {
            let avg = try FrameFiles.open(Self.file("aligned/step_\(k)_average.tif")).frame(signal: 0, frame: 0).image
            let cov = try FrameFiles.open(Self.file("aligned/step_\(k)_coverage.tif")).frame(signal: 0, frame: 0).image
            #expect(cov.pixels.max() == 5, "hold \(k): 5 frames")
            for i in avg.pixels.indices { #expect(avg.pixels[i].isNaN == (cov.pixels[i] == 0)) }
        }
        // The simulated drift leaves a border no frame of some hold covers.
        let cov = try FrameFiles.open(Self.file("aligned/step_3_coverage.tif")).frame(signal: 0, frame: 0).image
        #expect(cov.pixels.contains(0))
    }

    /// The stack read back with HeatFront's own HyperSpy reader: one frame per used frame of the
    /// hold, the calibration in nm, and frames whose mean is the hold's aligned average.
    @Test func stacksReadBackWithTheirCalibration() throws {
        let nm = try #require(Self.run.summary.pixelSizeNm)
        for k in 0..<4 {
            let reader = try FrameFiles.open(Self.file("stacks/step_\(k).hspy"))
            let s = reader.signals[0]
            #expect(s.frameCount == 5 && s.width == 256 && s.height == 256)
            #expect(abs((s.pixelSizeXNm ?? 0) - nm) < 1e-9 && abs((s.pixelSizeYNm ?? 0) - nm) < 1e-9)
            let avg = try FrameFiles.open(Self.file("aligned/step_\(k)_average.tif")).frame(signal: 0, frame: 0).image
            let cov = try FrameFiles.open(Self.file("aligned/step_\(k)_coverage.tif")).frame(signal: 0, frame: 0).image
            var sum = [Double](repeating: 0, count: 256 * 256)
            var times: [Double] = []
            for f in 0..<5 {
                let frame = try reader.frame(signal: 0, frame: f)
                if let t = frame.metadata.relativeTime_s { times.append(t) }
                for (i, v) in frame.image.pixels.enumerated() where v.isFinite { sum[i] += Double(v) }
            }
            // Where every frame covers the pixel, the stack's mean is the average.
            var worst = 0.0, compared = 0
            for i in sum.indices where cov.pixels[i] == 5 {
                worst = max(worst, abs(sum[i] / 5 - Double(avg.pixels[i])))
                compared += 1
            }
            #expect(compared > 50_000)
            #expect(worst < 1e-3 * Double(avg.pixels.filter(\.isFinite).max()!), "hold \(k): stack mean differs from the average by \(worst)")
        }
    }

    /// RosettaSciIO (HyperSpy's reader) loads a stack with nm axes, time and temperature, and the
    /// user guide's example (docs/examples/load_outputs.py) runs: in a virtual environment of
    /// its own, made once per machine; skipped when pip cannot install RosettaSciIO and pandas.
    @Test func rosettaSciIOLoadsTheStacksWithNanometreAxes() throws {
        let venv = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-rsciio-venv")
        let python = venv.appendingPathComponent("bin/python")
        let ready = FileManager.default.isExecutableFile(atPath: python.path)
            && (try? shell(python, ["-c", "import rsciio.hspy, h5py, pandas"]))?.0 == 0
        if !ready {
            guard let python3 = executable("python3") else {
                try skipTest("RosettaSciIO test skipped: no python3 to install it into"); return
            }
            let made = try shell(python3, ["-m", "venv", venv.path])
            let installed = made.0 == 0 ? try shell(venv.appendingPathComponent("bin/pip"), ["install", "-q", "rosettasciio", "h5py", "pandas"]) : made
            guard installed.0 == 0 else {
                try? FileManager.default.removeItem(at: venv)
                try skipTest("RosettaSciIO test skipped: pip could not install it (\(installed.2.split(separator: "\n").last ?? ""))"); return
            }
        }
        let script = """
        import sys, numpy as np
        from rsciio.hspy import file_reader
        d = file_reader(sys.argv[1])[0]
        assert d["data"].shape == (5, 256, 256), d["data"].shape
        t, y, x = d["axes"]
        assert t["navigate"] and not y["navigate"] and not x["navigate"]
        assert t["units"] == "s" and t["name"] == "time", t
        assert y["units"] == "nm" and x["units"] == "nm", (y, x)
        assert abs(x["scale"] - float(sys.argv[2])) < 1e-9 and abs(y["scale"] - float(sys.argv[2])) < 1e-9
        hf = d["metadata"]["HeatFront"]
        assert len(hf["time_s"]) == 5 and len(hf["temperature_C"]) == 5
        assert abs(np.median(hf["temperature_C"]) - float(sys.argv[3])) < 3
        assert np.isnan(d["data"]).any() and np.isfinite(d["data"]).mean() > 0.9
        print("ok")
        """
        let step3T = 550.0
        let (status, out, err) = try shell(python, ["-c", script, Self.file("stacks/step_3.hspy").path,
                                                    String(Self.run.summary.pixelSizeNm!), String(step3T)])
        #expect(status == 0 && out.contains("ok"), "\(err)")
        let example = try shell(python, [repository.appendingPathComponent("docs/examples/load_outputs.py").path, Self.run.out.path])
        #expect(example.0 == 0 && example.1.contains("nm per pixel") && example.1.contains("TM columns"), "\(example.2)")
    }

    /// The report in headless Chromium: no console error, every image decoded. A copy of the
    /// page gets a first script that records errors and, once loaded, the images that failed.
    @Test func reportRendersInChromiumWithEveryImageLoaded() throws {
        let installer = repository.appendingPathComponent("scripts/install-chromium.sh")
        if executable("chromium") == nil { _ = try? shell(URL(fileURLWithPath: "/bin/bash"), [installer.path]) }
        guard let chromium = executable("chromium") else {
            try skipTest("browser test skipped: chromium is not installed and scripts/install-chromium.sh could not install it"); return
        }
        let html = try String(contentsOf: Self.file("report.html"), encoding: .utf8)
        let probe = """
        <script>
        window.__errors = [];
        window.addEventListener("error", e => { window.__errors.push(e.message || ("failed: " + (e.target && e.target.alt))); }, true);
        const consoleError = console.error;
        console.error = (...a) => { window.__errors.push(a.join(" ")); consoleError(...a); };
        window.addEventListener("load", () => {
          const images = Array.from(document.images);
          const bad = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
          document.body.setAttribute("data-check", JSON.stringify({ images: images.length, bad: bad, errors: window.__errors }));
        });
        </script>
        """
        let page = Self.run.out.appendingPathComponent("report-probe.html")
        try html.replacingOccurrences(of: "<head>", with: "<head>\n" + probe).write(to: page, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: page) }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-chromium-\(getpid())")
        defer { try? FileManager.default.removeItem(at: profile) }
        let (status, dom, log) = try shell(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)",
                                                      "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                                                      "--dump-dom", "file://\(page.path)"])
        #expect(status == 0, "chromium: \(log.suffix(500))")
        let check = try #require(dom.range(of: "data-check=\"").map { dom[$0.upperBound...].prefix { $0 != "\"" } },
                                 "the page did not finish loading: \(log.suffix(500))")
        let json = String(check).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let images = result["images"] as? Int ?? 0
        #expect(images == 8 + 2 * 4, "8 figures, a phase map and an average per hold: \(images) images")
        #expect((result["bad"] as? [String] ?? ["?"]).isEmpty, "images not loaded: \(result["bad"] ?? "")")
        #expect((result["errors"] as? [String] ?? ["?"]).isEmpty, "errors: \(result["errors"] ?? "")")
        let consoleErrors = log.split(separator: "\n").filter { $0.contains("CONSOLE") && $0.lowercased().contains("error") }
        #expect(consoleErrors.isEmpty, "\(consoleErrors)")
    }

    /// The page speaks in words: warnings before the summary, no machine words, a reason for a missing onset.
    @Test func reportSpeaksInWordsAndSaysWhy() throws {
        let html = try String(contentsOf: Self.file("report.html"), encoding: .utf8)
        for machine in ["frame_metadata", "heating_log<", "li_tm_ratio_mean", "front_velocity_nm_per_s", "step_index"] {
            #expect(!html.contains(machine), "report shows \(machine)")
        }
        #expect(html.contains("Frame times from</td><td>frame metadata"))
        if Self.run.summary.onsetTemperatureC == nil {
            #expect(html.contains("Onset temperature</td><td>— the first hold already shows rock salt")
                    || html.contains("Onset temperature</td><td>— no hold differs"))
        }
        if let w = html.range(of: "class=\"warnings\""), let s = html.range(of: "class=\"summary\"") {
            #expect(w.lowerBound < s.lowerBound)
        }
    }

    /// Without gnuplot the run still writes every plot as SVG and the phase maps and averages
    /// as SVG and PNG, says so in one warning, and does not fail.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path)))
    func withoutGnuplotARunWarnsOnceAndWritesSVG() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-nognuplot-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let (status, _, err) = try shell(heatfront, ["run", repository.appendingPathComponent("SampleFrames/boundary-front").path,
                                                     "--out", out.path],
                                         environment: ["HEATFRONT_GNUPLOT": "/nonexistent/gnuplot"])
        #expect(status == 0, "\(err)")
        #expect(err.components(separatedBy: "gnuplot is not installed").count - 1 == 1, "\(err.suffix(800))")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
        let warnings = (json["warnings"] as? [String] ?? []).filter { $0.contains("gnuplot") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("plots/arrhenius.svg").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("plots/arrhenius.png").path))
        for file in ["plots/phase_map_step_0.svg", "plots/phase_map_step_0.png", "plots/average_step_0.png", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
        }
    }

    /// The bundled boundary-front sample run with `HEATFRONT_GNUPLOT` naming a shell script of
    /// `script`: its output folder and summary.json's gnuplot warnings, for `check`.
    func runWithGnuplot(script: String, _ check: (_ plots: URL, _ warnings: [String]) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-fakegnuplot-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let fake = dir.appendingPathComponent("gnuplot")
        try "#!/bin/sh\n\(script)\n".write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let out = dir.appendingPathComponent("out")
        let (status, _, err) = try shell(heatfront, ["run", repository.appendingPathComponent("SampleFrames/boundary-front").path,
                                                     "--out", out.path],
                                         environment: ["HEATFRONT_GNUPLOT": fake.path])
        #expect(status == 0, "\(err)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
        try check(out.appendingPathComponent("plots"), (json["warnings"] as? [String] ?? []).filter { $0.contains("gnuplot") })
    }

    /// gnuplot failing on one plot of its batch (it goes on with the next): the plots before it
    /// keep their PNGs, that one and every later one are SVG only, one warning names it; the
    /// image figures keep theirs.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path) && gnuplotInstalled))
    func gnuplotFailingOnOneFigureKeepsTheOnesBefore() throws {
        let real = try #require(executable("gnuplot")).path
        // An unknown command right after the Arrhenius plot's SVG output is set.
        try runWithGnuplot(script: "sed 's|^\\(set output \".*/arrhenius\\.svg\"\\)$|\\1\\nnot_a_gnuplot_command|' | \(real) \"$@\"") { plots, warnings in
            #expect(warnings.count == 1 && warnings[0].hasPrefix("gnuplot could not draw arrhenius:"), "\(warnings)")
            for name in ["temperature_vs_time", "front_position_vs_time"] {
                #expect(FileManager.default.fileExists(atPath: plots.appendingPathComponent("\(name).png").path), "\(name)")
            }
            for name in ["arrhenius", "front_velocity_vs_temperature"] {
                #expect(FileManager.default.fileExists(atPath: plots.appendingPathComponent("\(name).svg").path))
                #expect(!FileManager.default.fileExists(atPath: plots.appendingPathComponent("\(name).png").path), "\(name)")
            }
            #expect(FileManager.default.fileExists(atPath: plots.appendingPathComponent("phase_map_step_0.png").path))
        }
    }

    /// A gnuplot that fails: one warning naming the report's first plot and gnuplot's message,
    /// every plot as SVG without a PNG, and the run goes on.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path)))
    func failingGnuplotWarnsOnceFromTheFirstFigure() throws {
        try runWithGnuplot(script: "cat >/dev/null\necho 'unknown terminal type' >&2\nexit 1") { plots, warnings in
            #expect(warnings == ["gnuplot could not draw temperature_vs_time: unknown terminal type; "
                                 + "this and the remaining plots are drawn without gnuplot (SVG only)"], "\(warnings)")
            for name in ["temperature_vs_time", "arrhenius"] {
                #expect(FileManager.default.fileExists(atPath: plots.appendingPathComponent("\(name).svg").path))
                #expect(!FileManager.default.fileExists(atPath: plots.appendingPathComponent("\(name).png").path))
            }
        }
    }
}
