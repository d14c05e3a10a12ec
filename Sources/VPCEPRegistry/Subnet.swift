import Foundation

/// A subnet of a VPC: inside the VPC's CIDR, not overlapping its siblings or 198.19.128.0/17.
public struct Subnet: Sendable, Hashable, Codable {
    public var id: String
    public var vpcID: String
    public var name: String
    public var cidr: String
    public var region: String
    public var ownerID: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, vpcID: String, name: String, cidr: String, region: String, ownerID: String,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.vpcID = vpcID
        self.name = name
        self.cidr = cidr
        self.region = region
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
