import Testing
import Registration

// Replaced by the stage's real tests.
@Test func RegistrationBuilds() {}
