import Foundation

/// Whether a frame takes part in the analysis (`status` column of frames.csv).
public enum FrameStatus: Sendable, Equatable, Hashable {
    case ok
    /// Readable but left out, with the reason (`size`, or a later stage's reason).
    case rejected(String)
    /// The file or page could not be decoded; the reason is `FrameIOError.reason`.
    case unreadable(String)

    /// `ok`, `rejected:<reason>`, `unreadable:<reason>`.
    public var text: String {
        switch self {
        case .ok: "ok"
        case .rejected(let r): "rejected:\(r)"
        case .unreadable(let r): "unreadable:\(r)"
        }
    }

    public var isOK: Bool { self == .ok }
}

/// Where a frame's temperature came from (docs/user-guide.md, "The run folder": Temperature, sources in priority order).
public enum TemperatureSource: String, Sendable, Codable, CaseIterable {
    case configSteps = "config_steps"
    case heatingLog = "heating_log"
    case frameMetadata = "frame_metadata"
    case folderName = "folder_name"
    case fileName = "file_name"
    case unknown
}

/// Where the frame times came from (docs/user-guide.md, "The run folder": Time, sources in priority order).
public enum TimeSource: String, Sendable, Codable {
    case frameMetadata = "frame_metadata"
    case gatanFolderTree = "gatan_folder_tree"
    case configFrameInterval = "config_frame_interval_s"
    case frameIndex = "frame_index"
}

/// Where a pixel size came from.
public enum PixelSizeSource: String, Sendable, Codable {
    case config, metadata, none
}

/// One frame of the run: a file, or one page of a multi-frame file.
public struct FrameRecord: Sendable, Equatable {
    /// 0-based position in acquisition order over the run.
    public var frameIndex: Int
    /// Path relative to RUN_DIR with `/` separators.
    public var file: String
    public var url: URL
    /// Frame number inside a multi-frame file, 0 otherwise.
    public var page: Int
    /// Position of the analysed signal in the reader's `signals`.
    public var signal: Int
    /// Seconds since the run's first frame.
    public var timeS: Double
    /// Absolute acquisition time from metadata, when the file records one.
    public var acquisitionTime: Date?
    /// Seconds from `timeS` to the middle of the frame's scan (half the frame time when the
    /// pixel dwell time is known, else 0): the moment a heating log is read at.
    public var midAcquisitionOffsetS: Double
    public var temperatureC: Double?
    public var temperatureSource: TemperatureSource
    /// Temperature step, -1 for frames taken during a ramp.
    public var stepIndex: Int
    public var width: Int
    public var height: Int
    /// The pixel size the frame's own metadata gives, nm (the run's may be overridden).
    public var pixelSizeNm: Double?
    public var status: FrameStatus

    public init(frameIndex: Int, file: String, url: URL, page: Int, signal: Int, timeS: Double,
                acquisitionTime: Date? = nil, midAcquisitionOffsetS: Double = 0, temperatureC: Double?,
                temperatureSource: TemperatureSource, stepIndex: Int, width: Int, height: Int,
                pixelSizeNm: Double?, status: FrameStatus) {
        self.frameIndex = frameIndex
        self.file = file
        self.url = url
        self.page = page
        self.signal = signal
        self.timeS = timeS
        self.acquisitionTime = acquisitionTime
        self.midAcquisitionOffsetS = midAcquisitionOffsetS
        self.temperatureC = temperatureC
        self.temperatureSource = temperatureSource
        self.stepIndex = stepIndex
        self.width = width
        self.height = height
        self.pixelSizeNm = pixelSizeNm
        self.status = status
    }
}

/// A hold at one set-point: the frames taken during it.
public struct TemperatureStep: Sendable, Equatable {
    public var index: Int
    /// Median of the step's known frame temperatures; nil when none is known.
    public var temperatureC: Double?
    /// `frameIndex` of every frame of the step, in order (ok or not).
    public var frameIndices: [Int]

    public init(index: Int, temperatureC: Double?, frameIndices: [Int]) {
        self.index = index
        self.temperatureC = temperatureC
        self.frameIndices = frameIndices
    }
}

/// What a heating-run folder holds, in acquisition order (docs/user-guide.md, "The run folder"): the product
/// of `RunFolder.scan`, read from file headers only.
public struct FrameTable: Sendable, Equatable {
    public var runDir: URL
    public var records: [FrameRecord]
    public var steps: [TemperatureStep]
    /// The run's frame size: the most common one among readable frames (0 when none).
    public var frameWidth: Int
    public var frameHeight: Int
    /// The run's pixel size: the config's, else the metadata's; nil when neither gives one.
    public var pixelSizeNm: Double?
    public var timeSource: String
    /// A `TemperatureSource` raw value, or `mixed: a (n), b (m)` when frames differ.
    public var temperatureSource: String
    public var pixelSizeSource: String
    /// The heating log used, when one was (absolute path).
    public var heatingLog: String?
    /// Its format (`plain_csv`, `protochips`, `dens_impulse`).
    public var heatingLogFormat: String?
    /// Holds detected in the heating log, on the log's own time axis.
    public var holds: [TemperatureHold]
    /// Files skipped because they are not frame files, relative to RUN_DIR, sorted.
    public var ignored: [String]
    /// Paths that could not be used (special files, unreadable folders, names that are not
    /// UTF-8, dangling links, …), each with its reason.
    public var skipped: [SkippedPath] = []
    /// How the heating log's clock was matched to the frames', when a log was used.
    public var logClock: LogClock?
    /// The heating log over the run on the frames' clock, thinned for plotting.
    public var logTrace = LogTrace()
    public var warnings: [String]

    public init(runDir: URL, records: [FrameRecord], steps: [TemperatureStep], frameWidth: Int, frameHeight: Int,
                pixelSizeNm: Double?, timeSource: String, temperatureSource: String, pixelSizeSource: String,
                heatingLog: String? = nil, heatingLogFormat: String? = nil, holds: [TemperatureHold] = [], ignored: [String], warnings: [String]) {
        self.runDir = runDir
        self.records = records
        self.steps = steps
        self.frameWidth = frameWidth
        self.frameHeight = frameHeight
        self.pixelSizeNm = pixelSizeNm
        self.timeSource = timeSource
        self.temperatureSource = temperatureSource
        self.pixelSizeSource = pixelSizeSource
        self.heatingLog = heatingLog
        self.heatingLogFormat = heatingLogFormat
        self.holds = holds
        self.ignored = ignored
        self.warnings = warnings
    }

    /// `frameIndex` of every frame with status ok.
    public var okIndices: [Int] { records.filter { $0.status.isOK }.map(\.frameIndex) }

    /// The frame table as `heatfront inspect FOLDER` prints it: JSON with sorted keys and
    /// explicit nulls, so two scans of the same folder print the same bytes.
    public func inspectJSON() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(InspectView(self)), let s = String(data: data, encoding: .utf8) else {
            return "{}"
        }
        return s + "\n"
    }
}

/// The JSON shape of `inspectJSON()`.
private struct InspectView: Encodable {
    let table: FrameTable
    init(_ t: FrameTable) { table = t }

    enum K: String, CodingKey {
        case runDir = "run_dir", nFrames = "n_frames", nOK = "n_ok", frameWidth = "frame_width"
        case frameHeight = "frame_height", pixelSizeNm = "pixel_size_nm", pixelSizeSource = "pixel_size_source"
        case timeSource = "time_source", temperatureSource = "temperature_source", heatingLog = "heating_log"
        case heatingLogFormat = "heating_log_format", metadataPixelSizeNm = "metadata_pixel_size_nm"
        case holds, steps, frames, ignored, skipped, warnings
        case heatingLogOffsetS = "heating_log_offset_s", heatingLogClock = "heating_log_clock"
        // frames
        case frameIndex = "frame_index", file, page, signal, timeS = "time_s", temperatureC = "temperature_C"
        case stepIndex = "step_index", width, height, status
        // steps and holds
        case stepIndex2 = "index", frameIndices = "frame_indices", startS = "start_s", endS = "end_s", levelC = "level_C"
    }

    func encode(to encoder: Encoder) throws {
        let t = table
        var c = encoder.container(keyedBy: K.self)
        try c.encode(t.runDir.path, forKey: .runDir)
        try c.encode(t.records.count, forKey: .nFrames)
        try c.encode(t.okIndices.count, forKey: .nOK)
        try c.encode(t.frameWidth, forKey: .frameWidth)
        try c.encode(t.frameHeight, forKey: .frameHeight)
        try c.encode(t.pixelSizeNm, forKey: .pixelSizeNm)
        try c.encode(t.pixelSizeSource, forKey: .pixelSizeSource)
        try c.encode(t.timeSource, forKey: .timeSource)
        try c.encode(t.temperatureSource, forKey: .temperatureSource)
        try c.encode(t.heatingLog, forKey: .heatingLog)
        try c.encode(t.heatingLogFormat, forKey: .heatingLogFormat)
        try c.encode(t.ignored, forKey: .ignored)
        try c.encode(t.skipped, forKey: .skipped)
        try c.encode(t.logClock?.offsetS, forKey: .heatingLogOffsetS)
        try c.encode(t.logClock?.basis.rawValue, forKey: .heatingLogClock)
        try c.encode(t.warnings, forKey: .warnings)
        var hs = c.nestedUnkeyedContainer(forKey: .holds)
        for h in t.holds {
            var e = hs.nestedContainer(keyedBy: K.self)
            try e.encode(h.start_s, forKey: .startS)
            try e.encode(h.end_s, forKey: .endS)
            try e.encode(h.levelC, forKey: .levelC)
        }
        var ss = c.nestedUnkeyedContainer(forKey: .steps)
        for s in t.steps {
            var e = ss.nestedContainer(keyedBy: K.self)
            try e.encode(s.index, forKey: .stepIndex2)
            try e.encode(s.temperatureC, forKey: .temperatureC)
            try e.encode(s.frameIndices, forKey: .frameIndices)
        }
        var fs = c.nestedUnkeyedContainer(forKey: .frames)
        for r in t.records {
            var e = fs.nestedContainer(keyedBy: K.self)
            try e.encode(r.frameIndex, forKey: .frameIndex)
            try e.encode(r.file, forKey: .file)
            try e.encode(r.page, forKey: .page)
            try e.encode(r.signal, forKey: .signal)
            try e.encode(r.timeS, forKey: .timeS)
            try e.encode(t.timeSource, forKey: .timeSource)
            try e.encode(r.temperatureC, forKey: .temperatureC)
            try e.encode(r.temperatureSource.rawValue, forKey: .temperatureSource)
            try e.encode(r.stepIndex, forKey: .stepIndex)
            try e.encode(r.width, forKey: .width)
            try e.encode(r.height, forKey: .height)
            // The frame's effective pixel size: the config's override, else its own metadata.
            let overridden = t.pixelSizeSource == PixelSizeSource.config.rawValue
            try e.encode(overridden ? t.pixelSizeNm : r.pixelSizeNm, forKey: .pixelSizeNm)
            try e.encode(overridden ? PixelSizeSource.config.rawValue
                         : r.pixelSizeNm == nil ? PixelSizeSource.none.rawValue : PixelSizeSource.metadata.rawValue,
                         forKey: .pixelSizeSource)
            try e.encode(r.pixelSizeNm, forKey: .metadataPixelSizeNm)
            try e.encode(r.status.text, forKey: .status)
        }
    }
}
