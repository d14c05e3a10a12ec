import Logging
import PostgresNIO
import Synchronization
import VPCEPRegistry

/// A leased connection whose statements fail as soon as the connection is found closed.
///
/// postgres-nio (1.33) can leave a statement waiting forever when PostgreSQL closes the connection
/// around it: under load, `pg_ctl stop -m fast` left a `ROLLBACK` (and once a body's statement)
/// pending on a connection that reported `isClosed`. A transaction stuck so would hold its store's
/// write queue, and every later write would wait for its caller's deadline instead of failing
/// UNAVAILABLE. So while a statement runs, a watchdog looks at the connection every
/// `GuardedConnection.pollInterval` and, once it is closed, fails the statement, leaving the lost one
/// to the closed connection. One watchdog per lease, not per statement.
final class GuardedConnection: Sendable {
    static let pollInterval: Duration = .milliseconds(100)

    let connection: PostgresConnection
    /// Where statements run (nil: the global executor).
    private let executor: (any TaskExecutor)?
    private let pending = Mutex<Pending?>(nil)
    private let watchdog = Mutex<Task<Void, Never>?>(nil)

    /// How to fail the statement now running.
    private struct Pending {
        let fail: @Sendable (StoreError) -> Void
    }

    static var closed: StoreError {
        StoreError(code: .unavailable, message: "PostgreSQL closed the connection")
    }

    init(_ connection: PostgresConnection, executor: (any TaskExecutor)? = nil) {
        self.connection = connection
        self.executor = executor
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.pollInterval)
                guard let self else { return }
                if connection.isClosed { self.failPending() }
            }
        }
        watchdog.withLock { $0 = task }
    }

    deinit {
        watchdog.withLock { $0?.cancel() }
    }

    /// Stops the watchdog; the lease is over.
    func end() {
        watchdog.withLock { $0?.cancel() }
    }

    private func failPending() {
        pending.withLock { $0.take() }?.fail(Self.closed)
    }

    /// Runs `sql`, its rows collected. With `cancellable` false the statement runs to its end even if the
    /// calling task is cancelled (those that begin and end transactions).
    func query(_ query: PostgresQuery, logger: Logger, cancellable: Bool = true) async throws -> [PostgresRow] {
        let connection = self.connection
        return try await guarded(cancellable: cancellable) {
            try await connection.query(query, logger: logger).collect()
        }
    }

    /// Runs a prepared statement (prepared on this connection the first time), its rows collected.
    func execute<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws
        -> [Statement.Row] where Statement.Row: Sendable
    {
        let connection = self.connection
        return try await guarded(cancellable: true) {
            var rows: [Statement.Row] = []
            for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
            return rows
        }
    }

    /// `work` (one statement on `connection`), failed as soon as the watchdog finds the connection closed.
    private func guarded<T: Sendable>(cancellable: Bool, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        guard !connection.isClosed else { throw Self.closed }
        let connection = self.connection
        let once = Once<T>()
        let task = Task(executorPreference: executor) {
            do {
                once.resume(with: .success(try await work()))
            } catch {
                once.resume(with: .failure(error))
            }
        }
        defer { pending.withLock { $0 = nil } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
                pending.withLock { $0 = Pending(fail: { once.resume(with: .failure($0)) }) }
                // Closed between the check above and now: the watchdog may have looked already.
                if connection.isClosed { failPending() }
            }
        } onCancel: {
            if cancellable { task.cancel() }
        }
    }
}

/// A continuation resumed by the first of several outcomes; later ones are dropped.
private final class Once<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
    }

    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            guard let continuation = state.continuation else {
                state.early = result
                return nil
            }
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}
