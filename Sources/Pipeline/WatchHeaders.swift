import Foundation
import FrameCore
import FrameIO
#if canImport(Glibc)
import Glibc
#endif

/// The headers of a growing run's frame files, read once per file version: `heatfront
/// watch` scans the run again at every new frame (the scan is the one source of frame
/// times, temperatures and steps), and without this every scan would read every header
/// again (a DM4 tag tree, a whole PNG), so the time per frame would grow with the run.
///
/// A file is known by its path, inode, size and modification time; when any changes it is
/// read again. Pixels are never cached: `plane` opens the file for that one read.
final class HeaderCache: @unchecked Sendable {
    private struct Version: Hashable { var path: String; var inode: UInt64; var size: Int64; var mtimeNs: Int64 }
    private let lock = NSLock()
    private var readers: [String: (version: Version, reader: HeaderSnapshot)] = [:]

    /// A reader answering header questions from the cache (decoder errors are the decoder's own).
    func open(_ url: URL) throws -> any FrameFileReader {
        var st = stat()
        guard stat(url.path, &st) == 0 else { return try FrameFiles.open(url) }
        let version = Version(path: url.path, inode: UInt64(st.st_ino), size: Int64(st.st_size),
                              mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
        lock.lock()
        if let hit = readers[url.path], hit.version == version { lock.unlock(); return hit.reader }
        lock.unlock()
        let snapshot = try HeaderSnapshot(try FrameFiles.open(url))
        lock.lock(); readers[url.path] = (version, snapshot); lock.unlock()
        return snapshot
    }

    /// Drops files no longer in the run (removed or renamed away), so the cache stays the run's size.
    func keep(only paths: Set<String>) {
        lock.lock(); readers = readers.filter { paths.contains($0.key) }; lock.unlock()
    }
}

/// One file's headers: signals and every frame's metadata of the signals asked for (all
/// frames of a signal read at the first question, with the file open once). The scan reads
/// neither the file's metadata nor a frame's `original` tags, which can be a DM file's whole
/// tag tree: they are not kept, so the cache costs a few hundred bytes per frame.
final class HeaderSnapshot: FrameFileReader, @unchecked Sendable {
    let url: URL
    let format: FrameFormat
    let signals: [SignalInfo]
    let primarySignal: Int
    let fileMetadata: [String: String]
    private let lock = NSLock()
    private var metadataBySignal: [Int: [Result<FrameMetadata, Error>]] = [:]

    init(_ reader: any FrameFileReader) throws {
        url = reader.url
        format = reader.format
        signals = reader.signals
        primarySignal = reader.primarySignal
        fileMetadata = [:]
        if signals.indices.contains(primarySignal) { metadataBySignal[primarySignal] = Self.read(reader, primarySignal) }
    }

    private static func read(_ reader: any FrameFileReader, _ signal: Int) -> [Result<FrameMetadata, Error>] {
        // The scan reads at most this many frames from one file (`FrameHeaders`); a header that claims more is its problem.
        (0..<min(reader.signals[signal].frameCount, 100_000)).map { f in
            Result {
                var m = try reader.metadata(signal: signal, frame: f)
                m.original = [:]
                return m
            }
        }
    }

    func metadata(signal: Int, frame: Int) throws -> FrameMetadata {
        lock.lock(); defer { lock.unlock() }
        if metadataBySignal[signal] == nil {
            guard signals.indices.contains(signal) else { return try FrameFiles.open(url).metadata(signal: signal, frame: frame) }
            metadataBySignal[signal] = Self.read(try FrameFiles.open(url, as: format), signal)
        }
        let all = metadataBySignal[signal]!
        guard all.indices.contains(frame) else { return try FrameFiles.open(url, as: format).metadata(signal: signal, frame: frame) }
        return try all[frame].get()
    }

    func plane(signal: Int, frame: Int) throws -> PixelPlane {
        try FrameFiles.open(url, as: format).plane(signal: signal, frame: frame)
    }
}
