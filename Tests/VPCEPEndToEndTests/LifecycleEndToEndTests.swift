import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Issue 13, part B, over real mutual TLS against a real server process: revocation that reconciles,
/// forced deletes, suspend and resume, and messages both ways, through the client library and the CLI.
@Suite("Connection lifecycle end to end", .timeLimit(.minutes(3)))
struct LifecycleEndToEndTests {
    /// What alice can see of her service and bob of his endpoints, and how long the log is: a refused or
    /// dry-run call must leave all of it as it was.
    private func observed(_ alice: VPCEPClient, _ bob: VPCEPClient, _ serviceID: String) async throws -> [String] {
        let page = PageRequest(limit: 100)
        return [
            "\(try await alice.listConnections(ListConnectionsRequest(serviceId: serviceID, page: page)))",
            "\(try await alice.listPermissions(ListPermissionsRequest(serviceId: serviceID, page: page)))",
            "\(try await alice.listEndpointServices(ListEndpointServicesRequest(page: page)))",
            "\(try await bob.listEndpoints(ListEndpointsRequest(page: page)))",
            "\(try await alice.listHistory(ListHistoryRequest(page: PageRequest(limit: 1))).totalCount)",
        ]
    }

    @Test("suspend, resume, reasons and messages, revocation and force delete through the client library")
    func throughTheClientLibrary() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let network = try await Network.make(alice)
            let service = try await alice.createEndpointService(network.serviceRequest())
            _ = try await alice.addPermissions(AddPermissionsRequest(
                serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::bob")]))
            let bobNetwork = try await Network.make(bob)
            func create(_ message: String = "") async throws(VPCEPError) -> Endpoint {
                try await bob.createEndpoint(CreateEndpointRequest(
                    serviceId: service.id, vpcId: bobNetwork.vpc.id, subnetId: bobNetwork.subnet.id, requestMessage: message))
            }
            let first = try await create("payments team, ticket 42")
            #expect(first.requestMessage == "payments team, ticket 42")
            let second = try await create()
            let listed = try await alice.listConnections(ListConnectionsRequest(serviceId: service.id, id: first.id))
            #expect(listed.items.first?.requestMessage == "payments team, ticket 42")

            await expectFailure(.invalidArgument, "MESSAGE_INVALID", field: "request_message") { () async throws(VPCEPError) in
                try await create("<script>")
            }
            let accepted = try await alice.acceptConnections(DecideConnectionsRequest(
                serviceId: service.id, endpointIds: [first.id, second.id], reason: "welcome"))
            #expect(accepted.items.map(\.reason) == ["welcome", "welcome"])
            let suspended = try await alice.suspendConnections(DecideConnectionsRequest(
                serviceId: service.id, endpointIds: [first.id], reason: "invoice overdue"))
            #expect(suspended.items.map(\.status) == [.suspended])
            let bobSees = try await bob.getEndpoint(GetEndpointRequest(id: first.id))
            #expect(bobSees.status == .suspended && bobSees.decisionReason == "invoice overdue" && !bobSees.ip.isEmpty)
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 2)

            let before = try await observed(alice, bob, service.id)
            await expectFailure(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") { () async throws(VPCEPError) in
                // A suspended connection comes back by resume, not by accept.
                try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [first.id]))
            }
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "service_id") { () async throws(VPCEPError) in
                try await bob.suspendConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [second.id]))
            }
            await expectFailure(.invalidArgument, "MESSAGE_INVALID", field: "reason") { () async throws(VPCEPError) in
                try await alice.suspendConnections(DecideConnectionsRequest(
                    serviceId: service.id, endpointIds: [second.id], reason: "a\u{7}b"))
            }
            await expectFailure(.invalidArgument, "ENUM_VALUE_UNKNOWN", field: "on_existing") { () async throws(VPCEPError) in
                try await alice.removePermissions(RemovePermissionsRequest(
                    serviceId: service.id, permissions: ["iam:domain::bob"], onExisting: OnExisting(rawValue: 9)))
            }
            await expectFailure(.failedPrecondition, "SERVICE_IN_USE", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id, dryRun: true))
            }
            let dryRemoval = try await alice.removePermissions(RemovePermissionsRequest(
                serviceId: service.id, permissions: ["iam:domain::bob"], onExisting: .reject, dryRun: true))
            #expect(dryRemoval.removedCount == 1)
            #expect(dryRemoval.affected.map(\.id) == [first.id, second.id])
            #expect(dryRemoval.affected.map(\.status) == [.suspended, .accepted])
            let dryDelete = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id, force: true, dryRun: true))
            #expect(dryDelete.affected.map(\.id) == [first.id, second.id])
            #expect(try await observed(alice, bob, service.id) == before, "a refused or dry-run call changed something")

            let resumed = try await alice.resumeConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [first.id]))
            #expect(resumed.items.map(\.status) == [.accepted])
            let removal = try await alice.removePermissions(RemovePermissionsRequest(
                serviceId: service.id, permissions: ["iam:domain::bob"], onExisting: .reject))
            #expect(removal.affected.map(\.status) == [.rejected, .rejected])
            let revoked = try await bob.getEndpoint(GetEndpointRequest(id: second.id))
            #expect(revoked.status == .rejected)
            #expect(revoked.decisionReason == "the provider removed the consumer from the service's allow-list")

            // Alice's own endpoint on her service holds it up until a forced delete.
            let own = try await alice.createEndpoint(CreateEndpointRequest(
                serviceId: service.id, vpcId: network.vpc.id, subnetId: network.subnet.id))
            let deleted = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id, force: true))
            #expect(deleted.affected.map(\.id) == [own.id])
            #expect(try await alice.getEndpoint(GetEndpointRequest(id: own.id)).decisionReason == "the service was deleted by its provider")
            let history = try await alice.listHistory(ListHistoryRequest(resourceId: first.id, page: PageRequest(limit: 20, sortDir: "asc")))
            #expect(history.items.map(\.type).contains(.connectionSuspended))
            #expect(history.items.map(\.type).contains(.connectionResumed))
            await alice.close()
            await bob.close()
        }
    }

    @Test("the CLI: endpoint create --message, connection suspend/resume --reason, permission remove and service delete with --dry-run")
    func throughTheCLI() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let serviceID = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080", "--name", "web")
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "bob")
            let bob = try await server.cliNetwork("bob", loadBalancer: false)
            let endpoint = try await server.cliJSON(
                "bob", "endpoint", "create", "--service", serviceID, "--vpc", bob.vpc, "--subnet", bob.subnet,
                "--message", "hello from bob")
            let endpointID = try #require(endpoint["id"] as? String)
            let connections = try await server.cliJSON("alice", "connection", "list", serviceID)
            #expect(connections.items.first?["request_message"] as? String == "hello from bob")

            _ = try await server.cliJSON("alice", "connection", "accept", serviceID, endpointID, "--reason", "ok")
            let suspended = try await server.cliJSON("alice", "connection", "suspend", serviceID, endpointID, "--reason", "paused")
            #expect(suspended.items.first?["status"] as? String == "suspended")
            #expect(suspended.items.first?["reason"] as? String == "paused")
            let resumed = try await server.cliJSON("alice", "connection", "resume", serviceID, endpointID)
            #expect(resumed.items.first?["status"] as? String == "accepted")

            let dry = try await server.cliJSON("alice", "permission", "remove", serviceID, "bob", "--reject-existing", "--dry-run")
            #expect(dry["removed_count"] as? Int == 1)
            #expect((dry["affected"] as? [[String: Any]])?.first?["status"] as? String == "accepted")
            let stillThere = try await server.cliJSON("alice", "permission", "list", serviceID)
            #expect(stillThere.items.count == 1, "a dry run removed the entry")

            let table = try await server.cli("alice", "service", "delete", serviceID, "--force", "--dry-run")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("dry run"))
            #expect(table.stdout.contains(endpointID))
            try await server.cliFailure(
                "alice", "service", "delete", serviceID, exit: 9, code: "FAILED_PRECONDITION", reason: "SERVICE_IN_USE", field: "id")

            let removed = try await server.cliJSON("alice", "permission", "remove", serviceID, "bob", "--reject-existing")
            #expect((removed["affected"] as? [[String: Any]])?.first?["status"] as? String == "rejected")
            let forced = try await server.cli("alice", "service", "delete", serviceID, "--force")
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(forced.stdout.contains("0 connections were affected"))
            let after = try await server.cliJSON("bob", "endpoint", "get", endpointID)
            #expect(after["status"] as? String == "rejected")
        }
    }
}
