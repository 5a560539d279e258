import Foundation

/// What `heatfront inspect FILE` reports: a frame file's image signals with their shape,
/// native type, calibration and pixel fingerprint, and the file's own metadata.
///
/// The fingerprint (`sha256_float64`, `min`, `max`, `mean`) is the one the corpus manifest
/// records with RosettaSciIO: sha256 of all frames as little-endian float64, row-major,
/// frames in order. So a file's decoding can be compared with another reader's by eye.
public struct FileInspection: Encodable, Sendable, Equatable {
    public struct Signal: Encodable, Sendable, Equatable {
        /// The signal's number in the file's own order (`SignalInfo.index`).
        public var index: Int
        public var name: String
        public var frameCount: Int
        public var height: Int
        public var width: Int
        public var sampleType: SampleType
        public var pixelSizeXNm: Double?
        public var pixelSizeYNm: Double?
        /// Nil when the signal has no pixels (cannot happen for a listed signal).
        public var min: Double?
        public var max: Double?
        public var mean: Double?
        public var sha256Float64: String

        enum CodingKeys: String, CodingKey {
            case index, name, n_frames, height, width, dtype, pixel_size_nm, pixel_size_y_nm
            case min, max, mean, sha256_float64
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(name, forKey: .name)
            try c.encode(frameCount, forKey: .n_frames)
            try c.encode(height, forKey: .height)
            try c.encode(width, forKey: .width)
            try c.encode(sampleType.rawValue, forKey: .dtype)
            // Explicit nulls: an uncalibrated axis is reported, not left out.
            try c.encode(pixelSizeXNm, forKey: .pixel_size_nm)
            try c.encode(pixelSizeYNm, forKey: .pixel_size_y_nm)
            try c.encode(min, forKey: .min)
            try c.encode(max, forKey: .max)
            try c.encode(mean, forKey: .mean)
            try c.encode(sha256Float64, forKey: .sha256_float64)
        }
    }

    /// The path as it was given.
    public var file: String
    public var format: FrameFormat
    /// Position in `signals` of the signal a heating run analyses.
    public var primarySignal: Int
    public var signals: [Signal]
    public var metadata: [String: String]

    enum CodingKeys: String, CodingKey { case file, format, primary_signal, signals, metadata }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(format.rawValue, forKey: .format)
        try c.encode(primarySignal, forKey: .primary_signal)
        try c.encode(signals, forKey: .signals)
        try c.encode(metadata, forKey: .metadata)
    }

    /// Decodes every frame of every signal of an opened file to fingerprint it.
    public init(reader: any FrameFileReader) throws {
        file = reader.url.path
        format = reader.format
        primarySignal = reader.primarySignal
        metadata = reader.fileMetadata
        signals = try reader.signals.indices.map { i in
            let s = reader.signals[i]
            let fp = try reader.fingerprint(signal: i)
            let hasPixels = s.frameCount * s.height * s.width > 0
            return Signal(index: s.index, name: s.name, frameCount: s.frameCount, height: s.height, width: s.width,
                          sampleType: s.sampleType, pixelSizeXNm: s.pixelSizeXNm, pixelSizeYNm: s.pixelSizeYNm,
                          min: hasPixels ? fp.min : nil, max: hasPixels ? fp.max : nil,
                          mean: hasPixels && fp.mean.isFinite ? fp.mean : nil, sha256Float64: fp.sha256)
        }
    }

    /// Opens `url` with the decoder its extension names and inspects it.
    public static func inspect(_ url: URL) throws -> FileInspection {
        try FileInspection(reader: FrameFiles.open(url))
    }

    /// Pretty JSON with sorted keys and a trailing newline: the same bytes for the same file.
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Non-finite pixel values (float data with NaN) are written as strings, not an error.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}
