import Foundation
import Logging
internal import SQLiteNIO
import VPCEPRegistry

extension SQLiteRegistryStore {
    /// Every registry table of the store in `directory`, read in one snapshot, for a copy to another
    /// store. Offline only: the directory's lock is taken for the read, so a running server (which
    /// holds it) makes this fail with `SQLiteStoreError`, and no server can start while it runs.
    /// Refuses a directory without a database, and a database of another schema version than this
    /// build's (start this build's server on it once to bring it up to date).
    public static func exportTables(directory: String) async throws -> [StoredTable] {
        let directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else {
            throw SQLiteStoreError(path: path, message: "no vpcep database here")
        }
        let lock = try await DirectoryLock.acquire(path: directory + "/" + lockFileName)
        defer { lock.release() }
        let connection = try await connect(path: path, logger: Logger(label: "vpcep.store.sqlite.export"))
        do {
            try await connection.execute("PRAGMA query_only = ON")
            try await connection.execute("BEGIN")
            let version = try await connection.query("PRAGMA user_version").first?.column("user_version")?.integer ?? 0
            guard version == schemaVersion else {
                throw SQLiteStoreError(
                    path: path,
                    message: "the database schema is version \(version), this build's is \(schemaVersion): start this build's vpcep-server on it once first")
            }
            var tables: [StoredTable] = []
            for name in StoredTable.registryTables {
                tables.append(try await table(name, on: connection, path: path))
            }
            try await connection.execute("COMMIT")
            try await closeRegardless(connection)
            return tables
        } catch {
            try? await closeRegardless(connection)
            if let error = error as? SQLiteStoreError { throw error }
            throw SQLiteStoreError(path: path, message: "cannot read the database: \(StoreError(sqlite: error).message)")
        }
    }

    private static func table(_ name: String, on connection: StoreConnection, path: String) async throws -> StoredTable {
        // Column names from the schema, so an empty table still has them.
        let columns = try await connection.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", [.text(name)])
            .compactMap { $0.column("name")?.string }
        guard !columns.isEmpty else { throw SQLiteStoreError(path: path, message: "the table \(name) is missing") }
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let rows = try await connection.query("SELECT \(list) FROM \(name)")
        return StoredTable(name: name, columns: columns, rows: try rows.map { row in
            try columns.map { column in
                switch row.column(column) {
                case .integer(let value)?: return .integer(Int64(value))
                case .text(let value)?: return .text(value)
                case .null?: return .null
                default: throw SQLiteStoreError(path: path, message: "\(name).\(column) holds a value of an unexpected type")
                }
            }
        })
    }
}
