import Foundation
import Testing
import VPCEPTestSupport

/// Issue 4's story, told only through the `vpcep` binary against a real server: a provider publishes a
/// service with approval, a consumer is let in, waits, is accepted, and both clean up.
@Suite("CLI: the two-tenant story", .timeLimit(.minutes(3)))
struct CLITwoTenantStoryTests {
    @Test("alice publishes with approval, allows bob, accepts his endpoint; deletes happen in the only order allowed")
    func twoTenantStory() async throws {
        try await withServer { server in
            // alice publishes a service behind her load balancer; approval is on.
            let alice = try await server.cliNetwork("alice")
            let service = try await server.cliJSON(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "443:8443", "--name", "shop", "--approval", "--tag", "env=prod"
            )
            let serviceID = try #require(service["id"] as? String)
            let serviceName = try #require(service["service_name"] as? String)
            #expect(serviceName == "eu-west-1.shop.\(serviceID)")
            #expect(service["approval_enabled"] as? Bool == true)
            #expect(service["connection_count"] as? Int == 0)

            // bob has his own network, but is not on the allow-list: he can neither look the service up nor
            // connect to it, and learns nothing about it.
            let bob = try await server.cliNetwork("bob", cidr: "10.8.0.0/16", subnetCIDR: "10.8.1.0/24", loadBalancer: false)
            try await server.cliFailure(
                "bob", "service", "describe", serviceName, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
            try await server.cliFailure(
                "bob", "endpoint", "create", "--service", serviceName, "--vpc", bob.vpc, "--subnet", bob.subnet,
                exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND", field: "service_name"
            )
            let refused = try await server.cli(
                "bob", "endpoint", "create", "--service", serviceName, "--vpc", bob.vpc, "--subnet", bob.subnet
            )
            #expect(refused.status == 4)
            #expect(refused.stderr.contains("SERVICE_NOT_FOUND"), "\(refused.stderr)")
            #expect(try await server.cliJSON("bob", "endpoint", "list")["total_count"] as? Int == 0)

            // alice allows bob by his bare tenant id; the CLI sends iam:domain::bob.
            let added = try await server.cliJSON(
                "alice", "permission", "add", serviceName, "bob", "--description", "bob's team"
            )
            #expect(added.items.map { $0["permission"] as? String } == ["iam:domain::bob"])
            #expect(added.items.first?["permission_type"] as? String == "domainId")
            let permissions = try await server.cli("alice", "permission", "list", serviceID)
            #expect(permissions.status == 0, "\(permissions.stderr)")
            #expect(permissions.stdout.contains("PERMISSION"))
            #expect(permissions.stdout.contains("iam:domain::bob"))

            // bob now sees the consumer's summary, and his endpoint waits for alice, with no IP shown.
            let summary = try await server.cliJSON("bob", "service", "describe", serviceName)
            #expect(summary["id"] as? String == serviceID)
            #expect(summary["approval_enabled"] as? Bool == true)
            #expect(summary["owner"] as? String == "alice")

            let endpoint = try await server.cliJSON(
                "bob", "endpoint", "create", "--service", serviceName, "--vpc", bob.vpc, "--subnet", bob.subnet,
                "--tag", "app=shop"
            )
            let endpointID = try #require(endpoint["id"] as? String)
            #expect(endpoint["status"] as? String == "pending_acceptance")
            #expect((endpoint["ip"] as? String ?? "").isEmpty, "ip shown before acceptance: \(endpoint)")
            #expect(endpoint["service_id"] as? String == serviceID)
            #expect(endpoint["tenant_id"] as? String == "bob")

            let waiting = try await server.cli("bob", "endpoint", "get", endpointID)
            #expect(waiting.status == 0, "\(waiting.stderr)")
            #expect(waiting.stdout.contains("pending_acceptance"))
            #expect(!waiting.stdout.split(separator: "\n").contains { $0.hasPrefix("ip ") }, "\(waiting.stdout)")
            let pendingList = try await server.cliJSON("bob", "endpoint", "list", "--status", "pendingAcceptance")
            #expect(pendingList.items.map { $0["id"] as? String } == [endpointID])

            // alice sees bob's connection waiting (the reference's and the snake_case spellings both filter), and accepts it.
            for status in ["pending_acceptance", "PENDINGACCEPTANCE"] {
                let connections = try await server.cliJSON("alice", "connection", "list", serviceName, "--status", status)
                #expect(connections.items.map { $0["id"] as? String } == [endpointID])
                #expect(connections.items.first?["tenant_id"] as? String == "bob")
            }
            #expect(try await server.cliJSON("alice", "connection", "list", serviceID, "--status", "accepted").items.isEmpty)

            let accepted = try await server.cliJSON("alice", "connection", "accept", serviceID, endpointID)
            #expect(accepted.items.map { $0["id"] as? String } == [endpointID])
            #expect(accepted.items.first?["status"] as? String == "accepted")

            let afterAccept = try await server.cliJSON("alice", "service", "get", serviceID)
            #expect(afterAccept["connection_count"] as? Int == 1)
            let table = try await server.cli("alice", "connection", "list", serviceID)
            #expect(table.stdout.contains("ENDPOINT"))
            #expect(table.stdout.contains(endpointID))
            #expect(table.stdout.contains("accepted"))

            let connected = try await server.cliJSON("bob", "endpoint", "get", endpointID)
            #expect(connected["status"] as? String == "accepted")
            let ip = try #require(connected["ip"] as? String)
            #expect(ip.hasPrefix("10.8.1."), "ip \(ip) is not in bob's subnet")

            // alice cannot delete a service with an accepted endpoint.
            let inUse = try await server.cliFailure(
                "alice", "service", "delete", serviceID, exit: 9, code: "FAILED_PRECONDITION", reason: "SERVICE_IN_USE"
            )
            #expect((inUse["message"] as? String)?.contains("1") == true, "\(inUse)")
            #expect(try await server.cliJSON("alice", "service", "get", serviceID)["id"] as? String == serviceID)

            // bob deletes his endpoint (silently), then alice deletes the service (silently).
            let endpointDeleted = try await server.cli("bob", "endpoint", "delete", endpointID)
            #expect(endpointDeleted.status == 0, "\(endpointDeleted.stderr)")
            #expect(endpointDeleted.stdout.isEmpty)
            try await server.cliFailure(
                "bob", "endpoint", "get", endpointID, exit: 4, code: "NOT_FOUND", reason: "ENDPOINT_NOT_FOUND"
            )
            #expect(try await server.cliJSON("alice", "service", "get", serviceID)["connection_count"] as? Int == 0)

            let serviceDeleted = try await server.cli("alice", "service", "delete", serviceName)
            #expect(serviceDeleted.status == 0, "\(serviceDeleted.stderr)")
            #expect(serviceDeleted.stdout.isEmpty)
            try await server.cliFailure(
                "alice", "service", "get", serviceID, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
        }
    }
}
