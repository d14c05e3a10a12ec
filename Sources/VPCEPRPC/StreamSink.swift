import NIOCore
import Synchronization

/// Where a streaming handler's messages go: the event loop and handler of its connection.
struct StreamSink: Sendable {
    let callID: UInt32
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<(ServerConnectionHandler, ChannelHandlerContext)>
    /// A detached stream's (`DetachedServerStream`); nil for every other call.
    var cancellation: StreamCancellation?
    var taskExecutor: (any TaskExecutor)?

    /// Cancelling the sending task ends a wait for the buffer to drain (the message stays queued):
    /// a handler can give up on a reader that does not read (docs/PROTOCOL.md §4.4).
    func send(_ bytes: [UInt8]) async throws {
        let cancelled = SendCancelled()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                eventLoop.execute {
                    let (handler, context) = self.handler.value
                    handler.sendStreamMessage(callID, bytes, context: context, continuation: continuation)
                    // A cancellation that came before this ran found nothing parked yet.
                    if cancelled.flag.load(ordering: .acquiring) { handler.unparkSends(callID) }
                }
            }
        } onCancel: {
            cancelled.flag.store(true, ordering: .releasing)
            eventLoop.execute {
                self.handler.value.0.unparkSends(callID)
            }
        }
    }
}

/// Whether a send's task was cancelled, shared with the event loop.
private final class SendCancelled: Sendable {
    let flag = Atomic<Bool>(false)
}

/// Stream senders suspended until their connection's outbound buffer drains (docs/PROTOCOL.md
/// §8.2). Used on the connection's event loop only.
struct ParkedSends {
    private struct Parked {
        let callID: UInt32
        let continuation: CheckedContinuation<Void, any Error>
    }

    private var parked: [Parked] = []

    var isEmpty: Bool { parked.isEmpty }

    mutating func park(_ callID: UInt32, _ continuation: CheckedContinuation<Void, any Error>) {
        parked.append(Parked(callID: callID, continuation: continuation))
    }

    /// Resumes every sender: with `CancellationError` when `failing` or its call no longer runs.
    mutating func resumeAll(failing: Bool, isRunning: (UInt32) -> Bool) {
        guard !parked.isEmpty else { return }
        let resumed = parked
        parked = []
        for send in resumed {
            if failing || !isRunning(send.callID) {
                send.continuation.resume(throwing: CancellationError())
            } else {
                send.continuation.resume()
            }
        }
    }

    /// Fails the senders of a call that ended.
    mutating func fail(_ callID: UInt32) {
        guard parked.contains(where: { $0.callID == callID }) else { return }
        parked.removeAll { send in
            guard send.callID == callID else { return false }
            send.continuation.resume(throwing: CancellationError())
            return true
        }
    }
}
