import Logging
import PostgresNIO
import VPCEPRegistry

extension PostgresRegistryStore {
    /// Rows per INSERT statement: well under PostgreSQL's 65535 parameters for the widest table.
    static let importBatchRows = 500

    /// What `importTables` wrote: rows per table, and the change log's head.
    public struct ImportSummary: Sendable {
        public var rows: [(table: String, count: Int)]
        public var logHead: Int
    }

    /// Copies `tables` (a whole registry, `StoredTable.registryTables`) into the store of
    /// `configuration`, creating its schema first when missing. All in one transaction: the target
    /// must hold no registry yet (no row beyond its counters at zero), every row is inserted in
    /// batches, then the rows of each table are counted and the log head read back, and only when
    /// they match the source's does it commit. Any failure rolls everything back.
    public static func importTables(
        _ tables: [StoredTable], into configuration: Configuration, logger: Logger? = nil
    ) async throws -> ImportSummary {
        let logger = logger ?? Logger(label: "vpcep.store.postgres.import")
        let store = try await open(configuration, logger: logger)
        do {
            let summary = try await store.leased { connection in
                try await copy(tables, on: connection, logger: logger)
            }
            await store.close()
            return summary
        } catch {
            await store.close()
            throw StoreError(postgres: error)
        }
    }

    private static func copy(_ tables: [StoredTable], on connection: PostgresConnection, logger: Logger) async throws -> ImportSummary {
        func run(_ sql: String, _ binds: [PGBind] = []) async throws -> [PGRow] {
            let rows = try await connection.query(try PGBind.query(sql, binds), logger: logger).collect()
            return rows.map { PGRow($0.makeRandomAccess()) }
        }
        func count(_ table: String) async throws -> Int {
            try await run("SELECT count(*) AS n FROM \(quoteIdentifier(table))").first?.int("n") ?? 0
        }
        _ = try await run("BEGIN ISOLATION LEVEL SERIALIZABLE")
        do {
            // Holds off servers already running on the target for the copy, and any other copy.
            for table in StoredTable.registryTables {
                _ = try await run("LOCK TABLE \(quoteIdentifier(table)) IN EXCLUSIVE MODE")
            }
            try await refuseUnlessEmpty(run: run, count: count)
            var summary = ImportSummary(rows: [], logHead: 0)
            for table in tables {
                if StoredTable.counterTables.contains(table.name) {
                    _ = try await run("DELETE FROM \(quoteIdentifier(table.name))")
                }
                try await insert(table, run: run)
                let copied = try await count(table.name)
                guard copied == table.rows.count else {
                    throw StoreError(code: .internalError,
                                     message: "\(table.name): \(copied) rows in PostgreSQL after the copy, \(table.rows.count) in the source")
                }
                summary.rows.append((table.name, copied))
            }
            summary.logHead = try await run("SELECT seq FROM log_head WHERE id = 1").first?.int("seq") ?? -1
            let sourceHead = tables.first { $0.name == "log_head" }?.rows.first?.last
            guard sourceHead == .integer(Int64(summary.logHead)) else {
                throw StoreError(code: .internalError, message: "the log head is \(summary.logHead) after the copy, not the source's")
            }
            _ = try await run("COMMIT")
            return summary
        } catch {
            _ = try? await run("ROLLBACK")
            throw error
        }
    }

    /// A target with anything in it is refused: the copy would merge two registries' ids, counters
    /// and change logs into something neither was.
    private static func refuseUnlessEmpty(
        run: (String, [PGBind]) async throws -> [PGRow], count: (String) async throws -> Int
    ) async throws {
        for table in StoredTable.registryTables where !StoredTable.counterTables.contains(table) {
            let rows = try await count(table)
            guard rows == 0 else {
                throw StoreError(code: .conflict, message: "the target already holds a registry (\(rows) rows in \(table)): migrate into an empty database or schema")
            }
        }
        for table in StoredTable.counterTables {
            let moved = try await run("SELECT count(*) AS n FROM \(quoteIdentifier(table)) WHERE \(table == "sequences" ? "value" : "seq") <> 0", [])
            guard try moved.first?.int("n") ?? 0 == 0 else {
                throw StoreError(code: .conflict, message: "the target already holds a registry (\(table) is not at zero): migrate into an empty database or schema")
            }
        }
    }

    private static func insert(_ table: StoredTable, run: (String, [PGBind]) async throws -> [PGRow]) async throws {
        let columns = table.columns.map(quoteIdentifier).joined(separator: ", ")
        let placeholders = "(" + Array(repeating: "?", count: table.columns.count).joined(separator: ", ") + ")"
        var start = 0
        while start < table.rows.count {
            let batch = table.rows[start..<min(start + importBatchRows, table.rows.count)]
            let values = Array(repeating: placeholders, count: batch.count).joined(separator: ", ")
            let binds = batch.flatMap { row in
                row.map { value -> PGBind in
                    switch value {
                    case .text(let text): return .text(text)
                    case .integer(let number): return .integer(number)
                    case .null: return .null
                    }
                }
            }
            _ = try await run("INSERT INTO \(quoteIdentifier(table.name)) (\(columns)) VALUES \(values)", binds)
            start += batch.count
        }
    }
}
