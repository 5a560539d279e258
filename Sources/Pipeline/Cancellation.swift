import Foundation

/// Set when the user presses Ctrl-C (or the process gets SIGTERM); stages check it between
/// frames so a run stops at a clean point, with every written file complete.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    public func cancel() { lock.lock(); cancelled = true; lock.unlock() }

    public func throwIfCancelled() throws { if isCancelled { throw CancellationError() } }

    /// Routes SIGINT and SIGTERM to `cancel()` instead of killing the process mid-write.
    public func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [weak self] in self?.cancel() }
            src.resume()
            sources.append(src)
        }
    }
}
