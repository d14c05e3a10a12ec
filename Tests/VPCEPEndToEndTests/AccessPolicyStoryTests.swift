import Foundation
import Testing
import VPCEPTestSupport

/// Issue 13's story, told only through the `vpcep` binary against a real server: alice's allow-list
/// manages itself (her own team auto-accepted under a limit, bob reviewed by hand, carol admitted
/// until a time that passes during the test), bob is suspended, resumed and revoked, and a forced
/// delete leaves nothing live pointing at the service. Every refused or dry-run call is checked to
/// leave everything the tenants can see unchanged.
@Suite("CLI: access that manages itself", .timeLimit(.minutes(4)))
struct AccessPolicyStoryTests {
    @Test("auto-accept under a limit, manual review, an expiry that rejects, suspend/resume, revocation, force delete")
    func story() async throws {
        let server = try await ServerProcess.start(extraArguments: ["--permission-sweep-interval-ms", "200"])
        do {
            let alice = try await server.cliNetwork("alice")
            let service = try await server.cliJSON(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "443:8443", "--name", "shop", "--approval")
            let serviceID = try #require(service["id"] as? String)
            let serviceName = try #require(service["service_name"] as? String)

            // dave is alice's own team: accepted at once, at most two endpoints. bob is reviewed by hand.
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "dave", "--auto-accept", "--limit", "2")
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "bob")

            let tenants = ["dave": "10.7", "bob": "10.8", "carol": "10.9"]
            var networks: [String: CLINetwork] = [:]
            for (tenant, prefix) in tenants {
                networks[tenant] = try await server.cliNetwork(
                    tenant, cidr: "\(prefix).0.0/16", subnetCIDR: "\(prefix).1.0/24", loadBalancer: false)
            }
            func create(_ tenant: String, _ extra: String...) async throws -> [String: Any] {
                let network = try #require(networks[tenant])
                return try await server.cli(tenant, arguments: [
                    "endpoint", "create", "--service", serviceName, "--vpc", network.vpc, "--subnet", network.subnet,
                ] + extra + ["--output", "json"]).json()
            }
            func state() async throws -> String {
                var seen: [String] = []
                for (identity, arguments) in [
                    ("alice", ["service", "get", serviceID]), ("alice", ["permission", "list", serviceID]),
                    ("alice", ["connection", "list", serviceID]), ("dave", ["endpoint", "list"]),
                    ("bob", ["endpoint", "list"]), ("carol", ["endpoint", "list"]),
                ] {
                    let result = try await server.cli(identity, arguments: arguments + ["--output", "json"])
                    try #require(result.status == 0, "\(arguments): \(result.stderr)")
                    seen.append(result.stdout)
                }
                return seen.joined(separator: "\n")
            }

            // dave: two endpoints accepted at once although approval is on; the third is refused like a quota.
            var daveEndpoints: [String] = []
            for _ in 0..<2 {
                let endpoint = try await create("dave")
                #expect(endpoint["status"] as? String == "accepted", "\(endpoint)")
                daveEndpoints.append(try #require(endpoint["id"] as? String))
            }
            let beforeThird = try await state()
            let dave = try #require(networks["dave"])
            try await server.cliFailure(
                "dave", "endpoint", "create", "--service", serviceName, "--vpc", dave.vpc, "--subnet", dave.subnet,
                exit: 8, code: "RESOURCE_EXHAUSTED", reason: "CONNECTION_LIMIT_EXCEEDED")
            #expect(try await state() == beforeThird, "a refused create changed something")
            let daveCheck = try await server.cliJSON("alice", "access", "check", serviceID, "--tenant", "dave")
            #expect(daveCheck["admitted"] as? Bool == false)
            #expect(daveCheck["refusal_reason"] as? String == "CONNECTION_LIMIT_EXCEEDED")
            #expect(!((daveCheck["explanation"] as? String) ?? "").isEmpty)

            // bob: waits for alice, who accepts him by hand, then suspends and resumes him.
            let bobEndpoint = try await create("bob", "--message", "bob's team, ticket 42")
            let bobID = try #require(bobEndpoint["id"] as? String)
            #expect(bobEndpoint["status"] as? String == "pending_acceptance")
            let bobCheck = try await server.cliJSON("bob", "access", "check", serviceName)
            #expect(bobCheck["admitted"] as? Bool == true)
            _ = try await server.cliJSON("alice", "connection", "accept", serviceID, bobID, "--reason", "welcome")
            #expect(try await server.cliJSON("bob", "endpoint", "get", bobID)["status"] as? String == "accepted")
            _ = try await server.cliJSON("alice", "connection", "suspend", serviceID, bobID, "--reason", "invoice overdue")
            let suspended = try await server.cliJSON("bob", "endpoint", "get", bobID)
            #expect(suspended["status"] as? String == "suspended")
            #expect(!((suspended["ip"] as? String) ?? "").isEmpty, "a suspended endpoint keeps its address")
            _ = try await server.cliJSON("alice", "connection", "resume", serviceID, bobID)
            #expect(try await server.cliJSON("bob", "endpoint", "get", bobID)["status"] as? String == "accepted")

            // carol is let in until a time a few seconds away (set only now, so that a slow machine
            // cannot pass it before she connects): accepted at once until then; then the server rejects
            // her connection by itself, with no call touching the service.
            let expiry = Date().addingTimeInterval(20)
            _ = try await server.cliJSON(
                "alice", "permission", "add", serviceID, "carol", "--auto-accept", "--expires", Self.rfc3339(expiry),
                "--on-expiry", "reject")
            let carolEndpoint = try await create("carol")
            let carolID = try #require(carolEndpoint["id"] as? String)
            #expect(carolEndpoint["status"] as? String == "accepted")
            let carolCheck = try await server.cliJSON("alice", "access", "check", serviceID, "--tenant", "carol")
            #expect(carolCheck["admitted"] as? Bool == true)
            #expect(!((carolCheck["expires_at"] as? String) ?? "").isEmpty)
            while Date() < expiry { try await Task.sleep(for: .milliseconds(200)) }
            var carolStatus = ""
            while carolStatus != "rejected" {
                try await Task.sleep(for: .milliseconds(200))
                carolStatus = try await server.cliJSON("carol", "endpoint", "get", carolID)["status"] as? String ?? ""
            }
            let expired = try await server.cliJSON("alice", "access", "check", serviceID, "--tenant", "carol")
            #expect(expired["admitted"] as? Bool == false)
            #expect(expired["refusal_reason"] as? String == "ACCESS_EXPIRED")

            // alice takes bob off the list: the dry run names his endpoint and changes nothing; then for real.
            let beforeRemoval = try await state()
            let dryRemoval = try await server.cliJSON(
                "alice", "permission", "remove", serviceID, "bob", "--reject-existing", "--dry-run")
            #expect(Self.ids(dryRemoval["affected"]) == [bobID])
            #expect(try await state() == beforeRemoval, "a dry-run removal changed something")
            let removal = try await server.cliJSON("alice", "permission", "remove", serviceID, "bob", "--reject-existing")
            #expect(Self.ids(removal["affected"]) == [bobID])
            #expect(try await server.cliJSON("bob", "endpoint", "get", bobID)["status"] as? String == "rejected")
            let bobAfter = try await server.cliJSON("alice", "access", "check", serviceID, "--tenant", "bob")
            #expect(bobAfter["admitted"] as? Bool == false)

            // A forced delete: the dry run lists dave's two live endpoints and changes nothing; the delete
            // rejects them and removes the service, leaving nothing live pointing at it.
            let beforeDelete = try await state()
            let dryDelete = try await server.cliJSON("alice", "service", "delete", serviceID, "--force", "--dry-run")
            #expect(Set(Self.ids(dryDelete["affected"])) == Set(daveEndpoints))
            #expect(try await state() == beforeDelete, "a dry-run delete changed something")
            let delete = try await server.cliJSON("alice", "service", "delete", serviceID, "--force")
            #expect(Set(Self.ids(delete["affected"])) == Set(daveEndpoints))
            try await server.cliFailure("alice", "service", "get", serviceID, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND")
            try await server.cliFailure(
                "alice", "connection", "list", serviceID, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND")
            for tenant in ["dave", "bob", "carol"] {
                for endpoint in try await server.cliJSON(tenant, "endpoint", "list").items {
                    #expect(endpoint["status"] as? String == "rejected", "\(tenant): \(endpoint)")
                }
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    private static func ids(_ value: Any?) -> [String] {
        (value as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }
}
