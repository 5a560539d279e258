import Testing
import Simulation

// Replaced by the stage's real tests.
@Test func SimulationBuilds() {}
