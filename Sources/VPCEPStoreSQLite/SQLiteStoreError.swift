internal import SQLiteNIO
internal import VaporCSQLite
import VPCEPRegistry

/// Opening the store failed: names the path at fault and why.
public struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    /// The directory or database file.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension StoreError {
    static let closed = StoreError(code: .unavailable, message: "the store is closed")

    /// Maps an error from SQLite (or already a `StoreError`) to the store's error classes.
    init(sqlite error: any Error) {
        if let error = error as? StoreError {
            self = error
            return
        }
        if let error = error as? SQLiteStatementError {
            self.init(statement: error)
            return
        }
        guard let error = error as? SQLiteError else {
            self.init(code: .internalError, message: String(describing: error))
            return
        }
        let reason = String(describing: error.reason)
        let code: Code
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed, .constraintUniqueRowIDFailed, .busyInSnapshot:
            code = .conflict
        case .busy, .busyTimeout, .busyInRecovery, .locked, .lockedBySharedCache, .full, .noMemory, .interrupt,
            .readOnly, .readonlyInRecovery, .readonlyCantLock, .readonlyInRollback, .readonlyBackingMoved,
            .readonlyDirectory, .cantOpen, .cantOpenDirectory, .cantOpenInvalidPath, .cantOpenUnfollowedSymlink:
            code = .unavailable
        default:
            // Every extended I/O error (ioErrorFailedSync, ioErrorFailedWrite, ...) is a failing disk.
            code = reason.hasPrefix("ioError") ? .unavailable : .internalError
        }
        self.init(code: code, message: "SQLite \(reason): \(error.message)")
    }
}

extension StoreError {
    /// Whether `error` came from SQLite (through sqlite-nio or a `StoreConnection`).
    static func isSQLite(_ error: any Error) -> Bool {
        error is SQLiteError || error is SQLiteStatementError
    }

    /// The same classes for a statement of a `StoreConnection`, by SQLite's result codes.
    init(statement error: SQLiteStatementError) {
        let code: Code
        switch error.code {
        case SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_ROWID, SQLITE_BUSY_SNAPSHOT:
            code = .conflict
        default:
            switch error.primary {
            case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_NOMEM, SQLITE_INTERRUPT, SQLITE_READONLY,
                SQLITE_CANTOPEN, SQLITE_IOERR:
                code = .unavailable
            default:
                code = .internalError
            }
        }
        self.init(code: code, message: "SQLite \(error)")
    }
}

// Extended result codes, which the C importer does not bring in (they are macros of expressions).
private let SQLITE_CONSTRAINT_UNIQUE: Int32 = SQLITE_CONSTRAINT | (8 << 8)
private let SQLITE_CONSTRAINT_PRIMARYKEY: Int32 = SQLITE_CONSTRAINT | (6 << 8)
private let SQLITE_CONSTRAINT_ROWID: Int32 = SQLITE_CONSTRAINT | (10 << 8)
private let SQLITE_BUSY_SNAPSHOT: Int32 = SQLITE_BUSY | (2 << 8)
