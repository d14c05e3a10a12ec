internal import SQLiteNIO
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
