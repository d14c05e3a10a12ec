import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

@Suite("API: concurrency and atomicity", .timeLimit(.minutes(3)))
struct ConcurrencyAPITests {
    @Test("100 parallel creates over 10 connections leave exactly the quota's number of services")
    func parallelCreatesRespectTheQuota() async throws {
        try await withTestServer { server in
            let setup = try server.client("alice")
            let network = try await Network.make(setup)
            let clients = try (0..<10).map { _ in try server.client("alice") }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for (c, client) in clients.enumerated() {
                    for i in 0..<10 {
                        let request = network.service(name: "s\(c)-\(i)", servicePort: UInt32(10_000 + c * 10 + i))
                        group.addTask {
                            do throws(VPCEPError) {
                                _ = try await client.createEndpointService(request)
                                return "OK"
                            } catch {
                                return "\(error.code.name) \(error.reason)"
                            }
                        }
                    }
                }
                var all: [String] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.count == 100)
            #expect(outcomes.filter { $0 == "OK" }.count == 20)
            #expect(outcomes.filter { $0 == "RESOURCE_EXHAUSTED QUOTA_EXCEEDED" }.count == 80)
            #expect(try await setup.listEndpointServices(ListEndpointServicesRequest(page: PageRequest(limit: 1000))).totalCount == 20)
            #expect(try await setup.listQuotas(ListQuotasRequest(type: .endpointService)).items[0].used == 20)
            for client in clients { await client.close() }
            await setup.close()
        }
    }

    @Test("parallel accepts and rejects of the same connections end in one state with an exact count")
    func parallelDecisions() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let provider = try await Network.make(alice)
            let consumer = try await Network.make(bob, second: 1)
            let service = try await alice.createEndpointService(provider.service())
            _ = try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::bob")]))
            var ids: [String] = []
            for _ in 0..<4 { ids.append(try await bob.createEndpoint(consumer.endpoint(serviceID: service.id)).id) }
            // A fifth one is only ever accepted, from many connections at once.
            let onlyAccepted = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id)).id
            let deciders = try (0..<5).map { _ in try server.client("alice") }
            let failures = await withTaskGroup(of: String?.self) { group in
                for (d, decider) in deciders.enumerated() {
                    for id in ids {
                        for accept in [true, false] {
                            let request = DecideConnectionsRequest(serviceId: service.id, endpointIds: [id])
                            group.addTask {
                                do throws(VPCEPError) {
                                    _ = accept
                                        ? try await decider.acceptConnections(request)
                                        : try await decider.rejectConnections(request)
                                    return nil
                                } catch {
                                    return accept ? error.reason.rawValue : "reject failed: \(error)"
                                }
                            }
                        }
                    }
                    group.addTask {
                        do throws(VPCEPError) {
                            _ = try await decider.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [onlyAccepted]))
                            return nil
                        } catch {
                            return "accept failed \(d): \(error)"
                        }
                    }
                }
                var all: [String] = []
                for await failure in group { if let failure { all.append(failure) } }
                return all
            }
            // Only accepts of already rejected connections may fail, and only that way.
            #expect(failures.allSatisfy { $0 == "CONNECTION_STATE_INVALID" }, "\(failures)")
            let connections = try await alice.listConnections(ListConnectionsRequest(serviceId: service.id))
            #expect(connections.totalCount == 5)
            for connection in connections.items {
                #expect(connection.status == (connection.id == onlyAccepted ? .accepted : .rejected))
            }
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 1)
            for decider in deciders { await decider.close() }
            await alice.close()
            await bob.close()
        }
    }

    @Test("every refused call leaves what the API shows unchanged")
    func failuresChangeNothing() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let ops = try server.client("ops")
            let provider = try await Network.make(alice)
            let consumer = try await Network.make(bob, second: 1)
            let service = try await alice.createEndpointService(provider.service())
            _ = try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::bob")]))
            let pending = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id))
            let rejected = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id))
            let accepted = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id))
            _ = try await alice.rejectConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [rejected.id]))
            _ = try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [accepted.id]))

            @Sendable func state() async throws -> [String] {
                let page = PageRequest(limit: 1000)
                return [
                    "\(try await ops.listVpcs(ListVpcsRequest(page: page)))",
                    "\(try await ops.listSubnets(ListSubnetsRequest(page: page)))",
                    "\(try await ops.listLoadBalancers(ListLoadBalancersRequest(page: page)))",
                    "\(try await ops.listEndpointServices(ListEndpointServicesRequest(page: page)))",
                    "\(try await ops.listEndpoints(ListEndpointsRequest(page: page)))",
                    "\(try await ops.listConnections(ListConnectionsRequest(serviceId: service.id, page: page)))",
                    "\(try await ops.listPermissions(ListPermissionsRequest(serviceId: service.id, page: page)))",
                    "\(try await alice.listQuotas(ListQuotasRequest()))",
                    "\(try await bob.listQuotas(ListQuotasRequest()))",
                ]
            }
            let before = try await state()
            let calls: [@Sendable () async throws -> Void] = [
                { _ = try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [pending.id, rejected.id])) },
                { _ = try await alice.rejectConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [pending.id, "nope"])) },
                { _ = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id)) },
                { _ = try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, name: "x", expectedRevision: 9)) },
                { _ = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id).with { $0.ip = "10.1.1.2" }) },
                { _ = try await bob.deleteSubnet(DeleteResourceRequest(id: consumer.subnet.id)) },
                { _ = try await bob.deleteLoadBalancer(DeleteResourceRequest(id: provider.loadBalancer.id)) },
                { _ = try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [PermissionEntry(permission: "*"), PermissionEntry(permission: "bad")])) },
                { _ = try await bob.updateEndpoint(UpdateEndpointRequest(id: pending.id, whitelist: StringList(values: ["1.2.3.4", "x"]), description: "y")) },
                { _ = try await alice.setQuota(SetQuotaRequest(tenantId: "alice", type: .endpoint, limit: 1)) },
                { _ = try await alice.createEndpointService(provider.service(servicePort: 8080)) },
            ]
            for call in calls {
                do {
                    try await call()
                    Issue.record("a refused call succeeded")
                } catch let error as VPCEPError {
                    #expect(error.code != .internalError, "\(error)")
                }
                #expect(try await state() == before)
            }
            await alice.close()
            await bob.close()
            await ops.close()
        }
    }
}

extension CreateEndpointRequest {
    func with(_ change: (inout CreateEndpointRequest) -> Void) -> CreateEndpointRequest {
        var copy = self
        change(&copy)
        return copy
    }
}
