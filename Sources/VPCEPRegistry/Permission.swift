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
