import Foundation
import FrameCore

/// The file formats HeatFront decodes.
public enum FrameFormat: String, Sendable, CaseIterable {
    case tiff, png, dm3, dm4, emd, ser, emi, mrc
    /// HyperSpy's HDF5 format (`.hspy`, and `.hdf5` as HyperSpy 1.x named it).
    case hspy
    /// HyperSpy's Zarr format in a zip store (`.zspy`).
    case zspy
    /// Berkeley EMD 0.2 (NCEM, Prismatic): `.emd` like Velox's, told apart by its layout.
    case emdBerkeley = "emd-berkeley"

    /// The format a file name's extension names, or nil for other files. `.emd` is Velox
    /// here; `FrameFiles.open` looks inside to tell Berkeley EMD from it.
    public init?(fileExtension ext: String) {
        switch ext.lowercased() {
        case "tif", "tiff": self = .tiff
        case "png": self = .png
        case "dm3": self = .dm3
        case "dm4": self = .dm4
        case "emd": self = .emd
        case "ser": self = .ser
        case "emi": self = .emi
        case "mrc": self = .mrc
        case "hspy", "hdf5": self = .hspy
        case "zspy": self = .zspy
        default: return nil
        }
    }

    /// Formats a heating-run folder holds frames in (docs/user-guide.md, "The run folder"). An `.emi` only
    /// describes its `.ser` files, which are read directly.
    public var isRunFrameFormat: Bool { self != .emi }
}

/// One image signal of a file: a 2-D image or a stack of frames of one size.
public struct SignalInfo: Sendable, Equatable {
    /// The signal's position in the file's own order (the same numbering as RosettaSciIO,
    /// counting signals HeatFront does not list, such as 1-D plots or RGB previews).
    public var index: Int
    public var name: String
    public var frameCount: Int
    public var height: Int
    public var width: Int
    public var sampleType: SampleType
    public var pixelSizeXNm: Double?
    public var pixelSizeYNm: Double?

    public init(index: Int, name: String = "", frameCount: Int, height: Int, width: Int,
                sampleType: SampleType, pixelSizeXNm: Double? = nil, pixelSizeYNm: Double? = nil) {
        self.index = index
        self.name = name
        self.frameCount = frameCount
        self.height = height
        self.width = width
        self.sampleType = sampleType
        self.pixelSizeXNm = pixelSizeXNm
        self.pixelSizeYNm = pixelSizeYNm
    }
}

/// An opened frame file, in the manner of RosettaSciIO's `file_reader`: the header is
/// parsed and checked against the file's length on open, pixels are decoded one frame
/// at a time on demand, so a multi-gigabyte stack is never held in memory whole.
///
/// `signal` arguments are positions in `signals` (0..<signals.count), not `SignalInfo.index`.
public protocol FrameFileReader: AnyObject {
    var url: URL { get }
    var format: FrameFormat { get }
    /// The image signals, in file order.
    var signals: [SignalInfo] { get }
    /// The signal a heating run analyses (HAADF when a file holds several detectors).
    var primarySignal: Int { get }
    /// File-level metadata, flattened to `path.to.key → value`.
    var fileMetadata: [String: String] { get }
    /// The pixels of one frame, in their native type.
    func plane(signal: Int, frame: Int) throws -> PixelPlane
    /// What the file says about one frame (calibration, times, temperature).
    func metadata(signal: Int, frame: Int) throws -> FrameMetadata
}

extension FrameFileReader {
    /// The signal that holds frame `frame` of signal `signal`.
    /// - Throws: `FrameIOError.corrupt` when there is no such signal or frame.
    func checkedSignal(_ signal: Int, _ frame: Int) throws -> SignalInfo {
        guard signals.indices.contains(signal), (0..<signals[signal].frameCount).contains(frame) else {
            throw FrameIOError(.corrupt, url: url, "no frame \(frame) in signal \(signal)")
        }
        return signals[signal]
    }

    public var primarySignal: Int { 0 }

    /// One frame as float pixels with its metadata.
    public func frame(signal: Int, frame index: Int) throws -> Frame {
        let p = try plane(signal: signal, frame: index)
        return Frame(image: p.image, metadata: try metadata(signal: signal, frame: index), sampleType: p.sampleType)
    }

    /// sha256 of the whole signal (all frames, row-major) as little-endian float64,
    /// computed from the native values: the corpus manifest's fingerprint.
    public func fingerprint(signal: Int) throws -> (sha256: String, min: Double, max: Double, mean: Double) {
        let hasher = SHA256Hasher()
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, n = 0
        for f in 0..<signals[signal].frameCount {
            let v = try plane(signal: signal, frame: f).doubleValues()
            hasher.updateFloat64LE(v)
            for x in v { lo = min(lo, x); hi = max(hi, x); sum += x }
            n += v.count
        }
        return (hasher.finalizeHex(), lo, hi, n > 0 ? sum / Double(n) : .nan)
    }
}

/// Opens frame files by format.
public enum FrameFiles {
    /// Opens `url` with the decoder its extension names (`.emd`: Velox or Berkeley EMD,
    /// whichever layout the file has).
    public static func open(_ url: URL) throws -> any FrameFileReader {
        guard let format = FrameFormat(fileExtension: url.pathExtension) else {
            throw FrameIOError(.unsupported, url: url, "not a frame file type HeatFront reads")
        }
        return try open(url, as: format)
    }

    /// Only regular files are opened: a named pipe, socket or device in a run folder would
    /// otherwise block the decoder in `open()` or feed it endless bytes.
    public static func open(_ url: URL, as format: FrameFormat) throws -> any FrameFileReader {
        if let why = RegularFile.problem(url.path) { throw FrameIOError(.io, url: url, why) }
        switch format {
        case .tiff: return try TIFFReader(url: url)
        case .png: return try PNGReader(url: url)
        case .dm3, .dm4: return try DMReader(url: url)
        case .emd:
            return try BerkeleyEMDReader.isBerkeleyLayout(url) ? BerkeleyEMDReader(url: url) : EMDReader(url: url)
        case .emdBerkeley: return try BerkeleyEMDReader(url: url)
        case .ser: return try SERReader(url: url)
        case .emi: return try EMIReader(url: url)
        case .mrc: return try MRCReader(url: url)
        case .hspy: return try HyperSpyReader(url: url)
        case .zspy: return try ZSpyReader(url: url)
        }
    }
}

extension FrameFileReader {
    /// The position in `signals` of the signal called `name`, for files that hold several
    /// (Velox: one per detector, `HAADF`, `ABF`, `DF2`, `DF4`, `BF`, `iDPC`, …; HyperSpy and
    /// Berkeley EMD: one per dataset title).
    ///
    /// Names match case-insensitively. A name that matches no signal but is a whole number
    /// selects the signal with that `SignalInfo.index` (the file's own numbering). Throws
    /// `.unsupported` with one line listing the file's signals when no signal, or more than
    /// one, has that name.
    public func signalIndex(named name: String) throws -> Int {
        let wanted = name.trimmingCharacters(in: .whitespaces)
        let matches = signals.indices.filter { signals[$0].name.caseInsensitiveCompare(wanted) == .orderedSame }
        if matches.count == 1 { return matches[0] }
        let listing = signals.map { "\($0.name.isEmpty ? "(unnamed)" : $0.name) (signal \($0.index))" }.joined(separator: ", ")
        if matches.count > 1 {
            throw FrameIOError(.unsupported, url: url, "\(matches.count) signals are named '\(wanted)'; name one by its number: \(listing)")
        }
        if let number = Int(wanted), let position = signals.firstIndex(where: { $0.index == number }) { return position }
        throw FrameIOError(.unsupported, url: url, "no signal named '\(wanted)'; this file has \(listing)")
    }
}
