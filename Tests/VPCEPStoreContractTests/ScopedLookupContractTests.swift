import Foundation
import Testing
@testable import VPCEPRegistry
import VPCEPTestSupport

/// Issue 12: every look-up by id of a tenant's record takes the caller's `Visibility`, and the store
/// applies it in its query, so that another tenant's or another region's record is answered like a
/// missing one. The registry checks the same rule again; these check the stores alone.
@Suite("Store contract: look-ups by id apply the caller's visibility")
struct ScopedLookupContractTests {
    /// One record the store can be asked for by id, with the facts `Visibility.admits` decides on.
    struct Record: Sendable {
        var label: String
        var region: String
        var ownerID: String
        /// Whether the look-up under `visibility` answered with the record (or, for what hangs off a
        /// service, with any of its entries).
        var find: @Sendable (any RegistryReader, Visibility) async throws -> Bool
    }

    /// Tenant A's network and service in r1 (the service's allow-list admits tenant B), tenant B's
    /// network and endpoint on it in r1, and tenant A's network in r2.
    static func records(_ registry: Registry) async throws -> [Record] {
        let story = try await makeStory(registry, approval: false)
        let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
        let inR2 = try await makeNetwork(registry, tenantAInR2)
        var r2Spec = spec(inR2)
        r2Spec.name = "r2"
        let r2Service = try await registry.createEndpointService(tenantAInR2, r2Spec)
        _ = try await registry.addPermissions(
            tenantAInR2, serviceID: r2Service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])

        var records: [Record] = []
        func network(_ network: Network, _ name: String) {
            let vpc = network.vpc
            records.append(Record(label: "\(name) vpc", region: vpc.region, ownerID: vpc.ownerID) {
                try await $0.vpc(id: vpc.id, visibleTo: $1).map { $0 == vpc } ?? false
            })
            let subnet = network.subnet
            records.append(Record(label: "\(name) subnet", region: subnet.region, ownerID: subnet.ownerID) {
                try await $0.subnet(id: subnet.id, visibleTo: $1).map { $0 == subnet } ?? false
            })
            for backend in [network.loadBalancer, network.vm] {
                let label = "\(name) \(backend.kind == .vm ? "vm" : "loadBalancer")"
                records.append(Record(label: label, region: backend.region, ownerID: backend.ownerID) {
                    try await $0.backend(id: backend.id, visibleTo: $1).map { $0 == backend } ?? false
                })
            }
        }
        network(story.provider, "A r1")
        network(story.consumer, "B r1")
        network(inR2, "A r2")
        records.append(Record(label: "B r1 endpoint", region: endpoint.region, ownerID: endpoint.ownerID) {
            try await $0.endpoint(id: endpoint.id, visibleTo: $1).map { $0.id == endpoint.id } ?? false
        })
        for (name, service) in [("A r1", story.service), ("A r2", r2Service)] {
            let id = service.id
            records.append(Record(label: "\(name) allow-list", region: service.region, ownerID: service.ownerID) {
                !(try await $0.permissions(serviceID: id, serviceVisibleTo: $1)).isEmpty
            })
            records.append(Record(label: "\(name) listed allow-list", region: service.region, ownerID: service.ownerID) {
                let query = ListQuery(
                    region: service.region, ownerID: nil, sortKey: .createdAt, ascending: true, limit: 10, offset: 0)
                let page = try await $0.listPermissions(query, serviceID: id, serviceVisibleTo: $1, permission: nil)
                #expect(page.items.count == page.totalCount)
                return page.totalCount > 0
            })
        }
        records.append(Record(label: "A r1 endpoints", region: story.service.region, ownerID: story.service.ownerID) {
            try await $0.endpoints(serviceID: story.service.id, serviceVisibleTo: $1).map(\.id) == [endpoint.id]
        })
        return records
    }

    static func scope(_ ctx: CallContext) -> Scope {
        Scope(region: ctx.region, ownerID: ctx.caller.ownerID, isOperator: ctx.caller.isOperator)
    }

    @Test(arguments: StoreKind.underTest)
    func anotherTenantsAndAnotherRegionsRecordsAreNotFound(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let records = try await Self.records(registry)
            let operatorR2 = CallContext(caller: .operator("ops"), region: "r2")
            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            let visibilities: [(String, Visibility)] = [
                ("A r1 reading", Self.scope(tenantA).reading),
                ("A r2 reading", Self.scope(tenantAInR2).reading),
                ("B r1 reading", Self.scope(tenantB).reading),
                ("C r1 reading", Self.scope(tenantC).reading),
                ("operator r1 reading", Self.scope(operatorR1).reading),
                ("operator r2 reading", Self.scope(operatorR2).reading),
                ("operator r1 owning", Self.scope(operatorR1).owning),
                ("nobody in r1", Visibility(region: "r1", grants: [])),
            ]
            let a1 = ["A r1 vpc", "A r1 subnet", "A r1 loadBalancer", "A r1 vm"]
            let a1Service = ["A r1 allow-list", "A r1 listed allow-list", "A r1 endpoints"]
            let a2 = ["A r2 vpc", "A r2 subnet", "A r2 loadBalancer", "A r2 vm", "A r2 allow-list", "A r2 listed allow-list"]
            let b1 = ["B r1 vpc", "B r1 subnet", "B r1 loadBalancer", "B r1 vm", "B r1 endpoint"]
            // The rules as documented (DOMAIN.md, "Store"), independent of how `Visibility` states them.
            let expected: [String: Set<String>] = [
                "A r1 reading": Set(a1 + a1Service),
                "A r2 reading": Set(a2),
                "B r1 reading": Set(b1),
                "C r1 reading": [],
                "operator r1 reading": Set(a1 + a1Service + b1),
                "operator r2 reading": Set(a2),
                "operator r1 owning": [],
                "nobody in r1": [],
            ]
            for (name, visibility) in visibilities {
                var found: Set<String> = []
                var inMemory: Set<String> = []
                for record in records {
                    if try await store.read({ try await record.find($0, visibility) }) { found.insert(record.label) }
                    if visibility.admits(region: record.region, ownerID: record.ownerID) { inMemory.insert(record.label) }
                }
                #expect(found == inMemory, "\(name): store \(found.sorted()), in memory \(inMemory.sorted())")
                #expect(found == expected[name], "\(name): \(found.sorted())")
            }
        }
    }

    /// A record that is not there and one that is hidden give one answer: the store is asked for a
    /// missing id under the same visibility and must answer the same `nil`.
    @Test(arguments: StoreKind.underTest)
    func aMissingIDIsAnsweredLikeAHiddenOne(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            _ = try await Self.records(registry)
            let visibility = Self.scope(tenantA).reading
            let missing = try await store.read { reader in
                [
                    try await reader.vpc(id: "id-9999", visibleTo: visibility) == nil,
                    try await reader.subnet(id: "id-9999", visibleTo: visibility) == nil,
                    try await reader.backend(id: "id-9999", visibleTo: visibility) == nil,
                    try await reader.endpoint(id: "id-9999", visibleTo: visibility) == nil,
                    try await reader.permissions(serviceID: "id-9999", serviceVisibleTo: visibility).isEmpty,
                    try await reader.endpoints(serviceID: "id-9999", serviceVisibleTo: visibility).isEmpty,
                ]
            }
            #expect(missing.allSatisfy { $0 })
        }
    }

    /// The provider's view (`Visibility.provider(of:)`) and the consumer's view of a service's
    /// allow-list: each admits exactly what it names.
    @Test(arguments: StoreKind.underTest)
    func namedWiderViewsAdmitOnlyWhatTheyName(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, approval: false)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            var otherSpec = spec(story.provider, ports: [PortMapping(terminalPort: 80, servicePort: 9090)])
            otherSpec.name = "other"
            let other = try await registry.createEndpointService(tenantA, otherSpec)
            let inR2 = try await makeNetwork(registry, tenantAInR2)
            let r2Service = try await registry.createEndpointService(tenantAInR2, spec(inR2))
            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            let tenantBInR2 = CallContext(caller: .tenant("tenant-b"), region: "r2")

            let (ofItsService, ofAnother, ofAnotherRegion) = try await store.read { reader in
                (
                    try await reader.endpoint(id: endpoint.id, visibleTo: .provider(of: story.service)),
                    try await reader.endpoint(id: endpoint.id, visibleTo: .provider(of: other)),
                    try await reader.endpoint(id: endpoint.id, visibleTo: .provider(of: r2Service))
                )
            }
            #expect(ofItsService?.id == endpoint.id)
            #expect(ofAnother == nil)
            #expect(ofAnotherRegion == nil)

            // The allow-list as a consumer's look-up sees it: B is on it, C is not, B in r2 is elsewhere.
            let entries = try await store.read { reader in
                [
                    try await reader.permissions(serviceID: story.service.id, serviceVisibleTo: Self.scope(tenantB).consumerLookup).count,
                    try await reader.permissions(serviceID: story.service.id, serviceVisibleTo: Self.scope(tenantC).consumerLookup).count,
                    try await reader.permissions(serviceID: story.service.id, serviceVisibleTo: Self.scope(tenantBInR2).consumerLookup).count,
                ]
            }
            #expect(entries == [1, 0, 0])

            // A grant that does not belong to the table is a misuse, not an empty answer.
            await #expect(throws: StoreError.self) {
                try await store.read { try await $0.vpc(id: story.provider.vpc.id, visibleTo: .provider(of: story.service)) }
            }
        }
    }
}
