import Foundation

/// Why a file could not be decoded: one line that names the file and the problem.
public struct FrameIOError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// The file cannot be opened or read.
        case io
        /// Zero bytes, or the data stops before the header says it should.
        case truncated
        /// Not the format its name says (wrong magic number).
        case badMagic = "bad-magic"
        /// A valid file using a feature HeatFront does not read (e.g. RGB in DM, JPEG in TIFF).
        case unsupported
        /// The header contradicts itself or claims absurd sizes or offsets.
        case corrupt
        /// A frame whose size differs from the run's.
        case size
    }

    public let file: String
    public let kind: Kind
    public let detail: String

    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    public init(_ kind: Kind, url: URL, _ detail: String) {
        self.init(kind, file: url.path, detail)
    }

    public var description: String { "\(file): \(detail)" }

    /// The short reason used in `frames.csv` (`unreadable:<reason>`).
    public var reason: String { kind.rawValue }
}
