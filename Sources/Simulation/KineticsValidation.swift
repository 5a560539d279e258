import Foundation
import FrameCore

/// The uncertainty checks of `RunValidation`: whether the reported standard errors, upper
/// bounds and confidence intervals mean what they say. One run gives a handful of holds, so
/// these are reported, not scored; a sweep over seeds pools them (`scripts/sweep-kinetics.sh`):
/// about 68 % of true values should lie within one reported SEM.
extension RunValidation {
    /// Per hold in which the front exists throughout (a true velocity): the share of true
    /// velocities within one reported SEM (`k of n`), the worst relative error of the holds
    /// that move less than 1 nm, holds whose true velocity exceeds the reported upper bound,
    /// and moving holds whose motion was reported as not detected.
    static func velocityUncertaintyMetrics(truth: RunTruth, steps s: CSVTable, byIndex: [Int: [String]]) -> [Metric] {
        var within = 0, counted = 0, aboveBound = 0, missedMotion = 0, slowWorst: Double?, zs = [Double]()
        var slowLacking: [Int] = []
        for st in truth.steps {
            guard let vt = st.frontVelocityNmPerS, vt > 0, st.frontPositionStartNm != nil else { continue }
            guard let r = byIndex[st.stepIndex], let v = s.double(r, StepsColumn.frontVelocityNmPerS) else {
                if !st.moving { slowLacking.append(st.stepIndex) }
                continue
            }
            if let sem = s.double(r, StepsColumn.frontVelocitySEMNmPerS), sem > 0 {
                counted += 1
                if abs(v - vt) <= sem { within += 1 }
                zs.append((v - vt) / sem)
            }
            if !st.moving { slowWorst = max(slowWorst ?? 0, abs(v - vt) / vt) }
            if let upper = s.double(r, StepsColumn.frontVelocityUpperNmPerS), vt > upper { aboveBound += 1 }
            if st.moving, s.string(r, StepsColumn.frontMotionDetected) == "false" { missedMotion += 1 }
        }
        let zText = zs.map { String(format: "%+.2f", $0) }.joined(separator: " ")
        return [
            Metric(name: "front_velocity_sem_coverage", value: counted > 0 ? Double(within) / Double(counted) : nil, unit: "",
                   target: "", passed: nil, detail: "\(within) of \(counted) holds within one SEM; (v − v_true)/SEM: \(zText)"),
            Metric(name: "front_velocity_slow_rel_error", value: slowWorst.map { $0 * 100 }, unit: "%", target: "", passed: nil,
                   detail: "max over holds with a front moving < 1 nm" + (slowLacking.isEmpty ? "" : "; no velocity for steps " + list(slowLacking))),
            Metric(name: "front_velocity_above_upper_bound", value: Double(aboveBound), unit: "holds", target: "", passed: nil,
                   detail: "holds whose true velocity exceeds the reported 95 % upper bound"),
            Metric(name: "front_motion_missed", value: Double(missedMotion), unit: "holds", target: "= 0", passed: missedMotion == 0,
                   detail: "holds moving ≥ 1 nm reported as not detected"),
        ]
    }

    /// Whether the true Eₐ lies within one reported SEM (`k of 1`) and within the reported
    /// 95 % confidence interval.
    static func activationUncertaintyMetrics(summary sm: [String: Any], trueEV: Double) -> [Metric] {
        guard let ea = sm["activation_energy_eV"] as? Double else { return [] }
        var out: [Metric] = []
        if let sem = sm["activation_energy_sem_eV"] as? Double {
            let inside = abs(ea - trueEV) <= sem
            out.append(Metric(name: "activation_energy_sem_coverage", value: inside ? 1 : 0, unit: "", target: "", passed: nil,
                              detail: "\(inside ? 1 : 0) of 1 within one SEM (\(String(format: "%.3f ± %.3f", ea, sem)) eV)"))
        }
        if let ci = sm["activation_energy_ci95_eV"] as? [Double], ci.count == 2 {
            let inside = trueEV >= ci[0] && trueEV <= ci[1]
            out.append(Metric(name: "activation_energy_ci95_coverage", value: inside ? 1 : 0, unit: "", target: "", passed: nil,
                              detail: "\(inside ? 1 : 0) of 1 inside [\(String(format: "%.3f, %.3f", ci[0], ci[1]))] eV"))
        }
        return out
    }

    /// The origin: the reported boundary line (`front_boundary_px`, on the run's reference
    /// frame) placed on frame 0 by the registration offset, and its signed distance (nm,
    /// along the true propagation direction) from the true boundary at the reported
    /// segment's midpoint — the position along the front that the reported positions
    /// average over.
    static func originMetrics(summary sm: [String: Any], truth: RunTruth, offset: SIMD2<Double>?) -> [Metric] {
        guard let b = sm["front_boundary_px"] as? [Double], b.count == 4, let offset,
              truth.propagationDirection.count == 2 else {
            return [Metric(name: "front_origin_error", value: nil, unit: "nm", target: "", passed: nil,
                           detail: "no reported boundary (front_boundary_px) or registration to place it")]
        }
        let mid = SIMD2((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) + offset
        let n = SIMD2(truth.propagationDirection[0], truth.propagationDirection[1])
        let d = ((mid - SIMD2(truth.boundary.x0, truth.boundary.y0)) * n).sum() * truth.pixelSizeNm
        return [Metric(name: "front_origin_error", value: d, unit: "nm", target: "≤ 0.5", passed: abs(d) <= 0.5,
                       detail: "reported boundary's midpoint from the true boundary, along the propagation direction")]
    }
}
