import Foundation

/// `pendingAcceptance | creating → accepted`, `pendingAcceptance | accepted → rejected`; `failed` when its
/// service went away while it waited. `creating` and `deleting` are never visible (there is no data plane).
public enum EndpointStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pendingAcceptance
    case creating
    case accepted
    case rejected
    case failed
    case deleting

    /// The states `connection_count` counts.
    public var isConnected: Bool { self == .creating || self == .accepted }
}

/// A consumer's VPC endpoint to an endpoint service.
public struct Endpoint: Sendable, Hashable, Codable {
    public var id: String
    /// The consumer.
    public var ownerID: String
    public var region: String
    public var vpcID: String
    public var subnetID: String
    public var serviceID: String
    /// The service's current name (the last one known, once the service is gone).
    public var serviceName: String
    public var serviceType: ServiceType
    /// Allocated in the subnet. Presented only while accepted, or rejected after an acceptance.
    public var ip: String
    public var status: EndpointStatus
    /// Identifies the connection to the provider; unique, never reused.
    public var markerID: UInt64
    /// Empty unless DNS was enabled at create.
    public var dnsName: String
    /// IPv4 CIDRs (addresses stored as /32) allowed to use the endpoint when `enableWhitelist`.
    public var whitelist: [String]
    public var enableWhitelist: Bool
    /// The consumer's description.
    public var description: String
    public var tags: [Tag]
    /// The provider's description of the connection.
    public var connectionDescription: String
    /// The owner key of whoever last accepted or rejected it, and when.
    public var decidedBy: String
    public var decidedAt: Date?
    /// Whether it has ever been accepted (the IP stays visible after a later rejection).
    public var everAccepted: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// 1 at create, one more on every change of the stored record; tag changes may name the revision
    /// they were made against (docs/DOMAIN.md, "Tags").
    public var revision: UInt64

    public init(
        id: String, ownerID: String, region: String, vpcID: String, subnetID: String, serviceID: String,
        serviceName: String, serviceType: ServiceType, ip: String, status: EndpointStatus, markerID: UInt64,
        dnsName: String, whitelist: [String], enableWhitelist: Bool, description: String, tags: [Tag],
        connectionDescription: String = "", decidedBy: String = "", decidedAt: Date? = nil, everAccepted: Bool,
        createdAt: Date, updatedAt: Date, revision: UInt64 = 1
    ) {
        self.id = id
        self.ownerID = ownerID
        self.region = region
        self.vpcID = vpcID
        self.subnetID = subnetID
        self.serviceID = serviceID
        self.serviceName = serviceName
        self.serviceType = serviceType
        self.ip = ip
        self.status = status
        self.markerID = markerID
        self.dnsName = dnsName
        self.whitelist = whitelist
        self.enableWhitelist = enableWhitelist
        self.description = description
        self.tags = tags
        self.connectionDescription = connectionDescription
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.everAccepted = everAccepted
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.revision = revision
    }

    /// Marks a change of the stored record: a new revision, updated now. Every change goes through here.
    mutating func changed(at now: Date) {
        updatedAt = now
        revision += 1
    }

    /// Whether the IP is shown: accepted, or rejected after an acceptance (docs/DOMAIN.md, "Endpoints").
    public var ipVisible: Bool {
        status == .accepted || (status == .rejected && everAccepted)
    }
}

extension Endpoint {
    private enum CodingKeys: String, CodingKey {
        case id, ownerID, region, vpcID, subnetID, serviceID, serviceName, serviceType, ip, status, markerID, dnsName
        case whitelist, enableWhitelist, description, tags, connectionDescription, decidedBy, decidedAt, everAccepted
        case createdAt, updatedAt, revision
    }

    /// As synthesized, except that `revision` may be absent: events and idempotency records written
    /// before endpoints had revisions hold none, and read back as revision 1.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), ownerID: try c.decode(String.self, forKey: .ownerID),
            region: try c.decode(String.self, forKey: .region), vpcID: try c.decode(String.self, forKey: .vpcID),
            subnetID: try c.decode(String.self, forKey: .subnetID),
            serviceID: try c.decode(String.self, forKey: .serviceID),
            serviceName: try c.decode(String.self, forKey: .serviceName),
            serviceType: try c.decode(ServiceType.self, forKey: .serviceType), ip: try c.decode(String.self, forKey: .ip),
            status: try c.decode(EndpointStatus.self, forKey: .status),
            markerID: try c.decode(UInt64.self, forKey: .markerID), dnsName: try c.decode(String.self, forKey: .dnsName),
            whitelist: try c.decode([String].self, forKey: .whitelist),
            enableWhitelist: try c.decode(Bool.self, forKey: .enableWhitelist),
            description: try c.decode(String.self, forKey: .description), tags: try c.decode([Tag].self, forKey: .tags),
            connectionDescription: try c.decode(String.self, forKey: .connectionDescription),
            decidedBy: try c.decode(String.self, forKey: .decidedBy),
            decidedAt: try c.decodeIfPresent(Date.self, forKey: .decidedAt),
            everAccepted: try c.decode(Bool.self, forKey: .everAccepted),
            createdAt: try c.decode(Date.self, forKey: .createdAt), updatedAt: try c.decode(Date.self, forKey: .updatedAt),
            revision: try c.decodeIfPresent(UInt64.self, forKey: .revision) ?? 1)
    }
}

/// The provider's view of an endpoint on one of its services.
public struct Connection: Sendable, Hashable, Codable {
    /// The endpoint's id.
    public var id: String
    public var markerID: UInt64
    /// The consumer.
    public var consumerID: String
    public var status: EndpointStatus
    /// The provider's description.
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    public var decidedBy: String
    public var decidedAt: Date?

    public init(_ endpoint: Endpoint) {
        id = endpoint.id
        markerID = endpoint.markerID
        consumerID = endpoint.ownerID
        status = endpoint.status
        description = endpoint.connectionDescription
        createdAt = endpoint.createdAt
        updatedAt = endpoint.updatedAt
        decidedBy = endpoint.decidedBy
        decidedAt = endpoint.decidedAt
    }
}

/// The request to create an endpoint. The service is named by exactly one of `serviceID` and `serviceName`.
public struct EndpointSpec: Sendable, Hashable, Codable {
    public var serviceID: String?
    public var serviceName: String?
    public var vpcID: String
    public var subnetID: String
    /// A free address of the subnet; allocated when nil or empty.
    public var ip: String?
    public var whitelist: [String]
    public var enableWhitelist: Bool
    public var enableDNS: Bool
    public var description: String
    public var tags: [Tag]

    public init(
        serviceID: String? = nil, serviceName: String? = nil, vpcID: String, subnetID: String, ip: String? = nil,
        whitelist: [String] = [], enableWhitelist: Bool = false, enableDNS: Bool = false, description: String = "",
        tags: [Tag] = []
    ) {
        self.serviceID = serviceID
        self.serviceName = serviceName
        self.vpcID = vpcID
        self.subnetID = subnetID
        self.ip = ip
        self.whitelist = whitelist
        self.enableWhitelist = enableWhitelist
        self.enableDNS = enableDNS
        self.description = description
        self.tags = tags
    }
}

/// What an endpoint update changes; `nil` leaves a field as it is.
public struct EndpointUpdate: Sendable, Hashable, Codable {
    /// Replaces the whole list; empty clears it.
    public var whitelist: [String]?
    public var enableWhitelist: Bool?
    public var description: String?

    public init(whitelist: [String]? = nil, enableWhitelist: Bool? = nil, description: String? = nil) {
        self.whitelist = whitelist
        self.enableWhitelist = enableWhitelist
        self.description = description
    }
}

/// Filters of `listEndpoints` and `listConnections`; `nil` or empty means no filter.
public struct EndpointFilter: Sendable, Hashable {
    public var id: String?
    public var vpcID: String?
    /// Case-insensitive substring of the service name.
    public var serviceName: String?
    public var status: EndpointStatus?
    public var markerID: UInt64?
    /// As for services: keys ANDed, a key's values ORed, an empty value matches any value.
    public var tags: [Tag]
    /// Whether a resource must match every tag key named (the default) or any one of them.
    public var tagMatch: TagMatch
    /// Only endpoints of this service (set by the registry for connection lists).
    public var serviceID: String?

    public init(
        id: String? = nil, vpcID: String? = nil, serviceName: String? = nil, status: EndpointStatus? = nil,
        markerID: UInt64? = nil, tags: [Tag] = [], tagMatch: TagMatch = .all, serviceID: String? = nil
    ) {
        self.tagMatch = tagMatch
        self.id = id
        self.vpcID = vpcID
        self.serviceName = serviceName
        self.status = status
        self.markerID = markerID
        self.tags = tags
        self.serviceID = serviceID
    }
}
