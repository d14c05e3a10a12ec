import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite

public let tenantA = CallContext(caller: .tenant("tenant-a"), region: "r1")
public let tenantB = CallContext(caller: .tenant("tenant-b"), region: "r1")
public let tenantAInR2 = CallContext(caller: .tenant("tenant-a"), region: "r2")
public let operatorR1 = CallContext(caller: .operator("ops"), region: "r1")
public let servedRegions: Set<String> = ["r1", "r2"]

/// A clock that advances one second per reading, so creation order is time order.
public final class TickingClock: Sendable {
    private let next: Mutex<Double>
    public init(start: Double = 1_700_000_000) { next = Mutex(start) }
    public func now() -> Date {
        next.withLock { value in
            defer { value += 1 }
            return Date(timeIntervalSince1970: value)
        }
    }
}

/// Ids `id-0001`, `id-0002`, … in creation order.
public final class SequentialIDs: Sendable {
    private let counter = Mutex(0)
    public init() {}
    public func next() -> String {
        counter.withLock { value in
            value += 1
            return String(format: "id-%04d", value)
        }
    }
}

public func temporaryDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-registry-tests-\(UUID().uuidString)").path
}

/// Runs `body` against a registry on a real SQLite store in a fresh temporary directory.
public func withRegistry(
    regions: Set<String> = servedRegions,
    clock: (@Sendable () -> Date)? = nil,
    makeID: (@Sendable () -> String)? = nil,
    changeFeed: ChangeFeedConfiguration = .defaults,
    _ body: (Registry, SQLiteRegistryStore) async throws -> Void
) async throws {
    let directory = temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try await SQLiteRegistryStore.open(directory: directory)
    let ticking = TickingClock()
    let ids = SequentialIDs()
    let registry = Registry(
        store: store, regions: regions, clock: clock ?? { ticking.now() }, makeID: makeID ?? { ids.next() },
        changeFeed: changeFeed)
    do {
        try await body(registry, store)
    } catch {
        try? await store.close()
        throw error
    }
    try await store.close()
}

/// Expects `body` to fail with exactly this code, reason and field.
public func expectError<T>(
    _ code: RegistryError.Code, _ reason: String, field: String?,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        Issue.record("expected \(code.name) \(reason), got \(value)", sourceLocation: sourceLocation)
    } catch let error as RegistryError {
        #expect(error.code == code, "\(error.debugDescription)", sourceLocation: sourceLocation)
        #expect(error.reason.rawValue == reason, "\(error.debugDescription)", sourceLocation: sourceLocation)
        #expect(error.field == field, "\(error.debugDescription)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a RegistryError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// A VPC 10.0.0.0/16 with subnet 10.0.1.0/24 and a load balancer whose ingress admits the endpoint range.
public struct Network: Sendable {
    public var vpc: VPC
    public var subnet: Subnet
    public var loadBalancer: Backend
    public var vm: Backend
}

public func makeNetwork(_ registry: Registry, _ ctx: CallContext, cidr: String = "10.0.0.0/16") async throws -> Network {
    let vpc = try await registry.createVPC(ctx, name: "vpc", cidr: cidr)
    let prefix = cidr.split(separator: ".").prefix(2).joined(separator: ".")
    let subnet = try await registry.createSubnet(ctx, vpcID: vpc.id, name: "subnet", cidr: "\(prefix).1.0/24")
    let lb = try await registry.createBackend(
        ctx, kind: .loadBalancer, vpcID: vpc.id, subnetID: subnet.id, name: "lb", ip: nil,
        ingressCIDRs: ["198.19.128.0/17"])
    let vm = try await registry.createBackend(
        ctx, kind: .vm, vpcID: vpc.id, subnetID: subnet.id, name: "vm", ip: nil, ingressCIDRs: ["0.0.0.0/0"])
    return Network(vpc: vpc, subnet: subnet, loadBalancer: lb, vm: vm)
}

public func spec(_ network: Network, ports: [PortMapping] = [PortMapping(terminalPort: 80, servicePort: 8080)]) -> EndpointServiceSpec {
    EndpointServiceSpec(vpcID: network.vpc.id, backendKind: .loadBalancer, backendID: network.loadBalancer.id, ports: ports)
}

/// Everything every owner can see in every served region, through the public API.
public struct Snapshot: Equatable, Sendable {
    public var vpcs: [VPC] = []
    public var subnets: [Subnet] = []
    public var backends: [Backend] = []
    public var services: [EndpointService] = []
    public var quotas: [[Quota]] = []
    public var endpoints: [Endpoint] = []
    public var permissions: [[Permission]] = []
    public var connections: [[Connection]] = []

    public init() {}
}

public func snapshot(_ registry: Registry, owners: [CallContext] = [tenantA, tenantB]) async throws -> Snapshot {
    var result = Snapshot()
    let page = PageRequest(limit: 1000)
    for region in registry.regions.sorted() {
        let ctx = CallContext(caller: .operator("auditor"), region: region)
        result.vpcs += try await registry.listVPCs(ctx, page: page).items
        result.subnets += try await registry.listSubnets(ctx, vpcID: nil, page: page).items
        for kind in BackendKind.allCases {
            result.backends += try await registry.listBackends(ctx, kind: kind, vpcID: nil, page: page).items
        }
        let services = try await registry.listEndpointServices(ctx, filter: .init(), page: page).items
        result.services += services
        result.endpoints += try await registry.listEndpoints(ctx, filter: .init(), page: page).items
        for service in services {
            result.permissions.append(
                try await registry.listPermissions(ctx, serviceID: service.id, serviceName: nil, permission: nil, page: page).items)
            result.connections.append(
                try await registry.listConnections(ctx, serviceID: service.id, serviceName: nil, filter: .init(), page: page).items)
        }
        for owner in owners {
            result.quotas.append(try await registry.listQuotas(CallContext(caller: owner.caller, region: region), type: nil))
        }
    }
    return result
}

/// A service of tenant A (approval as given) and tenant B's network to connect from.
public struct Story: Sendable {
    public var provider: Network
    public var consumer: Network
    public var service: EndpointService
}

public func makeStory(_ registry: Registry, approval: Bool = true, allow: [String] = ["iam:domain::tenant-b"]) async throws -> Story {
    let provider = try await makeNetwork(registry, tenantA)
    let consumer = try await makeNetwork(registry, tenantB, cidr: "10.1.0.0/16")
    var request = spec(provider)
    request.approvalEnabled = approval
    let service = try await registry.createEndpointService(tenantA, request)
    if !allow.isEmpty {
        _ = try await registry.addPermissions(
            tenantA, serviceID: service.id, serviceName: nil, entries: allow.map { PermissionEntry(permission: $0) })
    }
    return Story(provider: provider, consumer: consumer, service: service)
}

public func endpointSpec(_ story: Story, ip: String? = nil) -> EndpointSpec {
    EndpointSpec(serviceID: story.service.id, vpcID: story.consumer.vpc.id, subnetID: story.consumer.subnet.id, ip: ip)
}

public func connectionCount(_ registry: Registry, _ service: EndpointService) async throws -> Int {
    try await registry.getEndpointService(operatorR1, id: service.id, serviceName: nil).connectionCount
}

/// A clock the test sets; it stands still between settings.
public final class SettableClock: Sendable {
    private let current: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_700_000_000)) { current = Mutex(start) }
    public func now() -> Date { current.withLock { $0 } }
    public func set(_ date: Date) { current.withLock { $0 = date } }
    public func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
}

/// A clock that advances `step` seconds per reading from `start`, however many tasks read it.
public final class SteppingClock: Sendable {
    private let readings = Mutex(0)
    private let start: Date
    private let step: TimeInterval
    public init(start: Date = Date(timeIntervalSince1970: 1_700_000_000), step: TimeInterval) {
        self.start = start
        self.step = step
    }
    public func now() -> Date {
        readings.withLock { count in
            defer { count += 1 }
            return start + step * Double(count)
        }
    }
}
