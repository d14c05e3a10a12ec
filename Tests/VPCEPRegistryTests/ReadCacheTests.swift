import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

/// `GetEndpointService` is answered from memory while the store has not committed anything since
/// the read; these check that it never answers with what an acknowledged write replaced.
@Suite("Read cache and the store's commit version")
struct ReadCacheTests {
    @Test func aWriteThroughAnotherRegistryIsSeenByTheNextRead() async throws {
        try await withRegistry { cached, store in
            let writer = Registry(store: store, regions: servedRegions)
            let network = try await makeNetwork(writer, tenantA)
            let created = try await writer.createEndpointService(tenantA, spec(network))
            #expect(try await cached.getEndpointService(tenantA, id: created.id, serviceName: nil) == created)

            let updated = try await writer.updateEndpointService(
                tenantA, id: created.id, EndpointServiceUpdate(description: "changed"))
            let seen = try await cached.getEndpointService(tenantA, id: created.id, serviceName: nil)
            #expect(seen.description == "changed")
            #expect(seen.revision == updated.revision)
            #expect(try await cached.getEndpointService(tenantA, id: nil, serviceName: created.serviceName) == seen)

            // The derived connection count moves with endpoints, which are other rows.
            let endpoint = try await writer.createEndpoint(tenantA, EndpointSpec(
                serviceID: created.id, vpcID: network.vpc.id, subnetID: network.subnet.id))
            let fresh = Registry(store: store, regions: servedRegions)
            #expect(try await cached.getEndpointService(tenantA, id: created.id, serviceName: nil)
                == (try await fresh.getEndpointService(tenantA, id: created.id, serviceName: nil)))

            try await writer.deleteEndpoint(tenantA, id: endpoint.id)
            try await writer.deleteEndpointService(tenantA, id: created.id)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await cached.getEndpointService(tenantA, id: created.id, serviceName: nil)
            }
        }
    }

    @Test func readsRacingWritesNeverGoBackInTime() async throws {
        try await withRegistry { cached, store in
            let writer = Registry(store: store, regions: servedRegions)
            let network = try await makeNetwork(writer, tenantA)
            let service = try await writer.createEndpointService(tenantA, spec(network))
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Readers keep refilling the cache from snapshots that may predate the next commit.
                let done = Done()
                for _ in 0..<4 {
                    group.addTask {
                        while !done.value {
                            _ = try await cached.getEndpointService(tenantA, id: service.id, serviceName: nil)
                            // A read served from memory never suspends; leave the writer a thread.
                            await Task.yield()
                        }
                    }
                }
                for round in 1...40 {
                    let updated = try await writer.updateEndpointService(
                        tenantA, id: service.id, EndpointServiceUpdate(description: "round \(round)"))
                    let seen = try await cached.getEndpointService(tenantA, id: service.id, serviceName: nil)
                    #expect(seen.revision >= updated.revision, "round \(round)")
                    #expect(seen.description == "round \(round)")
                }
                done.set()
                try await group.waitForAll()
            }
        }
    }

    @Test func everyCommitMovesTheVersionOnAndReadsDoNot() async throws {
        try await withRegistry { registry, store in
            let start = try #require(store.commitVersion)
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let afterWrite = try #require(store.commitVersion)
            #expect(afterWrite > start)
            _ = try await registry.listVPCs(tenantA, page: PageRequest())
            #expect(store.commitVersion == afterWrite)
        }
    }

    /// Otherwise one refused write by anyone would empty every caller's cache, and the next read
    /// of a cached service would be measurably slower (issue 10, defect 7).
    @Test func aRefusedWriteDoesNotMoveTheVersionOn() async throws {
        try await withRegistry { registry, store in
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let before = try #require(store.commitVersion)
            await #expect(throws: RegistryError.self) {
                try await registry.createSubnet(tenantB, vpcID: "no-such-vpc", name: "s", cidr: "10.0.1.0/24")
            }
            await #expect(throws: RegistryError.self) {
                try await store.transaction { _ in throw RegistryError(code: .notFound, reason: .init(rawValue: "X"), message: "x") }
            }
            #expect(store.commitVersion == before)
        }
    }
}

private final class Done: Sendable {
    private let flag = Mutex(false)
    var value: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
