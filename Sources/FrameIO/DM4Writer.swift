import Foundation

// STUB: replaced by the DM4 writer.
public enum DM4Writer {
    /// Writes `frames` as one DM4 image (a 3-D stack when more than one frame) in `type`,
    /// with spatial calibration in nm and the DataBar acquisition date/time.
    public static func write(_ frames: [Frame], as type: SampleType, to url: URL) throws {
        throw FrameIOError(.unsupported, url: url, "DM4 writer not built yet")
    }
}
