import Foundation
import FrameCore

/// The numeric type of the pixels as stored in the source file.
/// `float16` (IEEE 754 half precision, as HyperSpy and MRC mode 12 store it) is widened
/// exactly to `Float` when decoded.
public enum SampleType: String, Sendable, CaseIterable, Codable {
    case uint8, int8, uint16, int16, uint32, int32, uint64, int64, float16, float32, float64

    public var byteCount: Int {
        switch self {
        case .uint8, .int8: 1
        case .uint16, .int16, .float16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        }
    }
}

/// What a file says about one frame. Every field is optional: files differ in what they record.
public struct FrameMetadata: Sendable, Equatable {
    /// Pixel size along x (columns) and y (rows), converted to nanometres.
    public var pixelSizeXNm: Double?
    public var pixelSizeYNm: Double?
    /// Absolute acquisition time of the frame, when the file records one.
    public var acquisitionTime: Date?
    /// Time of the frame relative to the file's first frame (ImageJ `finterval`, OME `DeltaT`,
    /// a series' per-frame times), when only relative times are known.
    public var relativeTime_s: Double?
    /// Pixel dwell time in seconds.
    public var dwellTime_s: Double?
    /// Specimen (holder) temperature stored with the frame, °C.
    public var temperatureC: Double?
    /// The file's own metadata, flattened to `path.to.key → value`, kept for the user.
    public var original: [String: String]

    public init(pixelSizeXNm: Double? = nil, pixelSizeYNm: Double? = nil, acquisitionTime: Date? = nil,
                relativeTime_s: Double? = nil, dwellTime_s: Double? = nil, temperatureC: Double? = nil,
                original: [String: String] = [:]) {
        self.pixelSizeXNm = pixelSizeXNm
        self.pixelSizeYNm = pixelSizeYNm
        self.acquisitionTime = acquisitionTime
        self.relativeTime_s = relativeTime_s
        self.dwellTime_s = dwellTime_s
        self.temperatureC = temperatureC
        self.original = original
    }

    /// The pixel size used for lengths: x, or y when only y is known.
    public var pixelSizeNm: Double? { pixelSizeXNm ?? pixelSizeYNm }
}

/// One decoded frame: float pixels with their calibration and times.
public struct Frame: Sendable {
    public var image: Image
    public var metadata: FrameMetadata
    /// The numeric type the pixels had in the file.
    public var sampleType: SampleType

    public init(image: Image, metadata: FrameMetadata = FrameMetadata(), sampleType: SampleType = .float32) {
        self.image = image
        self.metadata = metadata
        self.sampleType = sampleType
    }
}
