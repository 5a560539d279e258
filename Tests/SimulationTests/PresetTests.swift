import Foundation
import Testing
import FrameCore
import Simulation
import FrameIO

/// The presets' runs are consistent across every convention they use.
@Suite struct PresetTests {
    /// Heating log → (seconds since the first frame, °C), per flavour.
    func logSamples(_ sim: HeatingRunSimulator) -> [(Double, Double)] {
        let lines = sim.heatingLogCSV().split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines[0]
        let t0 = sim.frameStartS(0)
        var out: [(Double, Double)] = []
        for f in lines.dropFirst() {
            switch header[0] {
            case "time_s": out.append((Double(f[0])!, Double(f[1])!))
            case "TimeStamp": out.append((Double(f[1])!, Double(f[2])!))
            case "Time":
                guard let ms = Double(f[0]) else { continue }   // Notes rows
                out.append((ms / 1000 - t0, Double(f[2])!))
            case "timestamp":
                // hh:mm:ss.fff of 2025-03-14, the programme starting at 09:30:00.
                let clock = f[0].split(separator: "T")[1].dropLast().split(separator: ":").map { Double($0)! }
                let s = (clock[0] - 9) * 3600 + (clock[1] - 30) * 60 + clock[2]
                out.append((s - t0, Double(f[1])!))
            default: Issue.record("unknown log header \(header)")
            }
        }
        return out
    }

    /// Holds as the contract finds them: stretches ≥ 30 s whose spread stays below 3 °C.
    func holds(_ log: [(Double, Double)]) -> [(Double, Double)] {
        var res: [(Double, Double)] = []
        var i = 0
        while i < log.count {
            var lo = log[i].1, hi = log[i].1, j = i
            while j + 1 < log.count, max(hi, log[j + 1].1) - min(lo, log[j + 1].1) < 3 { j += 1; lo = min(lo, log[j].1); hi = max(hi, log[j].1) }
            if log[j].0 - log[i].0 >= 30 { res.append((log[i].0, log[j].0)); i = j + 1 } else { i += 1 }
        }
        return res
    }

    @Test(arguments: SimulationPreset.allCases)
    func conventionsAgree(preset: SimulationPreset) throws {
        let o = SimulationOptions(preset: preset)
        try o.validate()
        let sim = HeatingRunSimulator(o)
        let t = sim.truth
        #expect(t.pixelSizeNm == o.fieldOfViewNm / Double(o.size))
        #expect(t.width == o.size && t.height == o.height)
        #expect(sim.frameCount == o.holds.count * o.framesPerStep + o.rampFrameHolds.count)
        let log = logSamples(sim)
        let found = holds(log)
        #expect(found.count == o.holds.count, "\(preset): \(found.count) holds in the log")
        let duration = t.frameDurationS
        for i in 0..<sim.frameCount {
            let f = sim.frameTruth(i)
            let mid = f.timeS + duration / 2
            // The log's value at mid-acquisition (linear interpolation) matches the truth.
            let k = try #require(log.firstIndex { $0.0 >= mid })
            let (ta, va) = k > 0 ? log[k - 1] : log[k], (tb, vb) = log[k]
            let v = tb > ta ? va + (vb - va) * (mid - ta) / (tb - ta) : vb
            #expect(abs(v - f.temperatureC) < 0.6, "\(preset) frame \(i): log \(v) vs \(f.temperatureC)")
            // Step numbering = the log's holds in time order; ramp frames fall outside every hold.
            let hold = found.firstIndex { mid >= $0.0 && mid <= $0.1 }
            #expect((hold ?? -1) == f.stepIndex, "\(preset) frame \(i) at \(mid) s: hold \(String(describing: hold)), step \(f.stepIndex)")
            if f.stepIndex >= 0 { #expect(abs(f.temperatureC - o.holds[f.stepIndex].temperatureC) < 1e-9) }
            // File names carry the same temperature where the convention has one.
            if f.stepIndex >= 0, case .temperatureFolders = o.layout {
                let name = f.file.split(separator: "/")[0]
                #expect(name == (o.holds[f.stepIndex].temperatureC == 25 ? "RT" : "\(Int(o.holds[f.stepIndex].temperatureC))C"))
            }
            if f.stepIndex >= 0, case .fileNameTokens = o.layout { #expect(f.file.contains("\(Int(o.holds[f.stepIndex].temperatureC))C_")) }
            if i > 0 { #expect(f.timeS > sim.frameTruth(i - 1).timeS + duration) }
        }
        // The config holds what a user writes, never the truth.
        let yaml = sim.heatfrontYAML()
        #expect(yaml.contains("layer_spacing_nm: \(String(format: "%.3f", o.layerSpacingNm))"))
        #expect(yaml.contains("mode: \(o.registrationMode)"))
        #expect(o.registrationMode == ([.scanDistortion, .strongDistortion].contains(preset) ? "nonrigid" : "rigid"))
        #expect(!yaml.contains("pixel_size") && !yaml.contains("activation") && !yaml.contains("onset_temperature"))
        // The front stays inside the analysed crystal.
        #expect(sim.frameTruth(sim.frameCount - 1).rocksaltFraction < 0.9)
    }

    @Test func boundaryFrontHasArrheniusKinetics() throws {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .boundaryFront, size: 256))
        let t = sim.truth
        #expect(t.movingStepCount >= 4)
        #expect(t.onsetTemperatureC == nil)   // the first hold already shows rock salt
        var xs: [Double] = [], ys: [Double] = []
        for s in t.steps {
            let v = try #require(s.frontVelocityNmPerS)
            // The velocity is the slope of the true front positions over the step.
            let fs = (0..<sim.frameCount).map(sim.frameTruth).filter { $0.stepIndex == s.stepIndex }
            let slope = (fs.last!.frontPositionNm! - fs.first!.frontPositionNm!) / (fs.last!.timeS - fs.first!.timeS)
            #expect(abs(slope / v - 1) < 1e-3, "step \(s.stepIndex): slope \(slope), v \(v)")
            xs.append(1 / (8.617333262e-5 * (s.temperatureC + 273.15))); ys.append(log(v))
        }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        var sxy = 0.0, sxx = 0.0
        for (x, y) in zip(xs, ys) { sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx) }
        #expect(abs(-sxy / sxx - 1.5) < 1e-4)
        #expect(t.activationEnergyEV == 1.5)
    }

    /// Rock-salt fraction = share of the analysed crystal in the frame's own (drifted) view
    /// between boundary and front.
    @Test func rocksaltFractionIsTheGrainAreaBehindTheFront() throws {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .scanDistortion, size: 128))
        let mask = sim.analysedCrystalMask()
        #expect(mask.setCount > 128 * 128 / 2 && mask.setCount < 128 * 128)
        for i in [0, sim.frameCount / 2, sim.frameCount - 1] {
            let t = sim.frameTruth(i)
            let f = try #require(t.frontPositionNm)
            var grain = 0, behind = 0
            for y in 0..<128 { for x in 0..<128 {
                // Frame i's pixel (x, y) shows frame 0's pixel (x, y) − shift.
                let d = sim.boundaryDistanceNm(x: Double(x) - t.shiftXPx, y: Double(y) - t.shiftYPx)
                if d >= 0 { grain += 1; if d < f { behind += 1 } }
            } }
            // Frame 0's own view sits at its mean drift over its scan, a fraction of a pixel
            // from frame 0's pixel grid, hence not exact.
            #expect(abs(Double(behind) / Double(grain) - t.rocksaltFraction) < 1e-3)
        }
    }

    @Test func registrationStressDriftsAbout100Pixels() {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .registrationStress, size: 512))
        let maxShift = (0..<sim.frameCount).map { i -> Double in
            let f = sim.frameTruth(i); return (f.shiftXPx * f.shiftXPx + f.shiftYPx * f.shiftYPx).squareRoot()
        }.max()!
        #expect(maxShift > 70 && maxShift < 140, "registration-stress: largest drift \(maxShift) px")
        #expect(sim.truth.noiseFrames.count == 3)
        #expect(sim.truth.noiseFrames.allSatisfy { sim.frameTruth($0).expectedStatus == "rejected:noise" })
        var few = SimulationOptions(preset: .registrationStress, size: 64)
        few.framesPerStep = 2
        #expect(HeatingRunSimulator(few).truth.noiseFrames.count == 3)
    }

    /// `simulate --neighbour`'s spellings, and the region named in the truth file.
    @Test func neighbourRegionFromItsCommandLineSpelling() {
        #expect(NeighbourRegion(cliValue: "amorphous") == .amorphous)
        #expect(NeighbourRegion(cliValue: "Vacuum") == .vacuum)
        #expect(NeighbourRegion(cliValue: "grain:-19") == .grain(layerAngleDeg: -19))
        for bad in ["grain", "grain:", "grain:abc", "grain:inf", "rock-salt", ""] {
            #expect(NeighbourRegion(cliValue: bad) == nil, "'\(bad)' accepted")
        }
        var options = SimulationOptions(preset: .registrationStress, size: 64)
        options.framesPerStep = 2
        #expect(HeatingRunSimulator(options).truth.neighbour == "amorphous")
        options.neighbour = .grain(layerAngleDeg: 78)
        #expect(HeatingRunSimulator(options).truth.neighbour == "grain (layers at 78.0 deg)")
    }

    @Test func gradualOnsetHasRampFramesAndUniformRise() {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .gradualOnset, size: 128))
        let ramps = (0..<sim.frameCount).map(sim.frameTruth).filter { $0.stepIndex == -1 }
        #expect(ramps.count == 3)
        #expect(ramps.allSatisfy { $0.temperatureC.truncatingRemainder(dividingBy: 25) != 0 })
        #expect(sim.truth.onsetTemperatureC == 175)
        // Non-decreasing up to the small changes of the grain area in view as it drifts.
        let means = sim.truth.steps.map(\.liTmRatioMean)
        #expect(zip(means, means.dropFirst()).allSatisfy { $0 <= $1 + 2e-3 })
        #expect(means.last! - means.first! > 0.1)
        #expect((0..<sim.frameCount).allSatisfy { sim.frameTruth($0).frontPositionNm == nil })
    }

    /// The slow-front regime over seeds: a front that nucleates on the ramp to 200 °C and
    /// creeps 0.6–1.1 nm at 200 °C, 2.4–3.1 nm at 225 °C and about 8 nm at 250 °C, with
    /// uniform mixing from between 150 and 175 °C, and parameters that differ from seed to seed.
    @Test func slowFrontRegimeOverSeeds() throws {
        var widths = Set<Double>(), energies = Set<Double>()
        for seed in 1...20 as ClosedRange<UInt64> {
            let o = SimulationOptions(preset: .slowFront, seed: seed)
            try o.validate()
            #expect(o.size == 1024 && o.height == 512 && o.framesPerStep == 12 && o.format == .png)
            #expect(o.holds.map(\.temperatureC) == [25, 150, 175, 200, 225, 250])
            let sim = HeatingRunSimulator(o)
            let t = sim.truth
            let steps = t.steps
            func travel(_ k: Int) -> Double { (steps[k].frontPositionEndNm ?? .nan) - (steps[k].frontPositionStartNm ?? .nan) }
            #expect(steps[2].frontPositionEndNm == nil && steps[3].frontPositionStartNm != nil, "seed \(seed): nucleation on the ramp")
            #expect(travel(3) >= 0.6 && travel(3) <= 1.1, "seed \(seed): 200 °C travel \(travel(3))")
            #expect(travel(4) >= 2.4 && travel(4) <= 3.1, "seed \(seed): 225 °C travel \(travel(4))")
            #expect(travel(5) >= 6 && travel(5) <= 11, "seed \(seed): 250 °C travel \(travel(5))")
            let w = try #require(t.frontWidthNm)
            #expect(w >= 2 && w <= 6)
            #expect(t.onsetTemperatureC == 175 && t.onsetToleranceC == 12.5)
            // Mixing has not started at 150 °C and is at least 0.009 at 175 °C.
            #expect(steps[1].liTmRatioMean - steps[0].liTmRatioMean < 1e-3)
            #expect(steps[2].liTmRatioMean - steps[0].liTmRatioMean > 0.009)
            // Frames 25 s apart within a hold.
            let hold = (0..<sim.frameCount).map(sim.frameTruth).filter { $0.stepIndex == 4 }
            #expect(hold.count == 12 && zip(hold.dropFirst(), hold).allSatisfy { abs($0.timeS - $1.timeS - 25) < 1e-6 })
            // The front stays in view with layered crystal ahead of it.
            #expect(sim.frameTruth(sim.frameCount - 1).rocksaltFraction < 0.8)
            widths.insert(w); energies.insert(try #require(t.activationEnergyEV))
        }
        #expect(widths.count == 20 && (widths.max()! - widths.min()!) > 2)
        #expect(energies.count == 20)
    }

    /// Frames wider than high: the raster, the truth and the files follow width × height.
    @Test func nonSquareFramesAreRenderedAndWritten() throws {
        var o = SimulationOptions(preset: .slowFront, size: 128)
        o.framesPerStep = 2
        #expect(o.height == 64 && o.pixelSizeNm == 0.2)
        let sim = HeatingRunSimulator(o)
        let image = sim.render(frame: 0)
        #expect(image.width == 128 && image.height == 64)
        #expect(sim.analysedCrystalMask().width == 128 && sim.analysedCrystalMask().height == 64)
        #expect(sim.truth.width == 128 && sim.truth.height == 64)
        // The boundary is clipped to the frame: both ends on its edges, inside 128 × 64.
        let b = sim.truth.boundary
        for (x, y) in [(b.x0, b.y0), (b.x1, b.y1)] { #expect(x >= 0 && x <= 127 && y >= 0 && y <= 63) }
        #expect(b.y0 == 0 || b.y1 == 63 || b.x0 == 0 || b.x1 == 127)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-nonsquare-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try sim.write(to: dir)
        let signal = try #require(try PNGReader(url: dir.appendingPathComponent(sim.frameTruth(0).file)).signals.first)
        #expect(signal.width == 128 && signal.height == 64)
    }

    @Test func badOptionsAreRejectedWithAReason() {
        var o = SimulationOptions(preset: .boundaryFront, size: 16)
        #expect(throws: SimulationError.self) { try o.validate() }
        o = SimulationOptions(preset: .boundaryFront)
        o.framesPerStep = 500
        #expect(throws: SimulationError.self) { try o.validate() }
        o = SimulationOptions(preset: .registrationStress)
        o.noiseFrames.append(.init(hold: 9, frame: 0))
        #expect(throws: SimulationError.self) { try o.validate() }
        #expect(SimulationPreset(cliName: "scan-distortion") == .scanDistortion)
        // The field of view is kept when the size changes, unless the pixel size is set.
        var p = SimulationOptions(preset: .boundaryFront, size: 256)
        #expect(p.pixelSizeNm == 0.05)
        p.size = 128
        #expect(p.pixelSizeNm == 0.1)
        p.pixelSizeNm = 0.03
        p.size = 512
        #expect(p.pixelSizeNm == 0.03)
        #expect(SimulationPreset(cliName: "nonsense") == nil)
        #expect(SimulationPreset(cliName: "slow-front") == .slowFront)
        var q = SimulationOptions(preset: .slowFront)
        q.frameIntervalS = 40
        #expect(throws: SimulationError.self) { try q.validate() }   // 12 frames 40 s apart exceed a 285 s hold
        q.frameIntervalS = 0.5
        #expect(throws: SimulationError.self) { try q.validate() }   // shorter than a frame
    }
}
