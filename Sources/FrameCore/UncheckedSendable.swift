/// A value handed across threads — to `DispatchQueue.concurrentPerform` iterations or a
/// worker thread — that the compiler cannot prove safe to share: typically an unsafe
/// buffer pointer whose iterations read only, or write disjoint elements, or a reader
/// whose own lock serialises access. The caller states that guarantee by wrapping the
/// value here; this is the project's one such box, so every unchecked hand-over is
/// searchable by this name.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inline(__always) public init(_ value: Value) { self.value = value }
}
