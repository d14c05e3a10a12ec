import Foundation
import SQLiteNIO
import Testing
import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

@Suite("SQLite store connections: statements prepared once and kept")
struct StoreConnectionTests {
    /// Opens a connection on a fresh database, runs `body` with it, and closes it as the store does.
    private func withConnection(_ body: (StoreConnection, String) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/cache.sqlite3"
        let connection = try await StoreConnection.open(path: path)
        do {
            try await body(connection, path)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        #expect(connection.isClosed)
    }

    /// Every kind of value goes in and comes back as stored, over many runs of one statement.
    @Test func valuesRoundTripThroughAReusedStatement() async throws {
        try await withConnection { connection, _ in
            try await connection.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n TEXT)")
            for round in 0..<50 {
                try await #expect(connection.query(
                    "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                    [.integer(round), .float(Double(round) / 4), .text("a\u{0}b-\(round)-é"),
                     .blob(ByteBuffer(bytes: [0, 1, UInt8(round)])), .null]).isEmpty)
            }
            for round in [0, 17, 49] {
                let rows = try await connection.query("SELECT i, f, s, b, n FROM t WHERE i = ?", [.integer(round)])
                let row = try #require(rows.first)
                #expect(rows.count == 1)
                #expect(row.column("i") == .integer(round))
                #expect(row.column("f") == .float(Double(round) / 4))
                #expect(row.column("s") == .text("a\u{0}b-\(round)-é"))
                #expect(row.column("b") == .blob(ByteBuffer(bytes: [0, 1, UInt8(round)])))
                #expect(row.column("n") == .null)
                #expect(row.column("missing") == nil)
            }
            let count = try await connection.query("SELECT count(*) AS c FROM t", [])
            #expect(count.first?.column("c") == .integer(50))
        }
    }

    /// A failed run leaves the statement usable, maps to the store's error classes, and holds no lock.
    @Test func failuresMapToTheStoresErrorsAndLeaveTheStatementUsable() async throws {
        try await withConnection { connection, path in
            try await connection.execute("CREATE TABLE u (id TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            _ = try await connection.query("INSERT INTO u VALUES (?, ?)", [.text("a"), .integer(1)])
            do {
                _ = try await connection.query("INSERT INTO u VALUES (?, ?)", [.text("a"), .integer(2)])
                Issue.record("a duplicate key was stored")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .conflict)
            }
            do {
                _ = try await connection.query("INSERT INTO u VALUES (?, ?)", [.text("b"), .null])
                Issue.record("a NULL was stored in a NOT NULL column")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .internalError)
            }
            do {
                _ = try await connection.query("SELEC nonsense", [])
                Issue.record("a statement that does not parse ran")
            } catch let error as SQLiteStatementError {
                #expect(StoreError(sqlite: error).code == .internalError)
            }
            _ = try await connection.query("INSERT INTO u VALUES (?, ?)", [.text("c"), .integer(3)])
            // No statement holds a transaction open: another connection can write at once.
            let other = try await StoreConnection.open(path: path)
            defer { Task { try? await other.close() } }
            try await other.execute("PRAGMA busy_timeout = 0")
            try await other.execute("INSERT INTO u VALUES ('d', 4)")
            let rows = try await connection.query("SELECT id FROM u ORDER BY id", [])
            #expect(rows.map { $0.column("id") } == [.text("a"), .text("c"), .text("d")])
        }
    }

    /// A cancelled caller's statement is skipped, but one that opens or ends a transaction runs: handed
    /// to the pool, and inline when the caller runs on the store's executor.
    @Test(arguments: [false, true])
    func aCancelledTaskSkipsItsStatementsExceptTheAlwaysOnes(onStoreExecutor: Bool) async throws {
        try await withConnection { connection, _ in
            try await connection.execute("CREATE TABLE c (v INTEGER)")
            let task = Task {
                let statements = {
                    withUnsafeCurrentTask { $0?.cancel() }
                    let skipped: Bool
                    do {
                        try await connection.execute("INSERT INTO c VALUES (1)")
                        skipped = false
                    } catch is CancellationError {
                        skipped = true
                    }
                    try await connection.executeAlways("INSERT INTO c VALUES (2)")
                    try await connection.executeAlways([(sql: "INSERT INTO c VALUES (3)", binds: [])])
                    return skipped
                }
                return onStoreExecutor ? try await StoreExecutor.run(statements) : try await statements()
            }
            #expect(try await task.value)
            #expect(try await connection.query("SELECT v FROM c ORDER BY v").map { $0.column("v") } == [.integer(2), .integer(3)])
        }
    }

    /// On the store's executor a transaction's statements run on the thread it is on, with no hand-off to
    /// the pool; elsewhere each is one. Both answer alike.
    @Test func statementsOnTheStoreExecutorRunWithoutHandOffs() async throws {
        try await withConnection { connection, _ in
            try await connection.execute("CREATE TABLE h (v INTEGER)")
            #expect(!StoreExecutor.isCurrentThread)
            let before = connection.handOffCount
            let sum = try await StoreExecutor.run {
                #expect(StoreExecutor.isCurrentThread)
                try await connection.executeAlways("BEGIN IMMEDIATE")
                for value in 1...10 { try await connection.execute("INSERT INTO h VALUES (?)", [.integer(value)]) }
                await Task.yield()
                let rows = try await connection.query("SELECT sum(v) AS s FROM h")
                try await connection.executeAlways([(sql: "COMMIT", binds: [])])
                return rows.first?.column("s")
            }
            #expect(sum == .integer(55))
            #expect(connection.handOffCount == before)
            #expect(!StoreExecutor.isCurrentThread)
            #expect(try await connection.query("SELECT count(*) AS c FROM h").first?.column("c") == .integer(10))
            #expect(connection.handOffCount == before + 1)
        }
    }

    /// More distinct statements than the cache keeps: the oldest are finalized, every run still answers.
    /// The store's pool has a thread for each of what can block one at once: the writer's task, a read
    /// and a background checkpoint. With two of them held (as a long write and a checkpoint hold them),
    /// a read still runs.
    @Test func aReadRunsWhileTwoOfTheStoresThreadsAreHeld() async throws {
        try await withRegistry { registry, _ in
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let held = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            for _ in 0..<2 {
                StoreExecutor.pool.submit { _ in
                    held.signal()
                    release.wait()
                }
            }
            for _ in 0..<2 { await withCheckedContinuation { c in DispatchQueue.global().async { held.wait(); c.resume() } } }
            let answered = await withTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await registry.listVPCs(tenantA, page: PageRequest(limit: 1)).totalCount) == 1 }
                group.addTask {
                    try? await Task.sleep(for: .seconds(10))
                    return false
                }
                let first = await group.next() ?? false
                // Lets the held threads go (and so a read that was stuck behind them) before waiting for the rest.
                release.signal()
                release.signal()
                group.cancelAll()
                return first
            }
            #expect(answered)
        }
    }

    @Test func theCacheStaysBounded() async throws {
        try await withConnection { connection, _ in
            for value in 0..<(StoreConnection.capacity * 2) {
                let rows = try await connection.query("SELECT \(value) AS v", [])
                #expect(rows.first?.column("v") == .integer(value))
            }
            #expect(connection.count == StoreConnection.capacity)
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
