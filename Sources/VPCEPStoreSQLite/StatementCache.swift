internal import SQLiteNIO
import Synchronization
import VPCEPRegistry
internal import VaporCSQLite

/// A connection's statements, each prepared once and kept while the connection is open.
///
/// sqlite-nio prepares every statement anew and finalizes it after one run. For a write that was
/// most of SQLite's work: an `UPDATE endpoint_services` compiles the list tables' triggers into its
/// program every time (`perf` of issue 11's spread scenario: `sqlite3_prepare` 16% of the server's
/// CPU, running the statements 5%). Here a statement is prepared on its first run and reset after
/// each one, so it holds no snapshot between runs.
///
/// sqlite-nio keeps a connection's `sqlite3*` to itself, so the cache reads it from the
/// connection's stored properties. Should a later sqlite-nio keep it elsewhere, `of(_:)` finds none
/// and the store runs its statements through sqlite-nio as before (`StatementCacheTests` fails
/// first, so the change is noticed).
///
/// Each cache belongs to one connection, which the store uses from one transaction at a time; the
/// cache's lock only makes that visible to the compiler. `release(_:)` must run before the
/// connection closes: SQLite does not close a connection that still has statements.
final class StatementCache: Sendable {
    /// Distinct statements kept per connection; the store's are a few dozen, but lists and batch
    /// inserts build their text from their arguments, so the oldest go when the cache is full.
    static let capacity = 256

    private let database: Database
    private let state = Mutex(State())

    private struct State {
        var statements: [String: Statement] = [:]
        /// Texts in the order they were prepared, for eviction.
        var order: [String] = []
        var released = false
    }

    private init(database: Database) {
        self.database = database
    }

    // MARK: One cache per connection

    private static let caches = Mutex<[ObjectIdentifier: Entry]>([:])

    private struct Entry {
        /// Kept so that its identifier is not reused while the entry exists.
        let connection: SQLiteConnection
        let cache: StatementCache
    }

    /// The cache of `connection`, made on first use; nil when the connection's handle cannot be read.
    static func of(_ connection: SQLiteConnection) -> StatementCache? {
        let key = ObjectIdentifier(connection)
        return caches.withLock { caches -> StatementCache? in
            if let entry = caches[key] { return entry.cache }
            guard !connection.isClosed, let database = Database(of: connection) else { return nil }
            let cache = StatementCache(database: database)
            caches[key] = Entry(connection: connection, cache: cache)
            return cache
        }
    }

    /// Finalizes the statements of `connection`'s cache, if it has one, and forgets it; on the
    /// connection's thread pool, since a statement of it may be running.
    static func release(_ connection: SQLiteConnection) async {
        guard let entry = caches.withLock({ $0.removeValue(forKey: ObjectIdentifier(connection)) }) else { return }
        // Whatever the calling task's cancellation: a statement left unfinalized keeps the connection open.
        await Task { try? await NIOThreadPool.singleton.runIfActive { entry.cache.finalizeAll() } }.value
    }

    /// Statements kept now.
    var count: Int { state.withLock { $0.statements.count } }

    // MARK: Running statements

    /// Runs `sql` with `binds` and returns its rows, on sqlite-nio's thread pool (where the store's
    /// connections run their statements); skipped, with `CancellationError`, when the calling task
    /// is cancelled before it starts.
    func rows(_ sql: String, _ binds: [SQLiteData]) async throws -> [StoreRow] {
        try await NIOThreadPool.singleton.runIfActive { try self.run(sql, binds) }
    }

    private func run(_ sql: String, _ binds: [SQLiteData]) throws -> [StoreRow] {
        try state.withLock { state throws -> [StoreRow] in
            guard !state.released else {
                throw StoreError(code: .unavailable, message: "the connection was closed")
            }
            let statement = try prepared(sql, in: &state)
            let handle = statement.handle
            defer {
                sqlite_nio_sqlite3_reset(handle)
                sqlite_nio_sqlite3_clear_bindings(handle)
            }
            try bind(binds, to: handle)
            var rows: [StoreRow] = []
            while true {
                let result = sqlite_nio_sqlite3_step(handle)
                if result == SQLITE_ROW {
                    rows.append(StoreRow(names: statement.names, values: values(of: handle, count: statement.names.count)))
                } else if result == SQLITE_DONE {
                    return rows
                } else {
                    throw failure(result)
                }
            }
        }
    }

    private func prepared(_ sql: String, in state: inout State) throws -> Statement {
        if let statement = state.statements[sql] { return statement }
        var handle: OpaquePointer?
        let result = sqlite_nio_sqlite3_prepare_v3(
            database.raw, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard result == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_finalize(handle) }
            throw failure(result)
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

    private func bind(_ binds: [SQLiteData], to handle: OpaquePointer) throws {
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
            guard result == SQLITE_OK else { throw failure(result) }
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
                if let text = sqlite_nio_sqlite3_column_text(handle, column) {
                    values.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)))
                } else {
                    values.append(.text(""))
                }
            case SQLITE_BLOB:
                let length = Int(sqlite_nio_sqlite3_column_bytes(handle, column))
                if let bytes = sqlite_nio_sqlite3_column_blob(handle, column) {
                    values.append(.blob(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: length))))
                } else {
                    values.append(.blob(ByteBuffer()))
                }
            default:
                values.append(.null)
            }
        }
        return values
    }

    private func failure(_ code: Int32) -> SQLiteStatementError {
        let message = sqlite_nio_sqlite3_errmsg(database.raw).map { String(cString: $0) } ?? "unknown error"
        return SQLiteStatementError(code: sqlite_nio_sqlite3_extended_errcode(database.raw), fallback: code, message: message)
    }

    private func finalizeAll() {
        state.withLock { state in
            for statement in state.statements.values { sqlite_nio_sqlite3_finalize(statement.handle) }
            state.statements = [:]
            state.order = []
            state.released = true
        }
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies a bound value before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A connection's `sqlite3*`, read from sqlite-nio's `SQLiteConnection.handle.raw`.
private struct Database: @unchecked Sendable {
    let raw: OpaquePointer

    init?(of connection: SQLiteConnection) {
        guard let handle = Mirror(reflecting: connection).descendant("handle", "raw"),
              let raw = handle as? OpaquePointer
        else { return nil }
        self.raw = raw
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

/// One row of a cached statement's answer.
struct StoreRow: Sendable {
    let names: ColumnNames
    let values: [SQLiteData]

    func column(_ name: String) -> SQLiteData? {
        names.index[name].map { values[$0] }
    }
}

extension StoreRow {
    /// A row sqlite-nio read, when the connection has no cache.
    init(_ row: SQLiteRow) {
        let columns = row.columns
        var index: [String: Int] = [:]
        for (offset, column) in columns.enumerated() where index[column.name] == nil { index[column.name] = offset }
        self.init(names: ColumnNames(index: index, count: columns.count), values: columns.map(\.data))
    }
}

/// A statement of the cache failed: SQLite's extended result code and message.
struct SQLiteStatementError: Error, Sendable, CustomStringConvertible {
    /// The extended result code (SQLITE_CONSTRAINT_UNIQUE, SQLITE_IOERR_FSYNC, ...).
    let code: Int32
    let message: String

    init(code: Int32, fallback: Int32, message: String) {
        // The connection's last error can be another statement's when this one failed early.
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
