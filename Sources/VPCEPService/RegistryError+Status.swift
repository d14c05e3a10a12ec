import VPCEPRPC
import VPCEPRegistry

/// The one place where domain errors become wire statuses.
extension RegistryError: VPCEPErrorConvertible {
    public var vpcepError: VPCEPError {
        VPCEPError(code: StatusCode(name: code.name) ?? .internalError, reason: reason, message: message, field: field)
    }
}

extension ServerCallContext {
    /// The registry's view of the caller: who (from the certificate), where and with which idempotency key
    /// (from the call header).
    var registryContext: CallContext {
        let caller: Caller = peer.kind == .operator ? .operator(peer.id) : .tenant(peer.id)
        return CallContext(caller: caller, region: region, idempotencyKey: idempotencyKey, deadline: deadline)
    }
}
