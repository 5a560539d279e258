import Testing
import Pipeline

// Replaced by the stage's real tests.
@Test func PipelineBuilds() {}
