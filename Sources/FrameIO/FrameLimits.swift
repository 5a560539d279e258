import Foundation

/// Sizes a frame file may claim before HeatFront refuses it, shared by every decoder.
///
/// A header is a claim, not a fact: a 4 KB file can say it holds two billion pages, a
/// 3 KB PNG that its text chunk is 2 GB long, a compressed HDF5 dataset that it is
/// 16k × 16k × 16k. Every decoder checks a claim against the file's real length (what the
/// bytes can hold, allowing for compression) and against these caps before it allocates
/// anything sized by the claim, and answers with one line naming the file and the claim.
///
/// The caps are far beyond any real in-situ heating acquisition and small enough that a
/// file at a cap stays within a few hundred MB of memory when it is read frame by frame.
public enum FrameLimits {
    /// Longest side of a frame, pixels.
    public static let maxSide = 1 << 16
    /// Most pixels in one frame: 16,384 × 16,384.
    public static let maxFramePixels = 1 << 28
    /// Most frames in one signal of one file: 262,144, three days of frames at one per
    /// second, or two and a half hours of a 30 frames/s movie. A run folder may hold any
    /// number of files; a longer movie is split into several files.
    public static let maxFrames = 1 << 18
    /// Largest ratio of decoded to stored bytes accepted from compressed data. Deflate
    /// cannot exceed about 1032:1 and LZW about 2730:1; Blosc and Zstandard reach more only
    /// on constant data, which 4096:1 still covers for every chunk size accepted here.
    public static let maxCompressionRatio = 4096
    /// Largest compressed chunk (HDF5 chunk, zarr chunk, zip member) decoded in one piece.
    public static let maxChunkBytes = 1 << 28
    /// Largest metadata text or attribute read whole (JSON, XML, a string attribute).
    public static let maxMetadataBytes = 1 << 24

    /// Most bytes the decoded data of a file of `fileBytes` bytes can plausibly hold when
    /// it is compressed (`compressed`) or stored as is, with 1 MiB of slack for headers.
    public static func maxDecodedBytes(fileBytes: Int, compressed: Bool) -> Int {
        let ratio = compressed ? maxCompressionRatio : 1
        return fileBytes.multipliedReportingOverflow(by: ratio).partialValue.addingReportingOverflow(1 << 20).partialValue
    }

    /// Checks a claimed frame size and count against the caps; throws `.corrupt` naming them.
    static func checkShape(frames: Int, height: Int, width: Int, url: URL, _ what: String) throws {
        guard frames >= 1, height >= 1, width >= 1 else {
            throw FrameIOError(.corrupt, url: url, "\(what): \(frames) frame(s) of \(height)×\(width) pixels is not an image")
        }
        guard height <= maxSide, width <= maxSide, height * width <= maxFramePixels else {
            throw FrameIOError(.corrupt, url: url, "\(what): frames of \(height)×\(width) pixels exceed HeatFront's limit (\(maxSide) per side, \(maxFramePixels) in all)")
        }
        guard frames <= maxFrames else {
            throw FrameIOError(.corrupt, url: url, "\(what): claims \(frames) frames, more than HeatFront reads from one file (\(maxFrames)); split the stack into several files")
        }
    }
}
