import Synchronization

/// A write transaction waiting for, or running in, a batch: its body, and how to answer its caller.
///
/// The body is the caller's non-escaping closure (`withoutActuallyEscaping`): it is dropped before the
/// caller is answered, and only ever held for the length of a run, so nothing keeps it past the call.
final class BatchMember: Sendable {
    private let body: Mutex<(@Sendable (PostgresAccess) async throws -> any Sendable)?>
    /// Times its body was rolled back because it lost a conflict.
    let attempts = Atomic<Int>(0)
    private let cancelled = Atomic<Bool>(false)
    private let running = Mutex<Task<any Sendable, any Error>?>(nil)
    private let answer = Mutex<Answer>(Answer())

    private struct Answer {
        var continuation: CheckedContinuation<any Sendable, any Error>?
        var early: Result<any Sendable, any Error>?
        var given = false
    }

    init(_ body: @escaping @Sendable (PostgresAccess) async throws -> any Sendable) {
        self.body = Mutex(body)
    }

    /// Runs the body once (a failure if the caller was already answered), in a task of its own that
    /// the caller's cancellation reaches, as it would reach a body run in the caller's own task.
    func run(_ access: PostgresAccess) async -> Result<any Sendable, any Error> {
        guard let body = body.withLock({ $0 }) else { return .failure(CancellationError()) }
        let task = Task { try await body(access) }
        running.withLock { $0 = task }
        if isCancelled { task.cancel() }
        let result = await task.result
        running.withLock { $0 = nil }
        return result
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// The caller went away: unless its body has begun, it is not run; a running body is cancelled.
    func cancel() {
        cancelled.store(true, ordering: .relaxed)
        running.withLock { $0 }?.cancel()
    }

    func attach(_ continuation: CheckedContinuation<any Sendable, any Error>) {
        let early = answer.withLock { answer -> Result<any Sendable, any Error>? in
            if let early = answer.early { return early }
            answer.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Answers the caller; only the first answer counts.
    func finish(_ result: Result<any Sendable, any Error>) {
        body.withLock { $0 = nil }
        let continuation = answer.withLock { answer -> CheckedContinuation<any Sendable, any Error>? in
            guard !answer.given else { return nil }
            answer.given = true
            guard let continuation = answer.continuation else {
                answer.early = result
                return nil
            }
            answer.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}

/// Write transactions waiting for the next batch. One task runs batches while any are waiting: those
/// that arrive while a batch runs make up the next, so under load a batch holds every writer that
/// arrived during the previous one, and a lone writer starts at once.
final class BatchQueue: Sendable {
    static let maxBatch = 64

    private struct State {
        var running = false
        var waiting: [BatchMember] = []
    }

    private let state = Mutex(State())

    /// Adds `member`; true when the caller must start the task that runs batches.
    func add(_ member: BatchMember, first: Bool = false) -> Bool {
        state.withLock { state in
            if first { state.waiting.insert(member, at: 0) } else { state.waiting.append(member) }
            defer { state.running = true }
            return !state.running
        }
    }

    /// The next batch, or nil (and the runner stops) when no one waits.
    func next() -> [BatchMember]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.running = false
                return nil
            }
            let batch = Array(state.waiting.prefix(Self.maxBatch))
            state.waiting.removeFirst(batch.count)
            return batch
        }
    }
}

/// The change log's head while a write batch holds its row lock: the batch's events are numbered from
/// it in memory, and the batch writes it back once, just before its commit. A member that fails gives
/// its numbers back (`reset`) before the next member takes any, so the numbers stay gapless.
final class BatchHead: Sendable {
    private struct State {
        let initial: Int64
        var value: Int64
        /// Every service the batch's events named, its failed members' included (a superset is fine).
        var services: Set<String> = []
    }

    private let state: Mutex<State>

    init(_ seq: Int64) {
        state = Mutex(State(initial: seq, value: seq))
    }

    var value: Int64 { state.withLock { $0.value } }

    /// The head the batch locked, before it numbered anything.
    var initial: Int64 { state.withLock { $0.initial } }

    var services: Set<String> { state.withLock { $0.services } }

    /// The batch's events name these services, for the read cache (`ServiceChangeHistory`).
    func note<Services: Sequence<String>>(_ services: Services) {
        state.withLock { $0.services.formUnion(services) }
    }

    /// Whether the batch numbered anything, so that `log_head` must be written.
    var moved: Bool { state.withLock { $0.value != $0.initial } }

    /// Takes `count` numbers; returns the first.
    func take(_ count: Int) -> Int64 {
        state.withLock { state in
            defer { state.value += Int64(count) }
            return state.value + 1
        }
    }

    func reset(to value: Int64) {
        state.withLock { $0.value = value }
    }
}
