import Foundation

/// Writes files so that a crash or Ctrl-C never leaves a half-written one: the content
/// goes to a temporary name in the same folder and is renamed into place (rename is
/// atomic within one file system).
public enum AtomicFile {
    /// Calls `body` with a temporary URL beside `url`, then renames it to `url`.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try body(tmp)
            if rename(tmp.path, url.path) != 0 {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { tmp in try data.write(to: tmp) }
    }

    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}
