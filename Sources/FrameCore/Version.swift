/// HeatFront's version, written into every `summary.json`.
public enum HeatFrontVersion {
    public static let string = "0.1.0"
    /// Version of `run-contract.md` the outputs follow.
    public static let contract = 1
}
