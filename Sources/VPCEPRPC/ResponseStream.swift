import Synchronization

/// The responses of a server-streaming call, in order. Iteration ends normally when the call
/// ends with OK and throws the call's status as a `VPCEPError` otherwise. Stopping early (break,
/// or cancelling the iterating task) cancels the call on the server. A consumer that falls far
/// behind makes its connection stop reading until it catches up (docs/PROTOCOL.md §8.2), so a
/// slow consumer never buffers without bound.
///
/// Iterate it once: it is a single-pass sequence. The call starts when the iteration does.
public struct ResponseStream<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = VPCEPError

    /// Where the messages come from once the call has started.
    package struct Source: Sendable {
        var messages: AsyncThrowingStream<Element, any Error>
        /// Called for every message the consumer takes.
        var onConsume: @Sendable () -> Void
        /// Called when the consumer drops the stream before its end (a `break` out of the loop):
        /// nothing else would tell the server, since the call's continuation lives on in the connection.
        var onAbandon: @Sendable () -> Void

        package init(messages: AsyncThrowingStream<Element, any Error>, onConsume: @escaping @Sendable () -> Void,
                     onAbandon: @escaping @Sendable () -> Void) {
            self.messages = messages
            self.onConsume = onConsume
            self.onAbandon = onAbandon
        }
    }

    private let start: @Sendable () async throws(VPCEPError) -> Source

    /// A stream whose call starts, by `start`, on the first `next()`.
    package init(start: @escaping @Sendable () async throws(VPCEPError) -> Source) {
        self.start = start
    }

    package init(_ source: Source) {
        self.start = { source }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(start: start)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Failure = VPCEPError

        private enum State {
            case notStarted(@Sendable () async throws(VPCEPError) -> Source)
            case running(AsyncThrowingStream<Element, any Error>.AsyncIterator, onConsume: @Sendable () -> Void,
                         abandonment: Abandonment)
            case finished
        }

        private var state: State

        init(start: @escaping @Sendable () async throws(VPCEPError) -> Source) {
            self.state = .notStarted(start)
        }

        public mutating func next() async throws(VPCEPError) -> Element? {
            try await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(VPCEPError) -> Element? {
            if case .notStarted(let start) = state {
                do {
                    let source = try await start()
                    state = .running(source.messages.makeAsyncIterator(), onConsume: source.onConsume,
                                     abandonment: Abandonment(source.onAbandon))
                } catch {
                    state = .finished
                    throw error
                }
            }
            guard case .running(var iterator, let onConsume, let abandonment) = state else { return nil }
            do {
                let element = try await iterator.next(isolation: actor)
                if element == nil {
                    abandonment.ended()
                    state = .finished
                } else {
                    state = .running(iterator, onConsume: onConsume, abandonment: abandonment)
                    onConsume()
                }
                return element
            } catch {
                abandonment.ended()
                state = .finished
                throw Self.vpcepError(error)
            }
        }

        private static func vpcepError(_ error: any Error) -> VPCEPError {
            switch error {
            case let error as VPCEPError:
                error
            case is CancellationError:
                VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled by the caller")
            default:
                VPCEPError(code: .unknown, reason: .unknown, message: "\(error)")
            }
        }
    }
}

/// Calls its action when the last copy of a started iterator goes away before the stream ended.
private final class Abandonment: Sendable {
    private let action: @Sendable () -> Void
    private let hasEnded = Atomic(false)

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = action
    }

    func ended() {
        hasEnded.store(true, ordering: .relaxed)
    }

    deinit {
        if !hasEnded.load(ordering: .relaxed) { action() }
    }
}
