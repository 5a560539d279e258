import Foundation
import FrameCore

/// The frames of a run as an `ImageSequence`, decoded on demand (libvips-style pull): only
/// the frame asked for is read, and at most `maxOpenReaders` files are held open, in a
/// least-recently-used cache under a lock. Safe to call from several threads: each open
/// reader has its own lock, because decoders seek and read a shared file handle.
///
/// Decoded frames are kept, up to `cacheBytes` of pixels, for the stages that read them
/// again (registration, averages, non-rigid passes, measurement, stacks): a run that fits
/// is decoded once. The first frames decoded are kept and none is evicted, so a larger run
/// keeps its first frames and decodes the rest again on each pass (every stage reads the
/// frames in sequence order, where least-recently-used eviction would miss every time).
/// Memory is bounded by the budget, not by the number of frames. Only frames that are slow
/// to decode are kept (under `keepBelowBytesPerSecond` of pixels per CPU second, e.g. PNG's
/// inflate and row filters, ~0.4 GB/s): a kept frame's memory is new pages the kernel must
/// zero, about what decoding an uncompressed TIFF or DM4 frame again costs (~3 GB/s), while a
/// frame given back is reused by the next decode.
public struct RunFrames: ImageSequence {
    /// The frames of the sequence, in sequence order.
    public let records: [FrameRecord]
    public let width: Int
    public let height: Int
    private let cache: ReaderCache
    private let decoded: DecodedFrames
    private let keepBelow: Double

    /// The default budget for decoded frames: 384 MB (96 frames of 1024², 384 of 512²), or
    /// `HEATFRONT_FRAME_CACHE_MB` (0 turns the cache off).
    /// Decode speed (bytes of float pixels per CPU second) under which a frame is kept.
    public static let keepBelowBytesPerSecond = 1.0e9

    public static var defaultCacheBytes: Int {
        if let mb = ProcessInfo.processInfo.environment["HEATFRONT_FRAME_CACHE_MB"].flatMap({ Int($0) }), mb >= 0 {
            return mb << 20
        }
        return 384 << 20
    }

    /// - Parameters:
    ///   - indices: `frameIndex` values of `table.records`, in the order the sequence serves them.
    ///   - open: the decoder factory (tests pass a fake).
    ///   - cacheBytes: pixels of decoded frames kept for later reads (`defaultCacheBytes`).
    ///   - keepBelowBytesPerSecond: frames decoded faster than this are not kept.
    public init(table: FrameTable, indices: [Int], maxOpenReaders: Int = 4, cacheBytes: Int = RunFrames.defaultCacheBytes,
                keepBelowBytesPerSecond: Double = RunFrames.keepBelowBytesPerSecond,
                open: @escaping @Sendable (URL) throws -> any FrameFileReader = { try FrameFiles.open($0) }) {
        precondition(indices.allSatisfy { table.records.indices.contains($0) }, "RunFrames: frame index out of range")
        records = indices.map { table.records[$0] }
        width = table.frameWidth
        height = table.frameHeight
        cache = ReaderCache(capacity: max(1, maxOpenReaders), open: open)
        decoded = DecodedFrames(budgetBytes: cacheBytes)
        keepBelow = keepBelowBytesPerSecond
    }

    public var count: Int { records.count }

    public func image(at index: Int) throws -> Image {
        try frame(at: index).image
    }

    /// Image `index` with its metadata. Throws `FrameIOError` for a frame that is unreadable
    /// or whose size is not the run's.
    public func frame(at index: Int) throws -> Frame {
        if let kept = decoded.frame(index) { return kept }
        let r = records[index]
        if case .unreadable(let reason) = r.status {
            throw FrameIOError(FrameIOError.Kind(rawValue: reason) ?? .io, url: r.url, "frame \(r.frameIndex) is unreadable")
        }
        let box = try cache.reader(for: r.url)
        let (f, cpuS) = try box.withLock { reader in
            let start = DecodedFrames.threadCPUSeconds()
            let f = try reader.frame(signal: r.signal, frame: r.page)
            return (f, DecodedFrames.threadCPUSeconds() - start)
        }
        guard f.image.width == width, f.image.height == height else {
            throw FrameIOError(.size, url: r.url,
                               "frame \(r.frameIndex) is \(f.image.width)×\(f.image.height), the run's frames are \(width)×\(height)")
        }
        if Double(4 * f.image.pixels.count) < keepBelow * cpuS { decoded.offer(f, at: index) }
        return f
    }

    /// Files currently open (for tests of the bound).
    public var openReaderCount: Int { cache.count }

    /// Frames currently kept decoded (for tests of the budget).
    public var keptFrameCount: Int { decoded.count }
}

/// Decoded frames by sequence position, kept while they fit in the budget (4 bytes a pixel).
private final class DecodedFrames: @unchecked Sendable {
    private let budgetBytes: Int
    private let lock = NSLock()
    private var frames: [Int: Frame] = [:]
    private var usedBytes = 0

    init(budgetBytes: Int) { self.budgetBytes = max(0, budgetBytes) }

    /// CPU time of the calling thread: a decode's cost whatever else runs on the machine.
    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return frames.count
    }

    func frame(_ index: Int) -> Frame? {
        guard budgetBytes > 0 else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return frames[index]
    }

    /// Keeps `frame` if it fits in what is left of the budget; never evicts.
    func offer(_ frame: Frame, at index: Int) {
        let bytes = 4 * frame.image.pixels.count
        guard budgetBytes > 0, bytes <= budgetBytes else { return }
        lock.lock()
        defer { lock.unlock() }
        guard frames[index] == nil, usedBytes + bytes <= budgetBytes else { return }
        frames[index] = frame
        usedBytes += bytes
    }
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
