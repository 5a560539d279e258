import Foundation
import Testing
import FrameCore
import FrameIO
import FrontTracking
import Registration
import RunSettings
import Simulation
@testable import Pipeline

/// What a step's frames are measured with (`StepPlan`), on one frame of a simulated step.
@Suite struct StepPlanTests {
    /// A frame of the last hold of a simulated boundary-front run (front well out, high dose so
    /// that one frame stands in for the step's average), analysed as its own average, with the
    /// front located from the boundary it shows.
    static func lastHoldFrame() throws -> (frame: Image, analysis: StepAnalysis, boundary: LineSegment) {
        let dir = RunPipelineTests.scratch("step-plan")
        var o = SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)
        o.doseScale = 20
        try HeatingRunSimulator(o).write(to: dir)
        let config = try RunFolder.loadConfig(runDir: dir, configURL: nil)
        let table = try RunFolder.scan(dir, config: config)
        let last = try #require(table.records.last { $0.stepIndex == table.steps.count - 1 })
        let frames = RunFrames(table: table, indices: [last.frameIndex])
        let frame = try frames.image(at: 0)
        let average = AlignedAverage(image: frame, weight: Image(width: frame.width, height: frame.height, fill: 1), frameCount: 1)
        var analysis = try StepAnalysis.analyse(average: average, config: config, pixelSizeNm: table.pixelSizeNm, previous: nil)
        let boundary = try #require(analysis.detectedBoundary)
        analysis.front = FrontLocator.locate(analysis.orderParameter, phase: analysis.phase, boundary: boundary)
        return (frame, analysis, boundary)
    }

    /// A frame's order-parameter profile is its A(g) over the step average's A(2g), not over its
    /// own: changing the average's A(2g) on half the field changes the frame's profile there,
    /// while scaling it as a whole does not (the frame's own level sets the scale).
    @Test func orderParameterProfileIsOverTheAveragesHalfSpacingAmplitude() throws {
        let (frame, analysis, boundary) = try Self.lastHoldFrame()
        let reference = try #require(analysis.halfSpacingReference)
        let valid = Mask(width: frame.width, height: frame.height, fill: true)
        func profile(_ ref: Image) throws -> [Double] {
            var a = analysis
            a.halfSpacingReference = ref
            let plan = StepPlan(a, boundary: boundary, width: frame.width, height: frame.height)
            return try #require(plan.measure(frame, valid: valid, frameIndex: 0).map).values
        }
        let asMeasured = try profile(reference)
        let doubled = try profile(Image(width: reference.width, height: reference.height, pixels: reference.pixels.map { 2 * $0 }))
        let halfDoubled = try profile(Image(width: reference.width, height: reference.height) { x, y in
            (x < reference.width / 2 ? 2 : 1) * reference[x, y]
        })
        #expect(asMeasured.count == doubled.count && asMeasured.count == halfDoubled.count)
        let scaleChange = zip(asMeasured, doubled).map { abs($0 - $1) }.max() ?? .infinity
        let halfChange = zip(asMeasured, halfDoubled).map { abs($0 - $1) / max(abs($0), 1e-9) }
        #expect(scaleChange < 1e-4 * (asMeasured.map(abs).max() ?? 1))
        // Half the field's reference doubled: the frame's one scale factor follows the summed
        // reference (× 1.5), so q falls by a quarter in that half and rises by half in the
        // other; most bins (each spans both halves) move by > 5 % (median 29 % as written).
        #expect(halfChange.filter { $0 > 0.05 }.count > halfChange.count / 2)
    }
}
