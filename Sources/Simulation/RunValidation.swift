import Foundation
import FrameCore

/// One checked quantity of a validation: the error of a pipeline output against the truth.
public struct Metric: Sendable, Equatable {
    public var name: String
    /// The error (or count); nil when it could not be computed.
    public var value: Double?
    public var unit: String
    /// The target as text (`≤ 0.05`), empty when the metric is only reported.
    public var target: String
    /// Whether the target is met; nil for metrics that are only reported.
    public var passed: Bool?
    public var detail: String

    public init(name: String, value: Double?, unit: String, target: String, passed: Bool?, detail: String = "") {
        self.name = name; self.value = value; self.unit = unit
        self.target = target; self.passed = passed; self.detail = detail
    }
}

/// The outcome of `heatfront validate`.
public struct ValidationReport: Sendable {
    public var metrics: [Metric]
    /// Outputs (or truth files) that were absent or unreadable; each counts as a missed target.
    public var missing: [String]

    public var allPassed: Bool { missing.isEmpty && metrics.allSatisfy { $0.passed != false } }

    public func metric(_ name: String) -> Metric? { metrics.first { $0.name == name } }

    public func text() -> String {
        var s = ""
        let w = max(28, (metrics.map(\.name.count).max() ?? 0) + 2)
        for m in metrics {
            let v = m.value.map { Swift.abs($0) >= 1000 || ($0 != 0 && Swift.abs($0) < 0.001) ? String(format: "%.4g", $0) : String(format: "%.4f", $0) } ?? "—"
            let verdict = m.passed.map { $0 ? "PASS" : "FAIL" } ?? "info"
            let name = m.name.padding(toLength: w, withPad: " ", startingAt: 0)
            s += "\(verdict)  \(name)\(v) \(m.unit)"
            if !m.target.isEmpty { s += "  (target \(m.target))" }
            if !m.detail.isEmpty { s += "  \(m.detail)" }
            s += "\n"
        }
        for m in missing { s += "MISSING  \(m)\n" }
        s += allPassed ? "all targets met\n" : "targets missed\n"
        return s
    }
}

/// Compares a `heatfront run` output folder with a simulated run's ground truth.
///
/// Metrics and targets: registration RMS error after removing the mean offset (the
/// pipeline's reference frame may differ from frame 0), wrongly rejected and missed noise
/// frames, Li/TM ratio and rock-salt fraction of each step, front position RMS, per-step
/// front velocity (steps where the front moves ≥ 1 nm), front width, onset temperature
/// (within one programme step), activation energy (with ≥ 4 moving steps) and the precision
/// of TM column positions in the step averages (RMS deviation from the best-fit ideal lattice).
/// A quantity the truth says is absent (no front in the run) checks that none was reported.
public enum RunValidation {
    /// True rock-salt fraction of the grain within a step's aligned average: the pixels of the
    /// run's reference frame (frame 0's pixels moved by `offset`) that every one of `frames`
    /// shows, on the grain's side of the boundary; the share closer to the boundary than each
    /// frame's true front, averaged over the frames. nil when the area holds no grain.
    public static func rocksaltInAverage(truth: RunTruth, frames: [FrameTruth], offset: SIMD2<Double>) -> Double? {
        guard !frames.isEmpty, truth.propagationDirection.count == 2 else { return nil }
        let w = Double(truth.width - 1), h = Double(truth.height - 1)
        // Reference pixel a lies at a + offset on frame 0 and at a + offset + shift on a frame.
        var lo = SIMD2<Double>(0, 0), hi = SIMD2(w, h)
        for f in frames {
            let s = offset + SIMD2(f.shiftXPx, f.shiftYPx)
            lo = pointwiseMax(lo, -s); hi = pointwiseMin(hi, SIMD2(w, h) - s)
        }
        guard hi.x >= lo.x, hi.y >= lo.y else { return nil }
        let b = SIMD2(truth.boundary.x0, truth.boundary.y0)
        let n = SIMD2(truth.propagationDirection[0], truth.propagationDirection[1])
        var distances: [Double] = []   // nm from the boundary, grain pixels only
        for y in Int(lo.y.rounded(.up))...Int(hi.y.rounded(.down)) {
            for x in Int(lo.x.rounded(.up))...Int(hi.x.rounded(.down)) {
                let d = ((SIMD2(Double(x), Double(y)) + offset - b) * n).sum() * truth.pixelSizeNm
                if d >= 0 { distances.append(d) }
            }
        }
        guard !distances.isEmpty else { return nil }
        distances.sort()
        let fractions = frames.map { f -> Double in
            guard let front = f.frontPositionNm else { return 0 }
            var lo = 0, hi = distances.count   // first distance ≥ front
            while lo < hi { let mid = (lo + hi) / 2; if distances[mid] < front { lo = mid + 1 } else { hi = mid } }
            return Double(lo) / Double(distances.count)
        }
        return fractions.reduce(0, +) / Double(fractions.count)
    }

    /// Spearman's rank correlation (ties get their mean rank); nil with fewer than 3 pairs
    /// or a constant side.
    static func spearman(_ a: [Double], _ b: [Double]) -> Double? {
        guard a.count == b.count, a.count >= 3 else { return nil }
        func ranks(_ v: [Double]) -> [Double] {
            let order = v.indices.sorted { v[$0] < v[$1] }
            var r = [Double](repeating: 0, count: v.count), k = 0
            while k < order.count {
                var e = k
                while e + 1 < order.count && v[order[e + 1]] == v[order[k]] { e += 1 }
                for j in k...e { r[order[j]] = Double(k + e) / 2 + 1 }
                k = e + 1
            }
            return r
        }
        let ra = ranks(a), rb = ranks(b), n = Double(a.count)
        let ma = ra.reduce(0, +) / n, mb = rb.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in ra.indices { sab += (ra[i] - ma) * (rb[i] - mb); saa += (ra[i] - ma) * (ra[i] - ma); sbb += (rb[i] - mb) * (rb[i] - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : nil
    }

    public static func validate(outDir: URL, truthDir: URL) -> ValidationReport {
        let truth: RunTruth, truthFrames: [Int: FrameTruth]
        do { (truth, truthFrames) = try loadTruth(truthDir) }
        catch let e as MissingInput { return ValidationReport(metrics: [], missing: [e.what]) }
        catch { return ValidationReport(metrics: [], missing: ["\(truthDir.path): \(error)"]) }
        var missing: [String] = []
        var metrics: [Metric] = []
        let hasFront = truth.frontWidthNm != nil
        // Where the run's reference frame lies on frame 0 (mean reported − true shift), and
        // the frames the pipeline used: together they give each step average's own area.
        var registrationOffset: SIMD2<Double>? = nil
        var usedFrames: Set<Int> = []

        // Pipeline outputs.
        let frames = CSVTable.load(outDir.appendingPathComponent("frames.csv"))
        let steps = CSVTable.load(outDir.appendingPathComponent("steps.csv"))
        var summary: [String: Any]?
        if let d = try? Data(contentsOf: outDir.appendingPathComponent("summary.json")) {
            summary = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
        }
        if frames == nil { missing.append("frames.csv") }
        if steps == nil { missing.append("steps.csv") }
        if summary == nil { missing.append("summary.json") }

        if let f = frames {
            var out: [Int: [String]] = [:]
            for r in f.rows { if let i = f.int(r, FramesColumn.frameIndex) { out[i] = r } }
            usedFrames = Set(out.filter { (f.string($0.value, FramesColumn.status) ?? "") == "ok" }.keys)
            let registration = registrationMetrics(f, out: out, truth: truth, truthFrames: truthFrames)
            registrationOffset = registration.offset
            metrics += registration.metrics
            metrics += frameMeasurementMetrics(f, out: out, truthFrames: truthFrames, usedFrames: usedFrames, hasFront: hasFront)
        }
        if let s = steps {
            metrics += stepMetrics(s, truth: truth, truthFrames: truthFrames, usedFrames: usedFrames, offset: registrationOffset)
        }
        if let sm = summary { metrics += summaryMetrics(sm, truth: truth) }
        if hasFront, let sm = summary { metrics += originMetrics(summary: sm, truth: truth, offset: registrationOffset) }
        let columns = columnMetrics(outDir, truth: truth)
        metrics += columns.metrics
        missing += columns.missing
        return ValidationReport(metrics: metrics, missing: missing)
    }

    /// A truth or output file that is absent or unreadable.
    struct MissingInput: Error { var what: String }

    /// The run's truth and each frame's, from ground_truth.json and ground_truth.csv.
    static func loadTruth(_ truthDir: URL) throws -> (RunTruth, [Int: FrameTruth]) {
        let truth: RunTruth
        do {
            let data = try Data(contentsOf: truthDir.appendingPathComponent("ground_truth.json"))
            truth = try JSONDecoder().decode(RunTruth.self, from: data)
        } catch {
            throw MissingInput(what: "ground_truth.json in \(truthDir.path): \(error)")
        }
        guard let gt = CSVTable.load(truthDir.appendingPathComponent("ground_truth.csv")) else {
            throw MissingInput(what: "ground_truth.csv in \(truthDir.path)")
        }
        var tf: [Int: FrameTruth] = [:]
        for r in gt.rows {
            guard let i = gt.int(r, FramesColumn.frameIndex) else { continue }
            tf[i] = FrameTruth(frameIndex: i, timeS: gt.double(r, FramesColumn.timeS) ?? 0, temperatureC: gt.double(r, FramesColumn.temperatureC) ?? 0,
                               stepIndex: gt.int(r, FramesColumn.stepIndex) ?? -1, shiftXPx: gt.double(r, FramesColumn.shiftXPx) ?? 0,
                               shiftYPx: gt.double(r, FramesColumn.shiftYPx) ?? 0, liTmRatio: gt.double(r, FramesColumn.liTmRatio) ?? 0,
                               rocksaltFraction: gt.double(r, FramesColumn.rocksaltFraction) ?? 0,
                               frontPositionNm: gt.double(r, FramesColumn.frontPositionNm), expectedStatus: gt.string(r, FramesColumn.status) ?? "ok", file: "")
        }
        return (truth, tf)
    }

    /// Registration error, lattice-vector slips, wrongly rejected and missed noise frames,
    /// frames absent from the output; and the mean registration offset.
    static func registrationMetrics(_ f: CSVTable, out: [Int: [String]], truth: RunTruth,
                                    truthFrames: [Int: FrameTruth]) -> (metrics: [Metric], offset: SIMD2<Double>?) {
        var metrics: [Metric] = []
        var errs: [SIMD2<Double>] = [], errFrames: [Int] = []
        var wrongRejects: [Int] = [], missedNoise: [Int] = [], absent: [Int] = []
        for (i, t) in truthFrames.sorted(by: { $0.key < $1.key }) {
            guard let r = out[i] else { absent.append(i); continue }
            let ok = (f.string(r, FramesColumn.status) ?? "") == "ok"
            if t.expectedStatus == "ok" {
                if !ok { wrongRejects.append(i) }
                if ok, let x = f.double(r, FramesColumn.shiftXPx), let y = f.double(r, FramesColumn.shiftYPx) {
                    errs.append(SIMD2(x - t.shiftXPx, y - t.shiftYPx)); errFrames.append(i)
                }
            } else if ok {
                missedNoise.append(i)
            }
        }
        if errs.isEmpty {
            metrics.append(Metric(name: "registration_rms_error", value: nil, unit: "px", target: "≤ \(truth.registrationTargetPx)",
                                  passed: false, detail: "no registered frames with shifts"))
        } else {
            let mean = errs.reduce(SIMD2(0, 0), +) / Double(errs.count)
            let rms = (errs.map { (($0 - mean) * ($0 - mean)).sum() }.reduce(0, +) / Double(errs.count)).squareRoot()
            metrics.append(Metric(name: "registration_rms_error", value: rms, unit: "px", target: "≤ \(truth.registrationTargetPx)",
                                  passed: rms <= truth.registrationTargetPx,
                                  detail: String(format: "%d frames, mean offset (%.3f, %.3f) px removed", errs.count, mean.x, mean.y)))
        }
        if !errs.isEmpty {
            let off = RunValidation.latticeVectorOff(errs, lattice: truth.tmLattice)
            metrics.append(Metric(name: "frames_lattice_vector_off", value: Double(off.count), unit: "frames", target: "= 0",
                                  passed: off.isEmpty,
                                  detail: "registered frames nearer a lattice alias than the true shift "
                                      + "(median offset removed) " + list(off.map { errFrames[$0] })))
        }
        metrics.append(Metric(name: "wrongly_rejected_frames", value: Double(wrongRejects.count), unit: "frames", target: "= 0",
                              passed: wrongRejects.isEmpty, detail: list(wrongRejects)))
        metrics.append(Metric(name: "missed_noise_frames", value: Double(missedNoise.count), unit: "frames", target: "= 0",
                              passed: missedNoise.isEmpty, detail: list(missedNoise)))
        if !absent.isEmpty || out.count != truthFrames.count {
            metrics.append(Metric(name: "frames_missing_from_output", value: Double(absent.count), unit: "frames", target: "= 0",
                                  passed: absent.isEmpty && out.count == truthFrames.count,
                                  detail: "\(out.count) rows for \(truthFrames.count) frames " + list(absent)))
        }
        return (metrics, errs.isEmpty ? nil : errs.reduce(SIMD2(0, 0), +) / Double(errs.count))
    }

    /// Li/TM ratio per frame (rank correlation with the truth) and the front position per
    /// frame (or that none is reported in a run without a front).
    static func frameMeasurementMetrics(_ f: CSVTable, out: [Int: [String]], truthFrames: [Int: FrameTruth],
                                        usedFrames: Set<Int>, hasFront: Bool) -> [Metric] {
        var metrics: [Metric] = []
        // Li/TM per frame: rank correlation with the truth (target ≥ 0.95).
        var measuredLiTm: [Double] = [], trueLiTm: [Double] = []
        for (i, t) in truthFrames.sorted(by: { $0.key < $1.key }) where t.expectedStatus == "ok" {
            if let r = out[i], let v = f.double(r, FramesColumn.liTmRatio) { measuredLiTm.append(v); trueLiTm.append(t.liTmRatio) }
        }
        let rho = RunValidation.spearman(measuredLiTm, trueLiTm)
        metrics.append(Metric(name: "li_tm_ratio_frame_spearman", value: rho, unit: "", target: "≥ 0.95",
                              passed: rho.map { $0 >= 0.95 } ?? false, detail: "\(measuredLiTm.count) frames"))
        // Front position per frame.
        if hasFront {
            var e: [Double] = [], unreported = 0
            for (i, t) in truthFrames where t.expectedStatus == "ok" && usedFrames.contains(i) {
                guard let tp = t.frontPositionNm else { continue }
                if let r = out[i], let op = f.double(r, FramesColumn.frontPositionNm) { e.append(op - tp) } else { unreported += 1 }
            }
            let rms = e.isEmpty ? nil : (e.map { $0 * $0 }.reduce(0, +) / Double(e.count)).squareRoot()
            metrics.append(Metric(name: "front_position_rms_error", value: rms, unit: "nm", target: "≤ 0.5",
                                  passed: rms.map { $0 <= 0.5 } ?? false,
                                  detail: e.isEmpty ? "no frame with both a true and a reported front"
                                      : "\(e.count) frames" + (unreported > 0 ? "; \(unreported) used frames with a true front report none" : "")))
            // The part every frame shares: the origin's offset plus any common bias.
            let mean = e.isEmpty ? nil : e.reduce(0, +) / Double(e.count)
            metrics.append(Metric(name: "front_position_mean_error", value: mean, unit: "nm", target: "", passed: nil,
                                  detail: "signed mean over the same frames (reported − true)"))
        } else {
            let n = f.rows.filter { f.double($0, FramesColumn.frontPositionNm) != nil }.count
            metrics.append(Metric(name: "front_reported_without_truth", value: Double(n), unit: "frames", target: "= 0",
                                  passed: n == 0, detail: "the run has no front"))
        }
        return metrics
    }

    /// Per-step Li/TM ratio, rock-salt fraction, front velocity (and its uncertainty) and
    /// width; steps matched by `matchSteps`.
    static func stepMetrics(_ s: CSVTable, truth: RunTruth, truthFrames: [Int: FrameTruth], usedFrames: Set<Int>,
                            offset registrationOffset: SIMD2<Double>?) -> [Metric] {
        let byIndex = matchSteps(s, truth: truth)
        var metrics: [Metric] = []
        func stepMetric(_ name: String, _ column: StepsColumn, _ target: Double, _ truthValue: (StepTruth) -> Double) {
            var worst = 0.0, lacking: [Int] = []
            for st in truth.steps {
                guard let r = byIndex[st.stepIndex], let v = s.double(r, column) else { lacking.append(st.stepIndex); continue }
                worst = max(worst, abs(v - truthValue(st)))
            }
            let computed = lacking.count < truth.steps.count
            metrics.append(Metric(name: name, value: computed ? worst : nil, unit: "", target: "≤ \(target)",
                                  passed: computed && lacking.isEmpty && worst <= target,
                                  detail: "max over \(truth.steps.count - lacking.count) steps" + (lacking.isEmpty ? "" : "; no value for steps " + list(lacking))))
        }
        stepMetric("li_tm_ratio_step_error", .liTmRatioMean, 0.05) { $0.liTmRatioMean }
        // A step's rock-salt fraction is the one in its aligned average (docs/outputs.md,
        // steps.csv), whose area is the step's common view inside the run's reference frame;
        // with much drift that differs from the frames' own views (the mean of which the
        // truth file holds).
        let averageArea: [Int: Double] = registrationOffset.map { offset in
            Dictionary(uniqueKeysWithValues: truth.steps.compactMap { st in
                let members = truthFrames.values.filter { $0.stepIndex == st.stepIndex && usedFrames.contains($0.frameIndex) }
                return RunValidation.rocksaltInAverage(truth: truth, frames: members, offset: offset).map { (st.stepIndex, $0) }
            })
        } ?? [:]
        stepMetric("rocksalt_fraction_step_error", .rocksaltFraction, 0.05) { averageArea[$0.stepIndex] ?? $0.rocksaltFraction }
        if truth.frontWidthNm != nil {
            metrics += stepFrontMetrics(s, byIndex: byIndex, truth: truth)
        } else {
            let nv = s.rows.filter { s.double($0, StepsColumn.frontVelocityNmPerS) != nil || s.double($0, StepsColumn.frontWidthNm) != nil }.count
            metrics.append(Metric(name: "front_steps_reported_without_truth", value: Double(nv), unit: "steps", target: "= 0",
                                  passed: nv == 0, detail: "steps with a front velocity or width in a run without a front"))
        }
        return metrics
    }

    /// The steps.csv row of each true step: by index; when the pipeline numbered them
    /// differently (a step split or missed), the nearest step of the same temperature
    /// (within 3 °C) in time.
    static func matchSteps(_ s: CSVTable, truth: RunTruth) -> [Int: [String]] {
        var byIndex: [Int: [String]] = [:]
        for st in truth.steps {
            let same = s.rows.first { s.int($0, StepsColumn.stepIndex) == st.stepIndex }
            if let r = same, let temp = s.double(r, StepsColumn.temperatureC), abs(temp - st.temperatureC) <= 3 { byIndex[st.stepIndex] = r; continue }
            if same != nil, s.double(same!, StepsColumn.temperatureC) == nil { byIndex[st.stepIndex] = same; continue }
            let near = s.rows.filter { r in s.double(r, StepsColumn.temperatureC).map { abs($0 - st.temperatureC) <= 3 } ?? false }
            byIndex[st.stepIndex] = near.min { abs((s.double($0, StepsColumn.tStartS) ?? 1e18) - st.tStartS) < abs((s.double($1, StepsColumn.tStartS) ?? 1e18) - st.tStartS) }
        }
        return byIndex
    }

    /// Front velocity (relative error and uncertainty) and width per step.
    static func stepFrontMetrics(_ s: CSVTable, byIndex: [Int: [String]], truth: RunTruth) -> [Metric] {
        var metrics: [Metric] = []
        var worst = 0.0, lacking: [Int] = [], n = 0
        for st in truth.steps where st.moving {
            guard let vt = st.frontVelocityNmPerS, vt > 0 else { continue }
            guard let r = byIndex[st.stepIndex], let v = s.double(r, StepsColumn.frontVelocityNmPerS) else { lacking.append(st.stepIndex); continue }
            worst = max(worst, abs(v - vt) / vt); n += 1
        }
        metrics.append(Metric(name: "front_velocity_rel_error", value: n > 0 ? worst * 100 : nil, unit: "%", target: "≤ 10",
                              passed: n > 0 && lacking.isEmpty && worst <= 0.1,
                              detail: "max over \(n) steps with ≥ 1 nm of motion" + (lacking.isEmpty ? "" : "; no velocity for steps " + list(lacking))))
        metrics += velocityUncertaintyMetrics(truth: truth, steps: s, byIndex: byIndex)
        var wWorst = 0.0, wn = 0
        let wTrue = truth.frontWidthNm ?? 0
        for st in truth.steps where st.frontPositionStartNm != nil {
            if let r = byIndex[st.stepIndex], let w = s.double(r, StepsColumn.frontWidthNm) { wWorst = max(wWorst, abs(w - wTrue)); wn += 1 }
        }
        metrics.append(Metric(name: "front_width_error", value: wn > 0 ? wWorst : nil, unit: "nm", target: "≤ 1",
                              passed: wn > 0 && wWorst <= 1, detail: "max over \(wn) steps; true width \(wTrue) nm"))
        return metrics
    }

    /// Onset temperature and activation energy (with its uncertainty), or that none is
    /// reported where the truth has none.
    static func summaryMetrics(_ sm: [String: Any], truth: RunTruth) -> [Metric] {
        var metrics: [Metric] = []
        let onset = sm["onset_temperature_C"] as? Double
        let tol = truth.onsetToleranceC
        switch (truth.onsetTemperatureC, onset) {
        case (nil, nil):
            metrics.append(Metric(name: "onset_temperature_error", value: 0, unit: "°C", target: "≤ \(tol)", passed: true, detail: "no onset, as in the truth"))
        case (let t?, let o?):
            metrics.append(Metric(name: "onset_temperature_error", value: abs(o - t), unit: "°C", target: "≤ \(tol)", passed: abs(o - t) <= tol + 1e-9,
                                  detail: "reported \(o), true \(t)"))
        case (let t, let o):
            metrics.append(Metric(name: "onset_temperature_error", value: nil, unit: "°C", target: "≤ \(tol)", passed: false,
                                  detail: "reported \(o.map { "\($0)" } ?? "null"), true \(t.map { "\($0)" } ?? "null")"))
        }
        let ea = sm["activation_energy_eV"] as? Double
        if let te = truth.activationEnergyEV {
            // Scored with at least 3 holds in which the front exists throughout (each has a true velocity).
            let withVelocity = truth.steps.filter { ($0.frontVelocityNmPerS ?? 0) > 0 && $0.frontPositionStartNm != nil }.count
            let enough = withVelocity >= 3
            let err = ea.map { abs($0 - te) }
            metrics.append(Metric(name: "activation_energy_error", value: err, unit: "eV", target: enough ? "≤ 0.1" : "",
                                  passed: enough ? (err.map { $0 <= 0.1 } ?? false) : nil,
                                  detail: "reported \(ea.map { String(format: "%.3f", $0) } ?? "null"), true \(te); \(withVelocity) holds with a front, \(truth.movingStepCount) moving ≥ 1 nm"))
            metrics += activationUncertaintyMetrics(summary: sm, trueEV: te)
        } else {
            metrics.append(Metric(name: "activation_energy_reported_without_truth", value: ea == nil ? 0 : 1, unit: "", target: "= 0",
                                  passed: ea == nil, detail: "the run has no front"))
        }
        return metrics
    }

    /// Precision of the TM column positions in the step averages (columns/step_<k>.csv).
    static func columnMetrics(_ outDir: URL, truth: RunTruth) -> (metrics: [Metric], missing: [String]) {
        var precisions: [Double] = []
        var columnFiles = 0
        for st in truth.steps {
            let url = outDir.appendingPathComponent("columns/step_\(st.stepIndex).csv")
            guard let t = CSVTable.load(url) else { continue }
            columnFiles += 1
            let tm = t.rows.filter { (t.string($0, SitesColumn.sublattice) ?? "") == "tm" }.compactMap { r -> SIMD2<Double>? in
                guard let x = t.double(r, SitesColumn.xPx) ?? t.double(r, "x"), let y = t.double(r, SitesColumn.yPx) ?? t.double(r, "y") else { return nil }
                return SIMD2(x, y)
            }
            if let rms = LatticeFit.rmsDeviation(tm, lattice: truth.tmLattice) { precisions.append(rms * truth.pixelSizeNm * 1000) }
        }
        if columnFiles == 0 {
            return ([], ["columns/step_<k>.csv"])
        } else {
            let worst = precisions.max()
            let target = truth.columnPrecisionTargetPm
            return ([Metric(name: "column_position_precision", value: worst, unit: "pm", target: target.map { "≤ \($0)" } ?? "",
                                  passed: target.map { t in worst.map { $0 <= t } ?? false },
                                  detail: "worst of \(precisions.count) steps (RMS deviation of TM sites from the best-fit lattice)")], [])
        }
    }

    /// Positions in `errors` (registration errors, px) of the frames a whole lattice vector
    /// off: after removing the errors' median (the gauge a majority of frames agrees on), the
    /// lattice point nearest the error is not the origin. A block of frames that slipped
    /// together is counted whole, and a frame merely misregistered by less than half a lattice
    /// vector is not counted.
    public static func latticeVectorOff(_ errors: [SIMD2<Double>], lattice: ColumnLatticeTruth) -> [Int] {
        guard !errors.isEmpty, lattice.alongBasisPx.count == 2, lattice.acrossBasisPx.count == 2 else { return [] }
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2]) }
        let offset = SIMD2(median(errors.map(\.x)), median(errors.map(\.y)))
        let a = SIMD2(lattice.alongBasisPx[0], lattice.alongBasisPx[1]), b = SIMD2(lattice.acrossBasisPx[0], lattice.acrossBasisPx[1])
        let det = a.x * b.y - a.y * b.x
        guard abs(det) > 1e-9 else { return [] }
        return errors.indices.filter { k in
            let d = errors[k] - offset
            let i = (d.x * b.y - d.y * b.x) / det, j = (a.x * d.y - a.y * d.x) / det
            let r0 = (d * d).sum()
            // The nearest lattice point is among the corners of the cell holding d (and their neighbours).
            for di in -1...2 { for dj in -1...2 {
                let ni = floor(i) + Double(di), nj = floor(j) + Double(dj)
                guard ni != 0 || nj != 0 else { continue }
                let e = d - (ni * a + nj * b)
                if (e * e).sum() < r0 { return true }
            } }
            return false
        }
    }

    static func list(_ v: [Int]) -> String {
        v.isEmpty ? "" : "[" + v.prefix(20).map(String.init).joined(separator: ",") + (v.count > 20 ? ",…" : "") + "]"
    }
}

/// Least-squares fit of an ideal 2-D lattice to measured column positions.
public enum LatticeFit {
    /// RMS distance (px) of `sites` from the best-fit lattice `o + i·a + j·b`, where the
    /// indices come from the true basis (with the fractional offset between the pipeline's
    /// reference and frame 0 removed by a circular mean) and o, a, b are refitted. One
    /// refit after dropping sites more than 5× the median residual away (misdetections).
    public static func rmsDeviation(_ sites: [SIMD2<Double>], lattice: ColumnLatticeTruth) -> Double? {
        guard sites.count >= 6 else { return nil }
        let o = SIMD2(lattice.originPx[0], lattice.originPx[1])
        let a = SIMD2(lattice.alongBasisPx[0], lattice.alongBasisPx[1]), b = SIMD2(lattice.acrossBasisPx[0], lattice.acrossBasisPx[1])
        let det = a.x * b.y - a.y * b.x
        guard abs(det) > 1e-9 else { return nil }
        let frac = sites.map { r -> SIMD2<Double> in
            let d = r - o
            return SIMD2((d.x * b.y - d.y * b.x) / det, (a.x * d.y - a.y * d.x) / det)
        }
        func circularMean(_ v: [Double]) -> Double {
            var s = 0.0, c = 0.0
            for x in v { s += sin(2 * .pi * x); c += cos(2 * .pi * x) }
            return atan2(s, c) / (2 * .pi)
        }
        let shiftI = circularMean(frac.map(\.x)), shiftJ = circularMean(frac.map(\.y))
        let idx = frac.map { SIMD2(($0.x - shiftI).rounded(), ($0.y - shiftJ).rounded()) }
        var use = [Bool](repeating: true, count: sites.count)
        var result: Double?
        for pass in 0..<2 {
            // Normal equations for [1, i, j] → x and y separately.
            var m = [[Double]](repeating: [0, 0, 0], count: 3)
            var rx = [0.0, 0, 0], ry = [0.0, 0, 0]
            var n = 0
            for k in sites.indices where use[k] {
                let v = [1, idx[k].x, idx[k].y]
                for p in 0..<3 { for q in 0..<3 { m[p][q] += v[p] * v[q] }; rx[p] += v[p] * sites[k].x; ry[p] += v[p] * sites[k].y }
                n += 1
            }
            guard n >= 6, let cx = LeastSquares.solve(m.flatMap { $0 }, rx, n: 3),
                  let cy = LeastSquares.solve(m.flatMap { $0 }, ry, n: 3) else { return nil }
            var res = [Double](repeating: 0, count: sites.count)
            for k in sites.indices {
                let px = cx[0] + cx[1] * idx[k].x + cx[2] * idx[k].y, py = cy[0] + cy[1] * idx[k].x + cy[2] * idx[k].y
                res[k] = ((sites[k].x - px) * (sites[k].x - px) + (sites[k].y - py) * (sites[k].y - py)).squareRoot()
            }
            let used = sites.indices.filter { use[$0] }.map { res[$0] }
            result = (used.map { $0 * $0 }.reduce(0, +) / Double(used.count)).squareRoot()
            if pass == 0 {
                let med = used.sorted()[used.count / 2]
                let limit = max(5 * med, 1e-6)
                for k in sites.indices { use[k] = res[k] <= limit }
            }
        }
        return result
    }
}
