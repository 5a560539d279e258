import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a heating-run folder into a `FrameTable` (run contract §1), from file headers and
/// metadata only: pixels are never decoded here, so memory grows with the number of frames,
/// not their size.
public enum RunFolder {
    public static let configFileName = "heatfront.yaml"
    public static let defaultHeatingLogName = "heating_log.csv"

    /// The run's config: `configURL` when given (`--config FILE`, must exist), else
    /// `heatfront.yaml` in `runDir` when present, else the defaults.
    public static func loadConfig(runDir: URL, configURL: URL?) throws -> RunConfig {
        if let configURL { return try RunConfig.load(configURL) }
        let url = runDir.appendingPathComponent(configFileName)
        return FileManager.default.fileExists(atPath: url.path) ? try RunConfig.load(url) : RunConfig()
    }

    /// Scans `runDir` recursively and builds the frame table.
    ///
    /// Hidden files and folders are skipped silently. The config file and the heating log in
    /// use are read, not listed; every other file that is not a run frame format (`.emi`,
    /// `ground_truth.*`, other CSV/JSON, notes, an unused `heating_log.csv`) is listed in
    /// `ignored`. Symlinked folders are followed once (a loop back into the run is not).
    ///
    /// - Parameters:
    ///   - heatingLog: `--heating-log FILE`; overrides `heating_log:` in the config, which
    ///     overrides `heating_log.csv` in `runDir`.
    ///   - exclude: files or folders not to read (e.g. an output folder inside RUN_DIR).
    ///   - open: the decoder factory (tests pass a fake).
    /// - Throws: `RunConfigError` for config values that contradict the folder (roi or lines
    ///   outside the frame, a missing `heating_log:`), `HeatingLogError` for an unusable log,
    ///   `FrameIOError` when `runDir` is not a readable folder. Unreadable frame files are
    ///   not errors: they become `unreadable:<reason>` frames.
    public static func scan(_ runDir: URL, config: RunConfig, heatingLog: URL? = nil, exclude: [URL] = [],
                            open: (URL) throws -> any FrameFileReader = FrameFiles.open) throws -> FrameTable {
        let root = runDir.standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw FrameIOError(.io, url: root, "not a folder")
        }
        var warnings: [String] = []

        // The heating log, resolved and parsed before any frame is touched.
        let logURL = try resolveHeatingLog(root: root, config: config, override: heatingLog)
        let log = try logURL.map { try HeatingLog.load($0) }

        // 1. Walk.
        var silent = Set(exclude.map { $0.standardizedFileURL.path })
        if let u = logURL { silent.insert(u.standardizedFileURL.path) }
        if let u = config.sourceFile { silent.insert(u.standardizedFileURL.path) }
        var frameFiles: [(rel: String, url: URL)] = []
        var ignored: [String] = []
        walk(root, rel: "", silent: silent, visited: [], frames: &frameFiles, ignored: &ignored)
        frameFiles.sort { NaturalSort.less($0.rel, $1.rel) }
        ignored.sort(by: NaturalSort.less)
        if frameFiles.isEmpty {
            warnings.append("no frame files (.tif, .tiff, .png, .dm3, .dm4, .emd, .ser, .mrc, .hspy, .hdf5, .zspy) in \(root.path)")
        }

        // 2. Headers and per-frame metadata, files in parallel (some formats, such as PNG,
        // decode the whole file to reach them); `open` must be safe to call concurrently.
        let files = frameFiles
        var raws = try withoutActuallyEscaping(open) { open in
            let opener = UncheckedOpener(open: open)
            return try ResultSlots<[RawFrame]>.map(files.count) { fileNo in
                readHeaders(files[fileNo].url, rel: files[fileNo].rel, fileNo: fileNo, open: opener.open)
            }
        }.flatMap { $0 }
        spreadStackTimes(&raws)

        // 3. Order: acquisition time where every (readable) frame has one, else natural order.
        let readable = raws.indices.filter { raws[$0].status.isOK }
        let absolute = !readable.isEmpty && readable.allSatisfy { raws[$0].absTime != nil }
        if absolute {
            let key = fillFromNeighbours(raws.map { $0.absTime?.timeIntervalSinceReferenceDate })
            let order = raws.indices.sorted { (key[$0]!, $0) < (key[$1]!, $1) }
            raws = order.map { raws[$0] }
        }

        // 4. Times.
        var times = [Double](repeating: 0, count: raws.count)
        let timeSource: TimeSource
        let singleFileRelative = !absolute && !readable.isEmpty && Set(raws.map(\.fileNo)).count == 1
            && readable.allSatisfy { raws[$0].relTime != nil }
        let gatan = raws.map { GatanCapturePath(relativePath: $0.rel) }
        // DM files of a Gatan in-situ capture often stamp whole seconds only: when several
        // files share one time stamp and the capture tree is there, the tree is the finer clock.
        let coarseClock: Bool = {
            guard absolute, gatan.allSatisfy({ $0 != nil }) else { return false }
            var fileOfTime: [Date: Int] = [:]
            for r in raws where r.status.isOK {
                if let other = fileOfTime[r.absTime!], other != r.fileNo { return true }
                fileOfTime[r.absTime!] = r.fileNo
            }
            return false
        }()
        if absolute && !coarseClock {
            let t = fillFromNeighbours(raws.map { $0.absTime?.timeIntervalSinceReferenceDate }).map { $0! }
            times = t.map { $0 - t[0] }
            timeSource = .frameMetadata
        } else if coarseClock {
            raws.sort { NaturalSort.less($0.rel, $1.rel) || ($0.rel == $1.rel && $0.page < $1.page) }
            times = gatanTimes(raws.map { GatanCapturePath(relativePath: $0.rel)! }, pages: raws.map(\.page))
            timeSource = .gatanFolderTree
            warnings.append("several files share one metadata time stamp: times come from the Gatan capture folder tree")
        } else if singleFileRelative {
            let t = fillFromNeighbours(raws.map(\.relTime)).map { $0! }
            times = t.map { $0 - t[0] }
            timeSource = .frameMetadata
        } else if !raws.isEmpty, gatan.allSatisfy({ $0 != nil }) {
            times = gatanTimes(gatan.map { $0! }, pages: raws.map(\.page))
            timeSource = .gatanFolderTree
        } else if let dt = config.frameIntervalS {
            times = raws.indices.map { Double($0) * dt }
            timeSource = .configFrameInterval
        } else {
            times = raws.indices.map(Double.init)
            timeSource = .frameIndex
            if !raws.isEmpty {
                warnings.append("no frame times in the file metadata, a Gatan capture folder tree or frame_interval_s: time_s is the frame index")
            }
        }

        // 5. Frame size: the most common among readable frames; the others are rejected.
        var sizeCount: [String: (w: Int, h: Int, n: Int, first: Int)] = [:]
        for (i, r) in raws.enumerated() where r.status.isOK {
            let k = "\(r.width)x\(r.height)"
            let e = sizeCount[k] ?? (r.width, r.height, 0, i)
            sizeCount[k] = (e.w, e.h, e.n + 1, e.first)
        }
        let runSize = sizeCount.values.max { ($0.n, -$0.first) < ($1.n, -$1.first) }
        let (W, H) = (runSize?.w ?? 0, runSize?.h ?? 0)
        var nRejected = 0
        for i in raws.indices where raws[i].status.isOK && (raws[i].width != W || raws[i].height != H) {
            raws[i].status = .rejected("size")
            nRejected += 1
        }
        if nRejected > 0 {
            warnings.append("\(nRejected) frame(s) differ from the run's \(W)×\(H) size and are rejected:size")
        }
        let nUnreadable = raws.filter { if case .unreadable = $0.status { true } else { false } }.count
        if nUnreadable > 0 { warnings.append("\(nUnreadable) frame(s) unreadable") }
        if runSize != nil { try config.validate(frameWidth: W, frameHeight: H) }

        // 6. Temperatures, first source that applies per frame.
        var temps = [Double?](repeating: nil, count: raws.count)
        var sources = [TemperatureSource](repeating: .unknown, count: raws.count)
        var ruleUsed = [Bool](repeating: false, count: config.steps.count)
        for i in raws.indices {
            let name = String(raws[i].rel.split(separator: "/").last ?? "")
            if let k = config.steps.firstIndex(where: { $0.matches(relativePath: raws[i].rel, fileName: name, frameIndex: i) }) {
                temps[i] = config.steps[k].temperatureC
                sources[i] = .configSteps
                ruleUsed[k] = true
            }
        }
        for (k, used) in ruleUsed.enumerated() where !used {
            warnings.append("steps[\(k)] in \(config.fileLabel) matches no frame")
        }
        var logTimes = [Double?](repeating: nil, count: raws.count)
        var holds: [TemperatureHold] = []
        if let log {
            if timeSource == .frameIndex {
                warnings.append("the heating log is read against frame indices taken as seconds, since the frames have no times")
            }
            logTimes = alignToLog(log, raws: raws, times: times, absolute: absolute, warnings: &warnings)
            var outside = 0
            for i in raws.indices where sources[i] == .unknown {
                if let lt = logTimes[i], let t = log.temperature(at: lt) {
                    temps[i] = t
                    sources[i] = .heatingLog
                } else {
                    outside += 1
                }
            }
            if outside > 0 {
                warnings.append("\(outside) frame(s) fall outside the heating log \(log.file)")
            }
            holds = log.holds(toleranceC: config.stepToleranceC, minHoldS: config.minHoldS)
            if holds.isEmpty {
                warnings.append("the heating log \(log.file) has no hold of \(config.minHoldS) s within \(config.stepToleranceC) °C: every frame it dates is a ramp frame (step -1)")
            }
        }
        for i in raws.indices where sources[i] == .unknown {
            if let t = raws[i].temperature {
                temps[i] = t; sources[i] = .frameMetadata
            } else if let t = TemperatureTokens.enclosingFolderTemperature(raws[i].rel) {
                temps[i] = t; sources[i] = .folderName
            } else if let t = TemperatureTokens.fileNameTemperature(String(raws[i].rel.split(separator: "/").last ?? "")) {
                temps[i] = t; sources[i] = .fileName
            }
        }
        let nUnknown = sources.filter { $0 == .unknown }.count
        if nUnknown > 0 {
            warnings.append("temperature unknown for \(nUnknown) of \(raws.count) frame(s): no config steps, heating log, metadata, folder or file-name temperature")
        }

        // 7. Steps.
        let slack = (log?.sampleSpacing_s ?? 0) / 2
        let holdOf: [Int?] = raws.indices.map { i in
            guard sources[i] == .heatingLog, let lt = logTimes[i] else { return nil }
            return holds.firstIndex { lt >= $0.start_s - slack && lt <= $0.end_s + slack } ?? -1
        }
        let stepIndices = assignSteps(temps: temps, holdOf: holdOf, toleranceC: config.stepToleranceC)
        var steps: [TemperatureStep] = []
        for (i, s) in stepIndices.enumerated() where s >= 0 {
            if s == steps.count { steps.append(TemperatureStep(index: s, temperatureC: nil, frameIndices: [])) }
            steps[s].frameIndices.append(i)
        }
        for k in steps.indices {
            let known = steps[k].frameIndices.compactMap { temps[$0] }
            steps[k].temperatureC = known.isEmpty ? nil : median(known)
        }

        // 8. Pixel size.
        let pixelSize: Double?
        let pixelSource: PixelSizeSource
        if let p = config.pixelSizeNm {
            pixelSize = p
            pixelSource = .config
        } else {
            let known = raws.filter { $0.status.isOK }.compactMap(\.pixelSize)
            if known.isEmpty {
                pixelSize = nil
                pixelSource = .none
                warnings.append("no pixel size in the config or the file metadata: lengths are in pixels and the _nm columns stay empty")
            } else {
                let m = median(known)
                pixelSize = m
                pixelSource = .metadata
                if known.contains(where: { abs($0 - m) > 0.01 * m }) {
                    warnings.append("frames disagree on the pixel size (\(known.min()!)–\(known.max()!) nm); using the median \(m) nm")
                }
            }
        }

        // 9. The table.
        let records = raws.indices.map { i in
            FrameRecord(frameIndex: i, file: raws[i].rel, url: raws[i].url, page: raws[i].page, signal: raws[i].signal,
                        timeS: times[i], acquisitionTime: raws[i].absTime, midAcquisitionOffsetS: raws[i].midOffset,
                        temperatureC: temps[i], temperatureSource: sources[i], stepIndex: stepIndices[i],
                        width: raws[i].width, height: raws[i].height, pixelSizeNm: raws[i].pixelSize, status: raws[i].status)
        }
        return FrameTable(runDir: root, records: records, steps: steps, frameWidth: W, frameHeight: H,
                          pixelSizeNm: pixelSize, timeSource: timeSource.rawValue,
                          temperatureSource: describeSources(sources), pixelSizeSource: pixelSource.rawValue,
                          heatingLog: logURL?.path, heatingLogFormat: log?.format.rawValue, holds: holds, ignored: ignored, warnings: warnings)
    }

    // MARK: Steps

    /// Step numbers in frame order (run contract §1 "Temperature steps").
    ///
    /// `holdOf[i]` is the heating-log hold frame i lies in (-1: a ramp), nil when its
    /// temperature did not come from the log. Log frames share a step while they stay in one
    /// hold; ramp frames get -1. Other frames form maximal runs whose temperatures lie within
    /// `toleranceC` of each other (max − min ≤ tolerance). A frame of unknown temperature joins
    /// the step it is in the middle of, so an unreadable frame does not split a hold, and a run
    /// with no temperatures at all is one step.
    static func assignSteps(temps: [Double?], holdOf: [Int?], toleranceC: Double) -> [Int] {
        enum Group { case hold(Int), band(lo: Double, hi: Double), unknown }
        var out = [Int](repeating: -1, count: temps.count)
        var current: Group? = nil
        var next = 0
        for i in temps.indices {
            if let h = holdOf[i] {
                if h < 0 { current = nil; continue }
                if case .hold(let g)? = current, g == h {} else { current = .hold(h); next += 1 }
            } else if let t = temps[i] {
                switch current {
                case .band(let lo, let hi)? where max(hi, t) - min(lo, t) <= toleranceC:
                    current = .band(lo: min(lo, t), hi: max(hi, t))
                case .unknown?:
                    current = .band(lo: t, hi: t)
                default:
                    current = .band(lo: t, hi: t); next += 1
                }
            } else if current == nil {
                current = .unknown; next += 1
            }
            out[i] = next - 1
        }
        return out
    }

    // MARK: Walking and headers

    private struct RawFrame {
        var rel: String
        var url: URL
        var fileNo: Int
        var page: Int
        var signal: Int
        var width: Int
        var height: Int
        var absTime: Date?
        var relTime: Double?
        var midOffset: Double
        var temperature: Double?
        var pixelSize: Double?
        var status: FrameStatus
    }

    private static func walk(_ dir: URL, rel: String, silent: Set<String>, visited: Set<String>,
                             frames: inout [(rel: String, url: URL)], ignored: inout [String]) {
        let real = dir.resolvingSymlinksInPath().path
        guard !visited.contains(real) else { return }              // a symlink loop
        let visited = visited.union([real])
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let url = dir.appendingPathComponent(name)
            let r = rel.isEmpty ? name : "\(rel)/\(name)"
            if silent.contains(url.standardizedFileURL.path) { continue }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                walk(url, rel: r, silent: silent, visited: visited, frames: &frames, ignored: &ignored)
            } else if let f = FrameFormat(fileExtension: url.pathExtension), f.isRunFrameFormat {
                frames.append((r, url))
            } else {
                ignored.append(r)
            }
        }
    }

    /// One entry per frame of a file; a file that cannot be opened is one unreadable frame.
    private static func readHeaders(_ url: URL, rel: String, fileNo: Int,
                                    open: (URL) throws -> any FrameFileReader) -> [RawFrame] {
        func unreadable(_ error: Error, page: Int = 0) -> RawFrame {
            let reason = (error as? FrameIOError)?.reason ?? FrameIOError.Kind.io.rawValue
            return RawFrame(rel: rel, url: url, fileNo: fileNo, page: page, signal: 0, width: 0, height: 0,
                            absTime: nil, relTime: nil, midOffset: 0, temperature: nil, pixelSize: nil,
                            status: .unreadable(reason))
        }
        let reader: any FrameFileReader
        do { reader = try open(url) } catch { return [unreadable(error)] }
        let s = reader.primarySignal
        guard reader.signals.indices.contains(s) else {
            return [unreadable(FrameIOError(.unsupported, url: url, "no image signal"))]
        }
        let info = reader.signals[s]
        guard info.frameCount > 0, info.width > 0, info.height > 0 else {
            return [unreadable(FrameIOError(.corrupt, url: url, "empty image signal"))]
        }
        var out: [RawFrame] = []
        out.reserveCapacity(min(info.frameCount, 1 << 16))
        for page in 0..<info.frameCount {
            do {
                let m = try reader.metadata(signal: s, frame: page)
                let mid = m.dwellTime_s.map { $0 * Double(info.width * info.height) / 2 } ?? 0
                out.append(RawFrame(rel: rel, url: url, fileNo: fileNo, page: page, signal: s,
                                    width: info.width, height: info.height, absTime: m.acquisitionTime,
                                    relTime: m.relativeTime_s, midOffset: mid.isFinite ? mid : 0,
                                    temperature: m.temperatureC.flatMap { $0.isFinite ? $0 : nil },
                                    pixelSize: (m.pixelSizeNm ?? info.pixelSizeXNm ?? info.pixelSizeYNm).flatMap { $0 > 0 && $0.isFinite ? $0 : nil },
                                    status: .ok))
            } catch {
                out.append(unreadable(error, page: page))
            }
        }
        return out
    }

    /// A stack whose pages all carry the file's one acquisition time but distinct relative
    /// times: the pages' own times are the file time plus their offsets.
    private static func spreadStackTimes(_ raws: inout [RawFrame]) {
        var byFile: [Int: [Int]] = [:]
        for (i, r) in raws.enumerated() where r.status.isOK { byFile[r.fileNo, default: []].append(i) }
        for idx in byFile.values where idx.count > 1 {
            guard let t0 = raws[idx[0]].absTime, idx.allSatisfy({ raws[$0].absTime == t0 }),
                  idx.allSatisfy({ raws[$0].relTime != nil }),
                  Set(idx.map { raws[$0].relTime! }).count == idx.count else { continue }
            let r0 = raws[idx[0]].relTime!
            for i in idx { raws[i].absTime = t0.addingTimeInterval(raws[i].relTime! - r0) }
        }
    }

    /// Fills nil entries (unreadable frames) with the previous known value, or the next one.
    private static func fillFromNeighbours(_ v: [Double?]) -> [Double?] {
        var out = v
        var last: Double? = nil
        for i in out.indices { if let x = out[i] { last = x } else { out[i] = last } }
        var nextKnown: Double? = nil
        for i in out.indices.reversed() { if let x = v[i] { nextKnown = x } else if out[i] == nil { out[i] = nextKnown } }
        return out.map { $0 ?? 0 }
    }

    /// Times from a Gatan in-situ capture tree: the folder names give the whole second; the
    /// k frames saved within one second are spread evenly over it in frame-number order.
    private static func gatanTimes(_ paths: [GatanCapturePath], pages: [Int]) -> [Double] {
        var bySecond: [Int: [Int]] = [:]
        for (i, p) in paths.enumerated() { bySecond[p.second, default: []].append(i) }
        var t = [Double](repeating: 0, count: paths.count)
        for (sec, idx) in bySecond {
            let sorted = idx.sorted { (paths[$0].frame, pages[$0], $0) < (paths[$1].frame, pages[$1], $1) }
            for (k, i) in sorted.enumerated() { t[i] = Double(sec) + Double(k) / Double(sorted.count) }
        }
        guard let first = t.first else { return t }
        let origin = min(first, t.min()!)
        return t.map { $0 - origin }
    }

    // MARK: Heating log

    private static func resolveHeatingLog(root: URL, config: RunConfig, override: URL?) throws -> URL? {
        if let override {
            guard FileManager.default.fileExists(atPath: override.path) else {
                throw HeatingLogError(file: override.path, "no such file (--heating-log)")
            }
            return override
        }
        if let name = config.heatingLog {
            // A relative name is looked up in RUN_DIR, then beside the config file (`--config`
            // kept elsewhere may name a log that lives with it).
            var candidates = name.hasPrefix("/") ? [URL(fileURLWithPath: name)] : [root.appendingPathComponent(name)]
            if !name.hasPrefix("/"), let dir = config.sourceFile?.deletingLastPathComponent() {
                candidates.append(dir.appendingPathComponent(name))
            }
            guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
                throw RunConfigError(file: config.fileLabel, key: "heating_log",
                                     "no such file: \(candidates.map(\.path).joined(separator: " or "))")
            }
            return url
        }
        let url = root.appendingPathComponent(defaultHeatingLogName)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Each frame's mid-acquisition time on the log's axis. Absolute when both the log and
    /// the frames carry absolute times (falling back, with a warning, when that puts no frame
    /// inside the log, e.g. a clock-zone mismatch); otherwise log time 0 = the first frame.
    private static func alignToLog(_ log: HeatingLog, raws: [RawFrame], times: [Double], absolute: Bool,
                                   warnings: inout [String]) -> [Double?] {
        let relative: [Double?] = raws.indices.map { times[$0] + raws[$0].midOffset }
        guard absolute, let start = log.startDate, let lo = log.times_s.first, let hi = log.times_s.last else {
            return relative
        }
        let firstAbs = raws.indices.first { raws[$0].absTime != nil }.map { raws[$0].absTime!.addingTimeInterval(-times[$0]) }
        guard let t0 = firstAbs else { return relative }
        let abs: [Double?] = raws.indices.map { t0.addingTimeInterval(times[$0] + raws[$0].midOffset).timeIntervalSince(start) }
        if abs.contains(where: { ($0 ?? -.infinity) >= lo && ($0 ?? .infinity) <= hi }) { return abs }
        warnings.append("the heating log's clock (\(log.file)) does not overlap the frames' acquisition times; aligned the log's start with the first frame instead")
        return relative
    }

    private static func describeSources(_ s: [TemperatureSource]) -> String {
        let counts = TemperatureSource.allCases.map { src in (src, s.filter { $0 == src }.count) }.filter { $0.1 > 0 }
        if counts.count == 1 { return counts[0].0.rawValue }
        if counts.isEmpty { return TemperatureSource.unknown.rawValue }
        return "mixed: " + counts.map { "\($0.0.rawValue) (\($0.1))" }.joined(separator: ", ")
    }
}

extension StepRule {
    /// Whether the rule selects a frame. A glob is matched (fnmatch, `*` crossing `/`) against
    /// the path relative to RUN_DIR, and, when it has no `/`, against the file name as well.
    public func matches(relativePath: String, fileName: String, frameIndex: Int) -> Bool {
        if let frames { return frames.contains(frameIndex) }
        guard let glob else { return false }
        if fnmatch(glob, relativePath, 0) == 0 { return true }
        return !glob.contains("/") && fnmatch(glob, fileName, 0) == 0
    }
}

/// Carries the caller's `open` into the parallel header pass (FrameFiles.open and the test
/// doubles hold no mutable state).
private struct UncheckedOpener: @unchecked Sendable {
    let open: (URL) throws -> any FrameFileReader
}
