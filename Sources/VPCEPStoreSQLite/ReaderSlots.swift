import Synchronization

/// Which of the store's reader connections are free. A read takes one (waiting, in order of
/// arrival, while all are busy) and gives it back; `takeAll` waits until it holds every one, for
/// what must not run beside any read (closing, repairing).
final class ReaderSlots: Sendable {
    private struct State {
        var free: [Int]
        var waiters: [CheckedContinuation<Int, Never>] = []
    }

    let count: Int
    private let state: Mutex<State>
    /// Two callers of `takeAll` holding some slots each would wait for each other forever.
    private let exclusive = AsyncLock()

    init(count: Int) {
        precondition(count > 0)
        self.count = count
        self.state = Mutex(State(free: Array((0..<count).reversed())))
    }

    func take() async -> Int {
        if let slot = state.withLock({ $0.free.popLast() }) { return slot }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
            let slot = state.withLock { state -> Int? in
                if let slot = state.free.popLast() { return slot }
                state.waiters.append(continuation)
                return nil
            }
            if let slot { continuation.resume(returning: slot) }
        }
    }

    func give(_ slot: Int) {
        let next = state.withLock { state -> CheckedContinuation<Int, Never>? in
            guard !state.waiters.isEmpty else {
                state.free.append(slot)
                return nil
            }
            return state.waiters.removeFirst()  // the slot passes straight to the longest waiter
        }
        next?.resume(returning: slot)
    }

    /// Every slot, once the reads holding them are done; give them back with `giveAll`.
    func takeAll() async {
        await exclusive.lock()
        for _ in 0..<count { _ = await take() }
    }

    func giveAll() {
        for slot in 0..<count { give(slot) }
        exclusive.unlock()
    }
}
