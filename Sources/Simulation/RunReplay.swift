import Foundation
import FrameCore
import FrameIO
import RunSettings
#if canImport(Glibc)
import Glibc
#endif

/// A finished run folder written again into another folder as an acquisition writes it:
/// the config and heating log first, then the frame files one by one in acquisition order,
/// at a set pace. For testing and timing `heatfront watch` against the acquisition it follows.
public struct RunReplay: Sendable {
    /// How a frame file is put in place.
    public enum Writing: Sendable {
        /// Written under a hidden name, then renamed into place (what careful acquisition software does).
        case atomicRename
        /// Written in place in two halves `pause` seconds apart, then closed: a reader that
        /// took the file before its close would read half a frame.
        case inPlace(pause: Double)
    }

    /// One frame file put in place, and when (after its rename or close).
    public struct Arrival: Sendable {
        public var file: String
        public var at: Date
    }

    public let source: URL
    /// Frame files in acquisition order, relative to `source`.
    public let frames: [String]
    /// Every other file (config, heating log, ground truth), relative to `source`.
    public let others: [String]

    /// Reads the source run's frame table (headers only) for the acquisition order.
    public init(source: URL) throws {
        self.source = source.standardizedFileURL
        let table = try RunFolder.scan(self.source, config: try RunFolder.loadConfig(runDir: self.source, configURL: nil))
        var seen = Set<String>(), order: [String] = []
        for r in table.records.sorted(by: { ($0.timeS, $0.frameIndex) < ($1.timeS, $1.frameIndex) })
        where seen.insert(r.file).inserted { order.append(r.file) }
        frames = order
        let root = self.source
        let all = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        others = all.filter { rel in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root.appendingPathComponent(rel).path, isDirectory: &isDir)
            return !isDir.boolValue && !seen.contains(rel) && !rel.split(separator: "/").contains { $0.hasPrefix(".") }
        }.sorted()
    }

    /// Writes the other files, then every frame `intervalS` after the one before (the
    /// first `intervalS` after the others). `order`: positions in `frames` in the order to
    /// write them (default: acquisition order); `writing(i)` chooses how the i-th frame
    /// written is written; `stop` ends the replay early. Returns each frame's arrival.
    public func play(into destination: URL, intervalS: Double, order: [Int]? = nil,
                     writing: (Int) -> Writing = { _ in .atomicRename }, stop: () -> Bool = { false }) throws -> [Arrival] {
        let fm = FileManager.default
        try fm.createDirectory(at: destination, withIntermediateDirectories: true)
        for rel in others { try put(rel, into: destination, how: .atomicRename) }
        var arrivals: [Arrival] = []
        var due = Date().addingTimeInterval(intervalS)
        for (i, rel) in (order ?? Array(frames.indices)).map({ frames[$0] }).enumerated() {
            if stop() { break }
            let wait = due.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
            try put(rel, into: destination, how: writing(i))
            arrivals.append(Arrival(file: rel, at: Date()))
            due = due.addingTimeInterval(intervalS)
        }
        return arrivals
    }

    private func put(_ rel: String, into destination: URL, how: Writing) throws {
        let data = try Data(contentsOf: source.appendingPathComponent(rel))
        let target = destination.appendingPathComponent(rel)
        let folder = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        switch how {
        case .atomicRename:
            let tmp = folder.appendingPathComponent(".\(target.lastPathComponent).partial")
            try data.write(to: tmp)
            guard rename(tmp.path, target.path) == 0 else { throw SimulationError.write("cannot rename \(tmp.path)") }
        case .inPlace(let pause):
            // One open for the whole file, as a detector's writer holds it.
            let fd = open(target.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SimulationError.write("cannot write \(target.path)") }
            defer { close(fd) }
            let half = data.count / 2
            for (range, wait) in [(0..<half, pause), (half..<data.count, 0)] {
                let written = data[range].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                guard written == range.count else { throw SimulationError.write("cannot write \(target.path)") }
                if wait > 0 { usleep(UInt32(wait * 1e6)) }
            }
        }
    }
}

/// When each frame file's row first appears in an output folder's `frames.csv`, by polling
/// the file (it is replaced whole by a rename, so every read is a whole table).
public final class FramesTableMonitor: @unchecked Sendable {
    private let url: URL
    private let lock = NSLock()
    private var firstSeen: [String: Date] = [:]
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    /// Starts polling `outDir/frames.csv` every `intervalS` on a thread of its own.
    public init(outDir: URL, intervalS: Double = 0.01) {
        url = outDir.appendingPathComponent("frames.csv")
        Thread.detachNewThread { [self] in
            var lastStamp: (Int, Int) = (-1, -1)
            while isRunning {
                var st = stat()
                if stat(url.path, &st) == 0 {
                    let stamp = (Int(st.st_ino), Int(st.st_mtim.tv_nsec) ^ Int(st.st_mtim.tv_sec))
                    if stamp != lastStamp, let text = try? String(contentsOf: url, encoding: .utf8) {
                        lastStamp = stamp
                        let now = Date()
                        let files = Self.files(text)
                        lock.lock()
                        for f in files where firstSeen[f] == nil { firstSeen[f] = now }
                        lock.unlock()
                    }
                }
                usleep(UInt32(intervalS * 1e6))
            }
            done.signal()
        }
    }

    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    /// The `file` column of a frames.csv text.
    static func files(_ text: String) -> [String] {
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false),
              let col = header.firstIndex(of: "file") else { return [] }
        return lines.dropFirst().compactMap { line in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            return col < cells.count ? String(cells[col]) : nil
        }
    }

    /// When each file was first seen, so far.
    public func snapshot() -> [String: Date] {
        lock.lock(); defer { lock.unlock() }
        return firstSeen
    }

    /// Stops polling; returns when each file was first seen.
    public func stop() -> [String: Date] {
        lock.lock(); running = false; lock.unlock()
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return firstSeen
    }

    /// Seconds from each arrival to its row (nil: never seen).
    public static func latencies(_ arrivals: [RunReplay.Arrival], seen: [String: Date]) -> [Double?] {
        arrivals.map { a in seen[a.file].map { $0.timeIntervalSince(a.at) } }
    }
}
