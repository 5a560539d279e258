import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Set when the user presses Ctrl-C (or the process gets SIGTERM); stages check it between
/// frames so a run stops at a clean point, with every written file complete.
///
/// A run that does not reach such a point within `graceSeconds` (blocked in a read from a
/// hung file system, or inside one long stage), or a second signal, stops the process at
/// once: every output is renamed into place whole or not at all, temporary files are
/// removed by the next run, and the output folder's lock goes with the process.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var signalsSeen = 0
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    public func cancel() { lock.lock(); cancelled = true; lock.unlock() }

    public func throwIfCancelled() throws { if isCancelled { throw CancellationError() } }

    /// Routes `signals` (SIGINT and SIGTERM) to `cancel()` instead of killing the process
    /// mid-write; `hardStop` ends the process when the run has not stopped `graceSeconds`
    /// after the first signal, or at a second one.
    public func installSignalHandlers(_ signals: [Int32] = [SIGINT, SIGTERM], graceSeconds: Double = 5,
                                      hardStop: @escaping @Sendable () -> Void = Cancellation.exitNow) {
        for sig in signals {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [weak self] in self?.interrupt(graceSeconds: graceSeconds, hardStop: hardStop) }
            src.resume()
            sources.append(src)
        }
    }

    /// What SIGINT and SIGTERM do (and a stop button may): the first call cancels and gives
    /// the run `graceSeconds` to stop before `hardStop`; a second calls `hardStop` at once.
    public func interrupt(graceSeconds: Double = 5, hardStop: @escaping @Sendable () -> Void = Cancellation.exitNow) {
        lock.lock()
        cancelled = true
        signalsSeen += 1
        let first = signalsSeen == 1
        lock.unlock()
        if first {
            DispatchQueue.global().asyncAfter(deadline: .now() + graceSeconds, execute: hardStop)
        } else {
            hardStop()
        }
    }

    /// Ends the process with exit code 130 without running exit handlers (another thread may
    /// still be inside a library), after one line on standard error.
    public static let exitNow: @Sendable () -> Void = {
        let message = "\nheatfront: interrupted; stopped without waiting for the current stage (rerun to resume)\n"
        _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        _exit(130)
    }
}
