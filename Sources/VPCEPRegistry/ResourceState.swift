import Foundation

/// One tenant's limit of one quota type in one region, as an operator set it, and its usage then.
public struct QuotaSetting: Sendable, Hashable, Codable {
    public var tenantID: String
    public var region: String
    public var type: QuotaType
    public var limit: Int
    public var used: Int

    public init(tenantID: String, region: String, type: QuotaType, limit: Int, used: Int) {
        self.tenantID = tenantID
        self.region = region
        self.type = type
        self.limit = limit
        self.used = used
    }

    /// The resource id of a quota in the log: `<tenant>/<type>` (tenant ids have no `/`).
    public var resourceID: String { "\(tenantID)/\(type.rawValue)" }
}

/// A resource as an event carries it.
///
/// `indirect`: inline, the largest resource made every event, history entry and watch message as big
/// as it, and a watch's loop keeps the async frames that held them for as long as it lives (13,248
/// bytes per idle watch before, see `Registry.follow`).
public indirect enum ResourceState: Sendable, Hashable {
    case vpc(VPC)
    case subnet(Subnet)
    case backend(Backend)
    case endpointService(EndpointService)
    case permission(Permission)
    case endpoint(Endpoint)
    /// The provider's view of an endpoint event; never stored, only projected (`seen(as:)`).
    case connection(Connection)
    case quota(QuotaSetting)

    public var kind: ResourceKind {
        switch self {
        case .vpc: .vpc
        case .subnet: .subnet
        case .backend(let backend): backend.kind == .vm ? .vm : .loadBalancer
        case .endpointService: .endpointService
        case .permission: .permission
        case .endpoint, .connection: .endpoint
        case .quota: .quota
        }
    }

    public var resourceID: String {
        switch self {
        case .vpc(let vpc): vpc.id
        case .subnet(let subnet): subnet.id
        case .backend(let backend): backend.id
        case .endpointService(let service): service.id
        case .permission(let permission): permission.id
        case .endpoint(let endpoint): endpoint.id
        case .connection(let connection): connection.id
        case .quota(let quota): quota.resourceID
        }
    }

    var revision: UInt64? {
        if case .endpointService(let service) = self { return service.revision }
        return nil
    }

    // MARK: The stored form

    /// The stable serialized form a store keeps: the resource's JSON with sorted keys and times in
    /// milliseconds since 1970. Decoded again by `init(kind:serialized:)`.
    public func serialized() throws -> String {
        // The kinds written most, directly (the same bytes; `StableJSON`).
        switch self {
        case .vpc(let value): return value.stableJSON()
        case .endpointService(let value): return value.stableJSON()
        case .endpoint(let value): return value.stableJSON()
        default: break
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        let data: Data
        switch self {
        case .vpc(let value): data = try encoder.encode(value)
        case .subnet(let value): data = try encoder.encode(value)
        case .backend(let value): data = try encoder.encode(value)
        case .endpointService(let value): data = try encoder.encode(value)
        case .permission(let value): data = try encoder.encode(value)
        case .endpoint(let value): data = try encoder.encode(value)
        case .connection(let value): data = try encoder.encode(value)
        case .quota(let value): data = try encoder.encode(value)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A stored state of a resource of `kind`.
    public init(kind: ResourceKind, serialized: String) throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        let data = Data(serialized.utf8)
        switch kind {
        case .vpc: self = .vpc(try decoder.decode(VPC.self, from: data))
        case .subnet: self = .subnet(try decoder.decode(Subnet.self, from: data))
        case .loadBalancer, .vm: self = .backend(try decoder.decode(Backend.self, from: data))
        case .endpointService: self = .endpointService(try decoder.decode(EndpointService.self, from: data))
        case .permission: self = .permission(try decoder.decode(Permission.self, from: data))
        case .endpoint: self = .endpoint(try decoder.decode(Endpoint.self, from: data))
        case .quota: self = .quota(try decoder.decode(QuotaSetting.self, from: data))
        }
    }

    // MARK: Views

    /// The state as a viewer with `view` may see it: what the reads present (derived fields filled in,
    /// an endpoint's address hidden until accepted), a consumer without the provider's note on its
    /// connection, a provider an endpoint only as its `Connection`.
    public func seen(as view: EventView) -> ResourceState {
        switch self {
        case .endpointService(let service):
            return .endpointService(Registry.present(service))
        case .endpoint(let endpoint):
            switch view {
            case .full:
                return .endpoint(Registry.present(endpoint))
            case .owner:
                var endpoint = Registry.present(endpoint)
                endpoint.connectionDescription = ""
                return .endpoint(endpoint)
            case .provider:
                return .connection(Connection(endpoint))
            }
        default:
            return self
        }
    }
}

extension ResourceState {
    /// About the size of `serialized()`, without encoding: a base per kind (the fixed fields, their keys,
    /// ids) plus the free-form text and lists. For bounds on memory, not for anything exact.
    var estimatedBytes: Int {
        func text(_ values: [String]) -> Int { values.reduce(0) { $0 + $1.utf8.count + 3 } }
        func tags(_ tags: [Tag]) -> Int { tags.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 24 } }
        switch self {
        case .vpc(let vpc):
            return 300 + vpc.name.utf8.count
        case .subnet(let subnet):
            return 340 + subnet.name.utf8.count
        case .backend(let backend):
            return 420 + backend.name.utf8.count + text(backend.ingressCIDRs)
        case .endpointService(let service):
            return 700 + service.name.utf8.count + service.description.utf8.count + tags(service.tags)
                + service.ports.count * 60 + text(service.warnings) + service.clientIPNote.utf8.count
        case .permission(let permission):
            return 420 + permission.permission.utf8.count + permission.description.utf8.count
        case .endpoint(let endpoint):
            return 900 + endpoint.description.utf8.count + tags(endpoint.tags) + text(endpoint.whitelist)
                + endpoint.connectionDescription.utf8.count + endpoint.requestMessage.utf8.count
                + endpoint.decisionReason.utf8.count
        case .connection(let connection):
            return 500 + connection.description.utf8.count + connection.requestMessage.utf8.count
                + connection.reason.utf8.count
        case .quota:
            return 120
        }
    }
}
