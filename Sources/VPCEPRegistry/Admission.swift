import Foundation

/// Who is admitted to a service, by which allow-list entry, on which terms: the one rule that
/// `createEndpoint`, `checkAccess` and the expiry sweep all apply (docs/DOMAIN.md, "Access policies").
/// Pure: everything it needs is passed in.
public struct Admission: Sendable, Hashable {
    /// What decided.
    public enum Basis: String, Sendable, Hashable {
        /// The service's owner, always admitted on the service's own terms.
        case owner
        /// The tenant's own entry, `iam:domain::<tenant>`.
        case tenantEntry = "tenant_entry"
        /// The `*` entry.
        case everyoneEntry = "everyone_entry"
        /// No live entry names the tenant.
        case none
    }

    public var basis: Basis
    /// The deciding entry (for `.none`: the expired entry that would have decided, if any).
    public var entry: Permission?
    /// Nil when admitted; otherwise why not: `NOT_ALLOWED_BY_SERVICE`, `ACCESS_DENIED`, `ACCESS_EXPIRED`
    /// or `CONNECTION_LIMIT_EXCEEDED`.
    public var refusal: Reason?
    /// How many endpoints the tenant holds on the service (what the limit counts).
    public var held: Int

    public var admitted: Bool { refusal == nil }

    /// The deciding entry's decision; the owner is on the service's own terms (`manual`).
    public var decision: AccessDecision? {
        basis == .owner ? .manual : basis == .none ? nil : entry?.decision
    }

    /// How many more endpoints the tenant may create under the deciding entry's limit; nil for no limit.
    public var remaining: Int? {
        guard basis != .owner, basis != .none, let limit = entry?.connectionLimit else { return nil }
        return max(limit - held, 0)
    }

    /// The status a new endpoint gets when admitted: accepted at once under `auto_accept`, else as
    /// the service's approval setting says.
    public func initialStatus(approvalEnabled: Bool) -> EndpointStatus {
        decision == .autoAccept || !approvalEnabled ? .accepted : .pendingAcceptance
    }

    /// Evaluates `tenant` (an owner key) against the service's `entries` at `now`. `held` counts the
    /// tenant's endpoints on the service that hold a connection (`Admission.holds`). The rule: the owner
    /// is admitted; otherwise the tenant's own live entry decides when there is one, else a live `*`;
    /// an entry at or past its `expiresAt` is as if absent. A `deny` refuses; a limit refuses once
    /// `held` has reached it.
    public static func evaluate(
        entries: [Permission], tenant: String, serviceOwner: String, now: Date, held: Int
    ) -> Admission {
        if tenant.utf8.elementsEqual(serviceOwner.utf8) {
            return Admission(basis: .owner, entry: nil, refusal: nil, held: held)
        }
        let ownKey = Permission.domain(tenant)
        let own = entries.first { $0.permission == ownKey }
        let everyone = entries.first { $0.permission == Permission.everyone }
        let deciding: (Basis, Permission)? =
            if let own, own.isLive(at: now) { (.tenantEntry, own) }
            else if let everyone, everyone.isLive(at: now) { (.everyoneEntry, everyone) }
            else { nil }
        guard let (basis, entry) = deciding else {
            // An expired entry that named the tenant explains the refusal better than "not listed".
            let expired = own ?? everyone
            return Admission(
                basis: .none, entry: expired, refusal: expired == nil ? .notAllowedByService : .accessExpired,
                held: held)
        }
        let refusal: Reason? =
            if entry.decision == .deny { .accessDenied }
            else if let limit = entry.connectionLimit, held >= limit { .connectionLimitExceeded }
            else { nil }
        return Admission(basis: basis, entry: entry, refusal: refusal, held: held)
    }

    /// Whether an endpoint in `status` holds one of its consumer's connections under a limit: every
    /// status except the ones that end a connection for good (so one a later feature adds counts).
    public static func holds(_ status: EndpointStatus) -> Bool {
        !released.contains(status)
    }

    /// The statuses that hold no connection.
    static let released: [EndpointStatus] = [.rejected, .failed, .deleting]

    /// The sentence `CheckAccess` answers with, and refusals carry.
    public func explanation(tenant: String, approvalEnabled: Bool) -> String {
        let until = entry?.expiresAt.map { " until \(Self.timestamp($0))" } ?? ""
        let terms: String = switch initialStatus(approvalEnabled: approvalEnabled) {
        case .accepted where decision == .autoAccept: "new endpoints are accepted at once"
        case .accepted: "new endpoints are accepted at once (the service requires no approval)"
        default: "new endpoints wait for the provider's acceptance"
        }
        let limit = remaining.map { " \($0) of \(entry?.connectionLimit ?? 0) connections remain." } ?? ""
        switch (basis, refusal) {
        case (.owner, _):
            return "\(tenant) owns the service and is always admitted; \(terms)."
        case (.none, _):
            if let entry, let expiresAt = entry.expiresAt {
                return "\(tenant) is not admitted: the entry \(entry.permission) expired at \(Self.timestamp(expiresAt))"
                    + " and no other entry names it."
            }
            return "\(tenant) is not admitted: no entry of the allow-list names it and there is no \"*\" entry."
        case (_, .accessDenied?):
            return "\(tenant) is refused by the entry \(entry?.permission ?? "")\(until), which denies it"
                + (basis == .tenantEntry ? " whatever \"*\" says." : ".")
        case (_, .connectionLimitExceeded?):
            return "\(tenant) is admitted by the entry \(entry?.permission ?? "")\(until) but already holds"
                + " \(held) of its \(entry?.connectionLimit ?? 0) connections, so no new endpoint is allowed."
        default:
            return "\(tenant) is admitted by the entry \(entry?.permission ?? "")\(until); \(terms).\(limit)"
        }
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
