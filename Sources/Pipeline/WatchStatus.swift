import Foundation
import FrameCore
#if canImport(Glibc)
import Glibc
#endif

/// What the microscopist sees while `heatfront watch` follows a run: one status line after
/// every frame, rewritten in place on a terminal, one plain line per frame otherwise.
public final class WatchStatus: @unchecked Sendable {
    public enum Style: Sendable { case line, lines, quiet }

    /// The numbers of one status line (nil: not known yet).
    public struct Snapshot: Sendable, Equatable {
        public var temperatureC: Double?
        public var step: Int
        public var frames: Int
        public var used: Int
        /// Drift speed over the last frames of the step, in `lengthUnit` per second.
        public var driftRate: Double?
        public var liTmRatio: Double?
        public var frontPosition: Double?
        /// Front velocity of the step so far, in `lengthUnit` per second.
        public var frontVelocity: Double?
        public var lengthUnit = "nm"
    }

    private let style: Style
    private let lock = NSLock()
    private var onLine = false
    private let sink: @Sendable (String) -> Void

    /// `sink` receives the text (standard error by default).
    public init(style: Style, sink: @escaping @Sendable (String) -> Void = { Terminal.err($0) }) {
        self.style = style
        self.sink = sink
    }

    /// `.line` when standard error is a terminal, else `.lines`; `.quiet` when asked.
    public static func automatic(quiet: Bool) -> WatchStatus {
        WatchStatus(style: quiet ? .quiet : (isatty(STDERR_FILENO) != 0 ? .line : .lines))
    }

    /// `T 525.0 °C · step 2 · 31 frames (30 used) · drift 0.012 nm/s · Li/TM 0.412 · front 6.31 nm, 0.0213 nm/s`
    public static func text(_ s: Snapshot) -> String {
        func f(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "—" }
        let step = s.step >= 0 ? "step \(s.step)" : "ramp"
        return "T \(f(s.temperatureC, "%.1f")) °C · \(step) · \(s.frames) frames (\(s.used) used) · drift \(f(s.driftRate, "%.3g")) \(s.lengthUnit)/s"
            + " · Li/TM \(f(s.liTmRatio, "%.3f")) · front \(f(s.frontPosition, "%.2f")) \(s.lengthUnit), \(f(s.frontVelocity, "%.3g")) \(s.lengthUnit)/s"
    }

    public func update(_ s: Snapshot) {
        lock.lock(); defer { lock.unlock() }
        switch style {
        case .line:
            // Carriage return, the line, clear to its end: one line rewritten in place.
            sink("\r" + Self.text(s) + "\u{1B}[K")
            onLine = true
        case .lines: sink(Self.text(s) + "\n")
        case .quiet: break
        }
    }

    /// A message on its own line (the status line, if any, is ended first).
    public func log(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        endLine()
        if style != .quiet { sink(message + "\n") }
    }

    /// Ends the status line, before other output.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        endLine()
    }

    private func endLine() {
        if onLine { sink("\n"); onLine = false }
    }
}
