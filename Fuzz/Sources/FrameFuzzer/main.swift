import Foundation
import FrameIO
import RunSettings
import CFuzzerDriver

/// libFuzzer entry point (LLVM libFuzzer, coverage-guided mutation of a seed corpus), one
/// fuzz target per input kind HeatFront reads: `FrameFuzzer TARGET [libFuzzer options…]`.
///
/// Frame-file targets write each input to a scratch file and read it the way a run does:
/// open (header), then every listed signal's pixels and metadata (up to 16 frames each).
/// `heating-log` and `config` parse the input as a heating log or `heatfront.yaml`;
/// `run-folder` unpacks the input into a small run folder (see `RunFolderInput`) and scans
/// it. Thrown errors are the expected answer to bad input; a crash, a sanitizer report, a
/// timeout or an allocation above libFuzzer's `-malloc_limit_mb` is a bug.
enum Target: String, CaseIterable {
    case tiff, png, dm, ser, emi, mrc
    case emdVelox = "emd-velox", emdBerkeley = "emd-berkeley", hspy, zspy
    case heatingLog = "heating-log", config, runFolder = "run-folder"

    func run(_ data: Data) {
        switch self {
        case .tiff: readFrameFile(data, "tif") { try TIFFReader(url: $0) }
        case .png: readFrameFile(data, "png") { try PNGReader(url: $0) }
        case .dm:
            // DM3 and DM4 differ in the header's version field; the reader handles both.
            readFrameFile(data, "dm4") { try DMReader(url: $0) }
        case .ser: readFrameFile(data, "ser") { try SERReader(url: $0) }
        case .emi:
            // The .emi describes its series; one valid `input_1.ser` sits beside it.
            let ser = scratch.appendingPathComponent("input_1.ser")
            if !FileManager.default.fileExists(atPath: ser.path) { try? companionSER().write(to: ser) }
            readFrameFile(data, "emi") { try EMIReader(url: $0) }
        case .mrc: readFrameFile(data, "mrc") { try MRCReader(url: $0) }
        case .emdVelox: readFrameFile(data, "emd") { try EMDReader(url: $0) }
        case .emdBerkeley: readFrameFile(data, "emd") { try BerkeleyEMDReader(url: $0) }
        case .hspy: readFrameFile(data, "hspy") { try HyperSpyReader(url: $0) }
        case .zspy: readFrameFile(data, "zspy") { try ZSpyReader(url: $0) }
        case .heatingLog:
            guard let log = try? HeatingLog.parse(text: String(decoding: data, as: UTF8.self), file: "fuzz.csv") else { return }
            _ = log.holds(toleranceC: 3, minHoldS: 30)
            if let first = log.times_s.first, let last = log.times_s.last {
                for k in 0...8 { _ = log.temperature(at: first + (last - first) * Double(k) / 8) }
            }
        case .config:
            let url = scratch.appendingPathComponent("heatfront.yaml")
            guard let c = try? RunConfig.parse(yaml: String(decoding: data, as: UTF8.self), file: url) else { return }
            _ = try? c.validate(frameWidth: 64, frameHeight: 64)
            _ = try? JSONEncoder().encode(c)
        case .runFolder:
            let dir = RunFolderInput.unpack(data, into: scratch.appendingPathComponent("run"))
            guard let config = try? RunFolder.loadConfig(runDir: dir, configURL: nil) else { return }
            _ = try? RunFolder.scan(dir, config: config)
        }
    }
}

/// The scratch folder: `HEATFRONT_FUZZ_SCRATCH` (set by scripts/fuzz.sh), else one per process.
let scratch: URL = {
    if let dir = ProcessInfo.processInfo.environment["HEATFRONT_FUZZ_SCRATCH"] { return URL(fileURLWithPath: dir) }
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("heatfront-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}()

func readFrameFile(_ data: Data, _ ext: String, _ open: (URL) throws -> any FrameFileReader) {
    let url = scratch.appendingPathComponent("input.\(ext)")
    guard (try? data.write(to: url)) != nil, let reader = try? open(url) else { return }
    _ = reader.fileMetadata.count
    for s in reader.signals.indices {
        // Cap the frames read per input so one huge-but-valid stack cannot stall the run.
        for f in 0..<min(reader.signals[s].frameCount, 16) {
            _ = try? reader.plane(signal: s, frame: f)
            _ = try? reader.metadata(signal: s, frame: f)
        }
    }
    for s in reader.signals { _ = try? reader.signalIndex(named: s.name) }
}

/// A TIA series file (version 0x0210) holding one 4×3 uint16 image with a time tag.
func companionSER() -> Data {
    var b: [UInt8] = []
    func u16(_ v: UInt16) { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
    func u32(_ v: UInt32) { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
    func f64(_ v: Double) { b += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
    u16(0x4949); u16(0x0197); u16(0x0210); u32(0x4122); u32(0x4152); u32(1); u32(1)
    let offsetArrayAt = b.count
    u32(0); u32(1)                                               // offset-array offset, 1 dimension
    u32(1); f64(0); f64(1); u32(0); u32(6); b += Array("Number".utf8); u32(0)
    let offsets = b.count
    b.replaceSubrange(offsetArrayAt..<(offsetArrayAt + 4), with: withUnsafeBytes(of: UInt32(offsets).littleEndian, Array.init))
    let element = offsets + 8
    u32(UInt32(element)); u32(UInt32(element + 50 + 24))
    f64(0); f64(2e-10); u32(0); f64(0); f64(2e-10); u32(0); u16(2); u32(4); u32(3)
    for v in 0..<12 { u16(UInt16(v)) }
    u16(0x4152); u16(0); u32(1_600_000_000)
    return Data(b)
}

/// A run folder packed into one input: records of a name byte, a 2-byte little-endian
/// length and that many bytes of content. The name byte's low four bits pick one of the
/// names below (frames of every format, sub-folders named by temperature, a Gatan capture
/// tree, the heating log and the config); its top bit makes that name a symlink to the
/// folder itself (a loop) instead. At most 16 records; later records replace earlier ones.
enum RunFolderInput {
    static let names = [
        "frame_01.tif", "frame_02.png", "175C/a.dm4", "200C/b.mrc", "series.ser", "heating_log.csv",
        "heatfront.yaml", "velox.emd", "stack.hspy", "stack.zspy", "notes.txt", "RT/c.tif",
        "Hour_00/Minute_00/Second_01/x_Frame_0001.dm4", ".hidden.tif", "d/e/f/g.tif", "frame_10.tif",
    ]

    static func unpack(_ data: Data, into dir: URL) -> URL {
        let fm = FileManager.default
        try? fm.removeItem(at: dir)
        try? fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let bytes = [UInt8](data)
        var i = 0, records = 0
        while i + 3 <= bytes.count, records < 16 {
            let selector = bytes[i], length = Int(bytes[i + 1]) | Int(bytes[i + 2]) << 8
            i += 3
            let content = Data(bytes[i..<min(i + length, bytes.count)])
            i += length
            records += 1
            let url = dir.appendingPathComponent(names[Int(selector & 0x0F)])
            try? fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? fm.removeItem(at: url)
            if selector & 0x80 != 0 {
                try? fm.createSymbolicLink(at: url, withDestinationURL: dir)
            } else {
                try? content.write(to: url)
            }
        }
        return dir
    }
}

// `FrameFuzzer TARGET [options]`: the target name is taken off before libFuzzer sees argv
// (`HEATFRONT_FUZZ_TARGET` names it when the first argument is an option).
var arguments = CommandLine.arguments
let targetName: String = {
    if arguments.count > 1, !arguments[1].hasPrefix("-"), Target(rawValue: arguments[1]) != nil { return arguments.remove(at: 1) }
    return ProcessInfo.processInfo.environment["HEATFRONT_FUZZ_TARGET"] ?? ""
}()
guard let target = Target(rawValue: targetName) else {
    FileHandle.standardError.write(Data("usage: FrameFuzzer TARGET [libFuzzer options]; TARGET is one of \(Target.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
    exit(2)
}
nonisolated(unsafe) let selected = target
if [.emdVelox, .emdBerkeley, .hspy, .runFolder].contains(target) { _ = fuzz_hdf5_keep_free_lists() }

@_cdecl("LLVMFuzzerTestOneInput")
public func frameFuzzerTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    selected.run(start.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}

var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
var argc = Int32(arguments.count)
let status = cArgs.withUnsafeMutableBufferPointer { buf -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buf.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in frameFuzzerTestOneInput(data, size) }
}
exit(status)
