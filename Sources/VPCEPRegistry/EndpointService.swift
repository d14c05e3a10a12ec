import Foundation

/// `interface` is what tenants publish; `gateway` is for cloud services and needs an operator.
public enum ServiceType: String, Sendable, Hashable, Codable, CaseIterable {
    case interface
    case gateway
}

/// `creating → available | failed`, `available → deleting`.
public enum ServiceStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case creating
    case available
    case failed
    case deleting
}

/// How the backend learns the real client address.
public enum ClientIPMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Nothing is carried (the default).
    case close
    /// Client IP, port and marker id in a TCP option (TOA).
    case toaOpen = "toa_open"
    /// A PROXY protocol header at the start of each connection.
    case proxyOpen = "proxy_open"
    /// Both.
    case open
}

/// One port of a service: consumers connect to `terminalPort` on their endpoint, the backend listens on `servicePort`.
public struct PortMapping: Sendable, Hashable, Codable {
    public var terminalPort: Int
    public var servicePort: Int
    /// `TCP` (an empty string means TCP).
    public var `protocol`: String

    public init(terminalPort: Int, servicePort: Int, protocol: String = "TCP") {
        self.terminalPort = terminalPort
        self.servicePort = servicePort
        self.protocol = `protocol`
    }
}

public struct Tag: Sendable, Hashable, Codable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// A private service a provider publishes from its VPC.
public struct EndpointService: Sendable, Hashable, Codable {
    public var id: String
    /// `{region}.{name}.{id}`, or `{region}.{id}` without a name.
    public var serviceName: String
    /// 0-16 of `[A-Za-z0-9_-]`.
    public var name: String
    public var ownerID: String
    public var region: String
    public var vpcID: String
    public var serviceType: ServiceType
    public var backendKind: BackendKind
    public var backendID: String
    public var ports: [PortMapping]
    public var approvalEnabled: Bool
    public var clientIPMode: ClientIPMode
    public var description: String
    public var tags: [Tag]
    public var status: ServiceStatus
    /// Endpoints of this service that are creating or accepted.
    public var connectionCount: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// Starts at 1 and increases on every change.
    public var revision: UInt64
    /// Advice about the configuration, each `CODE: text`.
    public var warnings: [String]
    /// Whether and how the backend sees the real client address. Derived, never stored.
    public var clientIPNote: String
    /// Made by an operator and listed to every tenant.
    public var isPublic: Bool

    public init(
        id: String, serviceName: String, name: String, ownerID: String, region: String, vpcID: String,
        serviceType: ServiceType, backendKind: BackendKind, backendID: String, ports: [PortMapping],
        approvalEnabled: Bool, clientIPMode: ClientIPMode, description: String, tags: [Tag],
        status: ServiceStatus, connectionCount: Int, createdAt: Date, updatedAt: Date, revision: UInt64,
        warnings: [String], clientIPNote: String, isPublic: Bool = false
    ) {
        self.id = id
        self.serviceName = serviceName
        self.name = name
        self.ownerID = ownerID
        self.region = region
        self.vpcID = vpcID
        self.serviceType = serviceType
        self.backendKind = backendKind
        self.backendID = backendID
        self.ports = ports
        self.approvalEnabled = approvalEnabled
        self.clientIPMode = clientIPMode
        self.description = description
        self.tags = tags
        self.status = status
        self.connectionCount = connectionCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.revision = revision
        self.warnings = warnings
        self.clientIPNote = clientIPNote
        self.isPublic = isPublic
    }
}

/// The request to create an endpoint service. `nil` optionals take their defaults
/// (approval on, client-IP mode close, type interface); `backendKind` is required.
public struct EndpointServiceSpec: Sendable, Hashable, Codable {
    public var vpcID: String
    public var backendKind: BackendKind?
    public var backendID: String
    public var ports: [PortMapping]
    public var name: String
    public var approvalEnabled: Bool?
    public var clientIPMode: ClientIPMode?
    public var description: String
    public var tags: [Tag]
    public var serviceType: ServiceType?
    /// Listed to every tenant; operators only.
    public var isPublic: Bool

    public init(
        vpcID: String, backendKind: BackendKind?, backendID: String, ports: [PortMapping], name: String = "",
        approvalEnabled: Bool? = nil, clientIPMode: ClientIPMode? = nil, description: String = "",
        tags: [Tag] = [], serviceType: ServiceType? = nil, isPublic: Bool = false
    ) {
        self.vpcID = vpcID
        self.backendKind = backendKind
        self.backendID = backendID
        self.ports = ports
        self.name = name
        self.approvalEnabled = approvalEnabled
        self.clientIPMode = clientIPMode
        self.description = description
        self.tags = tags
        self.serviceType = serviceType
        self.isPublic = isPublic
    }
}

/// Filters of `listEndpointServices`; `nil` or empty means no filter.
public struct EndpointServiceFilter: Sendable, Hashable {
    /// Case-insensitive substring of the name.
    public var name: String?
    public var id: String?
    public var status: ServiceStatus?
    /// Every key must be present; a key's values are alternatives, an empty value matches any value.
    public var tags: [Tag]
    /// Whether a service must match every tag key named (the default) or any one of them.
    public var tagMatch: TagMatch
    /// Only services made public by operators.
    public var publicOnly: Bool

    public init(
        name: String? = nil, id: String? = nil, status: ServiceStatus? = nil, tags: [Tag] = [], tagMatch: TagMatch = .all,
        publicOnly: Bool = false
    ) {
        self.tagMatch = tagMatch
        self.name = name
        self.id = id
        self.status = status
        self.tags = tags
        self.publicOnly = publicOnly
    }
}

/// What an update changes; `nil` leaves a field as it is. `ports` replaces the whole list.
public struct EndpointServiceUpdate: Sendable, Hashable, Codable {
    public var approvalEnabled: Bool?
    public var name: String?
    public var ports: [PortMapping]?
    public var clientIPMode: ClientIPMode?
    public var description: String?
    /// Applies the update only if the service is still at this revision.
    public var expectedRevision: UInt64?

    public init(
        approvalEnabled: Bool? = nil, name: String? = nil, ports: [PortMapping]? = nil,
        clientIPMode: ClientIPMode? = nil, description: String? = nil, expectedRevision: UInt64? = nil
    ) {
        self.approvalEnabled = approvalEnabled
        self.name = name
        self.ports = ports
        self.clientIPMode = clientIPMode
        self.description = description
        self.expectedRevision = expectedRevision
    }
}

/// What a consumer may learn of a service it can see: `describe` and the public list.
public struct EndpointServiceSummary: Sendable, Hashable {
    public var id: String
    public var serviceName: String
    public var serviceType: ServiceType
    public var region: String
    public var createdAt: Date
    public var approvalEnabled: Bool
    public var isPublic: Bool
    /// The provider's owner key.
    public var ownerID: String

    public init(_ service: EndpointService) {
        id = service.id
        serviceName = service.serviceName
        serviceType = service.serviceType
        region = service.region
        createdAt = service.createdAt
        approvalEnabled = service.approvalEnabled
        isPublic = service.isPublic
        ownerID = service.ownerID
    }
}
