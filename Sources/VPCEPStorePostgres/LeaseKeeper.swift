import Foundation
import Logging
import PostgresNIO
import Synchronization
import VPCEPRegistry

/// This server's read lease (docs/DOMAIN.md, "Read cache across servers"): while it holds one, the
/// read cache is answered from memory, with no query, because every writer of every server waits,
/// before answering, until each live lease has seen its commit.
///
/// The lease is a row of `replica_leases`: until when it is granted, by PostgreSQL's clock, and the
/// log head up to which this server's cache has applied the changes (`seen_seq`). The keeper registers
/// the row under the log head's lock (so a writer either sees the row or committed before it, which the
/// server's first read of the log then covers), and then, every `renewEvery` and whenever another
/// server's commit wakes it (`NOTIFY vpcep_commit`), reads the log (the store's head round) and
/// renews the row with the head it applied. A renewal only extends a grant that has not expired: once
/// expired, writers stopped waiting for this server, so it registers again and catches up before it
/// trusts its lease again. Writers wait in `awaitOthers(seen:)`, woken by `NOTIFY vpcep_seen` and
/// polling; a server that stops (killed, paused, cut off) holds them up until its grant expires.
/// Notifications only cut latency: without them every wait ends by polling. A server holds a lease
/// only while it answers cached reads (`Timing.idleRelease`): writers need not wait for the others.
final class LeaseKeeper: Sendable {
    struct Timing: Sendable, Hashable {
        /// How long a grant lasts in PostgreSQL after the statement that made it.
        var term: Duration = .milliseconds(1500)
        /// How long this server trusts a grant from when it asked for it: less than `term` by a margin
        /// for the two clocks' rates and steps. A writer waits at most about `term` for a stopped server.
        var trusted: Duration = .milliseconds(1000)
        var renewEvery: Duration = .milliseconds(250)
        /// How often a waiting writer looks again without being woken.
        var pollEvery: Duration = .milliseconds(5)
        /// How long a writer keeps trying to look before its call fails UNAVAILABLE.
        var giveUpAfter: Duration = .seconds(10)
        /// A server that answered no cached read for this long gives its lease back, so that writers
        /// need not wait for it (each write waits for every live lease to see it); the next read takes
        /// one again, and is answered by a head round meanwhile.
        var idleRelease: Duration = .seconds(2)

        init() {}
    }

    let replicaID = UUID().uuidString.lowercased()
    let timing: Timing
    private let configuration: PostgresRegistryStore.Configuration
    private let logger: Logger
    private let executor: EventLoopExecutor
    private let lease: Mutex<ReadLease>
    private let current = Mutex<Session?>(nil)
    private let isClosed = Atomic<Bool>(false)
    /// A cached read since the keeper last looked; whether the lease is registered.
    private let readSinceLook = Atomic<Bool>(false)
    private let holding = Atomic<Bool>(false)
    private let renewals = Wakeup()
    private let seenMoved = Wakeup()
    private let waiters = Mutex(Waiters())
    private let loop = Mutex<Task<Void, Never>?>(nil)

    /// A connection and its listening task.
    private struct Session: Sendable {
        let connection: GuardedConnection
        let listening: Task<Void, Never>
    }

    private struct Waiter {
        let seq: Int64
        let since: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct Waiters {
        var running = false
        var list: [Waiter] = []
    }

    static let commitChannel = "vpcep_commit"
    static let seenChannel = "vpcep_seen"

    init(configuration: PostgresRegistryStore.Configuration, timing: Timing, logger: Logger) {
        self.configuration = configuration
        self.timing = timing
        self.logger = logger
        lease = Mutex(ReadLease(trusted: timing.trusted))
        executor = EventLoopExecutor(PostgresConnection.defaultEventLoopGroup.next())
    }

    /// Whether the read cache may be answered from memory now.
    func serves(at now: ContinuousClock.Instant = .now) -> Bool {
        lease.withLock { $0.serves(at: now) }
    }

    /// Whether the lease is registered (trusted or not). A lease taken after this says false is trusted
    /// only after a round that begins later.
    var isHolding: Bool { holding.load(ordering: .sequentiallyConsistent) }

    /// A read of the cache asked for the version: the lease is worth holding (or taking).
    func noteRead() {
        guard !readSinceLook.load(ordering: .relaxed) else { return }
        readSinceLook.store(true, ordering: .relaxed)
        if !holding.load(ordering: .relaxed) { renewals.signal() }
    }

    /// This server may have missed a change of its own (a commit it could not record): no reads from
    /// memory until the next catch-up.
    func lapse() {
        lease.withLock { $0.lapse() }
        renewals.signal()
    }

    /// Starts keeping the lease. `round` reads the log's head and records what changed (the store's head
    /// round, one that began after the call); `seen` is the head the cache has applied.
    func start(round: @escaping @Sendable () async throws -> Void, seen: @escaping @Sendable () -> UInt64?) {
        let task = Task(executorPreference: executor) { await self.keep(round: round, seen: seen) }
        loop.withLock { $0 = task }
    }

    func close() async {
        guard !isClosed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        lease.withLock { $0.lapse() }
        renewals.signal()
        if let task = loop.withLock({ $0 }) { await task.value }
        if let session = current.withLock({ $0 }) {
            // Other servers' writers stop waiting for this one at once rather than at the grant's expiry.
            _ = try? await session.connection.query(
                "DELETE FROM replica_leases WHERE replica_id = \(replicaID)", logger: logger)
            await drop(session)
        }
        let waiting = waiters.withLock { waiters in
            defer { waiters.list = [] }
            return waiters.list
        }
        for waiter in waiting { waiter.continuation.resume(throwing: StoreError.closed) }
    }

    // MARK: Keeping the lease

    private func keep(round: @Sendable () async throws -> Void, seen: @Sendable () -> UInt64?) async {
        var registered = false
        var renewedAt = ContinuousClock.now
        var readAt: ContinuousClock.Instant?
        while !isClosed.load(ordering: .sequentiallyConsistent) {
            let now = ContinuousClock.now
            if readSinceLook.exchange(false, ordering: .relaxed) { readAt = now }
            let wanted = readAt.map { now - $0 < timing.idleRelease } ?? false
            do {
                let connection = try await usableConnection()
                if registered && !wanted {
                    // No cached reads lately: writers need not wait for this server.
                    lease.withLock { $0.lapse() }
                    holding.store(false, ordering: .sequentiallyConsistent)
                    registered = false
                    _ = try await connection.query("DELETE FROM replica_leases WHERE replica_id = \(replicaID)", logger: logger)
                } else if registered {
                    // The log first, so that the head the renewal reports covers every commit before it.
                    try await round()
                    let askedAt = ContinuousClock.now
                    // Woken by a commit between renewals: only the head is reported, without waiting for
                    // the disk (a lost report only makes writers wait longer), so writers wait less.
                    let renewing = askedAt - renewedAt >= timing.renewEvery || !serves(at: askedAt)
                    if try await report(on: connection, seen: seen(), renewing: renewing) {
                        if renewing {
                            renewedAt = askedAt
                            if !lease.withLock({ $0.renewed(askedAt: askedAt, answeredAt: .now) }) {
                                try await round()
                                lease.withLock { $0.caughtUp(askedAt: askedAt) }
                            }
                        }
                    } else {
                        // Expired in PostgreSQL: writers may have stopped waiting for this server.
                        lease.withLock { $0.lapse() }
                        holding.store(false, ordering: .sequentiallyConsistent)
                        registered = false
                        continue
                    }
                } else if wanted {
                    let askedAt = ContinuousClock.now
                    try await register(on: connection)
                    registered = true
                    holding.store(true, ordering: .sequentiallyConsistent)
                    renewedAt = askedAt
                    try await round()
                    lease.withLock { $0.caughtUp(askedAt: askedAt) }
                }
            } catch {
                if isClosed.load(ordering: .sequentiallyConsistent) { return }
                logger.debug("read lease not renewed", metadata: ["error": "\(StoreError(postgres: error).message)"])
            }
            await renewals.wait(upTo: timing.renewEvery)
        }
    }

    /// The row, granted and at the head read under the head's lock: a writer either commits before the
    /// row exists (and the round after this covers its commit) or sees the row and waits for it.
    private func register(on connection: GuardedConnection) async throws {
        _ = try await connection.query(PostgresQuery(unsafeSQL: PostgresRegistryStore.beginWrite), logger: logger, cancellable: false)
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: PostgresRegistryStore.lockHead), logger: logger)
            guard let row = rows.first else { throw StoreError.corrupt("log_head") }
            let head = try row.decode(Int64.self)
            _ = try await connection.query(
                """
                INSERT INTO replica_leases (replica_id, expires_at, seen_seq)
                VALUES (\(replicaID), clock_timestamp() + make_interval(secs => \(termSeconds)), \(head))
                ON CONFLICT (replica_id) DO UPDATE SET expires_at = excluded.expires_at, seen_seq = excluded.seen_seq
                """, logger: logger)
            // The rows of servers that went away without a word.
            _ = try await connection.query(
                "DELETE FROM replica_leases WHERE expires_at < clock_timestamp() - interval '1 hour'", logger: logger)
            _ = try await connection.query("COMMIT", logger: logger, cancellable: false)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger, cancellable: false)
            throw error
        }
    }

    /// Reports the head the cache has applied and, when `renewing`, extends the grant, if it has not
    /// expired; false when it had (or the row is gone). A renewal is durable before it is answered: a
    /// grant that PostgreSQL lost in a crash would still be trusted here, and no writer would wait for
    /// it. A report alone is not waited for on the disk: lost, it only makes writers wait longer.
    private func report(on connection: GuardedConnection, seen: UInt64?, renewing: Bool) async throws -> Bool {
        let head = Int64(clamping: seen ?? 0)
        let rows: [PostgresRow]
        if renewing {
            rows = try await connection.query(
                """
                UPDATE replica_leases
                SET expires_at = clock_timestamp() + make_interval(secs => \(termSeconds)), seen_seq = greatest(seen_seq, \(head))
                WHERE replica_id = \(replicaID) AND expires_at > clock_timestamp()
                RETURNING (SELECT count(*) FROM (SELECT pg_notify('\(unescaped: Self.seenChannel)', '')) AS n) AS notified
                """, logger: logger)
        } else {
            rows = try await connection.query(
                """
                WITH unsynced AS (SELECT set_config('synchronous_commit', 'off', true))
                UPDATE replica_leases SET seen_seq = greatest(seen_seq, \(head)) FROM unsynced
                WHERE replica_id = \(replicaID) AND expires_at > clock_timestamp()
                RETURNING (SELECT count(*) FROM (SELECT pg_notify('\(unescaped: Self.seenChannel)', '')) AS n) AS notified
                """, logger: logger)
        }
        return !rows.isEmpty
    }

    private var termSeconds: Double {
        Double(timing.term.components.seconds) + Double(timing.term.components.attoseconds) / 1e18
    }

    // MARK: Writers waiting for the other servers

    /// Returns once every other server whose grant has not expired has applied the log up to `seq`
    /// (or its grant has expired). Fails UNAVAILABLE when PostgreSQL cannot be asked for `giveUpAfter`.
    func awaitOthers(seen seq: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = waiters.withLock { waiters in
                waiters.list.append(Waiter(seq: Int64(clamping: seq), since: .now, continuation: continuation))
                defer { waiters.running = true }
                return !waiters.running
            }
            if isClosed.load(ordering: .sequentiallyConsistent) {
                let waiting = waiters.withLock { waiters in
                    defer { waiters.list = [] }
                    return waiters.list
                }
                for waiter in waiting { waiter.continuation.resume(throwing: StoreError.closed) }
                return
            }
            if start { Task(executorPreference: executor) { await self.releaseWaiters() } }
        }
    }

    private func releaseWaiters() async {
        while true {
            let idle = waiters.withLock { waiters in
                if waiters.list.isEmpty { waiters.running = false }
                return waiters.list.isEmpty
            }
            if idle { return }
            var released: [Waiter] = []
            var failed: [Waiter] = []
            do {
                let floor = try await othersFloor()
                released = waiters.withLock { waiters in
                    let (done, rest) = waiters.list.split { $0.seq <= floor }
                    waiters.list = rest
                    return done
                }
            } catch {
                let now = ContinuousClock.now
                failed = waiters.withLock { waiters in
                    let (expired, rest) = waiters.list.split { now - $0.since >= timing.giveUpAfter }
                    waiters.list = rest
                    return expired
                }
                if !failed.isEmpty {
                    logger.warning("could not confirm that other servers saw a commit", metadata: [
                        "error": "\(StoreError(postgres: error).message)",
                    ])
                }
            }
            for waiter in released { waiter.continuation.resume() }
            let unavailable = StoreError(
                code: .unavailable, message: "committed, but PostgreSQL could not be asked whether other servers saw it")
            for waiter in failed { waiter.continuation.resume(throwing: unavailable) }
            if isClosed.load(ordering: .sequentiallyConsistent) {
                let waiting = waiters.withLock { waiters in
                    defer { (waiters.list, waiters.running) = ([], false) }
                    return waiters.list
                }
                for waiter in waiting { waiter.continuation.resume(throwing: StoreError.closed) }
                return
            }
            if waiters.withLock({ !$0.list.isEmpty }) { await seenMoved.wait(upTo: timing.pollEvery) }
        }
    }

    /// The lowest head applied by another server whose grant has not expired (`Int64.max` when none).
    private func othersFloor() async throws -> Int64 {
        // Only the keeping loop makes connections (two makers could each drop the other's).
        guard let connection = current.withLock({ $0?.connection }), !connection.connection.isClosed else {
            renewals.signal()
            throw StoreError(code: .unavailable, message: "no connection to PostgreSQL for the read leases")
        }
        let rows = try await connection.query(
            """
            SELECT coalesce(min(seen_seq), \(Int64.max)) FROM replica_leases
            WHERE replica_id <> \(replicaID) AND expires_at > clock_timestamp()
            """, logger: logger)
        guard let row = rows.first else { return Int64.max }
        return try row.decode(Int64.self)
    }

    // MARK: The connection

    private func usableConnection() async throws -> GuardedConnection {
        if let session = current.withLock({ $0 }) {
            guard session.connection.connection.isClosed else { return session.connection }
            await drop(session)
        }
        guard !isClosed.load(ordering: .sequentiallyConsistent) else { throw StoreError.closed }
        let made = try await PostgresConnection.connect(
            on: executor.eventLoop, configuration: try configuration.connection(), id: 0, logger: logger)
        let connection = GuardedConnection(made, executor: executor)
        let listening = Task(executorPreference: executor) { [renewals, seenMoved] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try? await made.listen(on: Self.commitChannel) { notifications in
                        for try await _ in notifications { renewals.signal() }
                    }
                }
                group.addTask {
                    _ = try? await made.listen(on: Self.seenChannel) { notifications in
                        for try await _ in notifications { seenMoved.signal() }
                    }
                }
            }
        }
        let session = Session(connection: connection, listening: listening)
        let previous = current.withLock { current in
            defer { current = session }
            return current
        }
        if let previous { await drop(previous) }
        if isClosed.load(ordering: .sequentiallyConsistent) {
            await drop(session)
            throw StoreError.closed
        }
        return connection
    }

    private func drop(_ session: Session) async {
        current.withLock { if $0?.connection === session.connection { $0 = nil } }
        session.listening.cancel()
        session.connection.end()
        try? await session.connection.connection.close()
    }
}

extension Array {
    /// The elements that match and those that do not, each in order.
    fileprivate func split(_ matches: (Element) -> Bool) -> (matching: [Element], rest: [Element]) {
        var matching: [Element] = []
        var rest: [Element] = []
        for element in self {
            if matches(element) { matching.append(element) } else { rest.append(element) }
        }
        return (matching, rest)
    }
}
