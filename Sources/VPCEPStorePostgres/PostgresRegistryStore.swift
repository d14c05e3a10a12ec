import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization
import VPCEPRegistry

/// The registry store on PostgreSQL, for several replicas sharing one database.
///
/// Write transactions are group-committed: those waiting when a batch starts run in it, one after
/// another, and are answered after its one commit (`runBatch`). Their plain inserts are held back and
/// sent together (`DeferredInserts`), without a savepoint per member; when a failure needs one, the
/// batch runs again with each member in a savepoint of its own.
/// Every batch first locks the change log's head row (`SELECT … FOR UPDATE`), so the
/// writers of every replica run one at a time, each at `READ COMMITTED`: every statement after the
/// lock sees every earlier writer's commit, and no other writer can commit before this one ends. The
/// writes are therefore serial, and every rule the registry checks in a transaction (quotas,
/// revisions, idempotency keys, connection decisions, exact counts) holds across replicas as written,
/// without a lock of its own (docs/DOMAIN.md, "PostgreSQL store"). A transaction that PostgreSQL aborts
/// anyway (SQLSTATE 40001 or a deadlock, 40P01) is run again from the start, up to
/// `Configuration.maxAttempts` times; bodies may therefore run more than once and only read and write
/// through the transaction.
///
/// Reads run in one `REPEATABLE READ READ ONLY` snapshot each. Connections come from a bounded pool
/// (postgres-nio's `PostgresClient`); when PostgreSQL cannot be reached calls fail as `unavailable`
/// within `acquireTimeout`, and then at once until a probe gets through again; `readinessProblem` says
/// why meanwhile, and the pool reconnects by itself.
///
/// Other replicas write the same database, so this store cannot count commits itself: its commit
/// version is the change log's head, read from PostgreSQL by `currentCommitVersion()` (one query for
/// all the reads waiting for it), which every write transaction moves; the same query lists the
/// services named by the events since the previous round, so that `commitChanges(since:)` tells the
/// read cache which services to drop (docs/DOMAIN.md, "Read cache across servers").
public final class PostgresRegistryStore: RegistryStore {
    public struct Configuration: Sendable {
        public enum TLSMode: String, Sendable {
            /// Plain TCP.
            case disable
            /// TLS when the server offers it, without verifying its certificate.
            case prefer
            /// TLS, the server's certificate verified against the system's roots (or `caFile`) and its name.
            case require
        }

        public var host: String
        public var port: Int
        public var username: String
        /// Never logged.
        public var password: String?
        public var database: String
        /// The schema the store's tables live in (created when missing); `nil` for the server's default
        /// search path (normally `public`).
        public var schema: String?
        public var tls: TLSMode = .prefer
        /// PEM file of the certificate authorities that sign the server's certificate, for `.require`.
        public var caFile: String?
        /// The pool's bound.
        public var maximumConnections: Int = 10
        public var connectTimeout: Duration = .seconds(3)
        /// How long a call waits for a pooled connection before failing as unavailable. The pool itself
        /// would keep a caller waiting while it retries a server that is down (its circuit breaker
        /// opens only after a minute).
        public var acquireTimeout: Duration = .seconds(5)
        /// How many times a transaction runs before a conflict is reported.
        public var maxAttempts: Int = 8
        /// Whether the server holds a read lease (`LeaseKeeper`), so that cached reads need no query while
        /// it does; without one every cached read waits for a head round that began after it arrived.
        public var readLeases = true
        var leaseTiming = LeaseKeeper.Timing()

        public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
        }

        /// `postgres://user@host[:port]/database[?sslmode=disable|prefer|require]`. A password in the URL
        /// is refused: it would end up in process listings and shell history; pass `password` instead.
        public init(url: String, password: String? = nil) throws {
            guard let components = URLComponents(string: url),
                components.scheme == "postgres" || components.scheme == "postgresql",
                let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
            else {
                throw StoreError(code: .internalError, message: "not a postgres://user@host:port/database URL")
            }
            guard components.password == nil else {
                throw StoreError(code: .internalError, message: "the PostgreSQL URL must not carry a password (give it from a file or the environment)")
            }
            let database = String(components.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty, !database.contains("/") else {
                throw StoreError(code: .internalError, message: "the PostgreSQL URL names no database")
            }
            self.init(host: host, port: components.port ?? 5432, username: user, password: password, database: database)
            for item in components.queryItems ?? [] {
                switch item.name {
                case "sslmode":
                    guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                        throw StoreError(code: .internalError, message: "sslmode must be disable, prefer or require")
                    }
                    tls = mode
                case "schema":
                    schema = item.value
                default:
                    throw StoreError(code: .internalError, message: "unknown PostgreSQL URL option \(item.name)")
                }
            }
        }

        /// Where the store is, for logs: no password.
        public var redacted: String {
            "postgres://\(username)@\(host):\(port)/\(database)" + (schema.map { " schema \($0)" } ?? "")
        }

        /// The TLS settings of `.prefer` and `.require`.
        private func tlsSettings() -> TLSConfiguration {
            var settings = TLSConfiguration.makeClientConfiguration()
            switch tls {
            case .disable, .prefer:
                settings.certificateVerification = .none
            case .require:
                if let caFile { settings.trustRoots = .file(caFile) }
            }
            return settings
        }

        /// One connection outside the pool, as the pool would make it.
        func connection() throws -> PostgresConnection.Configuration {
            let tls: PostgresConnection.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsSettings()))
            case .require: tls = .require(try NIOSSLContext(configuration: tlsSettings()))
            }
            var connection = PostgresConnection.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
            connection.options.connectTimeout = .milliseconds(Int64(connectTimeout / .milliseconds(1)))
            connection.options.additionalStartupParameters = startupParameters
            return connection
        }

        /// A transaction left open (a replica paused or cut off mid-write) holds the log head's lock,
        /// and with it every replica's writes: the server ends such a session.
        private var startupParameters: [(String, String)] {
            [("idle_in_transaction_session_timeout", "15s")] + (schema.map { [("search_path", $0)] } ?? [])
        }

        func client() throws -> PostgresClient.Configuration {
            let tls: PostgresClient.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(tlsSettings())
            case .require: tls = .require(tlsSettings())
            }
            var client = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
            client.options.maximumConnections = maximumConnections
            client.options.connectTimeout = connectTimeout
            client.options.additionalStartupParameters = startupParameters
            return client
        }
    }

    /// How long the repair probe waits between attempts.
    static let probeInterval: Duration = .seconds(1)

    public let configuration: Configuration
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let state = Mutex(State())
    private let batches = BatchQueue()
    private let head: CoalescedQuery<UInt64>
    private let headReader: HeadReader
    /// This server's read lease; nil when `readLeases` is off.
    private let keeper: LeaseKeeper?
    /// Head rounds run (`readHead`), and those a read waited for: what reads cost PostgreSQL when they
    /// are not answered from memory.
    let headRounds = Atomic<Int>(0)
    let readsAfterRounds = Atomic<Int>(0)
    /// Write batches that ran again with a savepoint per member (`runDeferring`): what failures cost.
    let batchesRunAgain = Atomic<Int>(0)
    /// What each round of `head` learnt, for `commitChanges(since:)`.
    private let serviceChanges = ServiceChangeHistory(startingAt: nil)

    private struct State {
        var isClosed = false
        /// Why PostgreSQL cannot be used, while a probe checks for its return.
        var problem: String?
    }

    private init(configuration: Configuration, client: PostgresClient, runner: Task<Void, Never>, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.runner = runner
        self.logger = logger
        headReader = HeadReader(configuration: configuration, logger: logger)
        head = CoalescedQuery(executor: headReader.executor)
        keeper = configuration.readLeases
            ? LeaseKeeper(configuration: configuration, timing: configuration.leaseTiming, logger: logger) : nil
    }

    public var readinessProblem: String? { state.withLock { $0.problem } }

    /// Whether reads are answered from memory now (`LeaseKeeper`), and will be for `margin` more.
    func holdsReadLease(for margin: Duration = .zero) -> Bool { keeper?.serves(at: .now + margin) ?? false }

    /// Connects, creates the schema when it is missing, and migrates it.
    public static func open(_ configuration: Configuration, logger: Logger? = nil) async throws -> PostgresRegistryStore {
        let logger = logger ?? Logger(label: "vpcep.store.postgres")
        // The pool logs every failed connection attempt at info; while PostgreSQL is down that is a
        // flood, and the store reports the outage itself.
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: try configuration.client(), backgroundLogger: background)
        let runner = Task { await client.run() }
        let store = PostgresRegistryStore(configuration: configuration, client: client, runner: runner, logger: logger)
        do {
            try await store.leased { connection in
                try await migrate(connection, schema: configuration.schema, logger: logger)
            }
        } catch {
            runner.cancel()
            await runner.value
            // The pool retries a failed connection without telling its waiters why: one made here
            // says what is wrong (refused, authentication, TLS, no such database).
            if let reason = await configuration.connectionFailure(logger: logger) {
                throw StoreError(code: .unavailable, message: reason)
            }
            throw StoreError(postgres: error)
        }
        store.keeper?.start(
            round: { [store] in _ = try await store.freshHead() },
            seen: { [store] in store.serviceChanges.latest })
        logger.info("opened the registry store", metadata: [
            "store": "\(configuration.redacted)", "schema": "\(schemaVersion)",
        ])
        return store
    }

    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Closes the pool. Later calls fail as unavailable.
    public func close() async {
        let alreadyClosed = state.withLock { state in
            defer { state.isClosed = true }
            return state.isClosed
        }
        if alreadyClosed { return }
        await keeper?.close()
        await headReader.close()
        runner.cancel()
        await runner.value
        logger.info("closed the registry store", metadata: ["store": "\(configuration.redacted)"])
    }

    public func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        let outcome: Attempt<T> = try await attempt(begin: Self.beginRead, body)
        switch outcome {
        case .done(let value): return value
        case .lost(let error): throw error
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T {
        // Cancelled before the transaction begins: it is not run.
        try Task.checkCancellation()
        // The batch's task runs the body, within this call: the continuation is resumed only once
        // the body has finished and its batch has committed or rolled back.
        let value = try await withoutActuallyEscaping(body) { body in
            let member = BatchMember { access in try await body(access) }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    member.attach(continuation)
                    if batches.add(member) { Task { await self.runBatches() } }
                }
            } onCancel: {
                member.cancel()
            }
        }
        // The member's body returned a `T`.
        return value as! T
    }

    // MARK: Group commit

    /// Runs batches of write transactions, one at a time, while any wait.
    private func runBatches() async {
        while let batch = batches.next() {
            await runBatch(batch)
        }
    }

    /// One PostgreSQL transaction for several registry transactions, each in a savepoint of its own
    /// so that its failure undoes only its own work; those that succeeded are answered after the
    /// commit, and fail with it.
    private func runBatch(_ batch: [BatchMember]) async {
        let members = batch.filter { member in
            guard member.isCancelled else { return true }
            member.finish(.failure(CancellationError()))
            return false
        }
        guard !members.isEmpty else { return }
        let outcome: BatchOutcome
        do {
            outcome = try await reachable {
                try await leased { connection in try await self.runBatch(members, on: connection) }
            }
        } catch {
            // Nothing of the batch committed. Members already answered (their own failure) keep
            // their answer.
            for member in members { member.finish(.failure(error)) }
            return
        }
        answer(outcome)
        for (member, conflict) in outcome.lost {
            if member.attempts.add(1, ordering: .relaxed).newValue >= configuration.maxAttempts {
                logger.warning("registry store transaction kept conflicting", metadata: ["attempts": "\(configuration.maxAttempts)"])
                member.finish(.failure(conflict))
            } else {
                // Rolled back: run again, first in the next batch.
                _ = batches.add(member, first: true)
            }
        }
    }

    private struct BatchOutcome: Sendable {
        var committed: [(BatchMember, any Sendable)] = []
        /// Members that lost a conflict with a concurrent transaction and were rolled back.
        var lost: [(BatchMember, StoreError)] = []
        /// What the committed batch appended to the log, when it appended anything.
        var written: Written?
    }

    /// A committed batch's events: after which head, up to which, naming which services, and whether
    /// another server with a live read lease had not seen it when it committed.
    private struct Written: Sendable {
        var after: UInt64
        var through: UInt64
        var services: Set<String>
        var othersBehind: Bool
    }

    /// Answers the batch's committed members once no read cache can answer from before their commit:
    /// this server's (its own commits are recorded before any caller is answered; when another server's
    /// commit came in between and is not known yet, a head round first) and every other server holding
    /// a read lease (`LeaseKeeper.awaitOthers`). That wait is in a task of its own, so the next batch
    /// need not wait for it.
    private func answer(_ outcome: BatchOutcome) {
        guard !outcome.committed.isEmpty else { return }
        guard let written = outcome.written else {
            for (member, value) in outcome.committed { member.finish(.success(value)) }
            return
        }
        // Without a lease held now, after the commit, this server's lease (if it takes one) is trusted only
        // after a round that begins later, which covers the commit: nothing to record first.
        let recorded = serviceChanges.record(after: written.after, through: written.through, services: written.services)
            || !(keeper?.isHolding ?? false)
        guard !recorded || written.othersBehind else {
            for (member, value) in outcome.committed { member.finish(.success(value)) }
            return
        }
        Task { [self] in
            var failure: (any Error)?
            if !recorded {
                do {
                    _ = try await freshHead()
                } catch {
                    // The cache cannot be told; no reads from memory until the lease's next catch-up.
                    keeper?.lapse()
                }
            }
            if written.othersBehind, let keeper {
                do {
                    try await keeper.awaitOthers(seen: written.through)
                } catch {
                    failure = error
                }
            }
            for (member, value) in outcome.committed { member.finish(failure.map { .failure($0) } ?? .success(value)) }
        }
    }

    /// The `RETURNING` list of a batch's head update: 1 when another server whose read lease has not
    /// expired has not seen the batch's last event (and a `NOTIFY` to wake those up, sent at the commit).
    private func othersBehind(through last: Int64) -> (sql: String, binds: [PGBind])? {
        guard let keeper else { return nil }
        return (
            """
            (SELECT count(*) FROM (SELECT pg_notify('\(LeaseKeeper.commitChannel)', '') FROM replica_leases
            WHERE replica_id <> ? AND expires_at > clock_timestamp() AND seen_seq < ? LIMIT 1) AS behind) AS behind
            """,
            [.text(keeper.replicaID), .integer(last)]
        )
    }

    /// Whether the head update's answer (`othersBehind(through:)`) says another server must be waited for.
    private static func othersBehind(in rows: [PostgresRow]) throws -> Bool {
        guard let row = rows.first else { return false }
        return try row.decode(Int64.self) > 0
    }

    private func runBatch(_ members: [BatchMember], on leased: PostgresConnection) async throws -> BatchOutcome {
        let connection = GuardedConnection(leased)
        defer { connection.end() }
        var pending = members
        var deferring = true
        while true {
            try await always(Self.beginWrite, on: connection)
            let head: BatchHead
            do {
                let rows = try await connection.query(PostgresQuery(unsafeSQL: Self.lockHead), logger: logger, cancellable: false)
                guard let row = rows.first else { throw StoreError.corrupt("log_head") }
                head = BatchHead(Int64(try PGRow(row.makeRandomAccess()).int("seq")))
            } catch {
                await rollBack(connection)
                guard StoreError.isSerializationFailure(error) else { throw error }
                return BatchOutcome(lost: pending.map { ($0, StoreError(postgres: error)) })
            }
            do {
                guard deferring else { return try await runMembers(pending, head: head, on: connection) }
                switch try await runDeferring(pending, head: head, on: connection) {
                case .done(let outcome):
                    return outcome
                case .again(let unanswered):
                    // Run again from the start, each member in its savepoint and every statement sent at
                    // once, so that a failure is its member's alone.
                    await rollBack(connection)
                    batchesRunAgain.add(1, ordering: .relaxed)
                    pending = unanswered
                    deferring = false
                }
            } catch {
                // The transaction cannot go on (a savepoint, its rollback or the commit failed): end it, or
                // close the connection, rather than hand the lease back inside it.
                await rollBack(connection)
                throw error
            }
        }
    }

    private enum DeferringOutcome {
        case done(BatchOutcome)
        /// Something failed that only this member's savepoint could have undone: these members, not
        /// answered yet, must run again in a new transaction.
        case again([BatchMember])
    }

    /// The members one after another with their plain inserts held back (`DeferredInserts`), sent
    /// before any other statement and, for the rest, in one statement with the head just before the
    /// commit; no savepoints. A member that fails before any of its inserts was sent takes them back
    /// and gets its error; any other failure (a statement's, or a member's whose inserts were sent)
    /// leaves the batch to run again with a savepoint per member.
    private func runDeferring(_ members: [BatchMember], head: BatchHead, on connection: GuardedConnection) async throws
        -> DeferringOutcome
    {
        var outcome = BatchOutcome()
        let deferred = DeferredInserts()
        for (index, member) in members.enumerated() {
            if member.isCancelled {
                member.finish(.failure(CancellationError()))
                continue
            }
            let numbered = head.value
            let firstInsert = deferred.total
            let access = PostgresAccess(connection: connection, logger: logger, head: head, deferred: deferred)
            let result = await member.run(access)
            access.end()
            let aborted = access.statementFailed.load(ordering: .relaxed)
            switch result {
            case .success(let value) where !aborted:
                outcome.committed.append((member, value))
            case .failure(let error) where !aborted && !access.sentOwnWrites.load(ordering: .relaxed):
                // Nothing of it reached PostgreSQL but its reads.
                deferred.drop(from: firstInsert)
                head.reset(to: numbered)
                member.finish(.failure(error))
            default:
                return .again(outcome.committed.map(\.0) + members[index...])
            }
        }
        guard !outcome.committed.isEmpty else {
            await rollBack(connection)
            return .done(outcome)
        }
        let moved = head.moved
        var othersBehind = false
        if let (sql, binds) = DeferredInserts.statement(
            deferred.take().inserts, head: moved ? head.value : nil, returning: moved ? self.othersBehind(through: head.value) : nil)
        {
            do {
                let rows = try await connection.query(try PGBind.query(sql, binds), logger: logger, cancellable: false)
                if moved { othersBehind = try Self.othersBehind(in: rows) }
            } catch {
                // Which member's insert failed is not known: each learns it in its savepoint.
                return .again(outcome.committed.map(\.0))
            }
        }
        do {
            try await always("COMMIT", on: connection)
            if moved { outcome.written = Self.written(head, othersBehind: othersBehind) }
        } catch where StoreError.isSerializationFailure(error) {
            outcome.lost = outcome.committed.map { ($0.0, StoreError(postgres: error)) }
            outcome.committed = []
        }
        return .done(outcome)
    }

    /// The members one after another, each in its savepoint, then the head and the commit.
    private func runMembers(_ members: [BatchMember], head: BatchHead, on connection: GuardedConnection) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        // A lone member needs no savepoint: its failure rolls back the whole transaction.
        let savepoints = members.count > 1
        for member in members {
            if member.isCancelled {
                member.finish(.failure(CancellationError()))
                continue
            }
            if savepoints { try await always("SAVEPOINT member", on: connection) }
            let numbered = head.value
            let access = PostgresAccess(connection: connection, logger: logger, head: head)
            let result = await member.run(access)
            access.end()
            switch result {
            case .success(let value):
                outcome.committed.append((member, value))
            case .failure(let error):
                head.reset(to: numbered)
                if savepoints {
                    // Undoes this member only; should that fail, the transaction is lost and the
                    // batch fails with it.
                    try await always("ROLLBACK TO SAVEPOINT member", on: connection)
                } else {
                    await rollBack(connection)
                }
                if access.serializationFailed.withLock({ $0 }) || StoreError.isSerializationFailure(error) {
                    outcome.lost.append((member, StoreError(postgres: error)))
                } else {
                    // The body's own error, rethrown unchanged.
                    member.finish(.failure(error))
                }
                if !savepoints { return outcome }
            }
        }
        guard !outcome.committed.isEmpty else {
            await rollBack(connection)
            return outcome
        }
        do {
            var othersBehind = false
            if head.moved {
                let returning = self.othersBehind(through: head.value)
                let (sql, binds) = (
                    "UPDATE log_head SET seq = ? WHERE id = 1" + (returning.map { " RETURNING " + $0.sql } ?? ""),
                    [PGBind.integer(head.value)] + (returning?.binds ?? []))
                let rows = try await connection.query(try PGBind.query(sql, binds), logger: logger, cancellable: false)
                othersBehind = try Self.othersBehind(in: rows)
            }
            try await always("COMMIT", on: connection)
            if head.moved { outcome.written = Self.written(head, othersBehind: othersBehind) }
        } catch where StoreError.isSerializationFailure(error) {
            outcome.lost += outcome.committed.map { ($0.0, StoreError(postgres: error)) }
            outcome.committed = []
        }
        return outcome
    }

    private static func written(_ head: BatchHead, othersBehind: Bool) -> Written {
        Written(
            after: UInt64(max(head.initial, 0)), through: UInt64(max(head.value, 0)), services: head.services,
            othersBehind: othersBehind)
    }

    /// Begins a write batch; `lockHead` follows at once: the head row's lock, taken first and held to
    /// the end, queues the writers of every replica, and gives the head the batch numbers its events
    /// from. `READ COMMITTED` because each statement's snapshot is then taken after the lock was
    /// granted; under `REPEATABLE READ` or `SERIALIZABLE` the snapshot would predate the wait, and the
    /// head row's update would fail 40001 whenever another replica wrote meanwhile.
    static let beginWrite = "BEGIN ISOLATION LEVEL READ COMMITTED"
    static let lockHead = "SELECT seq FROM log_head WHERE id = 1 FOR UPDATE"
    static let beginRead = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    private enum Attempt<T: Sendable>: Sendable {
        case done(T)
        /// Lost a conflict with a concurrent transaction and was rolled back: may be run again.
        case lost(StoreError)
    }

    /// One transaction on one leased connection: begun, the body run, committed, or rolled back when
    /// anything throws. The statements that begin and end it run even if the calling task is
    /// cancelled, so a lease never goes back to the pool inside a transaction.
    private func attempt<T: Sendable>(
        begin: String, _ body: @Sendable (PostgresAccess) async throws -> T
    ) async throws -> Attempt<T> {
        // The lease's wait runs in a child task; the body does not outlive this call.
        try await reachable {
            try await withoutActuallyEscaping(body) { body in
                try await leased { connection in try await self.run(begin: begin, body, on: connection) }
            }
        }
    }

    /// Runs `work` against PostgreSQL, keeping the store's health: it fails at once while PostgreSQL
    /// is known to be unreachable, and an outage it runs into marks the store unavailable until a
    /// probe gets through. Errors of `work` that are not PostgreSQL's are rethrown unchanged.
    private func reachable<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        let (isClosed, problem) = state.withLock { ($0.isClosed, $0.problem) }
        guard !isClosed else { throw StoreError.closed }
        // PostgreSQL was found unreachable and no probe has got through since: fail now rather than
        // wait `acquireTimeout` for a connection (queued writers would each wait it in turn).
        if let problem { throw StoreError(code: .unavailable, message: problem) }
        do {
            let value = try await work()
            healthy()
            return value
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as StoreError where Task.isCancelled && error.code == .unavailable {
            // The pool gave up on the lease because the caller went away, not because PostgreSQL did.
            throw CancellationError()
        } catch let error as StoreError {
            if error.code == .unavailable { unavailable(error) }
            throw error
        } catch let error as PSQLError {
            let failure = StoreError(postgres: error)
            if failure.code == .unavailable { unavailable(failure) }
            throw failure
        } catch {
            // The body's own error, rethrown unchanged; or the pool's (no connection), unavailable.
            if String(reflecting: type(of: error)).contains("ConnectionPool") {
                if Task.isCancelled { throw CancellationError() }
                let failure = StoreError(postgres: error)
                unavailable(failure)
                throw failure
            }
            throw error
        }
    }

    /// One attempt on a leased connection: begin, the body, commit; roll back when anything throws.
    private func run<T: Sendable>(
        begin: String, _ body: @Sendable (PostgresAccess) async throws -> T, on leased: PostgresConnection
    ) async throws -> Attempt<T> {
        try Task.checkCancellation()
        let connection = GuardedConnection(leased)
        defer { connection.end() }
        try await always(begin, on: connection)
        let access = PostgresAccess(connection: connection, logger: logger)
        let value: T
        do {
            value = try await body(access)
        } catch {
            access.end()
            await rollBack(connection)
            if access.serializationFailed.withLock({ $0 }) || StoreError.isSerializationFailure(error) {
                return .lost(StoreError(postgres: error))
            }
            throw error
        }
        access.end()
        do {
            try await always("COMMIT", on: connection)
        } catch where StoreError.isSerializationFailure(error) {
            return .lost(StoreError(postgres: error))
        }
        return .done(value)
    }

    /// Runs `body` on a pooled connection, failing as unavailable when none is handed out within
    /// `acquireTimeout`. The time limit covers the wait only, never the body.
    func leased<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        let acquired = Acquired()
        let timeout = configuration.acquireTimeout
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { [client] in
                try await client.withConnection { connection in
                    guard acquired.take() else { throw CancellationError() }
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                if acquired.expire() {
                    throw StoreError(code: .unavailable, message: "no connection to PostgreSQL within \(timeout)")
                }
                return nil
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw StoreError(code: .internalError, message: "a connection lease ended without a result")
        }
    }

    /// Ends a failed transaction. Should that fail too, the connection is closed (PostgreSQL then
    /// rolls back) rather than handed back to the pool inside a transaction.
    private func rollBack(_ connection: GuardedConnection) async {
        do {
            try await always("ROLLBACK", on: connection)
        } catch {
            logger.warning("closing a connection that could not roll back", metadata: ["error": "\(StoreError(postgres: error).message)"])
            try? await connection.connection.close()
        }
    }

    /// A statement that runs to its end even when the calling task is cancelled (those that begin and
    /// end a transaction), so a lease never goes back to the pool inside a transaction.
    private func always(_ sql: String, on connection: GuardedConnection) async throws {
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger, cancellable: false)
    }

    // MARK: Commit version

    /// The change log's head as it stands after every commit acknowledged before this call: every
    /// registry write appends events, so the head moves with every commit that changes anything.
    public func currentCommitVersion() async throws -> UInt64? {
        try await coveringHead()
    }

    /// Services the commits after `since` up to the head may have changed, known from the rounds that
    /// read the head (each lists the services named by the events since the round before it), so the
    /// look-up stays one query per round.
    public func commitChanges(since: UInt64) async throws -> CommitChanges? {
        let version = try await coveringHead()
        return CommitChanges(version: version, services: serviceChanges.changes(after: since, through: version))
    }

    /// A head that covers every commit acknowledged before this call: from memory while the read lease
    /// is trusted (every server's writer waited until this server had recorded its commit), else from a
    /// head round that began after this call.
    private func coveringHead() async throws -> UInt64 {
        if let keeper {
            keeper.noteRead()
            if keeper.serves(), let latest = serviceChanges.latest { return latest }
        }
        readsAfterRounds.add(1, ordering: .relaxed)
        return try await freshHead()
    }

    /// The head from a round that began after this call (`CoalescedQuery`), recorded before it returns.
    private func freshHead() async throws -> UInt64 {
        try await head.next { [self] in try await readHead() }
    }

    /// Runs in the rounds' task, one at a time, so each round starts from the head the previous one
    /// recorded; recorded before any caller is answered.
    private func readHead() async throws -> UInt64 {
        headRounds.add(1, ordering: .relaxed)
        let round = try await reachable { [serviceChanges] in try await headReader.read(after: serviceChanges.latest) }
        serviceChanges.record(through: round.head, services: round.services)
        return round.head
    }

    // MARK: Readiness

    private func healthy() {
        state.withLock { $0.problem = nil }
    }

    /// PostgreSQL could not be used: not ready until a probe gets through (the pool reconnects by
    /// itself; the probe only finds out when).
    private func unavailable(_ failure: StoreError) {
        let startProbe = state.withLock { state in
            defer { state.problem = "PostgreSQL is unavailable: \(failure.message)" }
            return state.problem == nil && !state.isClosed
        }
        if startProbe {
            logger.error("registry store unavailable", metadata: ["error": "\(failure.message)"])
            Task { await self.probeUntilHealthy() }
        }
    }

    private func probeUntilHealthy() async {
        while true {
            try? await Task.sleep(for: Self.probeInterval)
            if state.withLock({ $0.isClosed || $0.problem == nil }) { return }
            let logger = self.logger
            let reached = (try? await leased { connection -> Bool in
                let guarded = GuardedConnection(connection)
                defer { guarded.end() }
                _ = try await guarded.query("SELECT 1", logger: logger)
                return true
            }) != nil
            if reached {
                healthy()
                logger.notice("registry store reachable again")
                return
            }
        }
    }
}

/// Whether a lease was handed out before its wait expired: exactly one of `take` and `expire` wins.
private final class Acquired: Sendable {
    private enum Outcome { case waiting, taken, expired }
    private let outcome = Mutex(Outcome.waiting)

    /// The connection arrived: true unless the wait had already expired.
    func take() -> Bool {
        outcome.withLock { outcome in
            guard outcome == .waiting else { return false }
            outcome = .taken
            return true
        }
    }

    /// The wait is over: true when no connection arrived in time.
    func expire() -> Bool {
        outcome.withLock { outcome in
            guard outcome == .waiting else { return false }
            outcome = .expired
            return true
        }
    }
}

extension PostgresRegistryStore.Configuration {
    /// Why a connection to PostgreSQL cannot be made now, or nil when one can.
    func connectionFailure(logger: Logger) async -> String? {
        do {
            let connection = try await PostgresConnection.connect(configuration: try connection(), id: 0, logger: logger)
            try? await connection.close()
            return nil
        } catch {
            return StoreError(postgres: error).message
        }
    }
}
