import Foundation
import FrameIO
import CFuzzerDriver

/// libFuzzer entry point (LLVM libFuzzer, coverage-guided mutation of a seed corpus):
/// each input is written to a scratch file under every decoded extension and read the way
/// the pipeline reads a run, header, every frame's pixels and metadata. Thrown errors are
/// the expected answer to bad input; a crash, a sanitizer report, a timeout or an
/// allocation above libFuzzer's `-malloc_limit_mb` is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func frameFuzzerTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    for ext in ["dm4", "ser", "mrc", "tif", "png"] {
        let url = scratch.appendingPathComponent("input.\(ext)")
        guard (try? data.write(to: url)) != nil else { continue }
        readEverything(url)
    }
    return 0
}

/// The scratch folder: `HEATFRONT_FUZZ_SCRATCH` (set by scripts/fuzz.sh), else one per process.
private let scratch: URL = {
    if let dir = ProcessInfo.processInfo.environment["HEATFRONT_FUZZ_SCRATCH"] { return URL(fileURLWithPath: dir) }
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("heatfront-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}()

private func readEverything(_ url: URL) {
    guard let reader = try? FrameFiles.open(url) else { return }
    _ = reader.fileMetadata.count
    for s in reader.signals.indices {
        // Cap the frames read per input so one huge-but-valid stack cannot stall the run.
        for f in 0..<min(reader.signals[s].frameCount, 16) {
            _ = try? reader.plane(signal: s, frame: f)
            _ = try? reader.metadata(signal: s, frame: f)
        }
    }
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in frameFuzzerTestOneInput(data, size) })
