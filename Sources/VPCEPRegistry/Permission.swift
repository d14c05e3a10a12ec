import Foundation

/// What an allow-list entry does with the endpoints of the consumers it admits (docs/DOMAIN.md,
/// "Access policies").
public enum AccessDecision: String, Sendable, Hashable, Codable, CaseIterable {
    /// The service's approval setting decides: waiting for the provider when approval is on.
    case manual
    /// Accepted at once, even when the service requires approval.
    case autoAccept = "auto_accept"
    /// Refused, even when `*` would admit the consumer.
    case deny
}

/// What happens to the live connections an entry admitted once it expires.
public enum ExpiryAction: String, Sendable, Hashable, Codable, CaseIterable {
    /// They stay; the entry only stops admitting new endpoints.
    case keep
    /// The server's sweep rejects them soon after the time.
    case reject
}

/// One entry of a service's allow-list: who may create endpoints to it, and on which terms.
public struct Permission: Sendable, Hashable, Codable {
    public var id: String
    public var serviceID: String
    /// `iam:domain::<tenant-id>` or `*`.
    public var permission: String
    /// Always `domainId` (organization paths are not modelled).
    public var permissionType: String
    public var description: String
    public var region: String
    public var createdAt: Date
    /// When the entry's terms last changed (`createdAt` until then).
    public var updatedAt: Date
    public var decision: AccessDecision
    /// The most endpoints one consumer may hold on the service through this entry; nil for no limit.
    public var connectionLimit: Int?
    /// From this instant on the entry admits no one; nil for never.
    public var expiresAt: Date?
    public var onExpiry: ExpiryAction
    /// Whether the sweep already rejected what this entry's expiry asks to reject (bookkeeping, so that
    /// several servers sweeping act once).
    public var expiryHandled: Bool

    public init(
        id: String, serviceID: String, permission: String, permissionType: String = "domainId", description: String,
        region: String, createdAt: Date, updatedAt: Date? = nil, decision: AccessDecision = .manual,
        connectionLimit: Int? = nil, expiresAt: Date? = nil, onExpiry: ExpiryAction = .keep, expiryHandled: Bool = false
    ) {
        self.id = id
        self.serviceID = serviceID
        self.permission = permission
        self.permissionType = permissionType
        self.description = description
        self.region = region
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.decision = decision
        self.connectionLimit = connectionLimit
        self.expiresAt = expiresAt
        self.onExpiry = onExpiry
        self.expiryHandled = expiryHandled
    }

    private enum CodingKeys: String, CodingKey {
        case id, serviceID, permission, permissionType, description, region, createdAt, updatedAt, decision,
            connectionLimit, expiresAt, onExpiry, expiryHandled
    }

    /// Events logged before access policies existed hold no policy: they decode as the defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        serviceID = try c.decode(String.self, forKey: .serviceID)
        permission = try c.decode(String.self, forKey: .permission)
        permissionType = try c.decode(String.self, forKey: .permissionType)
        description = try c.decode(String.self, forKey: .description)
        region = try c.decode(String.self, forKey: .region)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        updatedAt = try c.decodeIfPresent(Date.self, forKey: .updatedAt) ?? createdAt
        decision = try c.decodeIfPresent(AccessDecision.self, forKey: .decision) ?? .manual
        connectionLimit = try c.decodeIfPresent(Int.self, forKey: .connectionLimit)
        expiresAt = try c.decodeIfPresent(Date.self, forKey: .expiresAt)
        onExpiry = try c.decodeIfPresent(ExpiryAction.self, forKey: .onExpiry) ?? .keep
        expiryHandled = try c.decodeIfPresent(Bool.self, forKey: .expiryHandled) ?? false
    }

    /// The entry admitting everyone.
    public static let everyone = "*"
    static let domainPrefix = "iam:domain::"

    /// The entry admitting one tenant.
    public static func domain(_ tenantID: String) -> String { domainPrefix + tenantID }

    /// Whether the entry still admits anyone at `now` (an expiry is exclusive: at `expiresAt` it admits no one).
    public func isLive(at now: Date) -> Bool { expiresAt.map { now < $0 } ?? true }

    /// The terms an add sets, to compare with what is stored.
    var terms: PermissionEntry {
        PermissionEntry(
            permission: permission, description: description, decision: decision, connectionLimit: connectionLimit,
            expiresAt: expiresAt, onExpiry: onExpiry)
    }
}

/// A permission to add, with its terms. Adding an entry that exists replaces its terms.
public struct PermissionEntry: Sendable, Hashable, Codable {
    public var permission: String
    public var description: String
    public var decision: AccessDecision
    public var connectionLimit: Int?
    public var expiresAt: Date?
    public var onExpiry: ExpiryAction

    public init(
        permission: String, description: String = "", decision: AccessDecision = .manual, connectionLimit: Int? = nil,
        expiresAt: Date? = nil, onExpiry: ExpiryAction = .keep
    ) {
        self.permission = permission
        self.description = description
        self.decision = decision
        self.connectionLimit = connectionLimit
        self.expiresAt = expiresAt
        self.onExpiry = onExpiry
    }
}

/// What happens to the live connections of consumers an allow-list change no longer admits.
public enum OnExisting: String, Sendable, Hashable, Codable, CaseIterable {
    /// They stay as they are (the default): a removal only stops new endpoints.
    case keep
    /// They are rejected in the removal's transaction.
    case reject
}

/// The outcome of a `RemovePermissions`: how many entries went (or would go, in a dry run), and the live
/// connections of consumers no longer admitted, as they are afterwards (rejected with `OnExisting.reject`).
public struct PermissionRemoval: Sendable, Hashable, Codable {
    public var removedCount: Int
    public var affected: [Connection]

    public init(removedCount: Int, affected: [Connection]) {
        self.removedCount = removedCount
        self.affected = affected
    }
}

extension PermissionRemoval {
    private enum CodingKeys: String, CodingKey {
        case removedCount, affected
    }

    /// Also reads an idempotency record stored before removals reported affected connections: the count alone.
    public init(from decoder: any Decoder) throws {
        if let count = try? decoder.singleValueContainer().decode(Int.self) {
            self.init(removedCount: count, affected: [])
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            removedCount: try c.decode(Int.self, forKey: .removedCount),
            affected: try c.decodeIfPresent([Connection].self, forKey: .affected) ?? [])
    }
}
