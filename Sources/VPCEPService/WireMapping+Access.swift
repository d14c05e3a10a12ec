import Foundation
import VPCEPProto
import VPCEPRegistry

/// Allow-list entries' terms and `CheckAccess` answers on the wire.
extension WireMapping {
    static func permission(_ permission: VPCEPRegistry.Permission) -> VPCEPProto.Permission {
        VPCEPProto.Permission(
            id: permission.id, permission: permission.permission, permissionType: permission.permissionType,
            description: permission.description, createdAt: timestamp(permission.createdAt),
            decision: decision(permission.decision), connectionLimit: permission.connectionLimit.map { UInt32(clamping: $0) },
            expiresAt: permission.expiresAt.map(timestamp) ?? "", onExpiry: expiryAction(permission.onExpiry),
            updatedAt: timestamp(permission.updatedAt))
    }

    /// Entries of an add; `i` names the entry in errors.
    static func permissionEntry(_ entry: VPCEPProto.PermissionEntry, index i: Int) throws(RegistryError)
        -> VPCEPRegistry.PermissionEntry
    {
        let expiresAt: Date?
        if entry.expiresAt.isEmpty {
            expiresAt = nil
        } else if let date = RFC3339.parse(entry.expiresAt) {
            // The store keeps milliseconds; a finer time would come back different from what was compared.
            expiresAt = Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        } else {
            throw RegistryError(
                code: .invalidArgument, reason: .timeInvalid,
                message: "expires_at must be an RFC 3339 timestamp, e.g. 2027-01-01T00:00:00Z",
                field: "entries[\(i)].expires_at")
        }
        return VPCEPRegistry.PermissionEntry(
            permission: entry.permission, description: entry.description,
            decision: try decision(entry.decision, field: "entries[\(i)].decision"),
            connectionLimit: entry.connectionLimit.map { Int($0) }, expiresAt: expiresAt,
            onExpiry: try expiryAction(entry.onExpiry, field: "entries[\(i)].on_expiry"))
    }

    static func decision(_ decision: AccessDecision) -> PermissionDecision {
        switch decision {
        case .manual: .manual
        case .autoAccept: .autoAccept
        case .deny: .deny
        }
    }

    static func decision(_ decision: PermissionDecision, field: String) throws(RegistryError) -> AccessDecision {
        switch decision {
        case .unspecified, .manual: .manual
        case .autoAccept: .autoAccept
        case .deny: .deny
        default: throw unknownValue(decision, field: field)
        }
    }

    static func expiryAction(_ action: VPCEPRegistry.ExpiryAction) -> VPCEPProto.ExpiryAction {
        switch action {
        case .keep: .keep
        case .reject: .reject
        }
    }

    static func expiryAction(
        _ action: VPCEPProto.ExpiryAction, field: String
    ) throws(RegistryError) -> VPCEPRegistry.ExpiryAction {
        switch action {
        case .unspecified, .keep: .keep
        case .reject: .reject
        default: throw unknownValue(action, field: field)
        }
    }

    static func accessCheck(_ check: AccessCheck) -> CheckAccessResponse {
        let admission = check.admission
        let basis: AccessBasis = switch admission.basis {
        case .owner: .owner
        case .tenantEntry: .tenantEntry
        case .everyoneEntry: .everyoneEntry
        case .none: .none
        }
        return CheckAccessResponse(
            tenantId: check.tenantID, admitted: admission.admitted, basis: basis, entry: admission.entry.map(permission),
            decision: admission.decision.map(decision) ?? .unspecified, approvalEnabled: check.approvalEnabled,
            initialStatus: check.initialStatus.map(endpointStatus) ?? .unspecified,
            held: UInt32(clamping: admission.held), remaining: admission.remaining.map { UInt32(clamping: $0) },
            expiresAt: admission.entry?.expiresAt.map(timestamp) ?? "",
            refusalReason: admission.refusal?.rawValue ?? "", explanation: check.explanation)
    }
}
