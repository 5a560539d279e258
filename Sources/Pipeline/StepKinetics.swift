import Foundation
import FrameIO
import FrontTracking

/// Assembles a step's row of `steps.csv` from its frames: Li/TM statistics over the used
/// frames, the front's least-squares velocity against time (contract §4) and its width from
/// the frames' profiles aligned on their fitted positions.
enum StepKinetics {
    static func assemble(_ k: Int, table: FrameTable, results: [FrameResult], analysis: StepAnalysis?,
                         profiles: [FrontProfile]) -> StepResult {
        let step = table.steps[k]
        let times = step.frameIndices.map { table.records[$0].timeS }
        let used = step.frameIndices.filter { results[$0].status == "ok" }
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
        let withFront = used.filter { results[$0].frontPositionPx != nil }
        if let fit = Kinetics.velocity(times: withFront.map { table.records[$0].timeS },
                                       positions: withFront.map { results[$0].frontPositionPx! }) {
            r.velocityPxPerS = fit.velocity
            r.velocitySEMPxPerS = fit.sem
            r.frontStartPx = fit.intercept + fit.velocity * r.tStart
            r.frontEndPx = fit.intercept + fit.velocity * r.tEnd
        }
        r.frontWidthPx = FrontLocator.width(profiles: profiles)
        return r
    }
}
