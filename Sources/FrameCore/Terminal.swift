import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text for the terminal, written with `write(2)`: when the reader has gone (`heatfront
/// inspect RUN | head`), the rest is dropped quietly instead of the process dying of
/// SIGPIPE or of Foundation's write error.
public enum Terminal {
    private static let state = State()

    /// Makes a closed pipe an `EPIPE` error of the write instead of a fatal signal. Called
    /// once by each executable at start.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes to standard output.
    public static func out(_ text: String) { state.write(text, fd: STDOUT_FILENO) }

    /// Writes to standard error.
    public static func err(_ text: String) { state.write(text, fd: STDERR_FILENO) }

    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var closed: Set<Int32> = []

        func write(_ text: String, fd: Int32) {
            lock.lock(); defer { lock.unlock() }
            guard !closed.contains(fd) else { return }
            var bytes = Array(text.utf8)
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeMutableBytes { posixWrite(fd, $0.baseAddress! + done, $0.count - done) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { closed.insert(fd); return }       // EPIPE and the like: the reader is gone
                done += n
            }
            bytes.removeAll()
        }
    }
}

/// Checks that a path names a regular file before a decoder or parser reads it. The file is
/// opened without blocking (`O_NONBLOCK`), so a named pipe, a socket or a device answers at
/// once instead of hanging the run, and `fstat` tells what it is.
public enum RegularFile {
    /// nil when `path` is a regular file that can be opened for reading; otherwise why not,
    /// in words (`not a regular file (named pipe)`, `permission denied`, …).
    public static func problem(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return reading(errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return reading(errno) }
        let kind = st.st_mode & S_IFMT
        return kind == S_IFREG ? nil : "not a regular file (\(describe(kind)))"
    }

    /// What a file type is called, for messages.
    public static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFIFO: "named pipe"
        case S_IFSOCK: "socket"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        case S_IFDIR: "folder"
        case S_IFLNK: "symbolic link"
        default: "special file"
        }
    }

    /// Why a file or folder cannot be read, from `errno`.
    public static func reading(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES, EPERM: "permission denied"
        case ELOOP: "symbolic link loop"
        case ENAMETOOLONG: "path too long"
        case ENOTDIR: "a path component is not a folder"
        default: String(cString: strerror(code))
        }
    }
}
