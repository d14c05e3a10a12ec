import NIOCore
import Synchronization
import VPCEPProto

/// A server stream that outlives its handler's task (docs/PROTOCOL.md §4.4 is unchanged: the client
/// sees an ordinary stream). The handler sets it up and returns; whoever holds it sends, and ends it
/// with `finish`. A stream that waits for hours (a Watch) then keeps no task, and none of a task's
/// memory, while nothing happens on it: only what its owner keeps.
public struct DetachedServerStream<Message: ProtoMessage>: Sendable {
    // Only the sink: an idle stream's owner keeps copies of this in its closures, for hours.
    let sink: StreamSink
    private var cancellation: StreamCancellation { sink.cancellation! }

    /// The executor that runs work on this stream's connection's event loop (nil in NIO's testing
    /// event loops): a task sending on the stream runs best there, with no hand-off per message.
    public var taskExecutor: (any TaskExecutor)? { sink.taskExecutor }

    /// Queues one message, as `ServerStreamWriter.send`: suspends while the connection's outbound
    /// buffer is over its bound, throws `CancellationError` when the calling task is cancelled or the
    /// call is over.
    public func send(serialized bytes: [UInt8]) async throws {
        try Task.checkCancellation()
        try await sink.send(bytes)
    }

    /// Ends the stream: with OK when `error` is nil, else with the status `error` maps to (as a
    /// handler's thrown error does). Nothing happens when the call has already ended (cancelled by the
    /// client, past its deadline, connection closed).
    public func finish(throwing error: (any Error)?) {
        let (callID, handler) = (sink.callID, sink.handler)
        sink.eventLoop.execute {
            let (handler, context) = handler.value
            handler.finishDetached(callID, throwing: error, context: context)
        }
    }

    /// Runs `action` once when the call ends without `finish` (the client cancelled, the deadline
    /// passed, the connection closed or the server's grace period ran out), at once when it already
    /// has. It must stop what sends on the stream. Dropped, unrun, once the call ends by `finish`.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        cancellation.setAction(action)
    }
}

/// How a detached stream's owner learns that its call ended. Held by the call's record in the
/// connection, which ends it whenever the record goes: the action runs (or is dropped, when the call
/// finished), so the owner's references, which the stream's owner usually holds back, are let go.
final class StreamCancellation: Sendable {
    private enum State {
        case open((@Sendable () -> Void)?)
        case finished
        case cancelled
    }

    private let state = Mutex(State.open(nil))

    func setAction(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            switch state {
            case .open:
                state = .open(action)
                return false
            case .cancelled:
                return true
            case .finished:
                return false
            }
        }
        if runNow { action() }
    }

    /// The call ended without its owner's `finish`: its action runs.
    func cancel() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            guard case .open(let action) = state else { return nil }
            state = .cancelled
            return action
        }
        action?()
    }

    /// The call ended by `finish`: nothing to stop.
    func finished() {
        state.withLock { state in
            if case .open = state { state = .finished }
        }
    }
}
