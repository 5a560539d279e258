import Foundation

/// One result slot per parallel iteration, filled from `DispatchQueue.concurrentPerform`
/// workers (each writes only its own slot; the lock makes the writes visible to the caller).
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<T, Error>) {
        lock.lock(); slots[index] = value; lock.unlock()
    }

    func get(_ index: Int) -> Result<T, Error>? {
        lock.lock(); defer { lock.unlock() }
        return slots[index]
    }
}
