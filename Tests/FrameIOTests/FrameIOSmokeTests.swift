import Testing
import FrameIO

// Replaced by the stage's real tests.
@Test func FrameIOBuilds() {}
