internal import CSQLiteShims
internal import NIOPosix
internal import SQLiteNIO
import Synchronization
import VPCEPRegistry
// sqlite-nio's own copy of SQLite (its symbols prefixed `sqlite_nio_`), as the backup uses it.
internal import VaporCSQLite

/// One connection of the store to its database, whose statements are prepared once and kept.
///
/// sqlite-nio prepares every statement anew and finalizes it after one run; for a write that was
/// most of SQLite's work: an `UPDATE endpoint_services` compiles the list tables' triggers into its
/// program every time (`perf` of issue 11's spread scenario: `sqlite3_prepare` 13-16% of the server's
/// CPU, running the statements 5-10%). sqlite-nio keeps its connection's `sqlite3*` to itself, so the
/// store opens its connections here, with sqlite-nio's SQLite, and runs their statements on the store's
/// thread pool (`StoreExecutor.pool`): inline when the caller already runs there (`StoreExecutor`, which
/// the store's reads and transactions run on), otherwise as one job per statement. A statement is prepared on its first run and reset
/// after each, so between runs it holds no snapshot and no lock.
///
/// The store uses a connection from one transaction at a time; the lock only makes that visible to
/// the compiler (and keeps `close` from finalizing a statement that is running).
final class StoreConnection: Sendable {
    /// Distinct statements kept; the store's own are a few dozen, but lists and batch inserts build
    /// their text from their arguments, so the oldest go when the cache is full.
    static let capacity = 256

    let path: String
    private let state: Mutex<State>
    /// Statements handed to the pool because their caller was not on it (tests check that a
    /// transaction on `StoreExecutor` hands off none).
    private let handOffs = Atomic<Int>(0)

    private struct State {
        /// nil once closed.
        var database: Database?
        var statements: [String: Statement] = [:]
        /// Texts in the order they were prepared, for eviction.
        var order: [String] = []
    }

    private init(path: String, database: Database) {
        self.path = path
        self.state = Mutex(State(database: database))
    }

    /// Opens (creating it when missing) the database at `path`.
    static func open(path: String) async throws -> StoreConnection {
        let database = try await Self.always {
            var handle: OpaquePointer?
            let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
            // A commit's log frames go to the kernel in a few calls instead of two per page (`walbuffer.c`);
            // SQLite's own VFS when it cannot be registered.
            let result = sqlite_nio_sqlite3_open_v2(path, &handle, flags, vpcep_sqlite_gathering_vfs())
            guard result == SQLITE_OK, let handle else {
                let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "out of memory"
                if let handle { sqlite_nio_sqlite3_close_v2(handle) }
                throw SQLiteStatementError(code: result, fallback: result, message: message)
            }
            // Plans that do not depend on bound values: without this, SQLite prepares a kept statement
            // again whenever a parameter it planned with is bound anew (an equality before an ORDER BY,
            // a LIMIT), which the store's lists and writes are on every run.
            let stable = vpcep_sqlite_enable_stable_plans(UnsafeMutableRawPointer(handle))
            guard stable == SQLITE_OK else {
                sqlite_nio_sqlite3_close_v2(handle)
                throw SQLiteStatementError(code: stable, fallback: stable, message: "cannot make query plans stable")
            }
            return Database(raw: handle)
        }
        return StoreConnection(path: path, database: database)
    }

    var isClosed: Bool { state.withLock { $0.database == nil } }

    /// The name of the VFS the main database is opened through, nil once closed.
    var vfsName: String? {
        state.withLock { state in
            guard let database = state.database else { return nil }
            var name: UnsafeMutablePointer<CChar>?
            guard sqlite_nio_sqlite3_file_control(database.raw, "main", SQLITE_FCNTL_VFSNAME, &name) == SQLITE_OK,
                  let name else { return nil }
            defer { sqlite_nio_sqlite3_free(name) }
            return String(cString: name)
        }
    }

    // MARK: Statements

    /// The rows of `sql` run with `binds`; skipped, with `CancellationError`, when the calling task
    /// is cancelled before it starts.
    func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [StoreRow] {
        if StoreExecutor.isCurrentThread {
            try Task.checkCancellation()
            return try run(sql, binds)
        }
        handOffs.add(1, ordering: .relaxed)
        return try await StoreExecutor.pool.runIfActive { try self.run(sql, binds) }
    }

    /// Runs one statement, discarding any rows; skipped when the calling task is cancelled.
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        _ = try await query(sql, binds)
    }

    /// Runs one statement whatever the calling task's cancellation: for those that open or end a
    /// transaction, so that a cancelled call never leaves one open.
    func executeAlways(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        if StoreExecutor.isCurrentThread {
            _ = try run(sql, binds)
            return
        }
        handOffs.add(1, ordering: .relaxed)
        _ = try await Self.always { try self.run(sql, binds) }
    }

    /// Runs `statements` in order as one job on the thread pool, whatever the calling task's
    /// cancellation, stopping at the first that fails: a commit and the writes just before it cost
    /// one hand-off to the pool and back, not one each.
    func executeAlways(_ statements: [(sql: String, binds: [SQLiteData])]) async throws {
        if StoreExecutor.isCurrentThread {
            for statement in statements { _ = try run(statement.sql, statement.binds) }
            return
        }
        handOffs.add(1, ordering: .relaxed)
        try await Self.always {
            for statement in statements { _ = try self.run(statement.sql, statement.binds) }
        }
    }

    /// Finalizes the statements and closes the connection, whatever the calling task's cancellation
    /// (SQLite does not close a connection that still has statements).
    func close() async throws {
        try await Self.always {
            try self.state.withLock { state in
                guard let database = state.database else { return }
                for statement in state.statements.values { sqlite_nio_sqlite3_finalize(statement.handle) }
                state.statements = [:]
                state.order = []
                state.database = nil
                let result = sqlite_nio_sqlite3_close(database.raw)
                guard result == SQLITE_OK else {
                    // Something still holds it: closed when that goes, not leaked.
                    sqlite_nio_sqlite3_close_v2(database.raw)
                    throw SQLiteStatementError(code: result, fallback: result, message: "cannot close the database")
                }
            }
        }
    }

    /// Statements kept now.
    var count: Int { state.withLock { $0.statements.count } }

    /// How many times SQLite has had to prepare the kept statements again (a schema change, or a
    /// parameter its plan depends on bound anew); tests hold the store's statements at none.
    var reprepares: Int {
        state.withLock { state in
            state.statements.values.reduce(0) {
                $0 + Int(sqlite_nio_sqlite3_stmt_status($1.handle, SQLITE_STMTSTATUS_REPREPARE, 0))
            }
        }
    }

    /// Runs handed to the pool so far.
    var handOffCount: Int { handOffs.load(ordering: .relaxed) }

    /// Runs `body` on the thread pool and waits for it, even when the calling task is cancelled.
    private static func always<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            StoreExecutor.pool.submit { _ in
                // The pool is never shut down, so the work always runs.
                continuation.resume(with: Result(catching: body))
            }
        }
    }

    private func run(_ sql: String, _ binds: [SQLiteData]) throws -> [StoreRow] {
        try state.withLock { state throws -> [StoreRow] in
            guard let database = state.database else { throw StoreError(code: .unavailable, message: "the connection is closed") }
            let statement = try prepared(sql, in: &state, database)
            let handle = statement.handle
            defer {
                sqlite_nio_sqlite3_reset(handle)
                sqlite_nio_sqlite3_clear_bindings(handle)
            }
            try bind(binds, to: handle, database)
            var rows: [StoreRow] = []
            while true {
                let result = sqlite_nio_sqlite3_step(handle)
                if result == SQLITE_ROW {
                    rows.append(StoreRow(names: statement.names, values: values(of: handle, count: statement.names.count)))
                } else if result == SQLITE_DONE {
                    return rows
                } else {
                    throw database.failure(result)
                }
            }
        }
    }

    private func prepared(_ sql: String, in state: inout State, _ database: Database) throws -> Statement {
        if let statement = state.statements[sql] { return statement }
        var handle: OpaquePointer?
        let result = sqlite_nio_sqlite3_prepare_v3(database.raw, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard result == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_finalize(handle) }
            // An empty statement (only a comment, say) prepares to no statement at all.
            throw result == SQLITE_OK
                ? StoreError(code: .internalError, message: "not a statement: \(sql)") : database.failure(result)
        }
        let count = Int(sqlite_nio_sqlite3_column_count(handle))
        var index: [String: Int] = [:]
        for column in 0..<count {
            guard let name = sqlite_nio_sqlite3_column_name(handle, Int32(column)).map({ String(cString: $0) }) else { continue }
            // The first of two columns with one name wins, as in sqlite-nio's rows.
            if index[name] == nil { index[name] = column }
        }
        let statement = Statement(handle: handle, names: ColumnNames(index: index, count: count))
        if state.order.count >= Self.capacity {
            let oldest = state.order.removeFirst()
            if let evicted = state.statements.removeValue(forKey: oldest) { sqlite_nio_sqlite3_finalize(evicted.handle) }
        }
        state.statements[sql] = statement
        state.order.append(sql)
        return statement
    }

    private func bind(_ binds: [SQLiteData], to handle: OpaquePointer, _ database: Database) throws {
        for (offset, bind) in binds.enumerated() {
            let position = Int32(offset + 1)
            let result: Int32
            switch bind {
            case .integer(let value):
                result = sqlite_nio_sqlite3_bind_int64(handle, position, Int64(value))
            case .float(let value):
                result = sqlite_nio_sqlite3_bind_double(handle, position, value)
            case .text(let value):
                result = sqlite_nio_sqlite3_bind_text64(
                    handle, position, value, UInt64(value.utf8.count), transient, UInt8(SQLITE_UTF8))
            case .blob(let value):
                result = value.withUnsafeReadableBytes {
                    sqlite_nio_sqlite3_bind_blob64(handle, position, $0.baseAddress, UInt64($0.count), transient)
                }
            case .null:
                result = sqlite_nio_sqlite3_bind_null(handle, position)
            }
            guard result == SQLITE_OK else { throw database.failure(result) }
        }
    }

    private func values(of handle: OpaquePointer, count: Int) -> [SQLiteData] {
        var values: [SQLiteData] = []
        values.reserveCapacity(count)
        for column in 0..<Int32(count) {
            switch sqlite_nio_sqlite3_column_type(handle, column) {
            case SQLITE_INTEGER:
                values.append(.integer(SQLiteInt64(sqlite_nio_sqlite3_column_int64(handle, column))))
            case SQLITE_FLOAT:
                values.append(.float(sqlite_nio_sqlite3_column_double(handle, column)))
            case SQLITE_TEXT:
                // By length, not to the first NUL: a stored string may hold one.
                let length = Int(sqlite_nio_sqlite3_column_bytes(handle, column))
                let text = sqlite_nio_sqlite3_column_text(handle, column)
                values.append(.text(text.map { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""))
            case SQLITE_BLOB:
                let length = Int(sqlite_nio_sqlite3_column_bytes(handle, column))
                let bytes = sqlite_nio_sqlite3_column_blob(handle, column)
                values.append(.blob(bytes.map { ByteBuffer(bytes: UnsafeRawBufferPointer(start: $0, count: length)) } ?? ByteBuffer()))
            default:
                values.append(.null)
            }
        }
        return values
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies a bound value before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// An open `sqlite3*`; used only under its connection's lock.
private struct Database: @unchecked Sendable {
    let raw: OpaquePointer

    func failure(_ code: Int32) -> SQLiteStatementError {
        let message = sqlite_nio_sqlite3_errmsg(raw).map { String(cString: $0) } ?? "unknown error"
        return SQLiteStatementError(code: sqlite_nio_sqlite3_extended_errcode(raw), fallback: code, message: message)
    }
}

/// A prepared statement and its columns' names.
private struct Statement: @unchecked Sendable {
    let handle: OpaquePointer
    let names: ColumnNames
}

/// A statement's column names, shared by its rows.
final class ColumnNames: Sendable {
    let index: [String: Int]
    let count: Int

    init(index: [String: Int], count: Int) {
        self.index = index
        self.count = count
    }
}

/// One row of a statement's answer.
struct StoreRow: Sendable {
    let names: ColumnNames
    let values: [SQLiteData]

    func column(_ name: String) -> SQLiteData? {
        names.index[name].map { values[$0] }
    }
}

/// A statement failed: SQLite's extended result code and message.
struct SQLiteStatementError: Error, Sendable, CustomStringConvertible {
    /// The extended result code (SQLITE_CONSTRAINT_UNIQUE, SQLITE_IOERR_FSYNC, ...).
    let code: Int32
    let message: String

    init(code: Int32, fallback: Int32, message: String) {
        // The connection's last error can be another call's when this one failed before SQLite ran it.
        self.code = code & 0xFF == fallback & 0xFF ? code : fallback
        self.message = message
    }

    /// The primary result code (SQLITE_CONSTRAINT, SQLITE_IOERR, ...).
    var primary: Int32 { code & 0xFF }

    var description: String {
        let name = sqlite_nio_sqlite3_errstr(code).map { String(cString: $0) } ?? "error"
        return "\(name) (\(code)): \(message)"
    }
}
