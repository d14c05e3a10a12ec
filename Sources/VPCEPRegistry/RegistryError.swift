// Every target that handles a `RegistryError` matches on its `Reason`, so the typed home comes along.
@_exported import VPCEPContracts

/// Every registry failure: a canonical status code, a stable machine-readable reason, a message for the
/// caller and, for a bad request field, its path (snake_case as in the proto, e.g. `ports[2].terminal_port`).
public struct RegistryError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// gRPC's canonical codes that the registry produces. A struct, so codes can be added.
    public struct Code: Sendable, Hashable, CaseIterable, CustomStringConvertible {
        private enum Wrapped: Int, Sendable, Hashable, CaseIterable {
            case cancelled = 1
            case invalidArgument = 3
            case deadlineExceeded = 4
            case notFound = 5
            case alreadyExists = 6
            case permissionDenied = 7
            case resourceExhausted = 8
            case failedPrecondition = 9
            case aborted = 10
            case outOfRange = 11
            case internalError = 13
            case unavailable = 14
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        public static let cancelled = Code(.cancelled)
        public static let invalidArgument = Code(.invalidArgument)
        public static let deadlineExceeded = Code(.deadlineExceeded)
        public static let notFound = Code(.notFound)
        public static let alreadyExists = Code(.alreadyExists)
        public static let permissionDenied = Code(.permissionDenied)
        public static let failedPrecondition = Code(.failedPrecondition)
        public static let resourceExhausted = Code(.resourceExhausted)
        public static let aborted = Code(.aborted)
        public static let outOfRange = Code(.outOfRange)
        public static let unavailable = Code(.unavailable)
        public static let internalError = Code(.internalError)

        public static var allCases: [Code] { Wrapped.allCases.map(Code.init) }

        /// The canonical gRPC name, e.g. `INVALID_ARGUMENT`.
        public var name: String {
            switch wrapped {
            case .cancelled: "CANCELLED"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .deadlineExceeded: "DEADLINE_EXCEEDED"
            case .notFound: "NOT_FOUND"
            case .alreadyExists: "ALREADY_EXISTS"
            case .permissionDenied: "PERMISSION_DENIED"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .aborted: "ABORTED"
            case .outOfRange: "OUT_OF_RANGE"
            case .internalError: "INTERNAL"
            case .unavailable: "UNAVAILABLE"
            }
        }

        /// The canonical gRPC numeric value, e.g. 3 for `INVALID_ARGUMENT`.
        public var canonicalValue: Int { wrapped.rawValue }

        public var description: String { name }
    }

    public var code: Code
    /// Stable and machine-readable, e.g. `QUOTA_EXCEEDED`.
    public var reason: Reason
    /// For the caller; never contains secrets or another tenant's data.
    public var message: String
    /// Path of the request field at fault, if one is.
    public var field: String?
    /// The underlying failure (e.g. a store error), for logs only.
    public var cause: (any Error & Sendable)?

    public init(code: Code, reason: Reason, message: String, field: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        self.cause = cause
    }

    /// Code, reason and field only: safe for any log.
    public var description: String {
        var text = "\(code.name) \(reason)"
        if let field { text += " (field \(field))" }
        return text
    }

    public var debugDescription: String {
        var text = "\(description): \(message)"
        if let cause { text += " [cause: \(String(reflecting: cause))]" }
        return text
    }
}

extension RegistryError {
    static func invalid(_ reason: Reason, _ message: String, field: String?) -> RegistryError {
        RegistryError(code: .invalidArgument, reason: reason, message: message, field: field)
    }

    static func notFound(_ reason: Reason, _ message: String, field: String?) -> RegistryError {
        RegistryError(code: .notFound, reason: reason, message: message, field: field)
    }

    static func precondition(_ reason: Reason, _ message: String, field: String?) -> RegistryError {
        RegistryError(code: .failedPrecondition, reason: reason, message: message, field: field)
    }

    /// Any error out of the store: a `RegistryError` thrown by a transaction body passes through; store
    /// failures become retryable `ABORTED`/`UNAVAILABLE` or `INTERNAL`, with the detail kept as the cause.
    init(wrapping error: any Error) {
        if let error = error as? RegistryError {
            self = error
            return
        }
        if error is CancellationError {
            // The caller went away (cancelled, or past its deadline) and the store dropped its work.
            self.init(code: .cancelled, reason: .cancelled, message: "the call was cancelled before it was done")
            return
        }
        guard let storeError = error as? StoreError else {
            self.init(
                code: .internalError, reason: .internalError, message: "internal error",
                cause: UncheckedCause(description: String(reflecting: error)))
            return
        }
        switch storeError.code {
        case .conflict:
            self.init(
                code: .aborted, reason: .concurrentModification,
                message: "the change conflicted with a concurrent one; retry", cause: storeError)
        case .unavailable:
            self.init(
                code: .unavailable, reason: .storeUnavailable,
                message: "the registry store is unavailable; retry later", cause: storeError)
        default:
            self.init(code: .internalError, reason: .storeFailure, message: "internal storage error", cause: storeError)
        }
    }
}

/// The text of a non-`Sendable` error, kept as a cause.
struct UncheckedCause: Error, Sendable, CustomStringConvertible {
    var description: String
}
