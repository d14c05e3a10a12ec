import Foundation

/// One entry of a service's allow-list: who may create endpoints to it.
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

    public init(
        id: String, serviceID: String, permission: String, permissionType: String = "domainId", description: String,
        region: String, createdAt: Date
    ) {
        self.id = id
        self.serviceID = serviceID
        self.permission = permission
        self.permissionType = permissionType
        self.description = description
        self.region = region
        self.createdAt = createdAt
    }

    /// The entry admitting everyone.
    public static let everyone = "*"
    static let domainPrefix = "iam:domain::"

    /// The entry admitting one tenant.
    public static func domain(_ tenantID: String) -> String { domainPrefix + tenantID }
}

/// A permission to add.
public struct PermissionEntry: Sendable, Hashable, Codable {
    public var permission: String
    public var description: String

    public init(permission: String, description: String = "") {
        self.permission = permission
        self.description = description
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
