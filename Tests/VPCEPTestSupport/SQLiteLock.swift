import SQLiteNIO

/// Another connection to the database at `path` takes and releases its write lock, which it cannot
/// while a transaction is left open.
public func expectNoTransactionLeftOpen(_ path: String) async throws {
    let other = try await SQLiteConnection.open(storage: .file(path: path))
    do {
        _ = try await other.query("PRAGMA busy_timeout = 2000", [])
        _ = try await other.query("BEGIN IMMEDIATE", [])
        _ = try await other.query("ROLLBACK", [])
    } catch {
        try? await other.close()
        throw error
    }
    try await other.close()
}
