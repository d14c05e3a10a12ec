import Foundation
#if canImport(Glibc)
import Glibc
#endif
// sqlite-nio's own copy of SQLite (its symbols prefixed `sqlite_nio_`): SQLiteNIO does not wrap the
// backup API, and this module is visible to every target that depends on SQLiteNIO.
internal import VaporCSQLite
import VPCEPRegistry

extension SQLiteRegistryStore {
    /// What `backup` copied.
    public struct BackupSummary: Sendable {
        public var pages: Int
        public var bytes: Int
        /// The last change log sequence in the copy.
        public var logHead: Int
    }

    /// Pages copied per step of the backup API.
    static let backupPagesPerStep: Int32 = 256

    /// Copies the database of the store in `directory` to `file` with SQLite's online backup API,
    /// while a server may be running on it: the directory's lock is not taken. The copy is one
    /// snapshot: a read transaction on the source is held for the whole backup, which in WAL mode
    /// blocks no writer (it only keeps checkpoints from going past it), and keeps the backup from
    /// restarting whenever the server commits. The copy is written next to `file`, checked, synced
    /// and renamed into place; `file` must not exist.
    public static func backup(directory: String, to file: String) throws -> BackupSummary {
        let source = URL(fileURLWithPath: directory).standardizedFileURL.path + "/" + fileName
        let target = URL(fileURLWithPath: file).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: source) else {
            throw SQLiteStoreError(path: source, message: "no vpcep database here")
        }
        guard !FileManager.default.fileExists(atPath: target) else {
            throw SQLiteStoreError(path: target, message: "already exists; the backup does not overwrite a file")
        }
        let partial = target + ".partial-\(getpid())"
        do {
            let summary = try copy(source: source, to: partial)
            try syncFile(partial)
            guard rename(partial, target) == 0 else {
                throw SQLiteStoreError(path: target, message: "cannot rename the copy into place: \(String(cString: strerror(errno)))")
            }
            try syncFile(URL(fileURLWithPath: target).deletingLastPathComponent().path)
            return summary
        } catch {
            unlink(partial)
            throw error
        }
    }

    private static func copy(source: String, to target: String) throws -> BackupSummary {
        let from = try openHandle(source, flags: SQLITE_OPEN_READONLY)
        defer { sqlite_nio_sqlite3_close_v2(from) }
        let to = try openHandle(target, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        defer { sqlite_nio_sqlite3_close_v2(to) }
        // Waits (bounded) for the server's brief exclusive moments, e.g. a WAL reset.
        sqlite_nio_sqlite3_busy_timeout(from, Int32(defaultBusyTimeoutMilliseconds))

        try execute(from, "BEGIN", path: source)
        defer { _ = sqlite_nio_sqlite3_exec(from, "ROLLBACK", nil, nil, nil) }
        let version = try integer(from, "PRAGMA user_version", path: source)
        guard version <= schemaVersion else {
            throw SQLiteStoreError(path: source, message: "the database schema is version \(version), newer than this build's \(schemaVersion)")
        }
        let logHead = try integer(from, "SELECT seq FROM log_head WHERE id = 1", path: source)

        guard let backup = sqlite_nio_sqlite3_backup_init(to, "main", from, "main") else {
            throw SQLiteStoreError(path: target, message: "cannot start the backup: \(message(to))")
        }
        var status: Int32
        repeat {
            status = sqlite_nio_sqlite3_backup_step(backup, backupPagesPerStep)
        } while status == SQLITE_OK || status == SQLITE_BUSY || status == SQLITE_LOCKED
        let pages = Int(sqlite_nio_sqlite3_backup_pagecount(backup))
        let finished = sqlite_nio_sqlite3_backup_finish(backup)
        guard status == SQLITE_DONE, finished == SQLITE_OK else {
            throw SQLiteStoreError(path: source, message: "the backup failed: \(message(to))")
        }
        let check = try text(to, "PRAGMA quick_check", path: target)
        guard check == "ok" else {
            throw SQLiteStoreError(path: target, message: "the copy failed its check: \(check)")
        }
        let pageSize = try integer(to, "PRAGMA page_size", path: target)
        return BackupSummary(pages: pages, bytes: pages * pageSize, logHead: logHead)
    }

    private static func openHandle(_ path: String, flags: Int32) throws -> OpaquePointer {
        var handle: OpaquePointer?
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK, let handle else {
            let reason = handle.map(message) ?? "error \(status)"
            sqlite_nio_sqlite3_close_v2(handle)
            throw SQLiteStoreError(path: path, message: "cannot open the database: \(reason)")
        }
        return handle
    }

    private static func execute(_ handle: OpaquePointer, _ sql: String, path: String) throws {
        guard sqlite_nio_sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw SQLiteStoreError(path: path, message: "\(sql): \(message(handle))")
        }
    }

    /// The first column of the first row of `sql`, read with `column`.
    private static func first<T>(_ handle: OpaquePointer, _ sql: String, path: String,
                                 _ column: (OpaquePointer) -> T) throws -> T {
        var statement: OpaquePointer?
        guard sqlite_nio_sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw SQLiteStoreError(path: path, message: "\(sql): \(message(handle))")
        }
        defer { sqlite_nio_sqlite3_finalize(statement) }
        guard sqlite_nio_sqlite3_step(statement) == SQLITE_ROW else {
            throw SQLiteStoreError(path: path, message: "\(sql): no row (\(message(handle)))")
        }
        return column(statement)
    }

    private static func integer(_ handle: OpaquePointer, _ sql: String, path: String) throws -> Int {
        try first(handle, sql, path: path) { Int(sqlite_nio_sqlite3_column_int64($0, 0)) }
    }

    private static func text(_ handle: OpaquePointer, _ sql: String, path: String) throws -> String {
        try first(handle, sql, path: path) { statement in
            sqlite_nio_sqlite3_column_text(statement, 0).map { String(cString: $0) } ?? ""
        }
    }

    private static func message(_ handle: OpaquePointer) -> String {
        String(cString: sqlite_nio_sqlite3_errmsg(handle))
    }

    private static func syncFile(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SQLiteStoreError(path: path, message: "cannot open to sync: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw SQLiteStoreError(path: path, message: "cannot sync: \(String(cString: strerror(errno)))") }
    }
}
