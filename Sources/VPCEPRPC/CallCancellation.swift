import Synchronization

/// Joins a caller that may give up to the call id the connection's handler assigns, whichever
/// happens first. A caller that gives up before its call has an id keeps the call from being sent
/// at all (the server never does the work); one that gives up later gets the id to CANCEL
/// (docs/PROTOCOL.md §4.6).
final class CallCancellation: Sendable {
    private enum State {
        case waiting
        case started(UInt32)
        case cancelled
    }

    private let state = Mutex(State.waiting)

    init() {}

    /// The handler gave the call `id`. False when the caller has already given up: the handler
    /// must then drop the call instead of sending it.
    func start(_ id: UInt32) -> Bool {
        state.withLock { state in
            guard case .waiting = state else { return false }
            state = .started(id)
            return true
        }
    }

    /// The caller gives up. The id to send CANCEL for when the call was sent, nil when it was not
    /// (it never will be).
    func cancel() -> UInt32? {
        state.withLock { state in
            switch state {
            case .started(let id):
                return id
            case .waiting, .cancelled:
                state = .cancelled
                return nil
            }
        }
    }
}
