import Foundation
import FrameCore

/// The frames of a run as an `ImageSequence`, decoded on demand (libvips-style pull): only
/// the frame asked for is read, and at most `maxOpenReaders` files are held open, in a
/// least-recently-used cache under a lock. Safe to call from several threads: each open
/// reader has its own lock, because decoders seek and read a shared file handle.
public struct RunFrames: ImageSequence {
    /// The frames of the sequence, in sequence order.
    public let records: [FrameRecord]
    public let width: Int
    public let height: Int
    private let cache: ReaderCache

    /// - Parameters:
    ///   - indices: `frameIndex` values of `table.records`, in the order the sequence serves them.
    ///   - open: the decoder factory (tests pass a fake).
    public init(table: FrameTable, indices: [Int], maxOpenReaders: Int = 4,
                open: @escaping @Sendable (URL) throws -> any FrameFileReader = { try FrameFiles.open($0) }) {
        precondition(indices.allSatisfy { table.records.indices.contains($0) }, "RunFrames: frame index out of range")
        records = indices.map { table.records[$0] }
        width = table.frameWidth
        height = table.frameHeight
        cache = ReaderCache(capacity: max(1, maxOpenReaders), open: open)
    }

    public var count: Int { records.count }

    public func image(at index: Int) throws -> Image {
        try frame(at: index).image
    }

    /// Image `index` with its metadata. Throws `FrameIOError` for a frame that is unreadable
    /// or whose size is not the run's.
    public func frame(at index: Int) throws -> Frame {
        let r = records[index]
        if case .unreadable(let reason) = r.status {
            throw FrameIOError(FrameIOError.Kind(rawValue: reason) ?? .io, url: r.url, "frame \(r.frameIndex) is unreadable")
        }
        let box = try cache.reader(for: r.url)
        let f = try box.withLock { try $0.frame(signal: r.signal, frame: r.page) }
        guard f.image.width == width, f.image.height == height else {
            throw FrameIOError(.size, url: r.url,
                               "frame \(r.frameIndex) is \(f.image.width)×\(f.image.height), the run's frames are \(width)×\(height)")
        }
        return f
    }

    /// Files currently open (for tests of the bound).
    public var openReaderCount: Int { cache.count }
}

/// An open reader and the lock that serialises its use.
private final class ReaderBox: @unchecked Sendable {
    private let reader: any FrameFileReader
    private let lock = NSLock()
    init(_ reader: any FrameFileReader) { self.reader = reader }
    func withLock<T>(_ body: (any FrameFileReader) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(reader)
    }
}

/// A small LRU of open readers. A reader evicted while another thread decodes from it
/// stays alive until that decode ends (the thread holds a reference).
private final class ReaderCache: @unchecked Sendable {
    private let capacity: Int
    private let open: @Sendable (URL) throws -> any FrameFileReader
    private let lock = NSLock()
    private var entries: [(url: URL, box: ReaderBox)] = []    // most recently used last

    init(capacity: Int, open: @escaping @Sendable (URL) throws -> any FrameFileReader) {
        self.capacity = capacity
        self.open = open
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    func reader(for url: URL) throws -> ReaderBox {
        lock.lock()
        defer { lock.unlock() }
        if let i = entries.firstIndex(where: { $0.url == url }) {
            let e = entries.remove(at: i)
            entries.append(e)
            return e.box
        }
        let box = ReaderBox(try open(url))
        entries.append((url, box))
        if entries.count > capacity { entries.removeFirst() }
        return box
    }
}
