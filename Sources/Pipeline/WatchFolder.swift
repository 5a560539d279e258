import Foundation
import FrameCore
import FrameIO
#if canImport(Glibc)
import Glibc
#endif

/// Follows a run folder and its sub-folders while an acquisition writes into it, and tells
/// which frame files are complete: never a file still being written.
///
/// A frame file counts as complete once it was closed after writing (`IN_CLOSE_WRITE`) or
/// renamed into place (`IN_MOVED_TO`), or, for files no such event was seen for (present at
/// the start, in a folder created before its watch was added, or on a file system where
/// inotify is silent, such as NFS or SMB mounts written by another machine), once its size
/// and modification time are the same at two polls `pollInterval` apart. The events come
/// from Linux inotify (inotify(7); elsewhere polling alone); the whole tree is also listed every
/// `listInterval` as a safety net, and at every poll once a listing found a file inotify had
/// not reported (or inotify cannot be used). Hidden files and folders (temporary names of
/// atomic writers) and the excluded paths (the output folder) are never looked at.
final class FolderWatch {
    struct Changes {
        /// Frame files that became complete, relative paths.
        var completed: [String] = []
        /// Another file changed (the heating log, the config), or a file went away.
        var inputsChanged = false
        var isEmpty: Bool { completed.isEmpty && !inputsChanged }
    }

    fileprivate struct FileState: Equatable { var size: Int64; var mtimeNs: Int64 }
    /// A frame file not complete yet: its state at the last poll, since when it has held
    /// still, and whether inotify reported its creation (then its close or rename is awaited).
    struct Pending {
        fileprivate var state: FileState?
        fileprivate var stillSince = Date()
        var reported: Bool
    }

    let root: URL
    let pollInterval: Double
    let listInterval: Double
    private let excluded: Set<String>
    private var fd: Int32 = -1
    private var directories: [Int32: String] = [:]     // watch descriptor → relative folder ("" = root)
    private var watchedFolders = Set<String>()
    /// Complete frame files, relative paths.
    private(set) var complete = Set<String>()
    /// Frame files seen but not (yet) complete, with their state at the last poll.
    private(set) var pending: [String: Pending] = [:]
    private var others: [String: FileState] = [:]
    private var lastPoll = Date.distantPast
    private var lastList = Date.distantPast
    private var changes = Changes()
    /// Whether inotify delivers events here: false when it cannot be used, or a listing found
    /// a file it never reported.
    private(set) var inotifyWorks: Bool
    /// Whether a file still being written grew (or was touched) at the last poll.
    private(set) var hasActivity = false

    /// `inotify: false`: polling only.
    init(root: URL, exclude: [URL], pollInterval: Double = 0.5, listInterval: Double = 5, inotify: Bool = true) {
        self.root = root.standardizedFileURL
        self.pollInterval = pollInterval
        self.listInterval = listInterval
        excluded = Set(exclude.map { $0.standardizedFileURL.resolvingSymlinksInPath().path })
        #if os(Linux)
        fd = inotify ? inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) : -1
        #endif
        inotifyWorks = fd >= 0
        addTree("")
        lastList = Date()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Waits up to `timeout` s for files to become complete (or other inputs to change) and
    /// returns what changed since the last call.
    func next(timeout: Double) -> Changes {
        let deadline = Date().addingTimeInterval(max(0, timeout))
        hasActivity = false
        while true {
            readEvents(wait: min(deadline.timeIntervalSinceNow, pollInterval))
            let now = Date()
            if now.timeIntervalSince(lastList) >= (inotifyWorks ? listInterval : pollInterval) {
                list()
                lastList = now
            }
            if now.timeIntervalSince(lastPoll) >= pollInterval { poll(); lastPoll = now }
            if !changes.isEmpty || now >= deadline {
                defer { changes = Changes() }
                return changes
            }
        }
    }

    // MARK: inotify

    private func addTree(_ rel: String) {
        let url = rel.isEmpty ? root : root.appendingPathComponent(rel)
        guard !excluded.contains(url.resolvingSymlinksInPath().path), watchedFolders.insert(rel).inserted else { return }
        #if os(Linux)
        if fd >= 0 {
            let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR)
            let wd = inotify_add_watch(fd, url.path, mask)
            if wd >= 0 { directories[wd] = rel } else { inotifyWorks = false }   // e.g. the user's watch limit reached
        }
        #endif
        // Files that were there before the watch: complete only once their size is stable.
        for (name, isDir) in Self.entries(url) {
            let child = rel.isEmpty ? name : "\(rel)/\(name)"
            if isDir { addTree(child) } else { seen(child, closed: false) }
        }
    }

    private func readEvents(wait: Double) {
        guard fd >= 0 else { if wait > 0 { usleep(UInt32(wait * 1e6)) }; return }
        #if os(Linux)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&p, 1, Int32(max(0, wait) * 1000)) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var offset = 0
            while offset + 16 <= n {
                let (wd, mask, length) = buffer.withUnsafeBytes { b in
                    (b.loadUnaligned(fromByteOffset: offset, as: Int32.self), b.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(b.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)].prefix { $0 != 0 }
                offset += 16 + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { list(); continue }
                guard let folder = directories[wd], let name = String(validating: Array(nameBytes), as: UTF8.self),
                      !name.isEmpty, !name.hasPrefix(".") else { continue }
                let rel = folder.isEmpty ? name : "\(folder)/\(name)"
                if mask & UInt32(IN_ISDIR) != 0 {
                    if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 { addTree(rel) }
                } else if mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0 {
                    seen(rel, closed: true, reported: true)
                } else if mask & UInt32(IN_CREATE) != 0 {
                    seen(rel, closed: false, reported: true)
                } else if mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 {
                    gone(rel)
                }
            }
        }
        #endif
    }

    // MARK: Files

    private func isFrameFile(_ rel: String) -> Bool {
        FrameFormat(fileExtension: (rel as NSString).pathExtension)?.isRunFrameFormat ?? false
    }

    /// A file event or a listed file. `closed`: its writer closed it, or it was renamed into
    /// place; `reported`: inotify reported it.
    private func seen(_ rel: String, closed: Bool, reported: Bool = false) {
        let url = root.appendingPathComponent(rel)
        guard !excluded.contains(url.path) else { return }
        guard isFrameFile(rel) else {
            // The heating log, the config, notes: a change may move every frame's temperature.
            if let s = Self.state(url), others[rel] != s { others[rel] = s; changes.inputsChanged = true }
            return
        }
        guard !complete.contains(rel) else { return }
        // An empty file closed is a writer that created it and will open it again.
        if closed, let s = Self.state(url), s.size > 0 {
            pending[rel] = nil
            complete.insert(rel)
            changes.completed.append(rel)
        } else if pending[rel] == nil {
            pending[rel] = Pending(state: nil, reported: reported || closed)
        }
    }

    private func gone(_ rel: String) {
        if complete.remove(rel) != nil || others.removeValue(forKey: rel) != nil { changes.inputsChanged = true }
        pending[rel] = nil
    }

    /// Pending files whose size and time held still since the last poll are complete; files
    /// inotify reported are awaited for their close, or taken once still for `awaitCloseS`
    /// (a writer that never closes).
    private func poll() {
        let now = Date()
        for (rel, p) in pending {
            guard let state = Self.state(root.appendingPathComponent(rel)) else { pending[rel] = nil; continue }
            if p.state == state, state.size > 0,
               now.timeIntervalSince(p.stillSince) >= (p.reported ? awaitCloseS : 0) {
                pending[rel] = nil
                complete.insert(rel)
                changes.completed.append(rel)
            } else if p.state != state {
                if p.state != nil { hasActivity = true }
                pending[rel] = Pending(state: state, stillSince: now, reported: p.reported)
            }
        }
    }

    /// How long a file inotify saw created must hold still, unclosed, to count as complete.
    var awaitCloseS: Double { max(5, 10 * pollInterval) }

    /// The whole tree listed: files inotify did not report are noted (and polling takes over).
    private func list() {
        var found = Set<String>()
        func walk(_ rel: String) {
            let url = rel.isEmpty ? root : root.appendingPathComponent(rel)
            guard !excluded.contains(url.resolvingSymlinksInPath().path) else { return }
            if !watchedFolders.contains(rel) { addTree(rel) }
            for (name, isDir) in Self.entries(url) {
                let child = rel.isEmpty ? name : "\(rel)/\(name)"
                if isDir { walk(child); continue }
                found.insert(child)
                if isFrameFile(child) {
                    if !complete.contains(child) && pending[child] == nil {
                        // Older than a poll and never reported: this file system does not deliver events.
                        if let s = Self.state(root.appendingPathComponent(child)),
                           Date().timeIntervalSince1970 - Double(s.mtimeNs) / 1e9 > 2 * pollInterval { inotifyWorks = false }
                        seen(child, closed: false)
                    }
                } else {
                    seen(child, closed: false)
                }
            }
        }
        walk("")
        for rel in complete.subtracting(found) { gone(rel) }
        for rel in Set(others.keys).subtracting(found) { gone(rel) }
    }

    private static func state(_ url: URL) -> FileState? {
        var st = stat()
        guard stat(url.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileState(size: Int64(st.st_size), mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// A folder's visible entries and whether each is a folder (links followed, as the scan does).
    private static func entries(_ url: URL) -> [(String, Bool)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return [] }
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            var st = stat()
            guard stat(url.appendingPathComponent(name).path, &st) == 0 else { return nil }
            return (name, (st.st_mode & S_IFMT) == S_IFDIR)
        }
    }
}
