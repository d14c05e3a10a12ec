import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Connections")
struct ConnectionTests {
    @Test func theProviderListsAndFiltersConnections() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let first = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let second = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [second.id], accept: true)
            func list(_ filter: EndpointFilter, _ ctx: CallContext = tenantA) async throws -> [Connection] {
                try await registry.listConnections(ctx, serviceID: story.service.id, serviceName: nil, filter: filter, page: .init()).items
            }
            let all = try await list(.init())
            #expect(all.map(\.id) == [second.id, first.id])
            #expect(all[1].consumerID == "tenant-b")
            #expect(all[1].markerID == first.markerID)
            #expect(all[1].status == .pendingAcceptance)
            #expect(all[1].decidedBy == "" && all[1].decidedAt == nil)
            #expect(try await list(.init(status: .pendingAcceptance)).map(\.id) == [first.id])
            #expect(try await list(.init(status: .accepted)).map(\.id) == [second.id])
            #expect(try await list(.init(id: first.id)).map(\.id) == [first.id])
            #expect(try await list(.init(markerID: second.markerID)).map(\.id) == [second.id])
            #expect(try await list(.init(), operatorR1).count == 2)
            #expect(try await registry.listConnections(
                tenantA, serviceID: nil, serviceName: story.service.serviceName, filter: .init(), page: .init(limit: 1)).totalCount == 2)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") { try await list(.init(), tenantB) }
            await expectError(.invalidArgument, "SORT_DIR_INVALID", field: "page.sort_dir") {
                try await registry.listConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, filter: .init(), page: .init(sortDir: "up"))
            }
        }
    }

    @Test func decisionsAreAllOrNone() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let first = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let second = try await registry.createEndpoint(tenantB, endpointSpec(story))
            // An endpoint of another service is not a connection of this one.
            var otherRequest = spec(story.provider, ports: [PortMapping(terminalPort: 80, servicePort: 9999)])
            otherRequest.approvalEnabled = true
            let other = try await registry.createEndpointService(tenantA, otherRequest)
            let foreign = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: other.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            await expectError(.notFound, "CONNECTION_NOT_FOUND", field: "endpoint_ids[1]") {
                try await registry.decideConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id, foreign.id], accept: true)
            }
            await expectError(.notFound, "CONNECTION_NOT_FOUND", field: "endpoint_ids[0]") {
                try await registry.decideConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: ["missing"], accept: false)
            }
            #expect(try await registry.getEndpoint(tenantB, id: first.id).status == .pendingAcceptance)
            await expectError(.invalidArgument, "ENDPOINT_IDS_REQUIRED", field: "endpoint_ids") {
                try await registry.decideConnections(tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [], accept: true)
            }
            await expectError(.invalidArgument, "ENDPOINT_ID_DUPLICATE", field: "endpoint_ids[1]") {
                try await registry.decideConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id, first.id], accept: true)
            }
            await expectError(.invalidArgument, "TOO_MANY_ENDPOINT_IDS", field: "endpoint_ids") {
                try await registry.decideConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: (0...100).map { "e\($0)" }, accept: true)
            }
            // The consumer cannot decide; operators may read but not decide.
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.decideConnections(tenantB, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id], accept: true)
            }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                try await registry.decideConnections(
                    operatorR1, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id], accept: true)
            }
            let both = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id, second.id], accept: true)
            #expect(both.map(\.status) == [.accepted, .accepted])
            #expect(try await connectionCount(registry, story.service) == 2)
            // Accepting again changes nothing (not even who decided).
            let again = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id], accept: true)
            #expect(again == [both[0]])
        }
    }

    @Test func theProviderEditsTheConnectionDescription() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            var request = endpointSpec(story)
            request.description = "consumer's own"
            let endpoint = try await registry.createEndpoint(tenantB, request)
            let connection = try await registry.updateConnectionDescription(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointID: endpoint.id, description: "team orders, ticket 42")
            #expect(connection.description == "team orders, ticket 42")
            #expect(try await registry.getEndpoint(tenantB, id: endpoint.id).description == "consumer's own")
            await expectError(.invalidArgument, "DESCRIPTION_INVALID", field: "description") {
                try await registry.updateConnectionDescription(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointID: endpoint.id, description: "<x>")
            }
            await expectError(.invalidArgument, "ENDPOINT_ID_REQUIRED", field: "endpoint_id") {
                try await registry.updateConnectionDescription(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointID: "", description: "x")
            }
            await expectError(.notFound, "CONNECTION_NOT_FOUND", field: "endpoint_id") {
                try await registry.updateConnectionDescription(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointID: "missing", description: "x")
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.updateConnectionDescription(
                    tenantB, serviceID: story.service.id, serviceName: nil, endpointID: endpoint.id, description: "x")
            }
        }
    }

    @Test func parallelAcceptAndRejectEndConsistently() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            var endpoints: [Endpoint] = []
            for _ in 0..<5 { endpoints.append(try await registry.createEndpoint(tenantB, endpointSpec(story))) }
            let serviceID = story.service.id
            let outcomes = await withTaskGroup(of: (String, Bool, Bool).self) { group in
                for endpoint in endpoints {
                    for i in 0..<20 {
                        let accept = i % 2 == 0
                        group.addTask {
                            do throws(RegistryError) {
                                _ = try await registry.decideConnections(
                                    tenantA, serviceID: serviceID, serviceName: nil, endpointIDs: [endpoint.id], accept: accept)
                                return (endpoint.id, accept, true)
                            } catch {
                                #expect(error.reason.rawValue == "CONNECTION_STATE_INVALID")
                                return (endpoint.id, accept, false)
                            }
                        }
                    }
                }
                var all: [(String, Bool, Bool)] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.count == 100)
            for endpoint in endpoints {
                let final = try await registry.getEndpoint(tenantB, id: endpoint.id)
                // Every reject succeeds (pending or accepted → rejected, rejected → no change), and a rejection is final.
                #expect(final.status == .rejected)
                let rejects = outcomes.filter { $0.0 == endpoint.id && !$0.1 }
                #expect(rejects.count == 10 && rejects.allSatisfy { $0.2 })
            }
            #expect(try await connectionCount(registry, story.service) == 0)
            let listed = try await registry.listConnections(
                tenantA, serviceID: serviceID, serviceName: nil, filter: .init(status: .accepted), page: .init())
            #expect(listed.totalCount == 0)
        }
    }

    @Test func parallelAcceptsKeepTheCountExact() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            var ids: [String] = []
            for _ in 0..<10 { ids.append(try await registry.createEndpoint(tenantB, endpointSpec(story)).id) }
            let serviceID = story.service.id
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids {
                    for _ in 0..<3 {
                        group.addTask {
                            _ = try await registry.decideConnections(
                                tenantA, serviceID: serviceID, serviceName: nil, endpointIDs: [id], accept: true)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await connectionCount(registry, story.service) == 10)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids.prefix(4) {
                    group.addTask { try await registry.deleteEndpoint(tenantB, id: id) }
                }
                for id in ids.suffix(3) {
                    group.addTask {
                        _ = try await registry.decideConnections(
                            tenantA, serviceID: serviceID, serviceName: nil, endpointIDs: [id], accept: false)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await connectionCount(registry, story.service) == 3)
        }
    }
}
