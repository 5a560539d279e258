import Foundation
import FrameCore

// What a run-folder scan takes from the run's settings. The settings themselves (the keys of
// heatfront.yaml, their defaults and checks) live in the RunSettings module, which builds a
// `FolderSettings`; the decoders never see the config file.

/// The settings a run-folder scan uses: pixel size, times, the heating log and its clock,
/// the signal, how temperatures form steps, and explicit step temperatures (see
/// docs/user-guide.md, "heatfront.yaml").
public struct FolderSettings: Sendable {
    /// Overrides the files' calibration, nm/px.
    public var pixelSizeNm: Double?
    /// Time between frames when the files carry no time, s.
    public var frameIntervalS: Double?
    /// The heating log's file name, relative to the run folder or to the config file.
    public var heatingLog: String?
    /// The log time at the first frame, s.
    public var heatingLogOffsetS: Double?
    /// The absolute time of the log's time 0.
    public var heatingLogStart: Date?
    /// The image signal to analyse: a name or a position in a file's signals.
    public var signal: String?
    /// Temperature change that still counts as one hold, °C.
    public var stepToleranceC: Double
    /// Shortest hold, s.
    public var minHoldS: Double
    /// Explicit temperatures, first matching rule per frame.
    public var steps: [StepRule]
    /// The config file these came from (nil for defaults): named in errors, read but not
    /// listed as an ignored file, and the second place a relative `heatingLog` is looked for.
    public var sourceFile: URL?
    /// Checks the settings that depend on the frame size (a region or lines outside the
    /// frame), called once the run's frame size is known; throws a `RunConfigError`.
    public var checkFrameSize: @Sendable (_ width: Int, _ height: Int) throws -> Void

    public init(pixelSizeNm: Double?, frameIntervalS: Double?, heatingLog: String?, heatingLogOffsetS: Double?,
                heatingLogStart: Date?, signal: String?, stepToleranceC: Double, minHoldS: Double, steps: [StepRule],
                sourceFile: URL?, checkFrameSize: @escaping @Sendable (_ width: Int, _ height: Int) throws -> Void) {
        self.pixelSizeNm = pixelSizeNm
        self.frameIntervalS = frameIntervalS
        self.heatingLog = heatingLog
        self.heatingLogOffsetS = heatingLogOffsetS
        self.heatingLogStart = heatingLogStart
        self.signal = signal
        self.stepToleranceC = stepToleranceC
        self.minHoldS = minHoldS
        self.steps = steps
        self.sourceFile = sourceFile
        self.checkFrameSize = checkFrameSize
    }

    /// The name used for the config in error messages.
    public var fileLabel: String { sourceFile?.path ?? "config" }
}

/// An explicit temperature for the frames a rule selects (`steps:` in heatfront.yaml).
/// Exactly one of `glob` (matched against the path relative to RUN_DIR) or `frames`
/// (an inclusive `frame_index` range) is set.
public struct StepRule: Sendable, Equatable, Encodable {
    public var glob: String?
    public var frames: ClosedRange<Int>?
    public var temperatureC: Double

    public init(glob: String? = nil, frames: ClosedRange<Int>? = nil, temperatureC: Double) {
        self.glob = glob
        self.frames = frames
        self.temperatureC = temperatureC
    }

    enum CodingKeys: String, CodingKey { case glob, frames, temperatureC = "temperature_C" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let glob { try c.encode(glob, forKey: .glob) }
        if let frames { try c.encode([frames.lowerBound, frames.upperBound], forKey: .frames) }
        try c.encode(temperatureC, forKey: .temperatureC)
    }
}

/// A config file that cannot be used: names the file, the key and what is wrong, e.g.
/// `heatfront.yaml: registration.mode: expected rigid or nonrigid, got 'fast' (line 9)`.
public struct RunConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let key: String
    public let message: String
    public let line: Int?

    /// Messages longer than `maxMessage` characters (a parser's error quoting a huge or
    /// deeply nested document) are cut there.
    public static let maxMessage = 300

    public init(file: String, key: String, _ message: String, line: Int? = nil) {
        self.file = file
        self.key = key
        let flat = message.replacingOccurrences(of: "\n", with: " ")
        self.message = flat.count > Self.maxMessage ? String(flat.prefix(Self.maxMessage)) + " …" : flat
        self.line = line
    }

    public var description: String {
        let where_ = line.map { " (line \($0))" } ?? ""
        return key.isEmpty ? "\(file): \(message)\(where_)" : "\(file): \(key): \(message)\(where_)"
    }
}

