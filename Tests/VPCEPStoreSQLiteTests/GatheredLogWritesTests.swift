import Foundation
import Testing
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// The store's connections write the log through `walbuffer.c`, which holds a commit's frames until
/// SQLite syncs the log. What could go wrong is a reader (another connection, or the writer reading
/// back pages it spilled) finding a frame that is still in the buffer, or a log that starts over.
@Suite("SQLite store connections: log writes gathered until the sync")
struct GatheredLogWritesTests {
    @Test func connectionsOpenThroughTheGatheringVFS() async throws {
        try await withDatabase { path in
            let connection = try await StoreConnection.open(path: path)
            #expect(connection.vfsName == "vpcep-gather/unix")
            try await connection.close()
        }
    }

    /// Many commits, one that spills to the log before it commits and rewrites its own frames, and a
    /// log that starts over after a checkpoint: another connection sees each commit whole, the
    /// database stays intact, and a fresh connection after closing finds every commit. The store runs
    /// at FULL, where a commit syncs the log; at NORMAL nothing syncs it before the commit is published.
    @Test(arguments: ["FULL", "NORMAL"])
    func readersSeeEveryCommitWholeAcrossSpillsAndRestarts(synchronous: String) async throws {
        try await withDatabase { path in
            let writer = try await StoreConnection.open(path: path)
            let reader = try await StoreConnection.open(path: path)
            try await writer.execute("PRAGMA synchronous = \(synchronous)")
            // A page cache of 16 pages: the large transaction below spills into the log before it commits.
            try await writer.execute("PRAGMA cache_size = 16")
            #expect(try await writer.query("PRAGMA journal_mode = WAL").first?.column("journal_mode") == .text("wal"))
            try await writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, pad TEXT NOT NULL)")

            var rows = 0, total = 0
            func expectReaderSees(_ note: String) async throws {
                let row = try #require(try await reader.query("SELECT count(*) AS c, coalesce(sum(n), 0) AS s FROM t").first)
                #expect(row.column("c") == .integer(rows), "\(note)")
                #expect(row.column("s") == .integer(total), "\(note)")
            }
            func smallCommits(_ count: Int, from first: Int) async throws {
                for round in first..<(first + count) {
                    try await writer.execute("BEGIN IMMEDIATE")
                    for _ in 0..<5 {
                        try await writer.execute("INSERT INTO t (n, pad) VALUES (?, ?)", [.integer(round), .text(String(repeating: "p", count: 300))])
                        rows += 1
                        total += round
                    }
                    // The same pages changed again in the transaction.
                    try await writer.execute("UPDATE t SET n = n + 1 WHERE id % 7 = ?", [.integer(round % 7)])
                    total += try #require(try await writer.query("SELECT changes() AS c").first?.column("c")?.integer)
                    try await writer.execute("COMMIT")
                    try await expectReaderSees("after commit \(round)")
                }
            }

            try await smallCommits(120, from: 0)

            try await writer.execute("BEGIN IMMEDIATE")
            for index in 0..<3000 {
                try await writer.execute("INSERT INTO t (n, pad) VALUES (?, ?)", [.integer(1), .text(String(repeating: "x", count: 200 + index % 100))])
            }
            try await writer.execute("UPDATE t SET n = n + 2")
            try await expectReaderSees("while the large transaction is open")
            try await writer.execute("COMMIT")
            total += 2 * rows + 3000 * 3
            rows += 3000
            try await expectReaderSees("after the large transaction")

            // The log starts over from its first frame.
            _ = try await writer.query("PRAGMA wal_checkpoint(TRUNCATE)")
            try await smallCommits(40, from: 120)

            #expect(try await reader.query("PRAGMA integrity_check").first?.column("integrity_check") == .text("ok"))
            try await reader.close()
            try await writer.close()

            let fresh = try await StoreConnection.open(path: path)
            let row = try #require(try await fresh.query("SELECT count(*) AS c, sum(n) AS s FROM t").first)
            #expect(row.column("c") == .integer(rows))
            #expect(row.column("s") == .integer(total))
            try await fresh.close()
        }
    }

    private func withDatabase(_ body: (String) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await body(directory + "/gathered.sqlite3")
    }
}
