import Foundation
import FrameCore
import Registration
import Simulation
import Testing

/// The simulator's registration-stress preset: low dose, ~7 px of drift per frame, layers
/// whose alias vector runs almost along a straight boundary (the coarse, non-periodic
/// estimate is ill-conditioned exactly in the direction the lattice aliases).
@Suite("Rigid registration on the registration-stress preset")
struct StressPresetTests {
    @Test("First 8 frames: no lattice-vector jump, RMS ≤ 0.15 px")
    func noAliasedJump() throws {
        let sim = HeatingRunSimulator(SimulationOptions(preset: .registrationStress, size: 512))
        let indices = Array(0..<8)
        let frames = indices.map { sim.render(frame: $0) }
        let truth = indices.map { SIMD2(sim.frameTruth($0).shiftXPx, sim.frameTruth($0).shiftYPx) }
        let result = try RigidRegistration.align(ImageArray(frames), options: RigidOptions())
        #expect(result.allSatisfy { $0.rejection == nil })
        let (rms, worst) = gaugeFreeRMS(measured: result.map { SIMD2($0.dx, $0.dy) }, truth: truth)
        print("registration-stress, 8 frames: RMS \(rms) px, max \(worst) px")
        #expect(rms <= 0.15)
    }
}
