import Foundation

/// SLURM's time-limit syntax (`sbatch --time`): `minutes`, `minutes:seconds`,
/// `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`;
/// `UNLIMITED` / `INFINITE` for no limit (nil).
public enum SlurmTime {
    /// Seconds, or nil for an unlimited time; throws on anything else.
    public static func parse(_ text: String) throws -> Int? {
        let s = text.trimmingCharacters(in: .whitespaces)
        if ["UNLIMITED", "INFINITE"].contains(s.uppercased()) { return nil }
        let dayParts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard dayParts.count <= 2 else { throw SlurmSyntaxError.time(text) }
        let days = dayParts.count == 2 ? Int(dayParts[0]) : 0
        let clock = dayParts.last!.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard let days, days >= 0, !clock.isEmpty, clock.count <= 3, clock.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw SlurmSyntaxError.time(text)
        }
        let c = clock.map { $0! }
        if dayParts.count == 2 {
            // days-hours[:minutes[:seconds]]
            let (h, m, sec) = (c[0], c.count > 1 ? c[1] : 0, c.count > 2 ? c[2] : 0)
            return ((days * 24 + h) * 60 + m) * 60 + sec
        }
        switch c.count {
        case 1: return c[0] * 60                      // minutes
        case 2: return c[0] * 60 + c[1]               // minutes:seconds
        default: return (c[0] * 60 + c[1]) * 60 + c[2] // hours:minutes:seconds
        }
    }

    /// `HH:MM:SS`, or `D-HH:MM:SS` from one day on: what `--time` and `squeue` print.
    public static func format(_ seconds: Int) -> String {
        let s = max(0, seconds)
        let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60)
        let clock = String(format: "%02d:%02d:%02d", h, m, sec)
        return d > 0 ? "\(d)-\(clock)" : clock
    }
}

/// SLURM's memory syntax (`sbatch --mem`): a number with an optional unit K, M, G or T
/// (default M), in MiB as SLURM counts them.
public enum SlurmMemory {
    public static func parse(_ text: String) throws -> Int {
        let s = text.trimmingCharacters(in: .whitespaces).uppercased()
        guard let last = s.last else { throw SlurmSyntaxError.memory(text) }
        let units: [Character: Double] = ["K": 1.0 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024]
        let (digits, unit) = last.isLetter ? (String(s.dropLast()), units[last]) : (s, 1.0)
        guard let unit, let value = Double(digits), value > 0, value.isFinite else { throw SlurmSyntaxError.memory(text) }
        return max(1, Int((value * unit).rounded(.up)))
    }

    /// `512M`, or whole gigabytes as `4G`.
    public static func format(_ mb: Int) -> String {
        mb % 1024 == 0 ? "\(mb / 1024)G" : "\(mb)M"
    }
}

public enum SlurmSyntaxError: Error, CustomStringConvertible {
    case time(String), memory(String)

    public var description: String {
        switch self {
        case .time(let s): "'\(s)' is not a SLURM time: use minutes, HH:MM:SS or D-HH:MM:SS"
        case .memory(let s): "'\(s)' is not a SLURM memory size: use e.g. 4000M or 8G"
        }
    }
}
