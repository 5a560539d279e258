import Foundation
import FrameCore
import FrameIO
import RunSettings
import Registration
import ColumnIntensities
import FrontTracking

/// The live analysis of a run that is still being acquired: each new frame registered
/// against its step's running reference (`RunningRegistration`), added to the step's
/// running average, and measured at the sites of the latest analysis of that average
/// (`StepAnalysis`, `FrameMeasurement` on the one frame); the step's row assembled as the
/// batch run does (`StepKinetics`).
///
/// The frame table is the batch run's own (`RunFolder.scan`), rebuilt at every change from
/// the complete files only, so frame indices, times, temperatures and steps are those a
/// `heatfront run` of the same files gives. Memory: per frame one `FrameResult`; per step
/// its running average while the step is current (sum and coverage) and its average image
/// after; one step analysis (the latest); the registration's references (`RunningRegistration`).
final class LiveRun {
    struct StepState {
        var sum: [Float]
        var weight: [Float]
        var count = 0
        var analysis: StepAnalysis?
        var analysedAt = 0
        /// Why the average could not be analysed, the last time it was tried.
        var skipped: String?
        /// The step's row, frozen once the step is over (its analysis is then dropped).
        var frozen: StepResult?
        /// A phase map to write at the next report.
        var mapChanged = false
        /// A finished step's average, binned, for the live report.
        var preview: Image?

        init(pixels: Int) {
            sum = [Float](repeating: 0, count: pixels)
            weight = [Float](repeating: 0, count: pixels)
        }

        func average(width w: Int, height h: Int) -> AlignedAverage {
            var mean = [Float](repeating: 0, count: sum.count)
            for i in 0..<sum.count where weight[i] > 0 { mean[i] = sum[i] / weight[i] }
            return AlignedAverage(image: Image(width: w, height: h, pixels: mean),
                                  weight: Image(width: w, height: h, pixels: weight), frameCount: count)
        }
    }

    let runDir: URL
    let outDir: URL
    let options: RunOptions
    let cancel: Cancellation
    private let headers = HeaderCache()
    private(set) var config = RunConfig()
    private(set) var table: FrameTable?
    private var results: [String: FrameResult] = [:]
    private var registration: RunningRegistration?
    private var segment = 0
    private var lastStep: Int?
    private var steps: [Int: StepState] = [:]
    private var currentStep: Int?
    private var latest: StepAnalysis?
    private var boundary: LineSegment?
    private var recentShifts: [(t: Double, dx: Double, dy: Double)] = []
    private var lastScanProblem: String?
    private let analysisQueue = DispatchQueue(label: "heatfront.watch.analysis")
    private let analysisDone = Slot<(Int, Result<(StepAnalysis, LineSegment?), StepSkipped>)>()
    private var analysisRunning = false
    private(set) var processed = 0

    init(runDir: URL, outDir: URL, options: RunOptions, cancel: Cancellation) {
        self.runDir = runDir
        self.outDir = outDir
        self.options = options
        self.cancel = cancel
    }

    static func key(_ r: FrameRecord) -> String { "\(r.file)#\(r.page)" }

    // MARK: Frame table

    /// The table of the complete files. Returns the records not processed yet, in
    /// acquisition order; nil (and a message, once) when the run cannot be read yet.
    func rescan(complete: Set<String>, pending: [String], log: (String) -> Void) throws -> [FrameRecord]? {
        var excluded = [outDir] + pending.map { runDir.appendingPathComponent($0) }
        do {
            var config = try RunFolder.loadConfig(runDir: runDir, configURL: options.configURL)
            if let mode = options.mode { config.registrationMode = mode }
            var table = try RunFolder.scan(runDir, config: config, heatingLog: options.heatingLog, exclude: excluded,
                                           open: headers.open)
            // A file that appeared after the watcher's last look may still be written: left for later.
            for _ in 0..<3 {
                let unknown = Set(table.records.map(\.file)).subtracting(complete)
                if unknown.isEmpty { break }
                excluded += unknown.map { runDir.appendingPathComponent($0) }
                table = try RunFolder.scan(runDir, config: config, heatingLog: options.heatingLog, exclude: excluded,
                                           open: headers.open)
            }
            headers.keep(only: Set(table.records.map(\.url.path)))
            self.config = config
            self.table = table
            lastScanProblem = nil
        } catch let e as RunConfigError {
            report("\(e.description) (waiting for the file to change)", log)
            return nil
        } catch let e as HeatingLogError {
            report("\(e.description) (waiting for the file to change)", log)
            return nil
        } catch let e as FrameIOError {
            throw PipelineError.nothingToAnalyse(e.description)
        }
        return table!.records.filter { results[Self.key($0)] == nil }
            .sorted { ($0.timeS, $0.frameIndex) < ($1.timeS, $1.frameIndex) }
    }

    private func report(_ problem: String, _ log: (String) -> Void) {
        if problem != lastScanProblem { log(problem) }
        lastScanProblem = problem
    }

    // MARK: One frame

    /// Registers and measures one new frame of the current table.
    func process(_ record: FrameRecord) throws -> WatchStatus.Snapshot {
        guard let table else { preconditionFailure("process before rescan") }
        var r = FrameResult(frameIndex: record.frameIndex, status: record.status)
        defer { results[Self.key(record)] = r; processed += 1 }
        guard record.status == .ok else { return snapshot(record, r) }
        let frames = RunFrames(table: table, indices: [record.frameIndex])
        let image: Image
        do { image = try frames.image(at: 0) } catch {
            r.status = .rejected("unreadable")
            return snapshot(record, r)
        }
        if registration == nil {
            let band = RegistrationStage.correlationBand(frames, table: table, config: config)
            registration = RunningRegistration(options: RegistrationStage.rigidOptions(config: config, band: band))
        }
        if record.stepIndex != lastStep { segment += 1; lastStep = record.stepIndex }
        let shift = try WatchTrace.measure("register") { try registration!.register(image, group: segment) }
        r.shiftX = shift.isUsed ? shift.dx : nil
        r.shiftY = shift.isUsed ? shift.dy : nil
        r.score = shift.score
        guard shift.isUsed else {
            r.status = .rejected(shift.rejection!)
            return snapshot(record, r)
        }
        recentShifts.append((record.timeS, shift.dx, shift.dy))
        if recentShifts.count > 5 { recentShifts.removeFirst() }
        let k = record.stepIndex
        if k >= 0 { add(image, shift: shift, step: k, pixelSizeNm: table.pixelSizeNm) }
        if let analysis = (k >= 0 ? steps[k]?.analysis : nil) ?? latest {
            let m = try WatchTrace.measure("measure") { try FrameMeasurement.measure([record.frameIndex], times: [record.timeS], frames: frames,
                                                 okIndices: [record.frameIndex], shifts: [shift], fields: [:],
                                                 analysis: analysis, boundary: boundary, jobs: 1, cancel: cancel) }
            if let first = m.frames.first { r.merge(first) }
        }
        return snapshot(record, r)
    }

    /// The frame joins its step's running average; a new step freezes the one before.
    /// A frame that completes after frames acquired later (its file was found by a listing,
    /// theirs by events) still gets its row, but does not reopen a step that has ended.
    private func add(_ image: Image, shift: FrameShift, step k: Int, pixelSizeNm: Double?) {
        guard steps[k]?.frozen == nil else { return }
        if let previous = currentStep, previous != k {
            guard k > previous else { return }
            freeze(previous)
        }
        currentStep = k
        var s = steps[k] ?? StepState(pixels: image.pixels.count)
        guard s.sum.count == image.pixels.count else { return }
        let (moved, valid) = Resampling.shifted(image, by: -shift.dx, -shift.dy, interpolation: .bicubic)
        moved.pixels.withUnsafeBufferPointer { m in
            for i in 0..<m.count where valid.bits[i] { s.sum[i] += m[i]; s.weight[i] += 1 }
        }
        s.count += 1
        steps[k] = s
    }

    /// Starts an analysis of the current step's running average on a queue of its own when
    /// one is due: at the step's 2nd, 4th, 8th, … frame (the first too while no step has an
    /// analysis), one at a time, so the frames' rows never wait for it and the work per frame
    /// stays bounded. Frames are measured with the latest analysis finished.
    func startAnalysisIfDue() {
        guard let k = currentStep, let s = steps[k], let table, !analysisRunning else { return }
        let n = s.count
        guard n >= 2 * max(1, s.analysedAt) || (s.analysedAt == 0 && latest == nil) else { return }
        steps[k]!.analysedAt = n
        analysisRunning = true
        let average = s.average(width: table.frameWidth, height: table.frameHeight)
        let (config, pixelSizeNm, previous, boundary) = (config, table.pixelSizeNm, latest?.lattice, boundary)
        let finished = analysisDone
        analysisQueue.async {
            let outcome = Result { () throws(StepSkipped) in
                try Self.analyse(average, config: config, pixelSizeNm: pixelSizeNm, previous: previous, boundary: boundary)
            }
            finished.set((k, outcome))
        }
    }

    /// Installs an analysis that finished since the last call.
    func installFinishedAnalysis() {
        guard let done = analysisDone.take() else { return }
        let (k, outcome) = done
        analysisRunning = false
        guard var s = steps[k] else { return }
        switch outcome {
        case .success(let (a, detected)):
            if config.frontBoundary == nil, let detected { boundary = detected }
            latest = a
            // A step that ended meanwhile keeps its row as it was.
            guard s.frozen == nil else { return }
            s.analysis = a
            s.skipped = nil
            s.mapChanged = true
        case .failure(let skipped):
            s.skipped = skipped.reason
        }
        steps[k] = s
    }

    /// Waits for the analysis in flight, if any, and installs it.
    func finishAnalysis() {
        analysisQueue.sync {}
        installFinishedAnalysis()
    }

    /// A step average's analysis (lattice, sites, phase map, front), as the batch run
    /// analyses a finished step's average, with the front's boundary detected on it.
    static func analyse(_ average: AlignedAverage, config: RunConfig, pixelSizeNm: Double?, previous: Lattice?,
                        boundary known: LineSegment?) throws(StepSkipped) -> (StepAnalysis, LineSegment?) {
        var a = try StepAnalysis.analyse(average: average, config: config, pixelSizeNm: pixelSizeNm, previous: previous)
        let boundary = config.frontBoundary ?? a.detectedBoundary ?? known
        if let boundary {
            let front = FrontLocator.locate(a.orderParameter, phase: a.phase, boundary: boundary)
            a.front = front
            if front.positionPx != nil { a.phase.rocksaltFraction = front.rocksaltFraction }
        }
        return (a, config.frontBoundary == nil ? boundary : nil)
    }

    /// A finished step keeps its row and its average image; its analysis and sums go.
    private func freeze(_ k: Int) {
        guard var s = steps[k], let table else { return }
        s.frozen = stepRow(k, table: table, analysis: s.analysis)
        // The live report's preview of a finished step: binned to about 256 px.
        let full = s.average(width: table.frameWidth, height: table.frameHeight).image
        s.preview = FrameMeasurement.bin(full, max(1, table.frameWidth / 256))
        s.sum = []
        s.weight = []
        s.analysis = nil
        s.mapChanged = false
        steps[k] = s
    }

    // MARK: Rows

    /// The table of the frames processed so far and their results, for frames.csv: a frame
    /// of the current scan still waiting in the queue has no row yet.
    func processedRows(_ table: FrameTable) -> (FrameTable, [FrameResult]) {
        var done = table
        done.records = table.records.filter { results[Self.key($0)] != nil }
        return (done, frameResults(done))
    }

    /// Results in table order. A frame not processed yet is `rejected:pending`: like a rejected
    /// frame, it is left out of its step's numbers (and it is never written: `processedRows`).
    func frameResults(_ table: FrameTable) -> [FrameResult] {
        table.records.map { rec in
            var r = results[Self.key(rec)] ?? FrameResult(frameIndex: rec.frameIndex, status: .rejected("pending"))
            r.frameIndex = rec.frameIndex
            // The table's current status wins for frames the scan now rejects.
            if rec.status != .ok { r.status = rec.status }
            return r
        }
    }

    private func stepRow(_ k: Int, table: FrameTable, analysis: StepAnalysis?) -> StepResult {
        StepKinetics.assemble(k, table: table, results: frameResults(table), analysis: analysis, front: nil)
    }

    /// A step's front velocity while it is acquired: the least-squares slope of its frames'
    /// positions against time (the moving-edge fit over all its frames runs in the final pass).
    static func liveVelocity(_ k: Int, table: FrameTable, results: [FrameResult]) -> Double? {
        let points = table.steps[k].frameIndices.compactMap { i in
            results[i].frontPositionPx.map { (t: table.records[i].timeS, x: $0) }
        }
        guard points.count >= 3 else { return nil }
        let tMean = points.map(\.t).reduce(0, +) / Double(points.count), xMean = points.map(\.x).reduce(0, +) / Double(points.count)
        let stt = points.map { ($0.t - tMean) * ($0.t - tMean) }.reduce(0, +)
        guard stt > 0 else { return nil }
        return points.map { ($0.t - tMean) * ($0.x - xMean) }.reduce(0, +) / stt
    }

    func stepRows(_ table: FrameTable) -> [StepResult] {
        let results = frameResults(table)
        return table.steps.indices.map { k in
            var row = StepKinetics.assemble(k, table: table, results: results, analysis: steps[k]?.analysis, front: nil)
            row.velocityPxPerS = Self.liveVelocity(k, table: table, results: results)
            // An ended step's analysis is gone: its row is the one it had, with the frame
            // counts and Li/TM statistics of late frames (the front is not refitted).
            guard var frozen = steps[k]?.frozen else { return row }
            frozen.nFrames = row.nFrames
            frozen.nUsed = row.nUsed
            frozen.ratioMean = row.ratioMean
            frozen.ratioSEM = row.ratioSEM
            frozen.tStart = row.tStart
            frozen.tEnd = row.tEnd
            return frozen
        }
    }

    /// Each step's average so far (an empty image for a step without a used frame).
    func averages(_ table: FrameTable) -> [AlignedAverage] {
        let w = table.frameWidth, h = table.frameHeight
        return table.steps.indices.map { k in
            guard let s = steps[k], s.count > 0 else {
                return AlignedAverage(image: Image(width: w, height: h), weight: Image(width: w, height: h), frameCount: 0)
            }
            if let preview = s.preview {
                return AlignedAverage(image: preview, weight: Image(width: preview.width, height: preview.height), frameCount: s.count)
            }
            return s.average(width: w, height: h)
        }
    }

    /// Analyses whose phase map has not been written yet (nil elsewhere); marks them written.
    func takeChangedAnalyses(_ table: FrameTable) -> [StepAnalysis?] {
        table.steps.indices.map { k in
            guard var s = steps[k], s.mapChanged, s.frozen == nil, let a = s.analysis else { return nil }
            s.mapChanged = false
            steps[k] = s
            return a
        }
    }

    var frontBoundary: LineSegment? { boundary }

    // MARK: Status

    private func snapshot(_ record: FrameRecord, _ r: FrameResult) -> WatchStatus.Snapshot {
        let nm = table?.pixelSizeNm
        let unit = nm == nil ? "px" : "nm", scale = nm ?? 1
        var s = WatchStatus.Snapshot(temperatureC: record.temperatureC, step: record.stepIndex, frames: processed + 1,
                                     used: results.values.filter { $0.status.isOK }.count + (r.status.isOK ? 1 : 0),
                                     lengthUnit: unit)
        if let first = recentShifts.first, let last = recentShifts.last, last.t > first.t {
            let vx = (last.dx - first.dx) / (last.t - first.t), vy = (last.dy - first.dy) / (last.t - first.t)
            s.driftRate = (vx * vx + vy * vy).squareRoot() * scale
        }
        s.frontPosition = r.frontPositionPx.map { $0 * scale }
        if let table, record.stepIndex >= 0, table.steps.indices.contains(record.stepIndex) {
            var results = frameResults(table)
            results[record.frameIndex] = r
            let row = StepKinetics.assemble(record.stepIndex, table: table, results: results,
                                            analysis: steps[record.stepIndex]?.analysis, front: nil)
            s.liTmRatio = row.ratioMean
            s.frontVelocity = Self.liveVelocity(record.stepIndex, table: table, results: results).map { $0 * scale }
        }
        return s
    }
}

/// One value handed from a worker to the live loop.
final class Slot<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func take() -> T? { lock.lock(); defer { lock.unlock() }; let v = value; value = nil; return v }
}
