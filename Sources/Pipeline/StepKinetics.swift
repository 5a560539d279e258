import Foundation
import FrameIO
import FrontTracking

/// Assembles a step's row of `steps.csv` from its frames: Li/TM statistics over the used
/// frames, and the front's velocity and width from the step's moving-front fit over all its
/// frames (`MovingFront`): the velocity with the larger of the fit's jackknife SEM (with its
/// Satterthwaite degrees of freedom, `Kinetics.jackknifeSlopeDOF`) and the frames'
/// positions' autocorrelation-corrected one, and the 10–90 % width with its jackknife SEM;
/// then (`pooled`) every hold's velocity SEM from the run's pooled per-frame position noise,
/// with the motion test and upper bound that SEM gives.
enum StepKinetics {
    static func assemble(_ k: Int, table: FrameTable, results: [FrameResult], analysis: StepAnalysis?,
                         front: StoredFront?) -> StepResult {
        let step = table.steps[k]
        let times = step.frameIndices.map { table.records[$0].timeS }
        let used = step.frameIndices.filter { results[$0].status.isOK }
        var r = StepResult(stepIndex: k, temperatureC: step.temperatureC, tStart: times.min() ?? 0, tEnd: times.max() ?? 0,
                           nFrames: step.frameIndices.count, nUsed: used.count)
        let ratios = used.compactMap { results[$0].liTmRatio }
        if !ratios.isEmpty {
            let mean = ratios.reduce(0, +) / Double(ratios.count)
            r.ratioMean = mean
            if ratios.count > 1 {
                let variance = ratios.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(ratios.count - 1)
                r.ratioSEM = (variance / Double(ratios.count)).squareRoot()
            }
        }
        guard let analysis else { return r }
        r.ratioOfAverage = analysis.aggregate.ratio
        r.rocksaltFraction = analysis.phase.rocksaltFraction
        r.columnPrecisionPx = analysis.columnPrecisionPx
        guard let front else { return r }
        let withFront = used.filter { results[$0].frontPositionPx != nil }
        if withFront.count >= 3, let v = front.velocityPxPerS, let jackknife = front.velocitySEMPxPerS {
            // The larger of the jackknife's SEM and that of the frames' positions about their
            // line with their correlation in time (see `Kinetics.autocorrelatedSlopeSEM`).
            let frontTimes = withFront.map { table.records[$0].timeS }
            let jackknifeDOF = Kinetics.jackknifeSlopeDOF(times: frontTimes).map { Int($0.rounded(.down)) } ?? front.frameCount - 1
            var sem = jackknife, dof = max(1, min(front.frameCount - 1, jackknifeDOF))
            if let correlated = Kinetics.autocorrelatedSlopeSEM(times: frontTimes,
                                                                positions: withFront.map { results[$0].frontPositionPx! }),
               correlated.sem > sem {
                sem = correlated.sem
                dof = max(1, Int(correlated.dof.rounded(.down)))
            }
            let fit = VelocityFit(velocity: v, sem: sem, intercept: front.positionPx - v * front.referenceTimeS, dof: dof)
            r.velocityPxPerS = v
            r.velocitySEMPxPerS = sem
            r.velocityDOF = fit.dof
            let meanTime = frontTimes.reduce(0, +) / Double(frontTimes.count)
            r.velocityTimeSpreadS = frontTimes.map { ($0 - meanTime) * ($0 - meanTime) }.reduce(0, +).squareRoot()
            r.frontStartPx = fit.intercept + v * r.tStart
            r.frontEndPx = fit.intercept + v * r.tEnd
        }
        r.frontWidthPx = front.widthPx
        r.frontWidthSEMPx = front.widthSEMPx
        return r
    }

    /// The steps with their velocities' SEMs, degrees of freedom, motion tests and upper
    /// bounds from the per-frame position noise pooled over the run's holds
    /// (`Kinetics.pooledVelocitySEMs`), which a hold's own dozen frames estimate poorly.
    static func pooled(_ steps: [StepResult]) -> [StepResult] {
        let moving = steps.indices.filter { steps[$0].velocityPxPerS != nil && steps[$0].velocitySEMPxPerS != nil }
        let errors = Kinetics.pooledVelocitySEMs(sems: moving.map { steps[$0].velocitySEMPxPerS! },
                                                 dofs: moving.map { Double(steps[$0].velocityDOF ?? 1) },
                                                 timeSpreadsS: moving.map { steps[$0].velocityTimeSpreadS ?? .nan })
        var out = steps
        for (k, e) in zip(moving, errors) {
            let fit = VelocityFit(velocity: steps[k].velocityPxPerS!, sem: e.sem, intercept: 0,
                                  dof: max(1, Int(e.dof.rounded(.down))))
            out[k].velocitySEMPxPerS = fit.sem
            out[k].velocityDOF = fit.dof
            if let motion = fit.motion(level: 0.05) {
                out[k].motionDetected = motion.detected
                out[k].velocityUpperPxPerS = motion.upperBound
            }
        }
        return out
    }

    /// Holds whose velocity the data cannot pin to 10 %: the 90 % interval, ±1.645 SEM, is
    /// wider than ±10 % of the velocity (relative SEM above 6.1 %), so a 10 % accuracy is
    /// beyond the hold's frames whatever the analysis — more frames, dose or travel are needed.
    static func precisionWarnings(_ steps: [StepResult]) -> [String] {
        steps.compactMap { st in
            guard let v = st.velocityPxPerS, let sem = st.velocitySEMPxPerS, v > 0, sem > 0, 1.645 * sem / v > 0.10 else { return nil }
            return String(format: "step %d: front velocity known to %.0f %% (SEM over velocity): its frames cannot pin it to 10 %%",
                          st.stepIndex, 100 * sem / v)
        }
    }
}
