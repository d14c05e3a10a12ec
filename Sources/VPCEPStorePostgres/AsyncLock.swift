import Synchronization

/// A FIFO mutual-exclusion lock for async code (a copy of the SQLite store's). `unlock` hands ownership straight to the longest
/// waiter, so a holder that sees `hasWaiters` knows someone will run after it.
final class AsyncLock: Sendable {
    private struct State {
        var isLocked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func lock() async {
        let acquired = state.withLock { state in
            guard !state.isLocked else { return false }
            state.isLocked = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquiredNow = state.withLock { state in
                guard state.isLocked else {
                    state.isLocked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquiredNow { continuation.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            precondition(state.isLocked, "AsyncLock unlocked while not locked")
            guard !state.waiters.isEmpty else {
                state.isLocked = false
                return nil
            }
            return state.waiters.removeFirst()  // stays locked: ownership passes to the waiter
        }
        next?.resume()
    }

    /// Whether a task is waiting for the lock.
    var hasWaiters: Bool {
        state.withLock { !$0.waiters.isEmpty }
    }
}
