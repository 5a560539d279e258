import Foundation

// STUB: replaced by the DM3/DM4 decoder.
public final class DMReader: FrameFileReader {
    public let url: URL
    public var format: FrameFormat { .tiff }
    public var signals: [SignalInfo] { [] }
    public var fileMetadata: [String: String] { [:] }
    public init(url: URL) throws {
        self.url = url
        throw FrameIOError(.unsupported, url: url, "DM3/DM4 decoder not built yet")
    }
    public func plane(signal: Int, frame: Int) throws -> PixelPlane { throw FrameIOError(.unsupported, url: url, "stub") }
    public func metadata(signal: Int, frame: Int) throws -> FrameMetadata { FrameMetadata() }
}
