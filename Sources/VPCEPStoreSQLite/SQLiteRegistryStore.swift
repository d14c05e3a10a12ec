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
/// Writes go through one connection. Transactions are serialized by an async lock (sqlite-nio runs a
/// connection's statements on a thread pool, so statements of two transactions would otherwise
/// interleave) and *group-committed*: each runs inside a savepoint of a shared `BEGIN IMMEDIATE`
/// transaction, and while others are queued the commit (and its fsync) is left to the last of them.
/// Every member of a batch returns only after that commit, and fails if it fails. Reads use a second,
/// read-only connection, each in its own snapshot.
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
    static let busyTimeoutMilliseconds = 5000

    /// The database file.
    public let path: String
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let logger: Logger
    private let writeLock = AsyncLock()
    private let readLock = AsyncLock()
    private let state = Mutex(State())
    private let lock: DirectoryLock
    private let commits = Atomic<UInt64>(0)

    private struct State {
        var isClosed = false
        /// A `BEGIN IMMEDIATE` is open on the writer.
        var batchOpen = false
        var batchSize = 0
        /// Set when the batch can no longer commit; every member then fails with it.
        var batchFailure: StoreError?
        /// Members whose work is done and who wait for the batch's commit.
        var waiting: [CheckedContinuation<Void, any Error>] = []
    }

    private init(path: String, lock: DirectoryLock, writer: SQLiteConnection, reader: SQLiteConnection, logger: Logger) {
        self.path = path
        self.lock = lock
        self.writer = writer
        self.reader = reader
        self.logger = logger
    }

    public var commitVersion: UInt64? { commits.load(ordering: .acquiring) }

    /// Opens (creating the directory and the database if missing) and migrates the store.
    public static func open(directory: String, logger: Logger? = nil) async throws -> SQLiteRegistryStore {
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

        let writer: SQLiteConnection
        do {
            writer = try await connect(path: path, logger: logger)
        } catch {
            lock.release()
            throw error
        }
        do {
            try await configure(writer, path: path, readOnly: false)
            try await migrate(writer)
        } catch {
            try? await writer.close()
            lock.release()
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
        let reader: SQLiteConnection
        do {
            reader = try await connect(path: path, logger: logger)
            try await configure(reader, path: path, readOnly: true)
        } catch {
            try? await writer.close()
            lock.release()
            if let error = error as? SQLiteStoreError { throw error }
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
        logger.info("opened the registry store", metadata: ["path": "\(path)", "schema": "\(schemaVersion)"])
        return SQLiteRegistryStore(path: path, lock: lock, writer: writer, reader: reader, logger: logger)
    }

    private static func connect(path: String, logger: Logger) async throws -> SQLiteConnection {
        do {
            return try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(StoreError(sqlite: error).message)")
        }
    }

    private static func configure(_ connection: SQLiteConnection, path: String, readOnly: Bool) async throws {
        // Replaces sqlite-nio's retry-forever busy handler: wait a bounded time for other processes.
        try await connection.execute("PRAGMA busy_timeout = \(busyTimeoutMilliseconds)")
        try await connection.execute("PRAGMA foreign_keys = ON")
        try await connection.execute("PRAGMA synchronous = FULL")
        if readOnly {
            try await connection.execute("PRAGMA query_only = ON")
        } else {
            let mode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")?.string
            guard mode == "wal" else {
                throw StoreError(code: .internalError, message: "cannot switch to WAL (journal_mode is \(mode ?? "unknown"))")
            }
        }
    }

    /// Finishes queued transactions, then closes both connections. Later calls fail as unavailable.
    public func close() async throws {
        await writeLock.lock()
        if state.withLock({ $0.batchOpen }) {
            _ = await finishBatch()
        }
        await readLock.lock()
        let alreadyClosed = state.withLock { state in
            defer { state.isClosed = true }
            return state.isClosed
        }
        defer {
            readLock.unlock()
            writeLock.unlock()
        }
        if alreadyClosed { return }
        var failure: (any Error)?
        do { try await reader.close() } catch { failure = error }
        do { try await writer.close() } catch { failure = failure ?? error }
        lock.release()
        if let failure { throw StoreError(sqlite: failure) }
        logger.info("closed the registry store", metadata: ["path": "\(path)"])
    }

    public func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        try await StoreMetrics.measure(StoreMetrics.readDuration) { try await readMeasured(body) }
    }

    private func readMeasured<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        await readLock.lock()
        defer { readLock.unlock() }
        guard !state.withLock({ $0.isClosed }) else { throw StoreError.closed }
        do {
            try await reader.execute("BEGIN")
        } catch {
            throw StoreError(sqlite: error)
        }
        let access = SQLiteAccess(connection: reader)
        do {
            let value = try await body(access)
            access.end()
            try await reader.execute("COMMIT")
            return value
        } catch {
            access.end()
            try? await reader.execute("ROLLBACK")
            throw error is SQLiteError ? StoreError(sqlite: error) : error
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T {
        do {
            return try await StoreMetrics.measure(StoreMetrics.transactionDuration) { try await transactionMeasured(body) }
        } catch {
            StoreMetrics.transactionFailures.increment()
            throw error
        }
    }

    private func transactionMeasured<T: Sendable>(
        _ body: @Sendable (any RegistryTransaction) async throws -> T
    ) async throws -> T {
        await writeLock.lock()
        let (closed, batchOpen) = state.withLock { ($0.isClosed, $0.batchOpen) }
        if closed {
            writeLock.unlock()
            throw StoreError.closed
        }
        if !batchOpen {
            do {
                try await writer.execute("BEGIN IMMEDIATE")
            } catch {
                writeLock.unlock()
                throw StoreError(sqlite: error)
            }
            state.withLock { $0.batchOpen = true }
        }

        let outcome = await runInSavepoint(body)

        let handOver = state.withLock { state in
            state.batchSize += 1
            return state.batchFailure == nil && state.batchSize < Self.maxBatch
        }
        if handOver && writeLock.hasWaiters {
            // The next holder runs in this batch; the last one commits for all.
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                state.withLock { $0.waiting.append(continuation) }
                writeLock.unlock()
            }
            return try outcome.get()
        }
        let committed = await finishBatch()
        writeLock.unlock()
        try committed.get()
        return try outcome.get()
    }

    /// Runs one member of the batch in its own savepoint, so its failure undoes only its own work.
    private func runInSavepoint<T: Sendable>(
        _ body: @Sendable (any RegistryTransaction) async throws -> T
    ) async -> Result<T, any Error> {
        do {
            try await writer.execute("SAVEPOINT member")
        } catch {
            return .failure(failBatch(error))
        }
        let access = SQLiteAccess(connection: writer)
        do {
            let value = try await body(access)
            access.end()
            try await writer.execute("RELEASE member")
            return .success(value)
        } catch {
            access.end()
            do {
                try await writer.execute("ROLLBACK TO member")
                try await writer.execute("RELEASE member")
            } catch let rollbackError {
                // SQLite rolled the whole transaction back (I/O error, disk full): the batch is lost.
                return .failure(failBatch(rollbackError))
            }
            return .failure(error is SQLiteError ? StoreError(sqlite: error) : error)
        }
    }

    private func failBatch(_ error: any Error) -> StoreError {
        let failure = StoreError(sqlite: error)
        logger.error("registry store transaction failed", metadata: ["error": "\(failure.message)"])
        state.withLock { state in
            if state.batchFailure == nil { state.batchFailure = failure }
        }
        return failure
    }

    /// Commits (or, after a failure, rolls back) the open batch and releases its waiting members.
    /// Called with the write lock held.
    private func finishBatch() async -> Result<Void, StoreError> {
        var result: Result<Void, StoreError>
        if let failure = state.withLock({ $0.batchFailure }) {
            try? await writer.execute("ROLLBACK")
            result = .failure(failure)
        } else {
            do {
                try await writer.execute("COMMIT")
                result = .success(())
            } catch {
                try? await writer.execute("ROLLBACK")
                let failure = StoreError(sqlite: error)
                logger.error("registry store commit failed", metadata: ["error": "\(failure.message)"])
                result = .failure(failure)
            }
        }
        // Before any member returns: a read that starts after a commit was acknowledged must not be
        // answered from what was cached before it. (Also after a failed commit: it costs one cache
        // refill, and nothing has to be known about what a failed COMMIT left behind.)
        commits.add(1, ordering: .releasing)
        let waiting = state.withLock { state in
            defer {
                state.batchOpen = false
                state.batchSize = 0
                state.batchFailure = nil
                state.waiting = []
            }
            return state.waiting
        }
        for member in waiting {
            member.resume(with: result.mapError { $0 as any Error })
        }
        return result
    }
}

/// An exclusive `flock` on a file in the data directory: a second store (in this or another
/// process) cannot open the directory while the first holds it, and the kernel drops it when the
/// holder exits, however it exits.
private final class DirectoryLock: Sendable {
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

extension SQLiteConnection {
    /// Runs one statement, discarding any rows.
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        try await query(sql, binds) { _ in }
    }
}
