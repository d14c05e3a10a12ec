import VPCEPRPC
import VPCEPRegistry

/// The one place where domain errors become wire statuses.
extension RegistryError: VPCEPErrorConvertible {
    public var vpcepError: VPCEPError {
        VPCEPError(code: code.statusCode, reason: reason, message: message, field: field)
    }
}

extension RegistryError.Code {
    /// The wire status code of the same canonical number; a name is for people, the number is the contract.
    public var statusCode: StatusCode { StatusCode(rawValue: UInt32(canonicalValue)) }
}

extension ServerCallContext {
    /// The registry's view of the caller: who (from the certificate), where, with which idempotency key
    /// and request id (from the call header).
    var registryContext: CallContext {
        let caller: Caller = peer.kind == .operator ? .operator(peer.id) : .tenant(peer.id)
        // The registry keeps time with ContinuousClock: the call's one deadline, as the time left.
        let deadline = timeRemaining.map { ContinuousClock.now + $0 }
        return CallContext(caller: caller, region: region, idempotencyKey: idempotencyKey, deadline: deadline,
                           requestID: requestID)
    }
}
