import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif
internal import SQLiteNIO
import Synchronization
import VPCEPRegistry

/// The embedded registry store: one SQLite file, `<directory>/vpcep.sqlite3`, in WAL mode with
/// `synchronous=FULL`, so a transaction that returned has been fsynced and survives `kill -9`.
///
/// Writes go through one connection. Transactions queue (`WriteQueue`) for one task on the store's
/// threads that runs them one after another and *group-commits* them: each runs inside a savepoint of
/// a shared `BEGIN IMMEDIATE` transaction (but the first, whose failure rolls the whole transaction
/// back: two statements fewer for a write that has the batch to itself), those that queue while the
/// batch runs join it, and the commit (and its fsync) comes when none is left.
/// Every member of a batch returns only after that commit, and fails if it fails. Reads use a second,
/// read-only connection, each in its own snapshot. A third copies the log into the database file
/// (SQLite's checkpoint) every few commits, beside the writer rather than inside its commits
/// (`checkpointInBackground`).
///
/// Cancellation ends a caller's work, never a transaction: the statements that open and end
/// transactions run whether or not the task that issues them is cancelled (other statements are
/// skipped once their task is cancelled, which would leave a transaction open on a connection
/// that every call shares), and work whose caller is cancelled (or past its deadline) before its
/// transaction begins is dropped rather than done late. A transaction's body runs in the writer's
/// task, not its caller's; the caller's cancellation reaches it all the same (`WriteQueue.cancel`).
/// Should a connection ever be left unusable all the same, `readinessProblem` says so and the store
/// repairs it in the background.
///
/// The data directory belongs to one store at a time: `open` takes an exclusive lock on
/// `<directory>/vpcep.lock` and holds it until `close` (or the process ends). Because no other
/// writer can exist, the store counts every commit (`commitVersion`) and the registry may answer
/// reads from memory while that count stands still.
public final class SQLiteRegistryStore: RegistryStore {
    public static let fileName = "vpcep.sqlite3"
    public static let lockFileName = "vpcep.lock"
    /// How many transactions may share one commit.
    static let maxBatch = 256
    /// How long a statement waits for another process's lock before failing as unavailable.
    static let defaultBusyTimeoutMilliseconds = 5000
    /// How long the repair task waits between attempts.
    static let repairInterval: Duration = .seconds(1)

    /// The database file.
    public let path: String
    private let logger: Logger
    private let busyTimeoutMilliseconds: Int
    /// Held by the writer for each batch, and by what must not run beside one (close, repair).
    private let writeLock = AsyncLock()
    private let writes = WriteQueue()
    private let readLock = AsyncLock()
    private let state: Mutex<State>
    private let lock: DirectoryLock
    private let commits = Atomic<UInt64>(0)
    /// Which services each commit counted by `commits` changed, for the read cache.
    private let serviceChanges = ServiceChangeHistory(startingAt: 0)
    /// The open batch's change-log events, written just before its commit.
    private let changeLog = ChangeLogBuffer()

    private struct State {
        var writer: StoreConnection
        var reader: StoreConnection
        var checkpointer: StoreConnection
        /// The background checkpoint running now, if one is.
        var checkpoint: Task<Void, Never>?
        var commitsSinceCheckpoint = 0
        var isClosed = false
        /// Why a connection is out of order, while it is; a repair task is then running.
        var problem: String?
    }

    private init(path: String, lock: DirectoryLock, writer: StoreConnection, reader: StoreConnection,
                 checkpointer: StoreConnection, logger: Logger, busyTimeoutMilliseconds: Int) {
        self.path = path
        self.lock = lock
        self.state = Mutex(State(writer: writer, reader: reader, checkpointer: checkpointer))
        self.logger = logger
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }

    private var writer: StoreConnection { state.withLock { $0.writer } }
    private var reader: StoreConnection { state.withLock { $0.reader } }

    public var readinessProblem: String? { state.withLock { $0.problem } }

    public var commitVersion: UInt64? { commits.load(ordering: .acquiring) }

    /// From memory: this store is its database's only writer (the data directory's lock), and every
    /// commit hands its events over before it is acknowledged (`ChangeLogBuffer.committed`).
    public func recentEvents(after seq: UInt64, limit: Int) -> [ChangeEvent]? {
        changeLog.recent.events(after: seq, limit: limit)
    }

    public var recentHead: UInt64? { changeLog.recent.head }

    public func commitChanges(since: UInt64) async throws -> CommitChanges? {
        let version = commits.load(ordering: .acquiring)
        return CommitChanges(version: version, services: serviceChanges.changes(after: since, through: version))
    }

    /// Opens (creating the directory and the database if missing) and migrates the store.
    public static func open(directory: String, logger: Logger? = nil) async throws -> SQLiteRegistryStore {
        try await open(directory: directory, logger: logger, busyTimeoutMilliseconds: defaultBusyTimeoutMilliseconds)
    }

    /// `busyTimeoutMilliseconds`: how long a statement waits for another process's lock on the
    /// database before failing as unavailable (shortened by tests that hold such a lock).
    static func open(directory: String, logger: Logger?, busyTimeoutMilliseconds: Int) async throws -> SQLiteRegistryStore {
        let logger = logger ?? Logger(label: "vpcep.store.sqlite")
        let directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SQLiteStoreError(path: directory, message: "cannot create the data directory: \(error.localizedDescription)")
        }
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SQLiteStoreError(path: directory, message: "the data directory is not a directory")
        }
        guard files.isReadableFile(atPath: directory), files.isWritableFile(atPath: directory),
            files.isExecutableFile(atPath: directory)
        else {
            throw SQLiteStoreError(path: directory, message: "the data directory is not readable and writable")
        }
        let path = directory + "/" + fileName
        let lock = try await DirectoryLock.acquire(path: directory + "/" + lockFileName)

        let writer: StoreConnection
        do {
            writer = try await connect(path: path, logger: logger)
        } catch {
            lock.release()
            throw error
        }
        do {
            try await configure(writer, readOnly: false, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            try await migrate(writer)
        } catch {
            try? await closeRegardless(writer)
            lock.release()
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
        let reader: StoreConnection
        do {
            reader = try await connect(path: path, logger: logger)
            do {
                try await configure(reader, readOnly: true, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            } catch {
                try? await closeRegardless(reader)
                throw error
            }
        } catch {
            try? await closeRegardless(writer)
            lock.release()
            if let error = error as? SQLiteStoreError { throw error }
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
        let checkpointer: StoreConnection
        do {
            checkpointer = try await connect(path: path, logger: logger)
            try await checkpointer.execute("PRAGMA busy_timeout = \(busyTimeoutMilliseconds)")
            // A checkpoint fsyncs the log before it copies it and the database file before the log may be
            // overwritten: at FULL, as on the writer.
            try await checkpointer.execute("PRAGMA synchronous = FULL")
        } catch {
            try? await closeRegardless(reader)
            try? await closeRegardless(writer)
            lock.release()
            if let error = error as? SQLiteStoreError { throw error }
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
        logger.info("opened the registry store", metadata: ["path": "\(path)", "schema": "\(schemaVersion)"])
        let store = SQLiteRegistryStore(path: path, lock: lock, writer: writer, reader: reader, checkpointer: checkpointer,
                                        logger: logger, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        // The log's head while nothing writes yet: a Watch starting "now" then needs no read of the store.
        if let head = try? await store.read({ try await $0.logHead() }) { store.changeLog.recent.seed(head: head) }
        return store
    }

    /// Closes `connection` even when the calling task is cancelled (`StoreConnection.close` runs
    /// regardless): a connection left unclosed keeps its file open.
    static func closeRegardless(_ connection: StoreConnection) async throws {
        try await connection.close()
    }

    static func connect(path: String, logger: Logger) async throws -> StoreConnection {
        do {
            return try await StoreConnection.open(path: path)
        } catch {
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
    }

    /// Each connection's page cache: bounded, so that the server's memory stays flat as the registry grows.
    static let pageCacheKiB = 32 << 10

    private static func configure(_ connection: StoreConnection, readOnly: Bool, busyTimeoutMilliseconds: Int) async throws {
        // SQLite would fail at once on another process's lock: wait a bounded time for it instead.
        try await connection.execute("PRAGMA busy_timeout = \(busyTimeoutMilliseconds)")
        try await connection.execute("PRAGMA foreign_keys = ON")
        try await connection.execute("PRAGMA synchronous = FULL")
        // SQLite's default page cache is 2 MiB; a registry of 1,000,000 records has indexes of hundreds of
        // MiB, whose inner pages a write or a page of a list would otherwise read back from the kernel.
        try await connection.execute("PRAGMA cache_size = -\(pageCacheKiB)")
        if readOnly {
            try await connection.execute("PRAGMA query_only = ON")
        } else {
            // Each member of a batch runs in a savepoint, whose journal keeps the first copy of every
            // page the member changes. SQLite keeps that journal in memory up to 64 KiB and then in a
            // temporary file: at 100,000 records a service update or an endpoint create changes more
            // than that, and the copies went through the kernel to disk, 11.5% of the server's samples
            // under writes alone (BENCHMARKS.md, "The writer's disk work"). In memory it holds the pages
            // one member (or one statement) changes, and is emptied when the member ends.
            try await connection.execute("PRAGMA temp_store = MEMORY")
            try await connection.execute("PRAGMA wal_autocheckpoint = \(writerCheckpointPages)")
            let mode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")?.string
            guard mode == "wal" else {
                throw StoreError(code: .internalError, message: "cannot switch to WAL (journal_mode is \(mode ?? "unknown"))")
            }
        }
    }

    /// Finishes queued transactions, then closes both connections. Later calls fail as unavailable.
    public func close() async throws {
        // Everything queued before this call runs first (the queue is in order); later calls fail.
        _ = try? await queued { _ in () }
        await writeLock.lock()
        await readLock.lock()
        let (alreadyClosed, writer, reader, checkpointer, checkpoint) = state.withLock { state in
            defer { state.isClosed = true }
            return (state.isClosed, state.writer, state.reader, state.checkpointer, state.checkpoint)
        }
        await checkpoint?.value
        defer {
            readLock.unlock()
            writeLock.unlock()
        }
        if alreadyClosed { return }
        var failure: (any Error)?
        do { try await Self.closeRegardless(reader) } catch { failure = error }
        do { try await Self.closeRegardless(checkpointer) } catch { failure = failure ?? error }
        do { try await Self.closeRegardless(writer) } catch { failure = failure ?? error }
        lock.release()
        if let failure { throw StoreError(sqlite: failure) }
        logger.info("closed the registry store", metadata: ["path": "\(path)"])
    }

    public func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        try await StoreMetrics.measure(StoreMetrics.readDuration) { try await StoreExecutor.run { try await readMeasured(body) } }
    }

    private func readMeasured<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        await readLock.lock()
        defer { readLock.unlock() }
        let (closed, reader) = state.withLock { ($0.isClosed, $0.reader) }
        guard !closed else { throw StoreError.closed }
        // A caller that has gone while it queued is not served late.
        try Task.checkCancellation()
        do {
            try await reader.executeAlways("BEGIN")
        } catch {
            throw connectionFailed(.reader, error)
        }
        let access = SQLiteAccess(connection: reader)
        let value: T
        do {
            value = try await body(access)
        } catch {
            access.end()
            do {
                try await reader.executeAlways("ROLLBACK")
            } catch let rollbackError {
                _ = connectionFailed(.reader, rollbackError)
            }
            throw StoreError.isSQLite(error) ? StoreError(sqlite: error) : error
        }
        access.end()
        do {
            try await reader.executeAlways("COMMIT")
        } catch {
            throw connectionFailed(.reader, error)
        }
        return value
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T {
        do {
            return try await StoreMetrics.measure(StoreMetrics.transactionDuration) { try await queued(body) }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            StoreMetrics.transactionFailures.increment()
            throw error
        }
    }

    /// Queues `body` for the writer and waits for its answer, which comes once its batch has committed
    /// or rolled back.
    ///
    /// The writer runs the bodies of a batch one after another in one task on the store's threads
    /// (`runWrites`), so a batch of n writes costs a hand-off onto the pool and n back, not a hand-off
    /// per member from one to the next: on two busy cores each hand-off waits for the scheduler.
    private func queued<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T {
        // Cancelled before it queued: not run.
        try Task.checkCancellation()
        let value = try await withoutActuallyEscaping(body) { body in
            let member = WriteMember { access in try await body(access) }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    member.attach(continuation)
                    writes.add(member, start: startRunner)
                }
            } onCancel: {
                writes.cancel(member)
            }
        }
        // The member's body returned a `T`.
        return value as! T
    }

    private func startRunner() -> Task<Void, Never> {
        // Detached: it serves every caller, so it takes none's priority or task-local values.
        Task.detached(executorPreference: StoreExecutor.shared) { await self.runWrites() }
    }

    /// Runs batches while writes wait.
    private func runWrites() async {
        while let first = writes.next() {
            await writeLock.lock()
            await runBatch(from: first)
            writeLock.unlock()
            if Task.isCancelled {
                // A caller went away while its body ran here, and was cancelled through this task:
                // the rest run in a task that is not.
                writes.handOver(start: startRunner)
                return
            }
        }
    }

    /// What a batch has done so far.
    private struct Batch {
        /// A `BEGIN IMMEDIATE` is open on the writer.
        var isOpen = false
        var size = 0
        /// A member succeeded, so the commit changes the database.
        var changes = false
        /// Set when the batch can no longer commit; every member then fails with it.
        var failure: StoreError?
        /// Members whose work is done and who wait for the commit, with their own outcomes.
        var done: [(member: WriteMember, outcome: Result<any Sendable, any Error>)] = []
    }

    /// Runs `first`, and those who queue while the batch runs (up to `maxBatch`), in one transaction,
    /// then commits it and answers them. Called with the write lock held.
    ///
    /// A caller cancelled, or past its deadline, while it queued: its work is dropped, not done
    /// after it was told that it failed.
    private func runBatch(from first: WriteMember) async {
        let (closed, writer) = state.withLock { ($0.isClosed, $0.writer) }
        var batch = Batch()
        var next: WriteMember? = first
        while let member = next {
            defer { next = batch.failure == nil && batch.size < Self.maxBatch && !Task.isCancelled ? writes.take() : nil }
            guard !closed else {
                member.finish(.failure(StoreError.closed))
                continue
            }
            guard !member.isCancelled else {
                member.finish(.failure(CancellationError()))
                continue
            }
            let leads = !batch.isOpen
            if leads {
                do {
                    try await writer.executeAlways("BEGIN IMMEDIATE")
                } catch {
                    member.finish(.failure(connectionFailed(.writer, error)))
                    continue
                }
                batch.isOpen = true
            }
            let outcome = await runMember(member, on: writer, leads: leads, batch: &batch)
            if leads, case .failure = outcome, !batch.isOpen {
                // Rolled back whole: there is no batch to commit.
                member.finish(outcome)
                continue
            }
            batch.size += 1
            if case .success = outcome { batch.changes = true }
            batch.done.append((member, outcome))
        }
        guard batch.isOpen else { return }
        let committed = await finishBatch(failed: batch.failure, changes: batch.changes, on: writer)
        for (member, outcome) in batch.done {
            switch committed {
            case .success: member.finish(outcome)
            case .failure(let failure): member.finish(.failure(failure))
            }
        }
    }

    /// Runs one member of the batch in a savepoint of its own, so that its failure undoes only its own
    /// work; the batch's first with none: nothing else is in the transaction, so its failure rolls it
    /// back whole and closes the batch (the next writer begins another), two statements fewer for a
    /// write that has the batch to itself.
    ///
    /// The body is the caller's, which must be let go before the caller is answered: it is held only
    /// here, so it is gone when this returns.
    private func runMember(
        _ member: WriteMember, on writer: StoreConnection, leads: Bool, batch: inout Batch
    ) async -> Result<any Sendable, any Error> {
        guard let body = member.takeBody() else { return .failure(CancellationError()) }
        if !leads {
            do {
                try await writer.executeAlways("SAVEPOINT member")
            } catch {
                return .failure(failBatch(error, &batch))
            }
        }
        changeLog.memberBegan()
        // The body runs in the writer's task, not its caller's: the caller's cancellation reaches it
        // through `member` (before each statement) and by cancelling this task (`WriteQueue.cancel`).
        let access = SQLiteAccess(connection: writer, log: changeLog, isCancelled: { member.isCancelled })
        do {
            writes.running(member)
            defer { writes.ran() }
            let value = try await body(access)
            access.end()
            if !leads { try await writer.executeAlways("RELEASE member") }
            changeLog.memberReleased()
            return .success(value)
        } catch {
            access.end()
            do {
                if leads {
                    try await writer.executeAlways("ROLLBACK")
                    changeLog.memberRolledBack()
                    batch.isOpen = false
                } else {
                    try await writer.executeAlways("ROLLBACK TO member")
                    changeLog.memberRolledBack()
                    try await writer.executeAlways("RELEASE member")
                }
            } catch let rollbackError {
                // SQLite rolled the whole transaction back (I/O error, disk full): the batch is lost.
                return .failure(failBatch(rollbackError, &batch))
            }
            return .failure(StoreError.isSQLite(error) ? StoreError(sqlite: error) : error)
        }
    }

    private func failBatch(_ error: any Error, _ batch: inout Batch) -> StoreError {
        let failure = StoreError(sqlite: error)
        logger.error("registry store transaction failed", metadata: ["error": "\(failure.message)"])
        if batch.failure == nil { batch.failure = failure }
        return failure
    }

    /// Commits (or, after a failure, rolls back) the open batch. Called with the write lock held,
    /// before any member is answered.
    private func finishBatch(failed: StoreError?, changes: Bool, on writer: StoreConnection) async -> Result<Void, StoreError> {
        var result: Result<Void, StoreError>
        let touched = changeLog.takeServices()
        // Whether the commit is known to have written exactly the batch's work (else every service may differ).
        var committedCleanly = false
        // Whether the database may now differ from what readers cached. A batch whose members all
        // failed changed nothing: counting it would let any caller empty every cache with one
        // refused write (and make its next read measurably slower, an existence oracle).
        var changed: Bool
        if let failed {
            result = .failure(failed)
            changed = false
            changeLog.forget()
            do {
                try await writer.executeAlways("ROLLBACK")
            } catch {
                changed = true
                _ = connectionFailed(.writer, error)
            }
        } else {
            changed = changes
            do {
                try await writer.executeAlways(try await heldEventsThenCommit())
                changeLog.committed()
                committedCleanly = true
                checkpointInBackground()
                result = .success(())
            } catch {
                changeLog.forget()
                // Nothing has to be known about what a failed COMMIT left behind.
                changed = true
                let failure = StoreError(sqlite: error)
                logger.error("registry store commit failed", metadata: ["error": "\(failure.message)"])
                result = .failure(failure)
                do {
                    try await writer.executeAlways("ROLLBACK")
                } catch let rollbackError {
                    _ = connectionFailed(.writer, rollbackError)
                }
            }
        }
        // Before any member returns: a read that starts after a commit was acknowledged must not be
        // answered from what was cached before it.
        if changed {
            // Recorded first: a reader that sees the new count finds what it changed.
            serviceChanges.record(through: commits.load(ordering: .relaxed) + 1, services: committedCleanly ? touched : nil)
            commits.add(1, ordering: .releasing)
        }
        return result
    }

    /// Pages of log (4 KiB each) after which the writer checkpoints inside its own commit, as SQLite
    /// does by default at 1,000: here the bound on the log should the background checkpoints fall
    /// behind.
    static let writerCheckpointPages = 10_000
    /// Commits between two background checkpoints: often enough that each copies little.
    static let commitsPerCheckpoint = 8

    /// Starts a passive checkpoint on the checkpoint connection unless one is running.
    ///
    /// SQLite's own checkpoint runs in the commit that takes the log past its threshold, so one write
    /// in some hundred waited for the copy of every page the others had changed, and the one writer
    /// held every queued write up meanwhile: at 100,000 records the checkpoint was 17–19% of the
    /// server's samples under writes alone, all of it on the writer's path. A passive checkpoint on
    /// another connection copies beside the writer and never waits for it (WAL mode allows one
    /// checkpointer beside one writer); the writer's own, at `writerCheckpointPages`, finds most pages
    /// already copied, and lets the log start over (BENCHMARKS.md, "The writer's disk work").
    /// A failed checkpoint is retried by the next; nothing depends on it but the log's length.
    private func checkpointInBackground() {
        state.withLock { state in
            state.commitsSinceCheckpoint += 1
            guard !state.isClosed, state.checkpoint == nil, state.commitsSinceCheckpoint >= Self.commitsPerCheckpoint else { return }
            state.commitsSinceCheckpoint = 0
            let connection = state.checkpointer
            state.checkpoint = Task.detached { [weak self] in
                do {
                    try await connection.executeAlways("PRAGMA wal_checkpoint(PASSIVE)")
                } catch {
                    self?.logger.debug("background checkpoint failed", metadata: ["error": "\(StoreError(sqlite: error).message)"])
                }
                self?.state.withLock { $0.checkpoint = nil }
            }
        }
    }

    /// The statements that end a batch: its events, the log's new head, and `COMMIT`, run as one job.
    private func heldEventsThenCommit() async throws -> [(sql: String, binds: [SQLiteData])] {
        var statements: [(sql: String, binds: [SQLiteData])] = []
        if let pending = changeLog.pendingForCommit() {
            try await SQLiteAccess.insertEventRows(pending.rows) { sql, binds in statements.append((sql, binds)) }
            statements.append(("UPDATE log_head SET seq = ? WHERE id = 1", [.integer(SQLiteInt64(clamping: pending.head))]))
        }
        statements.append(("COMMIT", []))
        return statements
    }

    // MARK: Repair

    private enum Role: String {
        case writer, reader
    }

    /// A statement that opens or ends a transaction failed: the connection may still be inside a
    /// transaction that nothing will end, which would fail every later call. Marks the store not
    /// ready and starts the repair, unless it is running. Returns the error to throw.
    private func connectionFailed(_ role: Role, _ error: any Error) -> StoreError {
        if role == .writer { changeLog.forget() }
        let failure = StoreError(sqlite: error)
        let startRepair = state.withLock { state in
            defer { state.problem = "the \(role.rawValue) connection failed: \(failure.message)" }
            return state.problem == nil && !state.isClosed
        }
        logger.error("registry store connection failed; repairing it",
                     metadata: ["connection": "\(role.rawValue)", "error": "\(failure.message)"])
        if startRepair {
            Task { await self.repairUntilHealthy() }
        }
        return failure
    }

    /// Checks both connections, reopening one that cannot run a transaction, until both can.
    private func repairUntilHealthy() async {
        while true {
            var repaired = await repair(.writer)
            if repaired { repaired = await repair(.reader) }
            let done = state.withLock { state in
                if repaired || state.isClosed { state.problem = nil }
                return repaired || state.isClosed
            }
            if done {
                if repaired { logger.notice("registry store connections repaired") }
                return
            }
            try? await Task.sleep(for: Self.repairInterval)
        }
    }

    /// One attempt at making a connection usable, under its lock: end whatever transaction it is
    /// in, prove that a new one opens and ends, and failing that replace the connection (closing it
    /// rolls back what it held).
    private func repair(_ role: Role) async -> Bool {
        let lock = role == .writer ? writeLock : readLock
        await lock.lock()
        defer { lock.unlock() }
        let (closed, current) = state.withLock { ($0.isClosed, role == .writer ? $0.writer : $0.reader) }
        if closed { return true }
        let begin = role == .writer ? "BEGIN IMMEDIATE" : "BEGIN"
        try? await current.executeAlways("ROLLBACK")
        if (try? await current.executeAlways(begin)) != nil, (try? await current.executeAlways("ROLLBACK")) != nil {
            return true
        }
        do {
            let fresh = try await Self.connect(path: path, logger: logger)
            do {
                try await Self.configure(fresh, readOnly: role == .reader, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
                try await fresh.executeAlways(begin)
                try await fresh.executeAlways("ROLLBACK")
            } catch {
                try? await Self.closeRegardless(fresh)
                throw error
            }
            state.withLock { state in
                if role == .writer { state.writer = fresh } else { state.reader = fresh }
            }
            try? await Self.closeRegardless(current)
            logger.notice("registry store connection reopened", metadata: ["connection": "\(role.rawValue)"])
            return true
        } catch {
            logger.warning("registry store connection still failing", metadata: [
                "connection": "\(role.rawValue)", "error": "\(StoreError(sqlite: error).message)",
            ])
            return false
        }
    }
}

/// An exclusive `flock` on a file in the data directory: a second store (in this or another
/// process) cannot open the directory while the first holds it, and the kernel drops it when the
/// holder exits, however it exits.
final class DirectoryLock: Sendable {
    /// How long `acquire` waits for a lock that is held. A process forked by this one (to run
    /// another program) holds a copy of the descriptor, and so the lock, until it execs; a lock
    /// released a moment ago can still be held that way. A server that really holds it holds it
    /// for much longer.
    static let patience: Duration = .seconds(2)

    private let descriptor: Mutex<Int32?>

    private init(descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }

    static func acquire(path: String) async throws -> DirectoryLock {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SQLiteStoreError(path: path, message: "cannot create the lock file: \(String(cString: strerror(errno)))")
        }
        let giveUp = ContinuousClock.now + patience
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let failure = errno
            if failure == EWOULDBLOCK && ContinuousClock.now < giveUp {
                do {
                    try await Task.sleep(for: .milliseconds(20))
                } catch {
                    Glibc.close(fd)
                    throw error
                }
                continue
            }
            Glibc.close(fd)
            throw SQLiteStoreError(path: path, message: failure == EWOULDBLOCK
                ? "the data directory is in use: another vpcep-server holds this lock (one server per data directory)"
                : "cannot lock: \(String(cString: strerror(failure)))")
        }
        return DirectoryLock(descriptor: fd)
    }

    func release() {
        guard let fd = descriptor.withLock({ fd in defer { fd = nil }; return fd }) else { return }
        // Closing the descriptor releases the lock.
        Glibc.close(fd)
    }

    deinit { release() }
}
