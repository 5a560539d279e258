import Foundation
import FrameCore

/// Progress of the run's stages: a live bar with frames/s and ETA on a terminal, plain log
/// lines otherwise, nothing with `--quiet`. Warnings are collected and printed once at the end.
public final class ProgressReporter: @unchecked Sendable {
    public enum Style: Sendable { case bar, lines, quiet }

    private let style: Style
    private let lock = NSLock()
    private var stage = ""
    private var total = 0
    private var done = 0
    private var started = Date()
    private var lastPrinted = Date.distantPast
    private var lastDecile = -1
    public private(set) var warnings: [String] = []

    public init(style: Style) { self.style = style }

    /// `.bar` when standard error is a terminal, else `.lines`; `.quiet` when asked.
    public static func automatic(quiet: Bool) -> ProgressReporter {
        ProgressReporter(style: quiet ? .quiet : (isatty(STDERR_FILENO) != 0 ? .bar : .lines))
    }

    public func begin(_ stage: String, total: Int) {
        lock.lock(); defer { lock.unlock() }
        finishLine()
        self.stage = stage; self.total = total; done = 0; started = Date(); lastDecile = -1
        if style == .lines { emit("\(stage): \(total) frames") }
    }

    public func advance(by n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += n
        let now = Date()
        let elapsed = now.timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        switch style {
        case .bar:
            guard now.timeIntervalSince(lastPrinted) > 0.1 || done == total else { return }
            lastPrinted = now
            let width = 30, filled = total > 0 ? min(width, width * done / total) : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let label = stage.padding(toLength: 14, withPad: " ", startingAt: 0)
            let line = "\r\(label) \(bar) \(done)/\(total)  " + String(format: "%.1f frames/s  ETA %.0f s ", rate, eta)
            Terminal.err(line)
        case .lines:
            let decile = total > 0 ? 10 * done / total : 10
            if decile != lastDecile && (decile % 5 == 0 || done == total) {
                lastDecile = decile
                emit("\(stage): \(done)/\(total) frames, " + String(format: "%.1f frames/s", rate))
            }
        case .quiet: break
        }
    }

    public func log(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        finishLine()
        if style != .quiet { emit(message) }
    }

    public func warn(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        warnings.append(message)
    }

    /// Prints the collected warnings once.
    public func printWarnings(_ list: [String]) {
        lock.lock(); defer { lock.unlock() }
        finishLine()
        guard style != .quiet, !list.isEmpty else { return }
        emit("\(list.count) warning(s):")
        for w in list { emit("  - \(w)") }
    }

    private func finishLine() {
        if style == .bar && !stage.isEmpty { Terminal.err("\n"); stage = "" }
    }

    private func emit(_ s: String) { Terminal.err(s + "\n") }
}
