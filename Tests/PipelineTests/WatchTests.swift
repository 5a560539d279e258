import Foundation
import Testing
import FrameCore
import FrameIO
import Pipeline
import Simulation

/// `heatfront watch` following a simulated run replayed at acquisition pace: every frame's
/// row appears while the run is acquired, and the final pass leaves the outputs of `heatfront run`.
@Suite(.serialized) struct WatchTests {
    static func scratch(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-watch-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        return url
    }

    /// Collects the status lines of a session and notes when the final pass starts.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var text: [String] = []
        var onFinalPass: (@Sendable () -> Void)?
        func append(_ s: String) {
            lock.lock(); text.append(s); let hook = s.contains("final pass") ? onFinalPass : nil; lock.unlock()
            hook?()
        }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return text }
    }

    /// Runs a watch session on its own thread; `result` waits for it.
    final class Session: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var outcome: Result<BatchRun.RunResult, Error>?
        let cancel = Cancellation()

        init(runDir: URL, outDir: URL, idleExitS: Double, status: WatchStatus, pollOnly: Bool = false) {
            var o = WatchOptions()
            o.idleExitS = idleExitS
            o.inotify = !pollOnly
            o.pollIntervalS = pollOnly ? 0.3 : 0.2
            o.reportIntervalS = 1
            let options = o
            Thread.detachNewThread { [self] in
                outcome = Result {
                    try WatchSession.run(runDir: runDir, outDir: outDir, options: options, status: status,
                                         progress: ProgressReporter(style: .quiet), cancel: cancel)
                }
                done.signal()
            }
        }

        func result(timeoutS: Double) -> Result<BatchRun.RunResult, Error>? {
            done.wait(timeout: .now() + timeoutS) == .success ? outcome : nil
        }
    }

    /// Every output file below `dir` but the lock marker and the cache, relative paths.
    static func outputFiles(_ dir: URL) -> [String] {
        let all = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []
        return all.filter { rel in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir.appendingPathComponent(rel).path, isDirectory: &isDir)
            return !isDir.boolValue && !rel.hasPrefix(".heatfront")
        }.sorted()
    }

    /// summary.json without its wall-clock fields.
    static func summaryWithoutClock(_ dir: URL) throws -> NSDictionary {
        let data = try Data(contentsOf: dir.appendingPathComponent("summary.json"))
        let d = try JSONSerialization.jsonObject(with: data) as! NSDictionary
        let m = d.mutableCopy() as! NSMutableDictionary
        m.removeObjects(forKeys: ["timings_s", "peak_memory_mb", "started_at"])
        return m
    }

    @Test func followsAReplayedRunAndEndsAsTheBatchRun() throws {
        let source = Self.scratch("source"), runDir = Self.scratch("run"), out = Self.scratch("out"), batch = Self.scratch("batch")
        var o = SimulationOptions(preset: .boundaryFront, seed: 7, size: 256)
        o.framesPerStep = 4
        try HeatingRunSimulator(o).write(to: source)
        let replay = try RunReplay(source: source)
        #expect(replay.frames.count >= 16)

        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        let lines = Lines()
        let monitor = FramesTableMonitor(outDir: out)
        let live = LiveRows()
        let framesCSV = out.appendingPathComponent("frames.csv")
        lines.onFinalPass = { live.set(monitor.snapshot(), table: try? String(contentsOf: framesCSV, encoding: .utf8)) }
        let session = Session(runDir: runDir, outDir: out, idleExitS: 3,
                              status: WatchStatus(style: .lines, sink: { lines.append($0) }))
        // Every third frame written in place in two halves, the others renamed into place.
        let arrivals = try replay.play(into: runDir, intervalS: 0.4, writing: { $0 % 3 == 2 ? .inPlace(pause: 0.15) : .atomicRename })
        let outcome = try #require(session.result(timeoutS: 240))
        _ = monitor.stop()
        guard case .finished(let summary) = try outcome.get() else {
            Issue.record("the final pass failed: \(try outcome.get())"); return
        }
        #expect(summary.nFrames == replay.frames.count)

        // No frame missed: each had its live row before the final pass; latency recorded, bound generous.
        let latencies = FramesTableMonitor.latencies(arrivals, seen: live.rows)
        #expect(latencies.allSatisfy { $0 != nil }, "frames without a live row: \(zip(arrivals, latencies).filter { $0.1 == nil }.map(\.0.file))")
        // No partial file read: every live row is a used frame (the simulated run has no bad one).
        let table = try #require(live.table)
        let header = table.split(separator: "\n")[0].split(separator: ",").map(String.init)
        let status = try #require(header.firstIndex(of: "status"))
        let statuses = table.split(separator: "\n").dropFirst().map { String($0.split(separator: ",", omittingEmptySubsequences: false)[status]) }
        #expect(statuses.count == replay.frames.count && statuses.allSatisfy { $0 == "ok" }, "live statuses: \(statuses)")
        let worst = latencies.compactMap { $0 }.max() ?? .infinity
        #expect(worst < 30, "latency up to \(worst) s")
        #expect(lines.all.contains { $0.contains("Li/TM") && $0.contains("step") }, "no status line")

        // The final outputs are the batch run's, file by file (summary.json but its wall-clock fields).
        var options = RunOptions()
        options.jobs = 2
        _ = try RunPipeline.run(runDir: runDir, outDir: batch, options: options,
                                progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        let files = Self.outputFiles(out)
        #expect(files == Self.outputFiles(batch))
        for f in files where f != "summary.json" {
            let same = FileManager.default.contentsEqual(atPath: out.appendingPathComponent(f).path,
                                                         andPath: batch.appendingPathComponent(f).path)
            #expect(same, "\(f) differs from the batch run's")
        }
        #expect(try Self.summaryWithoutClock(out) == Self.summaryWithoutClock(batch))
        let report = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(!report.contains("http-equiv=\"refresh\""), "the final report must not reload itself")
    }

    /// Where no file-system events come: files are taken once their size holds still over
    /// two polls (the halves of a file written in place come less than a poll apart). The last
    /// frame of each step arrives after the first of the next: a step that has ended gets a
    /// late frame's row without being reopened.
    @Test func pollingAloneFindsEveryFrameAndNoPartialOne() throws {
        let source = Self.scratch("source3"), runDir = Self.scratch("run3"), out = Self.scratch("out3")
        var o = SimulationOptions(preset: .boundaryFront, seed: 9, size: 256)
        o.framesPerStep = 2
        try HeatingRunSimulator(o).write(to: source)
        let replay = try RunReplay(source: source)
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        let framesCSV = out.appendingPathComponent("frames.csv")
        let live = LiveRows()
        let lines = Lines()
        lines.onFinalPass = { live.set([:], table: try? String(contentsOf: framesCSV, encoding: .utf8)) }
        let session = Session(runDir: runDir, outDir: out, idleExitS: 3,
                              status: WatchStatus(style: .lines, sink: { lines.append($0) }), pollOnly: true)
        var order = Array(replay.frames.indices)
        for i in stride(from: 1, to: order.count - 1, by: 2) { order.swapAt(i, i + 1) }
        _ = try replay.play(into: runDir, intervalS: 0.4, order: order,
                            writing: { $0 % 2 == 1 ? .inPlace(pause: 0.1) : .atomicRename })
        let outcome = try #require(session.result(timeoutS: 240))
        guard case .finished = try outcome.get() else { Issue.record("the final pass failed"); return }
        let table = try #require(live.table)
        let rows = table.split(separator: "\n").dropFirst()
        #expect(rows.count == replay.frames.count)
        #expect(rows.allSatisfy { $0.contains(",ok,") }, "live rows: \(rows)")
    }

    @Test func interruptedSessionLeavesWholeLiveFilesAndNoSummary() throws {
        let source = Self.scratch("source2"), runDir = Self.scratch("run2"), out = Self.scratch("out2")
        var o = SimulationOptions(preset: .boundaryFront, seed: 8, size: 256)
        o.framesPerStep = 3
        try HeatingRunSimulator(o).write(to: source)
        let replay = try RunReplay(source: source)
        let session = Session(runDir: runDir, outDir: out, idleExitS: 60, status: WatchStatus(style: .quiet))
        let arrivals = try replay.play(into: runDir, intervalS: 0.3, stop: {
            // Half the run, then Ctrl-C.
            (try? String(contentsOf: out.appendingPathComponent("frames.csv"), encoding: .utf8))
                .map { $0.split(separator: "\n").count > 6 } ?? false
        })
        session.cancel.cancel()
        let outcome = try #require(session.result(timeoutS: 60))
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(arrivals.count < replay.frames.count)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("summary.json").path))
        let frames = try String(contentsOf: out.appendingPathComponent("frames.csv"), encoding: .utf8)
        let rows = frames.split(separator: "\n")
        #expect(rows.count > 1 && rows.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == rows[0].split(separator: ",").count })
        #expect(Self.outputFiles(out).allSatisfy { !AtomicFile.isTemporary(($0 as NSString).lastPathComponent) })

        // The lock went with the session: a batch run finishes the (partial) run in the same folder.
        var options = RunOptions()
        options.jobs = 2
        let summary = try RunPipeline.run(runDir: runDir, outDir: out, options: options,
                                          progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        #expect(summary.nFrames == arrivals.count)
    }
}

/// The rows frames.csv had when the final pass began, and its text.
final class LiveRows: @unchecked Sendable {
    private let lock = NSLock()
    private var value: [String: Date] = [:]
    private var text: String?
    func set(_ v: [String: Date], table: String?) { lock.lock(); value = v; text = table; lock.unlock() }
    var rows: [String: Date] { lock.lock(); defer { lock.unlock() }; return value }
    var table: String? { lock.lock(); defer { lock.unlock() }; return text }
}
