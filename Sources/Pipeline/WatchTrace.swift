import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#endif

/// Wall and process CPU seconds of the live path's parts, on standard error when
/// `HEATFRONT_WATCH_TRACE` is set (for benchmarks; nothing otherwise).
enum WatchTrace {
    static let enabled = ProcessInfo.processInfo.environment["HEATFRONT_WATCH_TRACE"] != nil

    static func cpu() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func measure<T>(_ label: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let (w0, c0) = (Date(), cpu())
        defer { Terminal.err(String(format: "trace %@: %.3f s wall, %.3f s cpu\n", label, Date().timeIntervalSince(w0), cpu() - c0)) }
        return try body()
    }
}
