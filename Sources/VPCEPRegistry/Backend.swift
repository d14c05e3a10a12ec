import Foundation

/// What an endpoint service forwards to.
public enum BackendKind: String, Sendable, Hashable, Codable, CaseIterable {
    case loadBalancer = "load_balancer"
    case vm = "vm"
}

/// A load balancer or a server (VM) in a VPC's subnet: the backend of endpoint services.
public struct Backend: Sendable, Hashable, Codable {
    public var id: String
    public var kind: BackendKind
    public var vpcID: String
    public var subnetID: String
    public var name: String
    /// Private IPv4 address in the subnet.
    public var ip: String
    /// Source ranges its security group / listener ACL admits (IPv4 CIDRs or addresses).
    public var ingressCIDRs: [String]
    public var region: String
    public var ownerID: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, kind: BackendKind, vpcID: String, subnetID: String, name: String, ip: String,
        ingressCIDRs: [String], region: String, ownerID: String, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.vpcID = vpcID
        self.subnetID = subnetID
        self.name = name
        self.ip = ip
        self.ingressCIDRs = ingressCIDRs
        self.region = region
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
