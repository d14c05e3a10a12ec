import Foundation

/// A tenant's virtual network in one region.
public struct VPC: Sendable, Hashable, Codable {
    public var id: String
    /// 1-64 of `[A-Za-z0-9_.-]`; not unique.
    public var name: String
    /// IPv4 CIDR, prefix /8-/28, host bits zero, e.g. `10.0.0.0/16`.
    public var cidr: String
    public var region: String
    /// Tenant id, or `operator:<name>`.
    public var ownerID: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, name: String, cidr: String, region: String, ownerID: String, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.name = name
        self.cidr = cidr
        self.region = region
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
