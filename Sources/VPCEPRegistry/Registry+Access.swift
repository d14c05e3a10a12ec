import Foundation

/// The answer of `checkAccess`: would this tenant be admitted to the service now, and on which terms.
public struct AccessCheck: Sendable, Hashable {
    /// The tenant asked about (an owner key).
    public var tenantID: String
    public var admission: Admission
    /// The service's approval setting, which `manual` entries defer to.
    public var approvalEnabled: Bool
    /// The status a new endpoint would get; nil when the tenant is not admitted.
    public var initialStatus: EndpointStatus?
    /// Why, in one sentence.
    public var explanation: String
}

/// Admission of consumers: the check every create makes, `checkAccess`, and the expiry sweep
/// (docs/DOMAIN.md, "Access policies").
extension Registry {
    /// Who decides the answers and the change log's actor of the sweep's rejections: the server
    /// itself. `:` keeps it apart from every tenant id, and the prefix from operators.
    public static let systemActor = "system:expiry"

    /// The reason the sweep's rejections carry, which the consumer sees on its endpoint.
    static let expiredReason = "the consumer's allow-list entry expired"

    /// `tenant`'s admission to `service` at `now`, counting what it holds only when the answer
    /// depends on it (or `countAlways`).
    static func admission(
        _ reader: any RegistryReader, service: EndpointService, permissions: [Permission], tenant: String, now: Date,
        countAlways: Bool = false
    ) async throws -> Admission {
        let first = Admission.evaluate(
            entries: permissions, tenant: tenant, serviceOwner: service.ownerID, now: now, held: 0)
        guard countAlways || (first.basis != .none && first.basis != .owner && first.entry?.connectionLimit != nil)
        else { return first }
        let held = try await reader.countEndpoints(
            serviceID: service.id, ownerID: tenant, excludingStatuses: Admission.released)
        return Admission.evaluate(entries: permissions, tenant: tenant, serviceOwner: service.ownerID, now: now, held: held)
    }

    /// The error a create gets when `admission` refuses it.
    static func refusal(
        _ reason: Reason, _ admission: Admission, tenant: String, service: EndpointService, field: String
    ) -> RegistryError {
        let message = admission.explanation(tenant: tenant, approvalEnabled: service.approvalEnabled)
        return switch reason {
        case .connectionLimitExceeded: RegistryError(code: .resourceExhausted, reason: reason, message: message, field: field)
        default: RegistryError(code: .permissionDenied, reason: reason, message: message, field: field)
        }
    }

    /// Would `tenantID` (empty: the caller) be admitted to the service now, by which entry, with which
    /// decision, how many connections remain under its limit, until when. The service's owner and
    /// operators may ask about any tenant; anyone else only about itself, and only of a service it may
    /// see (`SERVICE_NOT_FOUND` otherwise, as `describe` answers).
    public func checkAccess(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, tenantID: String?
    ) async throws(RegistryError) -> AccessCheck {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        if let tenantID = nonEmpty(tenantID), !Validation.isTenantID(tenantID) {
            throw .invalid(.tenantIDInvalid, "tenant_id must be 1-64 of A-Z, a-z, 0-9, '_', '-'", field: "tenant_id")
        }
        let tenant = nonEmpty(tenantID) ?? scope.ownerID
        let now = now()
        return try await read { reader in
            guard let (service, permissions) = try await Self.seenService(reader, ref, scope: scope) else {
                throw ref.notFound
            }
            let readsService = scope.canRead(region: service.region, ownerID: service.ownerID)
            guard readsService || tenant == scope.ownerID else {
                throw RegistryError(
                    code: .permissionDenied, reason: .ownerOnly,
                    message: "only the service's owner may ask about another tenant", field: "tenant_id")
            }
            var admission = try await Self.admission(
                reader, service: service, permissions: permissions, tenant: tenant, now: now, countAlways: true)
            if !readsService {
                // A consumer learns the terms that apply to it, not the provider's notes or ids.
                admission.entry?.id = ""
                admission.entry?.description = ""
            }
            return AccessCheck(
                tenantID: tenant, admission: admission, approvalEnabled: service.approvalEnabled,
                initialStatus: admission.admitted ? admission.initialStatus(approvalEnabled: service.approvalEnabled) : nil,
                explanation: admission.explanation(tenant: tenant, approvalEnabled: service.approvalEnabled))
        }
    }

    /// The expiry sweep: for up to `limit` entries with `on_expiry reject` whose time has come, rejects
    /// the live connections each admitted (docs/DOMAIN.md, "Access policies"). One transaction per entry,
    /// which marks the entry handled, so servers sweeping the same store act once. Returns how many
    /// connections were rejected.
    @discardableResult
    public func sweepExpiredPermissions(limit: Int = 100) async throws(RegistryError) -> Int {
        let due = try await read { [now = now()] reader in try await reader.permissionsDueForExpiry(by: now, limit: limit) }
        var rejected = 0
        for entry in due {
            rejected += try await write { tx in try await self.expire(tx, entry) }
        }
        return rejected
    }

    /// Handles one expired entry, if it still is due: looked up again in the transaction, since another
    /// server may have handled it, or its owner changed or removed it, since it was found.
    private func expire(_ tx: any RegistryTransaction, _ found: Permission) async throws -> Int {
        let now = now()
        let visibility = Visibility.anyOwner(in: found.region)
        guard let service = try await tx.endpointService(id: found.serviceID, visibleTo: visibility) else { return 0 }
        let entries = try await tx.permissions(serviceID: service.id, serviceVisibleTo: visibility)
        guard var entry = entries.first(where: { $0.id == found.id }), entry.onExpiry == .reject, !entry.expiryHandled,
            let expiresAt = entry.expiresAt, expiresAt <= now
        else { return 0 }
        // Who this entry admitted: those it would decide for, were it not expired.
        let unexpired = entries.map { $0.id == entry.id ? Self.withoutExpiry($0) : $0 }
        var events: [ChangeEvent] = []
        var verdicts: [String: Bool] = [:]
        for var endpoint in try await tx.endpoints(serviceID: service.id, serviceVisibleTo: visibility)
        where endpoint.status.isLive {
            let consumer = endpoint.ownerID
            let reject = verdicts[consumer] ?? {
                let before = Admission.evaluate(
                    entries: unexpired, tenant: consumer, serviceOwner: service.ownerID, now: now, held: 0)
                let after = Admission.evaluate(
                    entries: entries, tenant: consumer, serviceOwner: service.ownerID, now: now, held: 0)
                // The limit is not a reason to reject what is already held.
                let stillAdmitted = after.basis != .none && after.refusal != .accessDenied
                return before.entry?.id == entry.id && before.basis != .none && before.refusal != .accessDenied
                    && !stillAdmitted
            }()
            verdicts[consumer] = reject
            guard reject else { continue }
            let previous = endpoint
            Self.decide(&endpoint, .rejected, by: Self.systemActor, reason: Self.expiredReason, at: now)
            try await tx.updateEndpoint(endpoint)
            events.append(ChangeEvent(
                type: .connectionRejected, state: .endpoint(endpoint), previous: .endpoint(previous),
                providerID: service.ownerID))
        }
        entry.expiryHandled = true
        try await tx.updatePermission(entry)
        try await log(tx, actor: Self.systemActor, events)
        return events.count
    }

    private static func withoutExpiry(_ entry: Permission) -> Permission {
        var entry = entry
        entry.expiresAt = nil
        return entry
    }
}
