internal import NIOCore
import Synchronization

/// A write transaction waiting for, or running in, a batch of the store's writer.
///
/// The body is the caller's non-escaping closure (`withoutActuallyEscaping`): the writer drops it before
/// the caller is answered, and the caller waits for its answer, so nothing holds it past the call.
final class WriteMember: Sendable {
    typealias Body = @Sendable (SQLiteAccess) async throws -> any Sendable

    private let body: Mutex<Body?>
    private let cancelled = Atomic<Bool>(false)
    private let answer = Mutex<Answer>(Answer())

    private struct Answer {
        var continuation: CheckedContinuation<any Sendable, any Error>?
        var early: Result<any Sendable, any Error>?
        var given = false
    }

    init(_ body: @escaping Body) {
        self.body = Mutex(body)
    }

    /// The body, once: nil after the caller was answered.
    func takeBody() -> Body? {
        body.withLock { body in
            defer { body = nil }
            return body
        }
    }

    /// Whether the caller went away (cancelled, or past its deadline as the RPC layer cancels it).
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    func cancel() {
        cancelled.store(true, ordering: .relaxed)
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

/// Write transactions waiting for the writer, in arrival order, and the task that runs them while
/// any wait: those that arrive while a batch runs join it, so under load a batch holds every writer
/// that arrived during the previous one, and a lone writer starts at once.
///
/// The runner runs each member's body itself, so the caller's cancellation reaches a running body by
/// cancelling the runner (`cancel`), which then hands the queue to a fresh task (`handOver`).
final class WriteQueue: Sendable {
    private struct State {
        var running = false
        var waiting = CircularBuffer<WriteMember>()
        var runner: Task<Void, Never>?
        /// The member whose body runs now.
        var current: WriteMember?
    }

    private let state = Mutex(State())

    /// Adds `member`, and starts the runner with `start` when none runs.
    func add(_ member: WriteMember, start: () -> Task<Void, Never>) {
        state.withLock { state in
            state.waiting.append(member)
            guard !state.running else { return }
            state.running = true
            // Made under the lock: a cancellation finds the handle of the task that runs its body.
            state.runner = start()
        }
    }

    /// The next member to join the running batch, if one waits.
    func take() -> WriteMember? {
        state.withLock { $0.waiting.popFirst() }
    }

    /// The member that begins the next batch, or nil (and the runner stops) when no one waits.
    func next() -> WriteMember? {
        state.withLock { state in
            guard let member = state.waiting.popFirst() else {
                state.running = false
                state.runner = nil
                return nil
            }
            return member
        }
    }

    /// `member`'s caller went away: a body that has not begun is not run, and a running one is
    /// cancelled as it would be in the caller's own task.
    func cancel(_ member: WriteMember) {
        state.withLock { state in
            member.cancel()
            if state.current === member { state.runner?.cancel() }
        }
    }

    /// `member`'s body runs from now until `ran`.
    func running(_ member: WriteMember) {
        state.withLock { $0.current = member }
    }

    func ran() {
        state.withLock { $0.current = nil }
    }

    /// The runner was cancelled for a member's sake: `start` makes the task that runs the rest.
    func handOver(start: () -> Task<Void, Never>) {
        state.withLock { state in
            state.runner = start()
        }
    }
}
