import Testing
import FrontTracking

// Replaced by the stage's real tests.
@Test func FrontTrackingBuilds() {}
