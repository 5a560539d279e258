import Foundation

/// One result slot per parallel iteration, filled from `DispatchQueue.concurrentPerform`
/// workers (each writes only its own slot; the lock makes the writes visible to the caller).
public final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]

    public init(count: Int) { slots = Array(repeating: nil, count: count) }

    public func set(_ index: Int, _ value: Result<T, Error>) {
        lock.lock(); slots[index] = value; lock.unlock()
    }

    public func get(_ index: Int) -> Result<T, Error>? {
        lock.lock(); defer { lock.unlock() }
        return slots[index]
    }

    /// Runs `body` for every index concurrently, each result in its slot, and returns the
    /// results in index order, or throws the first (lowest-index) error.
    public static func map(_ count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
        let slots = ResultSlots<T>(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { i in slots.set(i, Result { try body(i) }) }
        return try (0..<count).map { try slots.get($0)!.get() }
    }

    /// `map` for a body that cannot fail.
    public static func map(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        let slots = ResultSlots<T>(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { i in slots.set(i, .success(body(i))) }
        return (0..<count).map { i in
            guard case .success(let value)? = slots.get(i) else { preconditionFailure("slot \(i) was not filled") }
            return value
        }
    }
}
