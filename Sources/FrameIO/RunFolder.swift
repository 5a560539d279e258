import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a heating-run folder into a `FrameTable` (docs/user-guide.md, "The run folder"), from file headers and
/// metadata only: pixels are never decoded here, so memory grows with the number of frames,
/// not their size.
public enum RunFolder {
    public static let configFileName = "heatfront.yaml"
    public static let defaultHeatingLogName = "heating_log.csv"

    /// Scans a run and builds the frame table: `runPath` is a folder (read recursively) or
    /// a single stack file (TIFF, DM, EMD, …), whose folder then holds the config and log.
    ///
    /// Hidden files and folders are skipped silently. The config file and the heating log in
    /// use are read, not listed; every other file that is not a run frame format (`.emi`,
    /// `ground_truth.*`, other CSV/JSON, notes, an unused `heating_log.csv`) is listed in
    /// `ignored`; what cannot be used at all (see `FolderWalk`) is listed in `skipped`.
    ///
    /// - Parameters:
    ///   - heatingLog: `--heating-log FILE`; overrides `heating_log:` in the config, which
    ///     overrides `heating_log.csv` in the run folder.
    ///   - exclude: files or folders not to read (e.g. an output folder inside RUN_DIR).
    ///   - open: the decoder factory (tests pass a fake).
    /// - Throws: `RunConfigError` for config values that contradict the folder (roi or lines
    ///   outside the frame, a missing `heating_log:`, a `signal:` no file has),
    ///   `HeatingLogError` for an unusable log, `FrameIOError` when `runPath` is neither a
    ///   readable folder nor a regular file. Unreadable frame files are not errors: they
    ///   become `unreadable:<reason>` frames.
    public static func scan(_ runPath: URL, settings config: FolderSettings, heatingLog: URL? = nil, exclude: [URL] = [],
                            open: (URL) throws -> any FrameFileReader = FrameFiles.open) throws -> FrameTable {
        let input = try RunInput(runPath)
        let root = input.folder
        var warnings: [String] = []

        // The heating log, resolved and parsed before any frame is touched.
        let logURL = try resolveHeatingLog(root: root, config: config, override: heatingLog)
        let log = try logURL.map { try HeatingLog.load($0) }

        // 1. Files: the folder's, or the one stack file.
        var silent = Set(exclude.map { $0.standardizedFileURL.path })
        if let u = logURL { silent.insert(u.standardizedFileURL.path) }
        if let u = config.sourceFile { silent.insert(u.standardizedFileURL.path) }
        let walk = input.file.map { f -> FolderWalk in
            var w = FolderWalk(silent: silent)
            w.frames = [(f.lastPathComponent, f)]
            return w
        } ?? FolderWalk.run(root, silent: silent)
        if walk.frames.isEmpty {
            warnings.append("no frame files (.tif, .tiff, .png, .dm3, .dm4, .emd, .ser, .mrc, .hspy, .hdf5, .zspy) in \(root.path)")
        }
        warnings += skippedWarnings(walk.skipped)

        // 2. Headers, the frame size, times.
        var raws = try readHeaders(walk.frames, config: config, open: open)
        let size = FrameSizeVote.decide(&raws.frames, votes: raws.votes)
        let timing = FrameTimes.assign(&raws.frames, frameIntervalS: config.frameIntervalS, warnings: &warnings)
        let frames = raws.frames
        warnings += problemWarnings(frames, width: size.width, height: size.height, rejected: size.rejected)
        if size.width > 0 { try config.checkFrameSize(size.width, size.height) }

        // 3. Temperatures and steps.
        let temps = try assignTemperatures(frames, times: timing, log: log, config: config, warnings: &warnings)
        let stepIndices = assignSteps(temps: temps.values, holdOf: temps.holdOf, toleranceC: config.stepToleranceC)
        let steps = makeSteps(stepIndices, temps: temps.values)

        // 4. Pixel size, and the table.
        let pixel = pixelSize(frames, config: config, warnings: &warnings)
        let records = frames.indices.map { i in
            FrameRecord(frameIndex: i, file: frames[i].rel, url: frames[i].url, page: frames[i].page, signal: frames[i].signal,
                        timeS: timing.times[i], acquisitionTime: frames[i].absTime, midAcquisitionOffsetS: frames[i].midOffset,
                        temperatureC: temps.values[i], temperatureSource: temps.sources[i], stepIndex: stepIndices[i],
                        width: frames[i].width, height: frames[i].height, pixelSizeNm: frames[i].pixelSize, status: frames[i].status)
        }
        var table = FrameTable(runDir: root, records: records, steps: steps, frameWidth: size.width, frameHeight: size.height,
                               pixelSizeNm: pixel.value, timeSource: timing.source.rawValue,
                               temperatureSource: describeSources(temps.sources), pixelSizeSource: pixel.source.rawValue,
                               heatingLog: logURL?.path, heatingLogFormat: log?.format.rawValue, holds: temps.holds,
                               ignored: walk.ignored, warnings: warnings)
        table.skipped = walk.skipped
        table.logClock = temps.clock
        table.logTrace = temps.trace
        return table
    }

    /// What `heatfront run` was given: a folder, or one stack file inside its folder.
    struct RunInput {
        var folder: URL
        var file: URL?

        init(_ path: URL) throws {
            let url = path.standardizedFileURL
            var st = stat()
            guard stat(url.path, &st) == 0 else {
                throw FrameIOError(.io, url: url, "not a folder (\(RegularFile.reading(errno)))")
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard let d = opendir(url.path) else {
                    throw FrameIOError(.io, url: url, "cannot read the folder: \(RegularFile.reading(errno))")
                }
                closedir(d)
                folder = url
            case S_IFREG:
                guard let f = FrameFormat(fileExtension: url.pathExtension), f.isRunFrameFormat else {
                    throw FrameIOError(.io, url: url, "not a folder, nor a frame file HeatFront reads")
                }
                folder = url.deletingLastPathComponent()
                file = url
            default:
                throw FrameIOError(.io, url: url, "not a folder (\(RegularFile.describe(st.st_mode & S_IFMT)))")
            }
        }
    }

    /// Every file's headers, files in parallel (some formats, such as PNG, decode the whole
    /// file to reach them; `open` must be safe to call concurrently), then the stack times
    /// spread and the `signal:` key checked.
    private static func readHeaders(_ files: [(rel: String, url: URL)], config: FolderSettings,
                                    open: (URL) throws -> any FrameFileReader) throws -> (frames: [RawFrame], votes: [Int: Int]) {
        let headers = withoutActuallyEscaping(open) { open in
            let opener = UncheckedSendable(open)
            return ResultSlots<FileHeaders>.map(files.count) { fileNo in
                FrameHeaders.read(files[fileNo].url, rel: files[fileNo].rel, fileNo: fileNo, signal: config.signal, open: opener.value)
            }
        }
        if let wanted = config.signal, headers.contains(where: { $0.signalFound == false }),
           !headers.contains(where: { $0.signalFound == true }) {
            let names = Set(headers.flatMap(\.signalNames)).sorted().map { "'\($0)'" }.joined(separator: ", ")
            throw RunConfigError(file: config.fileLabel, key: "signal", "no file has a signal '\(wanted)' (signals found: \(names))")
        }
        var frames = headers.flatMap(\.frames)
        FrameHeaders.spreadStackTimes(&frames)
        var votes: [Int: Int] = [:]
        for (fileNo, h) in headers.enumerated() { votes[fileNo] = h.votes }
        return (frames, votes)
    }

    // MARK: Temperatures

    struct Temperatures {
        var values: [Double?]
        var sources: [TemperatureSource]
        /// The heating-log hold each frame lies in (-1: a ramp), nil when its temperature
        /// does not come from the log.
        var holdOf: [Int?]
        var holds: [TemperatureHold] = []
        var clock: LogClock?
        var trace = LogTrace()
    }

    /// Temperatures, first source that applies per frame (docs/user-guide.md, "The run folder").
    static func assignTemperatures(_ raws: [RawFrame], times: FrameTimes, log: HeatingLog?, config: FolderSettings,
                                   warnings: inout [String]) throws -> Temperatures {
        var t = Temperatures(values: Array(repeating: nil, count: raws.count),
                             sources: Array(repeating: .unknown, count: raws.count),
                             holdOf: Array(repeating: nil, count: raws.count))
        applyStepRules(raws, config: config, into: &t, warnings: &warnings)
        var logTimes = [Double?](repeating: nil, count: raws.count)
        if let log {
            if times.source == .frameIndex {
                warnings.append("the heating log is read against frame indices taken as seconds, since the frames have no times")
            }
            let evidence = raws.indices.map { i in t.sources[i] == .unknown ? otherEvidence(raws[i]) : nil }
            var clock = try HeatingLogClock.initial(log, raws: raws, times: times, config: config, warnings: &warnings)
            clock = HeatingLogClock.checked(clock, log: log, raws: raws, times: times.times, evidence: evidence,
                                            toleranceC: config.stepToleranceC, configLabel: config.fileLabel, warnings: &warnings)
            logTimes = raws.indices.map { clock.logTime(times.times[$0], mid: raws[$0].midOffset) }
            var outside = 0
            for i in raws.indices where t.sources[i] == .unknown {
                if let lt = logTimes[i], let v = log.temperature(at: lt) {
                    t.values[i] = v
                    t.sources[i] = .heatingLog
                } else {
                    outside += 1
                }
            }
            if outside > 0 { warnings.append("\(outside) frame(s) fall outside the heating log \(log.file)") }
            t.holds = log.holds(toleranceC: config.stepToleranceC, minHoldS: config.minHoldS)
            if t.holds.isEmpty {
                warnings.append("the heating log \(log.file) has no hold of \(config.minHoldS) s within \(config.stepToleranceC) °C: every frame it dates is a ramp frame (step -1), without intensities; lower min_hold_s or raise step_tolerance_C, or give the temperatures with steps: in the config")
            }
            let inLog = raws.indices.map { t.sources[$0] == .heatingLog ? logTimes[$0] : nil }
            if let w = HeatingLogClock.uncoveredHolds(log, holds: t.holds, logTimes: inLog, toleranceC: config.stepToleranceC) {
                warnings.append(w)
            }
            t.clock = clock
            t.trace = HeatingLogClock.trace(log, clock: clock, frameTimes: times.times)
        }
        for i in raws.indices where t.sources[i] == .unknown {
            if let e = otherEvidence(raws[i]) { t.values[i] = e.temperatureC; t.sources[i] = e.source }
        }
        let nUnknown = t.sources.filter { $0 == .unknown }.count
        if nUnknown > 0 {
            warnings.append("temperature unknown for \(nUnknown) of \(raws.count) frame(s): no config steps, heating log, metadata, folder or file-name temperature")
        }
        let slack = (log?.sampleSpacing_s ?? 0) / 2
        t.holdOf = raws.indices.map { i in
            guard t.sources[i] == .heatingLog, let lt = logTimes[i] else { return nil }
            return t.holds.firstIndex { lt >= $0.start_s - slack && lt <= $0.end_s + slack } ?? -1
        }
        return t
    }

    /// Config `steps:` rules, first match per frame; a rule that matches nothing is named.
    private static func applyStepRules(_ raws: [RawFrame], config: FolderSettings, into t: inout Temperatures,
                                       warnings: inout [String]) {
        var ruleUsed = [Bool](repeating: false, count: config.steps.count)
        for i in raws.indices {
            let name = String(raws[i].rel.split(separator: "/").last ?? "")
            if let k = config.steps.firstIndex(where: { $0.matches(relativePath: raws[i].rel, fileName: name, frameIndex: i) }) {
                t.values[i] = config.steps[k].temperatureC
                t.sources[i] = .configSteps
                ruleUsed[k] = true
            }
        }
        for (k, used) in ruleUsed.enumerated() where !used {
            warnings.append("steps[\(k)] in \(config.fileLabel) matches no frame")
        }
    }

    /// A frame's temperature from sources 3–5: stored with the frame, its folder's name, its file name.
    static func otherEvidence(_ r: RawFrame) -> TemperatureEvidence? {
        if let t = r.temperature { return TemperatureEvidence(temperatureC: t, source: .frameMetadata) }
        if let t = TemperatureTokens.enclosingFolderTemperature(r.rel) { return TemperatureEvidence(temperatureC: t, source: .folderName) }
        if let t = TemperatureTokens.fileNameTemperature(String(r.rel.split(separator: "/").last ?? "")) {
            return TemperatureEvidence(temperatureC: t, source: .fileName)
        }
        return nil
    }

    /// The steps' frames and temperatures (median of the known ones).
    private static func makeSteps(_ stepIndices: [Int], temps: [Double?]) -> [TemperatureStep] {
        var steps: [TemperatureStep] = []
        for (i, s) in stepIndices.enumerated() where s >= 0 {
            if s == steps.count { steps.append(TemperatureStep(index: s, temperatureC: nil, frameIndices: [])) }
            steps[s].frameIndices.append(i)
        }
        for k in steps.indices {
            let known = steps[k].frameIndices.compactMap { temps[$0] }
            steps[k].temperatureC = known.isEmpty ? nil : median(known)
        }
        return steps
    }

    /// The run's pixel size: the config's, else the median of the metadata's.
    private static func pixelSize(_ raws: [RawFrame], config: FolderSettings,
                                  warnings: inout [String]) -> (value: Double?, source: PixelSizeSource) {
        if let p = config.pixelSizeNm { return (p, .config) }
        let known = raws.filter { $0.status.isOK }.compactMap(\.pixelSize)
        guard !known.isEmpty else {
            warnings.append("no pixel size in the config or the file metadata: lengths are in pixels and the _nm columns stay empty")
            return (nil, .none)
        }
        let m = median(known)
        if known.contains(where: { abs($0 - m) > 0.01 * m }) {
            warnings.append("frames disagree on the pixel size (\(known.min()!)–\(known.max()!) nm); using the median \(m) nm")
        }
        return (m, .metadata)
    }

    // MARK: Messages

    /// Skipped paths, one line each (at most 10, then how many more `summary.json` lists).
    static func skippedWarnings(_ skipped: [SkippedPath]) -> [String] {
        let lines = skipped.prefix(10).map { "skipped \($0.path): \($0.reason)" }
        return lines + (skipped.count > 10 ? ["… and \(skipped.count - 10) more skipped path(s), listed in summary.json (skipped)"] : [])
    }

    /// Unreadable and size-rejected frames, each named with its reason (at most 10 lines,
    /// then a count of the rest, which frames.csv lists).
    static func problemWarnings(_ raws: [RawFrame], width: Int, height: Int, rejected: Int) -> [String] {
        var out: [String] = []
        if rejected > 0 {
            out.append("\(rejected) frame(s) differ from the run's \(width)×\(height) size and are rejected:size")
        }
        let unreadable = raws.filter { if case .unreadable = $0.status { true } else { false } }
        if !unreadable.isEmpty { out.append("\(unreadable.count) frame(s) unreadable") }
        var named = raws.filter { !$0.status.isOK }.map { r -> String in
            let page = r.page > 0 ? " page \(r.page)" : ""
            switch r.status {
            case .rejected: return "\(r.rel)\(page): rejected:size (\(r.width)×\(r.height))"
            default: return "\(r.rel)\(page): \(r.status.text)" + (r.problem.map { " (\($0))" } ?? "")
            }
        }
        if named.count > 10 { named = Array(named.prefix(10)) + ["… and \(named.count - 10) more, listed in frames.csv"] }
        return out + named
    }

    // MARK: Steps

    /// Step numbers in frame order (docs/user-guide.md, "The run folder": Steps).
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

    // MARK: Heating log

    private static func resolveHeatingLog(root: URL, config: FolderSettings, override: URL?) throws -> URL? {
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
