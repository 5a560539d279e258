import Foundation

/// Peak resident memory of this process (Linux `VmHWM`), in MiB; nil where unavailable.
enum ResourceUsage {
    static func peakMemoryMB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first
            return kb.map { $0 / 1024 }
        }
        return nil
    }
}

/// CPU seconds per stage, this process and the processes it waited for (gnuplot), written to
/// standard error when `HEATFRONT_STAGE_CPU` is set: on a shared machine a stage's CPU time
/// is steadier than its wall time (`scripts/bench-pipeline.sh` reports both).
final class StageCPU: @unchecked Sendable {
    static let shared = StageCPU()
    private let enabled = ProcessInfo.processInfo.environment["HEATFRONT_STAGE_CPU"] != nil
    private let lock = NSLock()
    /// Since the process started: the first stage includes its start.
    private var last = (own: 0.0, children: 0.0)

    static func seconds() -> (own: Double, children: Double) {
        func of(_ who: __rusage_who) -> Double {
            var u = rusage()
            getrusage(__rusage_who_t(who.rawValue), &u)
            return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
                + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
        }
        return (of(RUSAGE_SELF), of(RUSAGE_CHILDREN))
    }

    func lap(_ stage: String) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Self.seconds()
        let (own, children) = (now.own - last.own, now.children - last.children)
        FileHandle.standardError.write(Data(String(format: "stage cpu: %@ %.3f s (child processes %.3f s)\n",
                                                   stage, own + children, children).utf8))
        last = now
    }
}
