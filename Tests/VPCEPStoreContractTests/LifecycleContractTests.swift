import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// What suspend/resume, connection messages and forced deletes ask of a store (issue 13).
@Suite("Store contract: connection lifecycle")
struct LifecycleContractTests {
    /// The two message columns and the suspended status are stored and read back, and a suspended
    /// endpoint is counted in `connection_count` by the store's own query.
    @Test(arguments: StoreKind.underTest)
    func messagesAndSuspendedConnectionsAreStoredAndCounted(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, _ in
            let story = try await makeStory(registry)
            var request = endpointSpec(story)
            request.requestMessage = "from team ünïcode"
            let endpoint = try await registry.createEndpoint(tenantB, request)
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], action: .accept,
                reason: "welcome")
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], action: .suspend,
                reason: "paused for billing")
            let seen = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(seen.status == .suspended)
            #expect(seen.requestMessage == "from team ünïcode")
            #expect(seen.decisionReason == "paused for billing")
            let connections = try await registry.listConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, filter: EndpointFilter(status: .suspended),
                page: .init()).items
            #expect(connections.map(\.id) == [endpoint.id])
            #expect(connections.first?.requestMessage == "from team ünïcode")
            #expect(try await connectionCount(registry, story.service) == 1)
        }
    }

    /// Creates racing a forced delete, on two servers sharing the database where the store allows it:
    /// every create commits before the delete (which rejects it) or finds no service.
    @Test(arguments: StoreKind.underTest)
    func aForceDeleteRacingCreatesLeavesNoLiveEndpointOnTheDeletedService(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, database in
            let ticking = TickingClock()
            let ids = SequentialIDs()
            let first = Registry(store: store, regions: servedRegions, clock: { ticking.now() }, makeID: { ids.next() })
            let second = kind.sharesDatabase
                ? Registry(store: try await database.open(), regions: servedRegions, clock: { ticking.now() }, makeID: { ids.next() })
                : first
            let story = try await makeStory(first, approval: false)
            _ = try await first.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 100)
            let created = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<30 {
                    group.addTask {
                        if i == 15 {
                            _ = try await first.deleteEndpointService(tenantA, id: story.service.id, force: true, dryRun: false)
                            return
                        }
                        do {
                            _ = try await (i.isMultiple(of: 2) ? first : second).createEndpoint(tenantB, endpointSpec(story))
                            created.increment()
                        } catch let error as RegistryError where error.reason.rawValue == "SERVICE_NOT_FOUND" {}
                    }
                }
                try await group.waitForAll()
            }
            let left = try await first.listEndpoints(tenantB, filter: .init(), page: .init(limit: 100)).items
            #expect(left.count == created.count)
            #expect(left.allSatisfy { !$0.status.isLive }, "a live endpoint outlived its service")
        }
    }
}
