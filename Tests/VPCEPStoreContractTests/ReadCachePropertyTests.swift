import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// The read cache keeps a service across commits that did not change it; these check, on both stores
/// (on PostgreSQL with the cached registry on a second store, another replica, of the writer's
/// database), that a cached read never answers with less than what the store held when it began.
@Suite("Read cache under random writes")
struct ReadCachePropertyTests {
    /// One writer applies random writes one at a time and, after each is acknowledged, records every
    /// service as an uncached read finds it (state `k` after write `k`). Readers meanwhile read through
    /// the cached registry, noting how many writes were acknowledged before the read began (`k`) and
    /// after it ended (`k'`): what they got must be one of the states `k ... k'+1` (write `k'+1` may
    /// have committed before it was acknowledged).
    @Test(arguments: StoreKind.underTest)
    func cachedReadsAreNeverOlderThanTheStoreWhenTheyBegan(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, database in
            let writer = Registry(store: store, regions: servedRegions)
            // Reads the store every time: a cache with no room.
            let uncached = Registry(store: store, regions: servedRegions, serviceCacheBytes: 0)
            let readerStore: any RegistryStore = kind.sharesDatabase ? try await database.open() : store
            let cached = Registry(store: readerStore, regions: servedRegions)
            let world = try await World.make(writer)

            let states = Mutex<[[String: EndpointService]]>([try await world.states(uncached)])
            let progress = Progress()
            let steps = WriteStep.draw(Self.writes, seed: 0x5EED_CAC4E)
            let observations = try await withThrowingTaskGroup(of: [Observation].self) { group in
                for reader in 0..<4 {
                    group.addTask {
                        var seen: [Observation] = []
                        var index = reader
                        while !progress.done {
                            index += 1
                            let id = world.serviceIDs[index % world.serviceIDs.count]
                            let begun = progress.acknowledged
                            let got = try await fetch(cached, id: id)
                            seen.append(Observation(id: id, name: nil, begun: begun, ended: progress.acknowledged, got: got))
                            // By name too, where the service's current name is known.
                            if let name = got?.serviceName {
                                let byName = try await fetch(cached, name: name)
                                seen.append(Observation(id: id, name: name, begun: begun, ended: progress.acknowledged, got: byName))
                            }
                            await Task.yield()
                        }
                        return seen
                    }
                }
                for step in 1...Self.writes {
                    try await world.write(writer, steps[step - 1], number: step)
                    let after = try await world.states(uncached)
                    states.withLock { $0.append(after) }
                    progress.acknowledge(step)
                }
                progress.finish()
                return try await group.reduce(into: [Observation]()) { $0 += $1 }
            }
            let recorded = states.withLock { $0 }
            #expect(observations.count > Self.writes)
            var failures = 0
            for observation in observations {
                let candidates = recorded[observation.begun...min(observation.ended + 1, recorded.count - 1)]
                if !candidates.contains(where: { observation.expected(in: $0) == observation.got }) {
                    failures += 1
                    if failures <= 5 {
                        Issue.record("""
                            \(observation.id) read between writes \(observation.begun) and \(observation.ended): got \
                            \(String(describing: observation.got)), expected one of \
                            \(candidates.map { String(describing: observation.expected(in: $0)) })
                            """)
                    }
                }
            }
            #expect(failures == 0)
        }
    }

    static let writes = 150
}

/// The service as tenant A reads it; nil when not found.
private func fetch(_ registry: Registry, id: String? = nil, name: String? = nil) async throws -> EndpointService? {
    do {
        return try await registry.getEndpointService(tenantA, id: id, serviceName: name)
    } catch {
        if error.code == .notFound { return nil }
        throw error
    }
}

/// How many writes are acknowledged, and whether the writer is done.
private final class Progress: Sendable {
    private let state = Mutex((acknowledged: 0, done: false))
    var acknowledged: Int { state.withLock { $0.acknowledged } }
    var done: Bool { state.withLock { $0.done } }
    func acknowledge(_ count: Int) { state.withLock { $0.acknowledged = count } }
    func finish() { state.withLock { $0.done = true } }
}

private struct Observation: Sendable {
    var id: String
    /// Set for a read by this name (which a rename leaves naming nothing).
    var name: String?
    var begun: Int
    var ended: Int
    var got: EndpointService?

    /// What the read should have found in `state`.
    func expected(in state: [String: EndpointService]) -> EndpointService? {
        guard let service = state[id] else { return nil }
        guard let name else { return service }
        return service.serviceName == name ? service : nil
    }
}

/// A provider (tenant A) with a few services, each allowing tenant B, who connects from its network.
private struct World: Sendable {
    var provider: Network
    var consumer: Network
    var serviceIDs: [String]

    static func make(_ registry: Registry) async throws -> World {
        let provider = try await makeNetwork(registry, tenantA)
        let consumer = try await makeNetwork(registry, tenantB, cidr: "10.1.0.0/16")
        var ids: [String] = []
        for index in 0..<6 {
            var request = spec(provider, ports: [PortMapping(terminalPort: 80, servicePort: 8080 + index)])
            request.approvalEnabled = index.isMultiple(of: 2)
            let service = try await registry.createEndpointService(tenantA, request)
            _ = try await registry.addPermissions(
                tenantA, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: "iam:domain::tenant-b")])
            ids.append(service.id)
        }
        return World(provider: provider, consumer: consumer, serviceIDs: ids)
    }

    /// Every service as the store holds it, `nil` for one deleted.
    func states(_ uncached: Registry) async throws -> [String: EndpointService] {
        var states: [String: EndpointService] = [:]
        for id in serviceIDs {
            states[id] = try await fetch(uncached, id: id)
        }
        return states
    }

    /// One write of a random kind; refused writes (a decision on an endpoint gone, a service deleted)
    /// are part of the mix.
    func write(_ registry: Registry, _ step: WriteStep, number: Int) async throws {
        let id = serviceIDs[step.service % serviceIDs.count]
        let consumer = self.consumer
        let endpoints: @Sendable () async throws -> [Endpoint] = {
            try await registry.listEndpoints(tenantB, filter: EndpointFilter(serviceID: id), page: PageRequest(limit: 100)).items
        }
        let operation: @Sendable () async throws -> Void
        switch step.kind {
        case 0:
            operation = { _ = try await registry.updateEndpointService(tenantA, id: id, EndpointServiceUpdate(description: "step \(number)")) }
        case 1:
            operation = { _ = try await registry.updateEndpointService(tenantA, id: id, EndpointServiceUpdate(name: "n\(number % 7)")) }
        case 2:
            operation = {
                _ = try await registry.addEndpointServiceTags(tenantA, id: id, tags: [Tag(key: "k\(number % 3)", value: "v\(number)")])
            }
        case 3, 4:
            operation = {
                _ = try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: id, vpcID: consumer.vpc.id, subnetID: consumer.subnet.id))
            }
        case 5, 6:
            operation = {
                let all = try await endpoints()
                guard !all.isEmpty else { return }
                let endpoint = all[Int(step.pick % UInt64(all.count))]
                _ = try await registry.decideConnections(
                    tenantA, serviceID: id, serviceName: nil, endpointIDs: [endpoint.id], accept: step.flag)
            }
        case 7, 8:
            operation = {
                let all = try await endpoints()
                guard !all.isEmpty else { return }
                try await registry.deleteEndpoint(tenantB, id: all[Int(step.pick % UInt64(all.count))].id)
            }
        default:
            // Rarely: a service goes, with its connections.
            operation = {
                guard step.pick % 4 == 0 else { return }
                try await registry.deleteEndpointService(tenantA, id: id, force: true, dryRun: false)
            }
        }
        do {
            try await operation()
        } catch let error as RegistryError {
            // A refused write commits nothing; the state recorded after it is the one before.
            if error.code == .internalError || error.code == .unavailable { throw error }
        }
    }
}

/// What one random write does, drawn before the run.
struct WriteStep: Sendable {
    var kind: Int
    var service: Int
    var pick: UInt64
    var flag: Bool

    static func draw(_ count: Int, seed: UInt64) -> [WriteStep] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            WriteStep(
                kind: Int(generator.next() % 10), service: Int(generator.next() % 64), pick: generator.next(),
                flag: generator.next() % 2 == 0)
        }
    }
}

