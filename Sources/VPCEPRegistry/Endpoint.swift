import Foundation

/// `pendingAcceptance | creating → accepted`, `accepted ⇄ suspended`, `pendingAcceptance | creating | accepted |
/// suspended → rejected`; `failed` when its service went away while it waited. `creating` and `deleting` are
/// never visible (there is no data plane).
public enum EndpointStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pendingAcceptance
    case creating
    case accepted
    case rejected
    case failed
    case deleting
    /// Accepted, then paused by the provider: it keeps its address and may be resumed (docs/DOMAIN.md,
    /// "Suspend and resume").
    case suspended

    /// The states `connection_count` counts, and that keep a service from being deleted without `force`:
    /// those that hold a connection (a suspended one keeps its address).
    public var isConnected: Bool { self == .creating || self == .accepted || self == .suspended }

    /// Not yet finished: what a revocation or a forced delete affects (everything but rejected, failed and
    /// deleting).
    public var isLive: Bool { self == .pendingAcceptance || isConnected }
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
    /// The consumer's message to the provider, given at create.
    public var requestMessage: String
    /// The reason given with the last decision (accept, reject, suspend, resume), or set by the registry
    /// when it rejected the connection itself (a revocation, a forced delete); empty when none was given.
    public var decisionReason: String
    /// 1 at create, one more on every change of the stored record; tag changes may name the revision
    /// they were made against (docs/DOMAIN.md, "Tags").
    public var revision: UInt64

    public init(
        id: String, ownerID: String, region: String, vpcID: String, subnetID: String, serviceID: String,
        serviceName: String, serviceType: ServiceType, ip: String, status: EndpointStatus, markerID: UInt64,
        dnsName: String, whitelist: [String], enableWhitelist: Bool, description: String, tags: [Tag],
        connectionDescription: String = "", decidedBy: String = "", decidedAt: Date? = nil, everAccepted: Bool,
        createdAt: Date, updatedAt: Date, requestMessage: String = "", decisionReason: String = "",
        revision: UInt64 = 1
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
        self.requestMessage = requestMessage
        self.decisionReason = decisionReason
        self.revision = revision
    }

    /// Marks a change of the stored record: a new revision, updated now. Every change goes through here.
    mutating func changed(at now: Date) {
        updatedAt = now
        revision += 1
    }

    /// Whether the IP is shown: accepted or suspended, or rejected after an acceptance (docs/DOMAIN.md,
    /// "Endpoints").
    public var ipVisible: Bool {
        status == .accepted || status == .suspended || (status == .rejected && everAccepted)
    }
}

extension Endpoint {
    private enum CodingKeys: String, CodingKey {
        case id, ownerID, region, vpcID, subnetID, serviceID, serviceName, serviceType, ip, status, markerID, dnsName
        case whitelist, enableWhitelist, description, tags, connectionDescription, decidedBy, decidedAt, everAccepted
        case createdAt, updatedAt, requestMessage, decisionReason, revision
    }

    /// As synthesized, except for keys that records written by earlier versions lack (change-log states
    /// and idempotency records): messages read as empty, and the revision as 1.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), ownerID: try c.decode(String.self, forKey: .ownerID),
            region: try c.decode(String.self, forKey: .region), vpcID: try c.decode(String.self, forKey: .vpcID),
            subnetID: try c.decode(String.self, forKey: .subnetID), serviceID: try c.decode(String.self, forKey: .serviceID),
            serviceName: try c.decode(String.self, forKey: .serviceName),
            serviceType: try c.decode(ServiceType.self, forKey: .serviceType), ip: try c.decode(String.self, forKey: .ip),
            status: try c.decode(EndpointStatus.self, forKey: .status), markerID: try c.decode(UInt64.self, forKey: .markerID),
            dnsName: try c.decode(String.self, forKey: .dnsName), whitelist: try c.decode([String].self, forKey: .whitelist),
            enableWhitelist: try c.decode(Bool.self, forKey: .enableWhitelist),
            description: try c.decode(String.self, forKey: .description), tags: try c.decode([Tag].self, forKey: .tags),
            connectionDescription: try c.decode(String.self, forKey: .connectionDescription),
            decidedBy: try c.decode(String.self, forKey: .decidedBy),
            decidedAt: try c.decodeIfPresent(Date.self, forKey: .decidedAt),
            everAccepted: try c.decode(Bool.self, forKey: .everAccepted),
            createdAt: try c.decode(Date.self, forKey: .createdAt), updatedAt: try c.decode(Date.self, forKey: .updatedAt),
            requestMessage: try c.decodeIfPresent(String.self, forKey: .requestMessage) ?? "",
            decisionReason: try c.decodeIfPresent(String.self, forKey: .decisionReason) ?? "",
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
    /// The consumer's message given at create.
    public var requestMessage: String
    /// The reason of the last decision (`Endpoint.decisionReason`).
    public var reason: String

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
        requestMessage = endpoint.requestMessage
        reason = endpoint.decisionReason
    }
}

extension Connection {
    private enum CodingKeys: String, CodingKey {
        case id, markerID, consumerID, status, description, createdAt, updatedAt, decidedBy, decidedAt
        case requestMessage, reason
    }

    /// As `Endpoint`'s: idempotency records written before the messages existed read them as empty.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        markerID = try c.decode(UInt64.self, forKey: .markerID)
        consumerID = try c.decode(String.self, forKey: .consumerID)
        status = try c.decode(EndpointStatus.self, forKey: .status)
        description = try c.decode(String.self, forKey: .description)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        updatedAt = try c.decode(Date.self, forKey: .updatedAt)
        decidedBy = try c.decode(String.self, forKey: .decidedBy)
        decidedAt = try c.decodeIfPresent(Date.self, forKey: .decidedAt)
        requestMessage = try c.decodeIfPresent(String.self, forKey: .requestMessage) ?? ""
        reason = try c.decodeIfPresent(String.self, forKey: .reason) ?? ""
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
    /// Shown to the provider with the connection; empty for none.
    public var requestMessage: String

    public init(
        serviceID: String? = nil, serviceName: String? = nil, vpcID: String, subnetID: String, ip: String? = nil,
        whitelist: [String] = [], enableWhitelist: Bool = false, enableDNS: Bool = false, description: String = "",
        tags: [Tag] = [], requestMessage: String = ""
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
        self.requestMessage = requestMessage
    }
}

extension EndpointSpec {
    private enum CodingKeys: String, CodingKey {
        case serviceID, serviceName, vpcID, subnetID, ip, whitelist, enableWhitelist, enableDNS, description, tags
        case requestMessage
    }

    /// Idempotency fingerprints are JSON of the spec: without a message it encodes as it did before
    /// messages existed, so a key used across an upgrade still matches its request.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(serviceID, forKey: .serviceID)
        try c.encodeIfPresent(serviceName, forKey: .serviceName)
        try c.encode(vpcID, forKey: .vpcID)
        try c.encode(subnetID, forKey: .subnetID)
        try c.encodeIfPresent(ip, forKey: .ip)
        try c.encode(whitelist, forKey: .whitelist)
        try c.encode(enableWhitelist, forKey: .enableWhitelist)
        try c.encode(enableDNS, forKey: .enableDNS)
        try c.encode(description, forKey: .description)
        try c.encode(tags, forKey: .tags)
        if !requestMessage.isEmpty { try c.encode(requestMessage, forKey: .requestMessage) }
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
