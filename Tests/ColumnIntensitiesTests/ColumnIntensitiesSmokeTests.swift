import Testing
import ColumnIntensities

// Replaced by the stage's real tests.
@Test func ColumnIntensitiesBuilds() {}
