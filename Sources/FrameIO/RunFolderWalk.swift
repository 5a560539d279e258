import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A path the scan could not use, and why: listed in `summary.json` (`skipped`) and on the
/// terminal, so no file of a run folder disappears without a word.
public struct SkippedPath: Sendable, Equatable, Encodable {
    /// Relative to RUN_DIR; bytes that are not UTF-8 are shown as `\xNN`.
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// The files of a run folder, found by walking it with `readdir` (names as raw bytes, so
/// none is lost to a failed text conversion). Hidden entries are skipped silently, as are
/// `silent` paths (the config, the heating log, an output folder inside RUN_DIR). Frame
/// files go to `frames`, other regular files to `ignored`, and everything that cannot be
/// used to `skipped` with its reason: names that are not UTF-8, folders that cannot be
/// read, paths the system cannot open (longer than `PATH_MAX`), dangling symbolic links,
/// symbolic-link loops, special files (named pipes, sockets, devices) and HeatFront output
/// folders. Symbolic links to folders are followed, except back into a folder being read.
struct FolderWalk {
    /// The file that marks a HeatFront output folder (written by every run into OUT_DIR).
    static let outputMarker = ".heatfront-output"
    /// The cache folder every output folder holds (also in outputs of builds without a marker).
    static let cacheFolder = ".heatfront-cache"

    var frames: [(rel: String, url: URL)] = []
    var ignored: [String] = []
    var skipped: [SkippedPath] = []
    let silent: Set<String>

    init(silent: Set<String>) { self.silent = silent }

    /// Walks `root` and returns what it found, each list in natural order.
    static func run(_ root: URL, silent: Set<String>) -> FolderWalk {
        var w = FolderWalk(silent: silent)
        w.walk(root, rel: "", ancestors: [])
        w.frames.sort { NaturalSort.less($0.rel, $1.rel) }
        w.ignored.sort(by: NaturalSort.less)
        w.skipped.sort { NaturalSort.less($0.path, $1.path) }
        return w
    }

    private struct FileID: Hashable { var dev: UInt64; var ino: UInt64 }

    private mutating func walk(_ dir: URL, rel: String, ancestors: Set<FileID>) {
        var st = stat()
        guard stat(dir.path, &st) == 0 else { return skip(rel, RegularFile.reading(errno)) }
        let id = FileID(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        guard !ancestors.contains(id) else { return skip(rel, "symbolic link loop (leads back into a folder being read)") }
        guard let entries = Self.entries(dir) else { return skip(rel, "cannot read the folder: \(RegularFile.reading(errno))") }
        if !rel.isEmpty, entries.contains(where: { $0 == Array(Self.outputMarker.utf8) || $0 == Array(Self.cacheFolder.utf8) }) {
            return skip(rel, "a HeatFront output folder (outputs are never read as frames)")
        }
        let inside = ancestors.union([id])
        for bytes in entries.sorted(by: { $0.lexicographicallyPrecedes($1) }) where bytes.first != UInt8(ascii: ".") {
            guard let name = String(validating: bytes, as: UTF8.self) else {
                skip(Self.join(rel, Self.escaped(bytes)), "the name is not UTF-8 text: rename it (e.g. with convmv)")
                continue
            }
            visit(dir.appendingPathComponent(name), rel: Self.join(rel, name), ancestors: inside)
        }
    }

    private mutating func visit(_ url: URL, rel: String, ancestors: Set<FileID>) {
        if silent.contains(url.standardizedFileURL.path) { return }
        guard url.path.utf8.count < Int(PATH_MAX) else {
            return skip(rel, "the path is longer than the system's limit of \(PATH_MAX - 1) bytes: move the files up")
        }
        var st = stat(), lst = stat()
        guard stat(url.path, &st) == 0 else {
            let code = errno
            let link = lstat(url.path, &lst) == 0 && (lst.st_mode & S_IFMT) == S_IFLNK
            if link && code == ENOENT { return skip(rel, "dangling symbolic link") }
            return skip(rel, RegularFile.reading(code))
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            walk(url, rel: rel, ancestors: ancestors)
        case S_IFREG:
            if let f = FrameFormat(fileExtension: url.pathExtension), f.isRunFrameFormat {
                frames.append((rel, url))
            } else {
                ignored.append(rel)
            }
        default:
            skip(rel, "not a regular file (\(RegularFile.describe(st.st_mode & S_IFMT)))")
        }
    }

    private mutating func skip(_ rel: String, _ reason: String) {
        skipped.append(SkippedPath(path: rel.isEmpty ? "." : rel, reason: reason))
    }

    /// The names in a folder as raw bytes (without `.` and `..`); nil when it cannot be read.
    private static func entries(_ dir: URL) -> [[UInt8]]? {
        guard let d = opendir(dir.path) else { return nil }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: &e.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] { continue }
            out.append(name)
        }
        return out
    }

    private static func join(_ rel: String, _ name: String) -> String { rel.isEmpty ? name : "\(rel)/\(name)" }

    /// A name for messages: its valid UTF-8 text, with the other bytes as `\xNN`.
    static func escaped(_ bytes: [UInt8]) -> String {
        var out = "", run: [UInt8] = []
        func flush() { out += String(decoding: run, as: UTF8.self); run.removeAll() }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let len = b < 0x80 ? 1 : b >> 5 == 0b110 ? 2 : b >> 4 == 0b1110 ? 3 : b >> 3 == 0b11110 ? 4 : 0
            if len > 0, i + len <= bytes.count, String(validating: bytes[i..<(i + len)], as: UTF8.self) != nil {
                run += bytes[i..<(i + len)]
                i += len
            } else {
                flush()
                out += String(format: "\\x%02X", b)
                i += 1
            }
        }
        flush()
        return out
    }
}
