// Every target that handles a `VPCEPError` matches on its `Reason`, so the typed home comes along.
@_exported import VPCEPContracts
import VPCEPProto

/// The one error every call fails with: a canonical status code, a stable machine-readable
/// reason, a message for people, and the request fields at fault.
///
/// Never OK: a call that succeeded has no error. The wire's status of a success is a `Status`
/// (VPCEPProto), written and read as such; decoding one that is OK yields no `VPCEPError`.
public struct VPCEPError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct FieldViolation: Sendable, Hashable {
        /// Path of the field in the request, e.g. "ports[2].terminal_port".
        public var field: String
        public var reason: Reason
        public var description: String

        public init(field: String, reason: Reason, description: String = "") {
            self.field = field
            self.reason = reason
            self.description = description
        }
    }

    /// Never `.ok`; set only through the initializer, which enforces it.
    public private(set) var code: StatusCode
    /// Stable, e.g. `QUOTA_EXCEEDED`; scripts match on this, not on the message.
    public var reason: Reason
    public var message: String
    public var fieldViolations: [FieldViolation]
    /// Set when the call may be retried after this long.
    public var retryAfter: Duration?
    public var requestID: String

    public init(
        code: StatusCode, reason: Reason, message: String, field: String? = nil,
        fieldViolations: [FieldViolation] = [], retryAfter: Duration? = nil, requestID: String = ""
    ) {
        precondition(code != .ok, "a VPCEPError is never OK; write a success as a Status")
        self.code = code
        self.reason = reason
        self.message = message
        var violations = fieldViolations
        if let field, !violations.contains(where: { $0.field == field }) {
            violations.insert(FieldViolation(field: field, reason: reason, description: message), at: 0)
        }
        self.fieldViolations = violations
        self.retryAfter = retryAfter
        self.requestID = requestID
    }

    /// The first field at fault, if any.
    public var field: String? { fieldViolations.first?.field }

    /// Whether the same call may succeed if simply sent again.
    public var isRetryable: Bool {
        code == .unavailable || retryAfter != nil
    }

    public var description: String {
        var text = "\(code.name) \(reason): \(message)"
        if let field { text += " (field \(field))" }
        return text
    }
}

extension VPCEPError {
    /// The failure a status read off the wire reports, or nil when it reports success (OK).
    init?(_ status: Status) {
        guard status.code != StatusCode.ok.rawValue else { return nil }
        self.init(
            code: StatusCode(rawValue: status.code),
            reason: Reason(rawValue: status.reason),
            message: status.message,
            fieldViolations: status.fieldViolations.map {
                FieldViolation(field: $0.field, reason: Reason(rawValue: $0.reason), description: $0.description)
            },
            retryAfter: status.retryAfterMs == 0 ? nil : .milliseconds(Int64(status.retryAfterMs)),
            requestID: status.requestId
        )
    }

    var status: Status {
        Status(
            code: code.rawValue,
            reason: reason.rawValue,
            message: message,
            fieldViolations: fieldViolations.map {
                VPCEPProto.FieldViolation(field: $0.field, reason: $0.reason.rawValue, description: $0.description)
            },
            retryAfterMs: retryAfter.map { UInt32(clamping: Int64(($0 / .milliseconds(1)).rounded(.up))) } ?? 0,
            requestId: requestID
        )
    }
}

/// Errors thrown by method handlers adopt this to say which status the caller gets; anything
/// else becomes INTERNAL with no detail leaked.
public protocol VPCEPErrorConvertible: Error {
    var vpcepError: VPCEPError { get }
}

extension VPCEPError: VPCEPErrorConvertible {
    public var vpcepError: VPCEPError { self }
}

extension VPCEPError {
    /// Whether the server provably did not process the call, whatever the method: it is safe to send
    /// again (e.g. a write without an idempotency key). A property of the reason (`Reason.wasNeverProcessed`).
    public var wasNeverProcessed: Bool { reason.wasNeverProcessed }

    static func internalError(_ requestID: String) -> VPCEPError {
        VPCEPError(code: .internalError, reason: .internalError, message: "internal error; see the server log for request \(requestID)",
                   requestID: requestID)
    }
}
