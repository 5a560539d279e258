import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// OUT_DIR while a run writes it: claimed with a lock, so two runs never interleave their
/// files, and kept to one run's outputs.
///
/// - `.heatfront-output` marks the folder as HeatFront's (a run folder scan skips any folder
///   that holds it) and is the lock: `flock`ed for the whole run, released by the system
///   when the process ends however it ends, so a killed run never leaves a stale lock.
/// - `summary.json` is the mark of a finished run: it is removed when a run starts and
///   written last, so it never stands beside another run's tables.
/// - Temporary files a killed run left behind are removed when the next run starts, and
///   output files of an earlier, different run that this run did not write (the step 3 files
///   after a rerun with three steps) are removed before `summary.json` is written.
final class OutputFolder: @unchecked Sendable {
    static let marker = ".heatfront-output"
    /// Folders whose files all come from HeatFront (files of theirs not written by the run are stale).
    static let ownedFolders = ["aligned", "maps", "columns", "profiles", "plots", "fields", "stacks"]
    /// Files at the top of OUT_DIR a run writes.
    static let ownedFiles = ["frames.csv", "steps.csv", "report.html", "summary.json"]

    let url: URL
    private let lockFD: Int32
    private let lock = NSLock()
    private var written = Set<String>()

    /// Creates OUT_DIR if needed, takes its lock and clears what an earlier run left.
    /// - Throws: `PipelineError.outputInUse` when another run holds the lock, `WriteError`
    ///   when the folder or its marker cannot be created.
    init(claiming url: URL) throws {
        self.url = url.standardizedFileURL
        try AtomicFile.createDirectory(self.url)
        let markerPath = self.url.appendingPathComponent(Self.marker).path
        let fd = open(markerPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw WriteError(path: markerPath, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: markerPath, encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("pid ") }.map { " (\($0))" } ?? ""
            close(fd)
            throw PipelineError.outputInUse("\(self.url.path): another heatfront run\(holder) is writing this output folder; wait for it to finish or choose another --out")
        }
        lockFD = fd
        let note = "HeatFront output folder: never read as run frames.\npid \(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
        unlink(self.url.appendingPathComponent("summary.json").path)
        AtomicFile.removeTemporaries(in: self.url, recursive: false)
        for folder in Self.ownedFolders + [".heatfront-cache"] {
            AtomicFile.removeTemporaries(in: self.url.appendingPathComponent(folder))
        }
    }

    deinit {
        flock(lockFD, LOCK_UN)
        close(lockFD)
    }

    /// The URL of an output, recorded as written by this run.
    func file(_ path: String) -> URL {
        lock.lock(); written.insert(path); lock.unlock()
        return url.appendingPathComponent(path)
    }

    /// Removes HeatFront outputs this run did not write (an earlier, different run's).
    func removeStale() {
        lock.lock(); let keep = written; lock.unlock()
        let fm = FileManager.default
        for name in Self.ownedFiles where !keep.contains(name) {
            unlink(url.appendingPathComponent(name).path)
        }
        for folder in Self.ownedFolders {
            guard let names = try? fm.contentsOfDirectory(atPath: url.appendingPathComponent(folder).path) else { continue }
            for name in names where !keep.contains("\(folder)/\(name)") && Self.isOutputName(name, in: folder) {
                unlink(url.appendingPathComponent("\(folder)/\(name)").path)
            }
        }
    }

    /// Whether a file name is one HeatFront writes into that folder (other files are the user's and are kept).
    static func isOutputName(_ name: String, in folder: String) -> Bool {
        switch folder {
        case "aligned": name.hasPrefix("step_") && (name.hasSuffix("_average.tif") || name.hasSuffix("_coverage.tif"))
        case "stacks": name.hasPrefix("step_") && name.hasSuffix(".hspy")
        case "maps": name.hasPrefix("step_") && name.hasSuffix("_phase.png")
        case "columns", "profiles": name.hasPrefix("step_") && name.hasSuffix(".csv")
        case "plots": name.hasSuffix(".svg") || name.hasSuffix(".png")
        case "fields": name.hasPrefix("frame_") && name.hasSuffix(".tif")
        default: false
        }
    }

    /// Whether `out` is the run folder itself (compared after resolving links), where
    /// outputs would mix with the frames.
    static func isRunFolder(_ out: URL, runDir: URL) -> Bool {
        func real(_ u: URL) -> String { u.standardizedFileURL.resolvingSymlinksInPath().path }
        return real(out) == real(runDir)
    }
}
