import Foundation
import Synchronization
import VPCEPRegistry
import VPCEPStoreSQLite

/// What `ScaleSeeder` puts into a data directory (Benchmarks/scale.sh, issue 14's scale scenario).
@_spi(Benchmarks)
public struct ScaleSeedPlan: Sendable {
    /// Services plus endpoints; a tenth are services.
    public var records: Int
    /// At most this many tenants, each with at least one service.
    public var tenants: Int
    /// Drives every choice (approval, tags), so that two seeds of one plan hold the same mix.
    public var seed: UInt64
    public var region: String
    /// The operator that raises the tenants' quotas.
    public var operatorName: String
    /// Tenants seeded at once: enough concurrent transactions for the store's group commit to batch.
    public var workers: Int
    /// One store transaction per tenant (`true`, minutes for 1,000,000 records) or per registry call,
    /// as the server writes them (`false`, ~700 records/s; kept to compare the two).
    public var perTenantTransaction: Bool

    public init(
        records: Int, tenants: Int, seed: UInt64, region: String, operatorName: String, workers: Int,
        perTenantTransaction: Bool = true
    ) {
        self.records = records
        self.tenants = tenants
        self.seed = seed
        self.region = region
        self.operatorName = operatorName
        self.workers = workers
        self.perTenantTransaction = perTenantTransaction
    }
}

@_spi(Benchmarks)
public struct ScaleSeedSummary: Sendable {
    public var tenants = 0
    public var services = 0
    public var endpoints = 0
    /// Endpoints created pending acceptance (their service requires approval); the rest are accepted.
    public var pendingEndpoints = 0
    /// Records tagged `env=dev`, the tag filter's value.
    public var devServices = 0
    public var devEndpoints = 0
    public var serviceIDs: [String] = []

    mutating func add(_ other: ScaleSeedSummary) {
        tenants += other.tenants
        services += other.services
        endpoints += other.endpoints
        pendingEndpoints += other.pendingEndpoints
        devServices += other.devServices
        devEndpoints += other.devEndpoints
        serviceIDs += other.serviceIDs
    }
}

/// Seeds a registry through `Registry`, the code vpcep-server runs, on the SQLite store opened on the
/// data directory: the records, change-log events, addresses and counters are the server's own.
///
/// Fast by default: each tenant's registry calls share one store transaction (`TenantTransactionStore`),
/// so a commit carries about a thousand records at the 1,000,000 size instead of one. Ids come from the
/// seed number (per tenant, `SeedIDs`), so that two seeds of one plan, in either mode, hold the same ids.
///
/// Each tenant has one VPC; subnet 0 holds its load balancers (one per ten services, whose services
/// use service ports 8000-8009), and each further /26 subnet holds up to 50 endpoints, because an
/// address allocation reads every allocated address of its subnet. A tenant's endpoints connect to
/// its own services (the owner is always admitted). A fifth of the services require approval, so
/// about a fifth of the endpoints are pending acceptance and the rest accepted. Tags: `env` is prod
/// (60%), staging (30%) or dev (10%), and `team` one of 50.
@_spi(Benchmarks)
public enum ScaleSeeder {
    static let endpointsPerSubnet = 50
    static let servicesPerBalancer = 10

    public static func seed(dataDirectory: String, plan: ScaleSeedPlan, progress: @escaping @Sendable (Int) -> Void)
        async throws -> ScaleSeedSummary
    {
        let store = try await SQLiteRegistryStore.open(directory: dataDirectory)
        let makeID: @Sendable () -> String = { SeedIDs.current?.next() ?? UUID().uuidString.lowercased() }
        let registry = Registry(
            store: plan.perTenantTransaction ? TenantTransactionStore() as any RegistryStore : store, regions: [plan.region], makeID: makeID)
        let serviceCount = max(1, plan.records / 10)
        let endpointCount = max(0, plan.records - serviceCount)
        let tenantCount = max(1, min(plan.tenants, serviceCount))
        let next = SeedCounter()
        let created = SeedCounter()
        let summary: ScaleSeedSummary
        do {
            summary = try await withThrowingTaskGroup(of: ScaleSeedSummary.self) { group in
                for _ in 0..<min(plan.workers, tenantCount) {
                    group.addTask {
                        var mine = ScaleSeedSummary()
                        while true {
                            let t = next.add(1) - 1
                            guard t < tenantCount else { break }
                            let tenant = TenantSeed(
                                index: t, services: share(serviceCount, t, tenantCount),
                                endpoints: share(endpointCount, t, tenantCount), plan: plan)
                            let ids = SeedIDs(seed: plan.seed, tenant: t)
                            let run: @Sendable () async throws -> ScaleSeedSummary = {
                                try await SeedIDs.$current.withValue(ids) {
                                    try await tenant.run(registry) { n in progress(created.add(n)) }
                                }
                            }
                            if plan.perTenantTransaction {
                                mine.add(try await store.transaction { tx in
                                    try await TenantTransactionStore.$current.withValue(SeedTransaction(tx)) { try await run() }
                                })
                            } else {
                                mine.add(try await run())
                            }
                        }
                        return mine
                    }
                }
                var all = ScaleSeedSummary()
                for try await part in group { all.add(part) }
                return all
            }
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        return summary
    }

    /// Tenant `t`'s part of `total` split evenly over `tenants`.
    static func share(_ total: Int, _ t: Int, _ tenants: Int) -> Int {
        total / tenants + (t < total % tenants ? 1 : 0)
    }
}

/// The registry's store while `ScaleSeeder` seeds a tenant in one transaction: every transaction and
/// read the registry starts runs inside the calling task's open store transaction (`current`), so that
/// the registry's own code writes the records, reading what the tenant's earlier calls wrote. A call
/// that fails fails the tenant's whole transaction (seeding stops), so no partial call is ever kept.
/// Opening the real store ran its migrations; nothing here writes SQL.
final class TenantTransactionStore: RegistryStore {
    @TaskLocal static var current: (any RegistryTransaction)? = nil

    func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T {
        try await body(try Self.open())
    }

    func transaction<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T {
        try await body(try Self.open())
    }

    private static func open() throws -> any RegistryTransaction {
        guard let current else {
            throw StoreError(code: .internalError, message: "seeding: a registry call outside a tenant's transaction")
        }
        return current
    }
}

/// Record ids drawn from the seed number and the tenant, in the server's format (lower-case UUIDs),
/// so that a tenant's records get the same ids however the tenants interleave.
final class SeedIDs: Sendable {
    @TaskLocal static var current: SeedIDs? = nil
    private let rng: Mutex<SplitMix64>

    init(seed: UInt64, tenant: Int) {
        rng = Mutex(SplitMix64(seed: seed ^ 0x1D5 &+ UInt64(tenant) &* 0xD1B5_4A32_D192_ED03))
    }

    func next() -> String {
        let (a, b) = rng.withLock { ($0.next(), $0.next()) }
        // Version 4, variant 10, as `UUID()` makes them.
        let high = a & 0xFFFF_FFFF_FFFF_0FFF | 0x0000_0000_0000_4000
        let low = b & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let bytes = withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) }
        let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        return uuid.uuidString.lowercased()
    }
}

/// One tenant's records, in the order the server requires (VPC, subnets, load balancers, services,
/// endpoints), its quotas raised first by the operator.
struct TenantSeed: Sendable {
    let index: Int
    let services: Int
    let endpoints: Int
    let plan: ScaleSeedPlan

    var tenantID: String { String(format: "t%05d", index) }

    func run(_ registry: Registry, created: (Int) -> Void) async throws -> ScaleSeedSummary {
        var rng = SplitMix64(seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let ops = CallContext(caller: .operator(plan.operatorName), region: plan.region)
        if services > QuotaType.endpointService.defaultLimit {
            _ = try await registry.setQuota(ops, tenantID: tenantID, type: .endpointService, limit: services)
        }
        if endpoints > QuotaType.endpoint.defaultLimit {
            _ = try await registry.setQuota(ops, tenantID: tenantID, type: .endpoint, limit: endpoints)
        }
        let ctx = CallContext(caller: .tenant(tenantID), region: plan.region)
        let vpc = try await registry.createVPC(ctx, name: "scale-vpc", cidr: "10.0.0.0/16")
        let subnetCount = 1 + (endpoints + ScaleSeeder.endpointsPerSubnet - 1) / ScaleSeeder.endpointsPerSubnet
        var subnets: [Subnet] = []
        for k in 0..<subnetCount {
            subnets.append(try await registry.createSubnet(
                ctx, vpcID: vpc.id, name: "scale-subnet-\(k)", cidr: "10.0.\(k / 4).\(k % 4 * 64)/26"))
        }
        var balancers: [Backend] = []
        for b in 0..<(services + ScaleSeeder.servicesPerBalancer - 1) / ScaleSeeder.servicesPerBalancer {
            balancers.append(try await registry.createBackend(
                ctx, kind: .loadBalancer, vpcID: vpc.id, subnetID: subnets[0].id, name: "scale-lb-\(b)", ip: nil,
                ingressCIDRs: []))
        }
        created(1 + subnetCount + balancers.count)
        var summary = ScaleSeedSummary()
        summary.tenants = 1
        var seeded: [EndpointService] = []
        for j in 0..<services {
            let env = Self.env(&rng)
            let service = try await registry.createEndpointService(ctx, EndpointServiceSpec(
                vpcID: vpc.id, backendKind: .loadBalancer, backendID: balancers[j / ScaleSeeder.servicesPerBalancer].id,
                ports: [PortMapping(terminalPort: 80, servicePort: 8000 + j % ScaleSeeder.servicesPerBalancer)],
                name: "svc-\(j)", approvalEnabled: rng.next() % 5 == 0, description: "scale benchmark service \(j)",
                tags: [Tag(key: "env", value: env), Tag(key: "team", value: "team-\(rng.next() % 50)")]))
            seeded.append(service)
            summary.serviceIDs.append(service.id)
            if env == "dev" { summary.devServices += 1 }
            created(1)
        }
        for i in 0..<endpoints {
            let service = seeded[i % seeded.count]
            let env = Self.env(&rng)
            let endpoint = try await registry.createEndpoint(ctx, EndpointSpec(
                serviceID: service.id, vpcID: vpc.id, subnetID: subnets[1 + i / ScaleSeeder.endpointsPerSubnet].id,
                description: "scale benchmark endpoint \(i)",
                tags: [Tag(key: "env", value: env), Tag(key: "app", value: "app-\(rng.next() % 100)")]))
            if endpoint.status == .pendingAcceptance { summary.pendingEndpoints += 1 }
            if env == "dev" { summary.devEndpoints += 1 }
            created(1)
        }
        summary.services = services
        summary.endpoints = endpoints
        return summary
    }

    static func env(_ rng: inout SplitMix64) -> String {
        switch rng.next() % 10 {
        case 0: "dev"
        case 1...3: "staging"
        default: "prod"
        }
    }
}

/// Shared by the seeding tasks: which tenant comes next, and how many records exist.
final class SeedCounter: Sendable {
    private let value = Atomic<Int>(0)

    /// The new value.
    func add(_ n: Int) -> Int { value.add(n, ordering: .relaxed).newValue }
}

/// A small deterministic generator, so that a seed number fixes the mix on every platform.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
