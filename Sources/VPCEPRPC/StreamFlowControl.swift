import Synchronization

/// Counts the messages of one client stream that arrived but that its consumer has not taken
/// yet. Past `highWatermark` the connection stops reading (docs/PROTOCOL.md §8.2); once the
/// consumer has brought the count down to `lowWatermark`, `onDrained` lets reading resume.
final class StreamFlowControl: Sendable {
    static let highWatermark = 256
    static let lowWatermark = 64

    private let buffered = Atomic<Int>(0)
    private let drained = Mutex<(@Sendable () -> Void)?>(nil)

    /// The connection's hook, called (on any thread) when the count falls to the low watermark.
    func setOnDrained(_ action: (@Sendable () -> Void)?) {
        drained.withLock { $0 = action }
    }

    /// A message was handed to the consumer's buffer; true when it is now over the high watermark.
    func delivered() -> Bool {
        buffered.add(1, ordering: .relaxed).newValue >= Self.highWatermark
    }

    /// The consumer took a message.
    func consumed() {
        if buffered.subtract(1, ordering: .relaxed).newValue == Self.lowWatermark {
            drained.withLock { $0 }?()
        }
    }

    var isOverHighWatermark: Bool { buffered.load(ordering: .relaxed) >= Self.highWatermark }
}
