import Foundation

// STUB: replaced by the TIFF writer (libtiff).
public enum TIFFWriter {
    /// Writes `frames` as the pages of one TIFF in `type` (uint8, uint16 or float32), with
    /// ImageJ-readable calibration (resolution tags + `unit=nm` in the ImageJ description)
    /// and DateTime/SubSecTime from each frame's acquisition time.
    public static func write(_ frames: [Frame], as type: SampleType, to url: URL) throws {
        throw FrameIOError(.unsupported, url: url, "TIFF writer not built yet")
    }
}
