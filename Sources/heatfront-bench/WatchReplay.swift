import ArgumentParser
import Foundation
import Simulation

/// Replays a run folder into another at a set pace while `heatfront watch` follows it, and
/// prints the latency from each frame file's arrival to its row in the watch's frames.csv.
struct WatchReplay: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch-replay")
    @Option(help: "The finished run folder to replay.") var from: String
    @Option(help: "The folder to replay it into (the one heatfront watch follows).") var to: String
    @Option(help: "The watch's output folder.") var out: String
    @Option(help: "Seconds between two frames.") var interval = 2.0
    @Option(help: "Seconds to wait after the last frame for its row.") var settle = 10.0
    @Option(help: "Write each latency (s) here, one line per frame.") var latencies: String?

    func run() throws {
        let replay = try RunReplay(source: URL(fileURLWithPath: from))
        let monitor = FramesTableMonitor(outDir: URL(fileURLWithPath: out))
        let arrivals = try replay.play(into: URL(fileURLWithPath: to), intervalS: interval)
        let deadline = Date().addingTimeInterval(settle)
        var seen: [String: Date] = [:]
        repeat {
            usleep(100_000)
            seen = monitor.snapshot()
        } while Date() < deadline && arrivals.contains { seen[$0.file] == nil }
        let lat = FramesTableMonitor.latencies(arrivals, seen: monitor.stop())
        let found = lat.compactMap { $0 }.sorted()
        if let path = latencies {
            try lat.map { $0.map { String(format: "%.4f", $0) } ?? "missed" }.joined(separator: "\n").appending("\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        func q(_ p: Double) -> Double { found.isEmpty ? .nan : found[min(found.count - 1, Int((p * Double(found.count)).rounded(.up)) - 1)] }
        print(String(format: "watch latency: %d frames, %d missed; median %.3f s, p95 %.3f s, max %.3f s",
                     arrivals.count, lat.filter { $0 == nil }.count, q(0.5), q(0.95), found.last ?? .nan))
    }
}
