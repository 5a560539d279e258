import Foundation
import FrameCore
import FrameIO
import RunSettings
import Registration

/// How `heatfront watch` was asked to run.
public struct WatchOptions: Sendable {
    /// The analysis settings, as `heatfront run` takes them (the final pass is that run).
    public var run = RunOptions()
    /// After this many seconds without a new frame (or any file still being written): the
    /// final pass, then the end. nil: follow the run until interrupted.
    public var idleExitS: Double? = nil
    /// Seconds between two looks at files inotify cannot report (see `FolderWatch`).
    public var pollIntervalS = 0.5
    /// Plots, phase maps and report.html are rewritten at most this often; frames.csv and
    /// steps.csv after every frame.
    public var reportIntervalS = 5.0
    /// The live report reloads itself in the browser this often.
    public var reloadS = 5
    /// false: new files are found by polling only (file systems whose events do not reach
    /// this machine); otherwise inotify, and polling where it proves silent.
    public var inotify = true

    public init() {}
}

/// `heatfront watch`: follows a run folder while it is acquired and keeps OUT_DIR's
/// frames.csv, steps.csv, plots and report.html up to date frame by frame (`LiveRun`); once
/// the run is over (`idleExitS`), a final pass that is exactly `heatfront run` on the same
/// folder and output (reusing its stage cache) leaves OUT_DIR as the batch run leaves it.
///
/// OUT_DIR is claimed with the run's lock (`OutputFolder`) for the whole session; the lock is
/// handed to the final pass, which claims it again at once. Live outputs are written
/// atomically, so an interrupted session leaves each file whole, frames.csv and steps.csv
/// from the same frame, and no summary.json (the mark of a finished run).
public enum WatchSession {
    /// Follows the run until `idleExitS` seconds pass without news, then runs the final pass
    /// and returns its result.
    /// - Throws: `CancellationError` when cancelled (outputs are those of the last frame),
    ///   `PipelineError` for a run that cannot be followed (usage, output folder in use).
    public static func run(runDir: URL, outDir: URL, options: WatchOptions, status: WatchStatus,
                           progress: ProgressReporter, cancel: Cancellation) throws -> BatchRun.RunResult {
        try awaitRunFolder(runDir, status: status, cancel: cancel)
        if OutputFolder.isRunFolder(outDir, runDir: runDir) {
            throw PipelineError.usage("--out \(outDir.path) is the run folder itself: its outputs would be read as frames; choose another folder (a sub-folder is fine)")
        }
        do {
            try follow(runDir: runDir.standardizedFileURL, outDir: outDir.standardizedFileURL, options: options,
                       status: status, cancel: cancel)
        } catch let e as WriteError {
            status.finish()
            return .failed(code: PipelineError.cannotWrite("").exitCode, message: e.description)
        }
        status.finish()
        status.log("no new frame for \(Int(options.idleExitS ?? 0)) s: final pass (heatfront run)")
        return try BatchRun.runOne(runDir, outDir: outDir, options: options.run, progress: progress, cancel: cancel)
    }

    /// Returns once `runDir` is a folder: watch may be started before the acquisition
    /// creates it (in an existing folder; a missing parent is taken for a typing error).
    static func awaitRunFolder(_ runDir: URL, status: WatchStatus, cancel: Cancellation) throws {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        if fm.fileExists(atPath: runDir.path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw PipelineError.usage("\(runDir.path): heatfront watch follows a run folder; this is a file")
            }
            return
        }
        let parent = runDir.standardizedFileURL.deletingLastPathComponent()
        guard fm.fileExists(atPath: parent.path, isDirectory: &isDir), isDir.boolValue else {
            throw PipelineError.nothingToAnalyse("\(runDir.path): no such folder, nor its parent \(parent.path)")
        }
        status.log("waiting for \(runDir.path) to be created")
        while !(fm.fileExists(atPath: runDir.path, isDirectory: &isDir) && isDir.boolValue) {
            try cancel.throwIfCancelled()
            usleep(200_000)
        }
    }

    /// The live phase: returns when the run has been idle for `idleExitS`, with OUT_DIR's lock released.
    static func follow(runDir: URL, outDir: URL, options: WatchOptions, status: WatchStatus, cancel: Cancellation) throws {
        let folder = try OutputFolder(claiming: outDir)
        // Outputs of an earlier run would sit beside the live ones: the live files replace them.
        folder.removeStale()
        let live = LiveRun(runDir: runDir, outDir: outDir, options: options.run, cancel: cancel)
        let writer = LiveWriter(folder: folder, reloadS: options.reloadS)
        defer { writer.wait() }
        let watch = FolderWatch(root: runDir, exclude: [outDir], pollInterval: options.pollIntervalS, inotify: options.inotify)
        status.log("watching \(runDir.path) → \(outDir.path)")
        var lastNews = Date(), lastReport = Date.distantPast, dirty = false, toldPolling = !options.inotify
        while true {
            try cancel.throwIfCancelled()
            let waitS = dirty ? 0 : options.pollIntervalS
            let changes = watch.next(timeout: waitS)
            if !watch.inotifyWorks && !toldPolling {
                status.log("no file-system events from \(runDir.path) (a network file system?): polling every \(options.pollIntervalS) s")
                toldPolling = true
            }
            if !changes.isEmpty || watch.hasActivity { lastNews = Date() }
            if !changes.isEmpty, let queue = try WatchTrace.measure("scan", {
                try live.rescan(complete: watch.complete, pending: Array(watch.pending.keys), log: { status.log("heatfront: \($0)") })
            }) {
                var lastWrite = Date.distantPast
                for (i, record) in queue.enumerated() {
                    try cancel.throwIfCancelled()
                    live.installFinishedAnalysis()
                    let snapshot = try live.process(record)
                    // A backlog (a restart on a long run) writes the tables twice a second, not per frame.
                    if queue.count - i <= 4 || Date().timeIntervalSince(lastWrite) > 0.5 {
                        try WatchTrace.measure("tables") { try writer.writeTables(live) }
                        lastWrite = Date()
                    }
                    status.update(snapshot)
                    live.startAnalysisIfDue()
                    dirty = true
                }
                if !queue.isEmpty || live.table != nil { try writer.writeTables(live) }
            }
            live.installFinishedAnalysis()
            if dirty, Date().timeIntervalSince(lastReport) >= options.reportIntervalS, writer.isIdle {
                writer.refreshReport(live)
                lastReport = Date()
                dirty = false
            }
            if let idle = options.idleExitS, Date().timeIntervalSince(lastNews) >= idle {
                // The final pass replaces every live output: nothing more is written.
                live.finishAnalysis()
                writer.wait()
                return
            }
        }
    }
}

/// Writes the live outputs: the tables at once, the plots, maps and report on a background
/// queue (at most one refresh in flight), so a frame's row never waits for a figure.
final class LiveWriter: @unchecked Sendable {
    private let folder: OutputFolder
    private let reloadS: Int
    private let queue = DispatchQueue(label: "heatfront.watch.report")
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var busy = false
    private var lastError: Error?

    init(folder: OutputFolder, reloadS: Int) {
        self.folder = folder
        self.reloadS = reloadS
    }

    var isIdle: Bool { lock.lock(); defer { lock.unlock() }; return !busy }

    func writeTables(_ live: LiveRun) throws {
        lock.lock(); let failed = lastError; lock.unlock()
        if let failed { throw failed }
        guard let table = live.table else { return }
        let (done, rows) = live.processedRows(table)
        try RunOutputs(folder: folder, table: done).writeFrames(rows, registrationOnly: false)
        try RunOutputs(folder: folder, table: table).writeSteps(live.stepRows(table))
    }

    /// Plots, new phase maps and report.html from a snapshot of the live state.
    func refreshReport(_ live: LiveRun) {
        guard let table = live.table else { return }
        let results = live.frameResults(table), steps = live.stepRows(table), averages = live.averages(table)
        let analyses = live.takeChangedAnalyses(table), config = live.config, boundary = live.frontBoundary
        var s = RunSummary(table: table, runDir: live.runDir, config: config, inputs: [])
        s.nUsed = results.filter { $0.status.isOK }.count
        let ratios = table.steps.map { st in st.frameIndices.filter { results[$0].status.isOK }.compactMap { results[$0].liTmRatio } }
        let hasFront = table.steps.map { st in st.frameIndices.contains { results[$0].frontPositionPx != nil } }
        _ = s.addKinetics(steps: steps, ratios: ratios, hasFront: hasFront)
        s.warnings = table.warnings
        let summary = s
        let outputs = RunOutputs(folder: folder, table: table, liveReloadSeconds: reloadS)
        lock.lock(); busy = true; lock.unlock()
        queue.async(group: group) { [self] in
            do {
                try outputs.writeStepDetails(analyses, averages: averages, pixelSizeNm: table.pixelSizeNm,
                                             config: config, boundary: boundary)
                // Figure warnings (gnuplot missing or failing) are the final pass's to report.
                _ = try outputs.writePlotsAndReport(results: results, steps: steps, averages: averages, summary: summary)
            } catch {
                lock.lock(); lastError = error; lock.unlock()
            }
            lock.lock(); busy = false; lock.unlock()
        }
    }

    func wait() { group.wait() }
}
