import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// The records a store keeps besides resources, and how its lists page, count and filter.
@Suite("Store contract: records and lists")
struct RecordsContractTests {
    @Test(arguments: StoreKind.underTest)
    func idempotencyRecordsAreKeptReplacedAndExpired(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            @Sendable func record(_ key: String, owner: String = "tenant-a", result: String = "r", expires: Double) -> IdempotencyRecord {
                IdempotencyRecord(
                    ownerID: owner, region: "r1", key: key, method: "CreateVPC", fingerprint: "f-\(key)", result: result,
                    createdAt: Date(timeIntervalSince1970: 10), expiresAt: Date(timeIntervalSince1970: expires))
            }
            try await store.transaction { tx in
                try await tx.saveIdempotencyRecord(record("k1", expires: 100))
                try await tx.saveIdempotencyRecord(record("k2", expires: 200))
                try await tx.saveIdempotencyRecord(record("k3", expires: 300))
                try await tx.saveIdempotencyRecord(record("k1", owner: "tenant-b", expires: 100))
            }
            let found = try await store.transaction { tx in
                try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k1")
            }
            #expect(found == record("k1", expires: 100))
            #expect(try await store.transaction { tx in
                try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r2", key: "k1")
            } == nil)
            // Saving again replaces.
            try await store.transaction { tx in try await tx.saveIdempotencyRecord(record("k1", result: "again", expires: 150)) }
            #expect(try await store.transaction { tx in
                try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k1")
            }?.result == "again")
            // Expiry: at or before the date, oldest first, up to the limit.
            let first = try await store.transaction { tx in
                try await tx.deleteIdempotencyRecords(expiredBy: Date(timeIntervalSince1970: 200), limit: 2)
            }
            #expect(first == 2)
            let rest = try await store.transaction { tx in
                try await tx.deleteIdempotencyRecords(expiredBy: Date(timeIntervalSince1970: 200), limit: 10)
            }
            #expect(rest == 1)
            let left = try await store.transaction { tx in
                [
                    try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k1"),
                    try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k2"),
                    try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k3"),
                    try await tx.idempotencyRecord(ownerID: "tenant-b", region: "r1", key: "k1"),
                ].map { $0?.key }
            }
            #expect(left == [nil, nil, "k3", nil])
        }
    }

    /// Two concurrent first uses of one key: one saves its outcome, the other conflicts or sees it.
    @Test(arguments: StoreKind.underTest)
    func concurrentFirstUsesOfAKeyCannotBothWin(_ kind: StoreKind) async throws {
        try await withStore(kind) { first, database in
            let second = kind.sharesDatabase ? try await database.open() : first
            let winners = Counter()
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<16 {
                    let store = i % 2 == 0 ? first : second
                    group.addTask {
                        do {
                            let won = try await store.transaction { tx in
                                guard try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k") == nil else {
                                    return false
                                }
                                try await tx.insertVPC(vpc("vpc-\(i)"))
                                try await tx.saveIdempotencyRecord(IdempotencyRecord(
                                    ownerID: "tenant-a", region: "r1", key: "k", method: "CreateVPC", fingerprint: "f",
                                    result: "vpc-\(i)", createdAt: Date(timeIntervalSince1970: 1),
                                    expiresAt: Date(timeIntervalSince1970: 1000)))
                                return true
                            }
                            if won { winners.increment() }
                        } catch let error as StoreError {
                            #expect(error.code == .conflict, "\(error)")
                        } catch {
                            Issue.record("unexpected \(error)")
                        }
                    }
                }
            }
            #expect(winners.count == 1)
            let vpcs = try await first.read { try await $0.listVPCs(listQuery()) }
            let record = try await first.transaction { tx in try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "k") }
            #expect(vpcs.items.map(\.id) == [record?.result].compactMap { $0 })
        }
    }

    @Test(arguments: StoreKind.underTest)
    func quotaOverridesAreSetReplacedAndRemoved(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.read { try await $0.quotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService) } == nil)
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 5)
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 7)
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r2", type: .endpointService, limit: 1)
            }
            #expect(try await store.read { try await $0.quotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService) } == 7)
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: nil)
            }
            #expect(try await store.read { try await $0.quotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService) } == nil)
            #expect(try await store.read { try await $0.quotaLimit(ownerID: "tenant-a", region: "r2", type: .endpointService) } == 1)
        }
    }

    /// Marker ids are unique and never reused, also when transactions taking them run concurrently
    /// (on PostgreSQL on two replicas) and some roll back.
    @Test(arguments: StoreKind.underTest)
    func markerIDsAreUniqueUnderConcurrency(_ kind: StoreKind) async throws {
        struct Refused: Error {}
        try await withStore(kind) { first, database in
            let second = kind.sharesDatabase ? try await database.open() : first
            let ids = await withTaskGroup(of: UInt64?.self) { group in
                for i in 0..<40 {
                    let store = i % 2 == 0 ? first : second
                    group.addTask {
                        try? await store.transaction { tx in
                            let id = try await tx.nextMarkerID()
                            if i % 4 == 0 { throw Refused() }
                            return id
                        }
                    }
                }
                var ids: [UInt64] = []
                for await id in group { if let id { ids.append(id) } }
                return ids
            }
            #expect(ids.count == 30)
            #expect(Set(ids).count == ids.count)
            let next = try await first.transaction { tx in try await tx.nextMarkerID() }
            #expect(next > ids.max() ?? 0)
        }
    }

    /// Lists: the region and owner scope, the order (ties by id, same direction), the page, and the
    /// count of every match.
    @Test(arguments: StoreKind.underTest)
    func listsScopeOrderPageAndCount(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.transaction { tx in
                for i in 0..<7 { try await tx.insertVPC(vpc("vpc-a\(i)", at: Double(10 + i / 2))) }
                for i in 0..<3 { try await tx.insertVPC(vpc("vpc-b\(i)", owner: "tenant-b", at: Double(i))) }
                try await tx.insertVPC(vpc("vpc-r2", region: "r2"))
            }
            let ascending = try await store.read { try await $0.listVPCs(listQuery(owner: "tenant-a", limit: 3, offset: 2)) }
            #expect(ascending.items.map(\.id) == ["vpc-a2", "vpc-a3", "vpc-a4"])
            #expect(ascending.totalCount == 7)
            let descending = try await store.read {
                try await $0.listVPCs(listQuery(owner: "tenant-a", ascending: false, limit: 3))
            }
            #expect(descending.items.map(\.id) == ["vpc-a6", "vpc-a5", "vpc-a4"])
            let everyone = try await store.read { try await $0.listVPCs(listQuery(limit: 2)) }
            #expect(everyone.items.map(\.id) == ["vpc-b0", "vpc-b1"])
            #expect(everyone.totalCount == 10)
            let beyond = try await store.read { try await $0.listVPCs(listQuery(owner: "tenant-a", offset: 50)) }
            #expect(beyond.items.isEmpty && beyond.totalCount == 7)
            let otherRegion = try await store.read { try await $0.listVPCs(listQuery(region: "r2")) }
            #expect(otherRegion.items.map(\.id) == ["vpc-r2"])
        }
    }

    /// Filters of service and endpoint lists, and the derived values (connection counts, the
    /// endpoint's current service name), through the registry.
    @Test(arguments: StoreKind.underTest)
    func listFiltersAndDerivedValues(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, approval: false)
            var tagged = spec(story.provider, ports: [PortMapping(terminalPort: 81, servicePort: 9000)])
            tagged.name = "Tagged-Service"
            tagged.tags = [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]
            let service = try await registry.createEndpointService(tenantA, tagged)
            func services(_ filter: EndpointServiceFilter) async throws -> [String] {
                try await store.read { try await $0.listEndpointServices(listQuery(), filter: filter) }.items.map(\.id)
            }
            #expect(try await services(EndpointServiceFilter(name: "tagged-serv")) == [service.id])
            #expect(try await services(EndpointServiceFilter(tags: [Tag(key: "team", value: "blue")])) == [service.id])
            #expect(try await services(EndpointServiceFilter(tags: [Tag(key: "team", value: "")])) == [service.id])
            #expect(try await services(EndpointServiceFilter(tags: [Tag(key: "team", value: "red"), Tag(key: "team", value: "blue")])) == [service.id])
            #expect(try await services(EndpointServiceFilter(tags: [Tag(key: "team", value: "blue"), Tag(key: "env", value: "dev")])).isEmpty)
            #expect(try await services(EndpointServiceFilter(id: service.id, status: .available)).count <= 1)

            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let stored = try await store.read { try await $0.endpoint(id: endpoint.id, visibleTo: .anyOwner(in: "r1")) }
            #expect(stored?.serviceName == story.service.serviceName)
            let byService = try await store.read {
                try await $0.listEndpoints(listQuery(owner: "tenant-b"), filter: EndpointFilter(serviceName: String(story.service.serviceName.suffix(6)).uppercased()))
            }
            #expect(byService.items.map(\.id) == [endpoint.id])
            #expect(try await connectionCount(registry, story.service) == 1)
            #expect(try await store.read { try await $0.countEndpoints(ownerID: "tenant-b", region: "r1") } == 1)
            #expect(try await store.read { try await $0.countEndpointServices(ownerID: "tenant-a", region: "r1") } == 2)
            let usage = try await store.read { try await $0.usage(subnetID: story.consumer.subnet.id) }
            #expect(usage.endpoints == 1)
        }
    }
}
