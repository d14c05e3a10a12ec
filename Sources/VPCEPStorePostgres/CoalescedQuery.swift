import Synchronization

/// One query answering many callers, each with an answer taken after it asked.
///
/// Callers that arrive while a round is running wait for the next one, which starts when that round
/// ends and serves all of them with one query; so under load a round serves every caller that arrived
/// during the previous one, and no caller gets an answer computed before it arrived. Used for the log
/// head that gates the read cache: a write acknowledged (by any server) before a read arrived is
/// always covered by the head that read is given.
final class CoalescedQuery<Value: Sendable>: Sendable {
    private struct State {
        var running = false
        var waiting: [UnsafeContinuation<Value, any Error>] = []
    }

    private let state = Mutex(State())
    private let executor: (any TaskExecutor)?

    /// `executor`: where the rounds run (nil: the global executor).
    init(executor: (any TaskExecutor)? = nil) {
        self.executor = executor
    }

    /// The value of a `query` that began after this call did. `query` runs in a task of its own, for
    /// this caller and every other waiting one; it must not depend on the calling task.
    func next(_ query: @escaping @Sendable () async throws -> Value) async throws -> Value {
        // Unsafe rather than checked: every continuation is resumed exactly once, by the round that
        // takes it out of `waiting`, and the checked kind costs an allocation per read.
        try await withUnsafeThrowingContinuation { continuation in
            let startRounds = state.withLock { state in
                state.waiting.append(continuation)
                defer { state.running = true }
                return !state.running
            }
            if startRounds {
                Task(executorPreference: executor) { await self.runRounds(query) }
            }
        }
    }

    private func runRounds(_ query: @Sendable () async throws -> Value) async {
        while true {
            let round = state.withLock { state in
                defer { state.waiting = [] }
                if state.waiting.isEmpty { state.running = false }
                return state.waiting
            }
            if round.isEmpty { return }
            let result: Result<Value, any Error>
            do {
                result = .success(try await query())
            } catch {
                result = .failure(error)
            }
            for continuation in round { continuation.resume(with: result) }
        }
    }
}
