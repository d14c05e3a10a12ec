import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// A read of the change log finds exactly what `EventQuery.matches` admits, in its order and page, for
/// every viewer and filter. The stores do not index every event under every key (SQLite's migration 10
/// leaves out the entries another index already finds: a service's own events under the service, an
/// event whose provider is its owner under the provider), so their queries must find those another way.
@Suite("Store contract: change-log queries")
struct EventQueryContractTests {
    @Test(arguments: StoreKind.underTest)
    func aQueryFindsExactlyWhatItsFiltersAndViewAdmit(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            // Tenant A's service with an endpoint of tenant B's (another tenant: provider is not owner)
            // and one of its own (provider is owner), and a second service with only its own endpoint.
            let story = try await makeStory(registry, approval: true)
            let accepted = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [accepted.id], accept: true)
            let rejected = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [rejected.id], accept: false)
            let own = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            var second = spec(story.provider, ports: [PortMapping(terminalPort: 81, servicePort: 8081)])
            second.approvalEnabled = false
            let other = try await registry.createEndpointService(tenantA, second)
            let ownOnOther = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: other.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            _ = try await registry.updateEndpointService(tenantA, id: other.id, EndpointServiceUpdate(description: "second"))
            _ = try await registry.updateEndpointService(tenantA, id: story.service.id, EndpointServiceUpdate(description: "first"))
            try await registry.deleteEndpoint(tenantB, id: rejected.id)
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 7)
            _ = try await registry.createVPC(tenantC, name: "c", cidr: "10.7.0.0/16")
            _ = try await registry.createVPC(tenantAInR2, name: "elsewhere", cidr: "10.9.0.0/16")

            let all = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, limit: 10_000)) }.items
            #expect(all.map(\.seq) == Array(1...UInt64(all.count)))
            #expect(all.contains { $0.kind == .endpoint && $0.providerID == $0.ownerID })
            #expect(all.contains { $0.kind == .endpoint && $0.providerID != nil && $0.providerID != $0.ownerID })

            let viewers = [tenantA, tenantB, tenantC, operatorR1, tenantAInR2].map { ctx in
                EventViewer(region: ctx.region, ownerID: ctx.caller.ownerID, isOperator: ctx.caller.isOperator)
            } + [.system]
            let services: [String?] = [nil, story.service.id, other.id, "no-such-service"]
            let resources: [String?] = [nil, story.service.id, accepted.id, own.id, ownOnOther.id]
            let kinds: [Set<ResourceKind>] = [[], [.endpoint]]
            var checked = 0
            var nonEmpty = 0
            for viewer in viewers {
                for service in services {
                    for resource in resources {
                        for kinds in kinds {
                            for afterSeq in [0, UInt64(all.count / 2)] {
                                for ascending in [true, false] {
                                    for (limit, offset) in [(1000, 0), (2, 1)] {
                                        let query = EventQuery(
                                            viewer: viewer, resourceID: resource, afterSeq: afterSeq, kinds: kinds,
                                            serviceID: service, ascending: ascending, limit: limit, offset: offset)
                                        let matching = all.filter(query.matches)
                                        let ordered = ascending ? matching : matching.reversed()
                                        let expected = ordered.dropFirst(offset).prefix(limit).map(\.seq)
                                        let found = try await store.read { try await $0.listEvents(query) }
                                        #expect(
                                            found.items.map(\.seq) == Array(expected),
                                            "viewer \(viewer.ownerID) service \(service ?? "-") resource \(resource ?? "-") kinds \(kinds) after \(afterSeq) asc \(ascending) limit \(limit) offset \(offset)")
                                        #expect(found.totalCount == matching.count)
                                        checked += 1
                                        if !matching.isEmpty { nonEmpty += 1 }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            #expect(checked == 1920)
            // Enough of them find something that an empty result would not pass for a right one.
            #expect(nonEmpty > 200)
        }
    }
}
