import Foundation
import SQLiteNIO
import Testing
import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

@Suite("Prepared statements kept per connection")
struct StatementCacheTests {
    /// Opens a connection on a fresh database, runs `body` with it, and closes it as the store does.
    private func withConnection(_ body: (SQLiteConnection, String) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/cache.sqlite3"
        let connection = try await SQLiteRegistryStore.connect(path: path, logger: .init(label: "test"))
        do {
            try await body(connection, path)
        } catch {
            try? await SQLiteRegistryStore.closeRegardless(connection)
            throw error
        }
        try await SQLiteRegistryStore.closeRegardless(connection)
    }

    /// The cache reads sqlite-nio's handle of the connection; when a new sqlite-nio keeps it elsewhere
    /// the store silently loses its prepared statements, so this fails first.
    @Test func theStoresConnectionsHaveACache() async throws {
        try await withConnection { connection, _ in
            let cache = try #require(StatementCache.of(connection))
            #expect(StatementCache.of(connection) === cache)
        }
    }

    /// Every kind of value goes in and comes back as stored, over many runs of one statement.
    @Test func valuesRoundTripThroughAReusedStatement() async throws {
        try await withConnection { connection, _ in
            try await connection.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n TEXT)")
            let cache = try #require(StatementCache.of(connection))
            for round in 0..<50 {
                try await #expect(cache.rows(
                    "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                    [.integer(round), .float(Double(round) / 4), .text("a\u{0}b-\(round)-é"),
                     .blob(ByteBuffer(bytes: [0, 1, UInt8(round)])), .null]).isEmpty)
            }
            for round in [0, 17, 49] {
                let rows = try await cache.rows("SELECT i, f, s, b, n FROM t WHERE i = ?", [.integer(round)])
                let row = try #require(rows.first)
                #expect(rows.count == 1)
                #expect(row.column("i") == .integer(round))
                #expect(row.column("f") == .float(Double(round) / 4))
                #expect(row.column("s") == .text("a\u{0}b-\(round)-é"))
                #expect(row.column("b") == .blob(ByteBuffer(bytes: [0, 1, UInt8(round)])))
                #expect(row.column("n") == .null)
                #expect(row.column("missing") == nil)
            }
            let count = try await cache.rows("SELECT count(*) AS c FROM t", [])
            #expect(count.first?.column("c") == .integer(50))
        }
    }

    /// A failed run leaves the statement usable, maps to the store's error classes, and holds no lock.
    @Test func failuresMapToTheStoresErrorsAndLeaveTheStatementUsable() async throws {
        try await withConnection { connection, path in
            try await connection.execute("CREATE TABLE u (id TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            let cache = try #require(StatementCache.of(connection))
            _ = try await cache.rows("INSERT INTO u VALUES (?, ?)", [.text("a"), .integer(1)])
            do {
                _ = try await cache.rows("INSERT INTO u VALUES (?, ?)", [.text("a"), .integer(2)])
                Issue.record("a duplicate key was stored")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .conflict)
            }
            do {
                _ = try await cache.rows("INSERT INTO u VALUES (?, ?)", [.text("b"), .null])
                Issue.record("a NULL was stored in a NOT NULL column")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .internalError)
            }
            do {
                _ = try await cache.rows("SELEC nonsense", [])
                Issue.record("a statement that does not parse ran")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .internalError)
            }
            _ = try await cache.rows("INSERT INTO u VALUES (?, ?)", [.text("c"), .integer(3)])
            // No statement holds a transaction open: another connection can write at once.
            let other = try await SQLiteRegistryStore.connect(path: path, logger: .init(label: "test"))
            defer { Task { try? await SQLiteRegistryStore.closeRegardless(other) } }
            try await other.execute("PRAGMA busy_timeout = 0")
            try await other.execute("INSERT INTO u VALUES ('d', 4)")
            let rows = try await cache.rows("SELECT id FROM u ORDER BY id", [])
            #expect(rows.map { $0.column("id") } == [.text("a"), .text("c"), .text("d")])
        }
    }

    /// More distinct statements than the cache keeps: the oldest are finalized, every run still answers.
    @Test func theCacheStaysBounded() async throws {
        try await withConnection { connection, _ in
            let cache = try #require(StatementCache.of(connection))
            for value in 0..<(StatementCache.capacity * 2) {
                let rows = try await cache.rows("SELECT \(value) AS v", [])
                #expect(rows.first?.column("v") == .integer(value))
            }
            #expect(cache.count == StatementCache.capacity)
        }
    }

    /// A store closed after using its statements closes its database for good: SQLite then folds the
    /// write-ahead log into the database and removes it, which it does not while a statement is left.
    @Test func aClosedStoreLeavesNoWriteAheadLog() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        let registry = Registry(store: store, regions: servedRegions)
        _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
        #expect(try await registry.listVPCs(tenantA, page: PageRequest()).totalCount == 1)
        #expect(FileManager.default.fileExists(atPath: store.path + "-wal"))
        try await store.close()
        #expect(!FileManager.default.fileExists(atPath: store.path + "-wal"))
    }
}
