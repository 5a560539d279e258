import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file that could not be written: one line naming the path and the cause, e.g.
/// `cannot write /data/out/frames.csv: no space left on the device`.
public struct WriteError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let cause: String

    public init(path: String, cause: String) {
        self.path = path
        self.cause = cause
    }

    /// The cause an `errno` value names, in words.
    public init(path: String, errno code: Int32) {
        self.init(path: path, cause: WriteError.words(code))
    }

    public var description: String { "cannot write \(path): \(cause)" }

    static func words(_ code: Int32) -> String {
        switch code {
        case ENOSPC: "no space left on the device"
        case EDQUOT: "disk quota exceeded"
        case EROFS: "read-only file system"
        case EACCES, EPERM: "permission denied"
        case ENOENT: "the folder does not exist"
        case ENOTDIR: "a path component is a file, not a folder"
        case EISDIR: "a folder of that name is in the way"
        case ENAMETOOLONG: "the path is too long"
        case EIO: "input/output error"
        default: String(cString: strerror(code))
        }
    }
}

/// Writes files so that a crash, a kill or Ctrl-C never leaves a half-written one: the
/// content goes to a temporary file in the same folder, which is renamed into place (rename
/// is atomic within one file system). Every output of HeatFront goes through here, and the
/// file writers (TIFF, PNG, DM4) use it themselves, so callers never wrap them again.
///
/// Temporary names are `.<name>.heatfront-tmp-<pid>-<n>`: `isTemporary` recognises them (and
/// the `.<name>.tmp-<pid>` names of earlier builds), so a later run removes what a killed
/// one left behind (`removeTemporaries`).
public enum AtomicFile {
    static let marker = ".heatfront-tmp-"
    private static let counter = Counter()

    /// Calls `body` with a temporary URL beside `url` (the file exists, empty), then renames
    /// it to `url`. Failures throw `WriteError` naming `url` and the cause.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        try createDirectory(dir)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent)\(marker)\(getpid())-\(counter.next())")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw WriteError(path: url.path, errno: errno) }
        close(fd)
        do {
            try body(tmp)
            guard rename(tmp.path, url.path) == 0 else { throw WriteError(path: url.path, errno: errno) }
        } catch {
            unlink(tmp.path)
            throw diagnose(error, url: url)
        }
    }

    /// Writes all of `bytes` to `fd`, retrying after interrupts and short writes; an error
    /// names `url` (the file the caller is producing, not its temporary).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ url: URL) throws {
        var done = 0
        while done < bytes.count {
            let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WriteError(path: url.path, errno: n < 0 ? errno : EIO) }
            done += n
        }
    }

    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { tmp in
            let fd = open(tmp.path, O_WRONLY | O_TRUNC | O_CLOEXEC)
            guard fd >= 0 else { throw WriteError(path: url.path, errno: errno) }
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, url) }
        }
    }

    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    /// Creates `dir` and its parents; a failure is a `WriteError` naming the folder.
    public static func createDirectory(_ dir: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue { return }
        let parent = dir.deletingLastPathComponent()
        if parent.path != dir.path { try createDirectory(parent) }
        if mkdir(dir.path, 0o777) != 0 && errno != EEXIST { throw WriteError(path: dir.path, errno: errno) }
    }

    /// Whether a file name is a temporary of `write` (or of an earlier build's, `.<name>.tmp-<pid>`).
    public static func isTemporary(_ name: String) -> Bool {
        guard name.hasPrefix(".") else { return false }
        if name.contains(marker) { return true }
        guard let r = name.range(of: ".tmp-", options: .backwards) else { return false }
        let tail = name[r.upperBound...]
        return !tail.isEmpty && tail.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Removes every temporary file `isTemporary` recognises in `dir` and, when `recursive`,
    /// its sub-folders (symbolic links are not followed). Only safe while no other process writes there.
    /// Returns the paths removed.
    @discardableResult
    public static func removeTemporaries(in dir: URL, recursive: Bool = true) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var removed: [String] = []
        for name in names {
            let path = dir.appendingPathComponent(name).path
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if recursive { removed += removeTemporaries(in: dir.appendingPathComponent(name)) }
            } else if isTemporary(name), unlink(path) == 0 {
                removed.append(path)
            }
        }
        return removed
    }

    /// The error to report for a failed write: a `WriteError` as it is, a full device
    /// named as such (libtiff and libpng only say that a write failed), else the writer's
    /// own error, which names the file.
    static func diagnose(_ error: Error, url: URL) -> Error {
        if error is WriteError { return error }
        var fs = statvfs()
        if statvfs(url.deletingLastPathComponent().path, &fs) == 0,
           UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20 {
            return WriteError(path: url.path, errno: ENOSPC)
        }
        return error
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    }
}

/// `write(2)`, under a name that does not clash with `AtomicFile.write`.
func posixWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buf, count)
    #else
    return Darwin.write(fd, buf, count)
    #endif
}
