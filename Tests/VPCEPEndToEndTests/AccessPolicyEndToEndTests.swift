import Foundation
import Testing
import VPCEPTestSupport

/// Access policies through a real server and the `vpcep` binary (docs/DOMAIN.md, "Access policies").
@Suite("CLI: access policies, expiry and access check", .timeLimit(.minutes(3)))
struct AccessPolicyEndToEndTests {
    /// Everything alice's service and its consumers' endpoints show, for before/after comparisons.
    private func state(_ server: ServerProcess, _ service: String) async throws -> String {
        let entries = try await server.cli("alice", arguments: ["permission", "list", service, "--output", "json"])
        let connections = try await server.cli("alice", arguments: ["connection", "list", service, "--output", "json"])
        return entries.stdout + connections.stdout
    }

    @Test("permission add with terms; auto-accept, limit, deny and expiry with reject; access check explains each")
    func policies() async throws {
        // A quick sweep, so that the expiry is acted on soon after its time.
        try await withServer(extraArguments: ["--permission-sweep-interval-ms", "100"]) { server in
            let net = try await server.cliNetwork("alice")
            let service = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080")
            let bobNet = try await server.cliNetwork("bob", cidr: "10.1.0.0/16", subnetCIDR: "10.1.1.0/24", loadBalancer: false)
            let carolNet = try await server.cliNetwork("carol", cidr: "10.2.0.0/16", subnetCIDR: "10.2.1.0/24", loadBalancer: false)
            let daveNet = try await server.cliNetwork("dave", cidr: "10.3.0.0/16", subnetCIDR: "10.3.1.0/24", loadBalancer: false)

            func create(_ who: String, _ network: CLINetwork) async throws -> CommandResult {
                try await server.cli(
                    who, arguments: ["endpoint", "create", "--service", service, "--vpc", network.vpc, "--subnet", network.subnet,
                                     "--output", "json"])
            }
            let bobEntry = try await server.cliJSON("alice", "permission", "add", service, "bob", "--auto-accept", "--limit", "2")
            #expect(bobEntry.items.first?["decision"] as? String == "auto_accept")
            #expect(bobEntry.items.first?["connection_limit"] as? Int == 2)
            _ = try await server.cliJSON("alice", "permission", "add", service, "dave", "--deny")
            for _ in 0..<2 {
                let bob = try await create("bob", bobNet)
                #expect(bob.status == 0, "\(bob.stderr)")
                #expect(try bob.json()["status"] as? String == "accepted", "auto-accepted although approval is on")
            }
            let before = try await state(server, service)
            try await server.cliFailure(
                "bob", "endpoint", "create", "--service", service, "--vpc", bobNet.vpc, "--subnet", bobNet.subnet,
                exit: 8, code: "RESOURCE_EXHAUSTED", reason: "CONNECTION_LIMIT_EXCEEDED", field: "service_id")
            try await server.cliFailure(
                "dave", "endpoint", "create", "--service", service, "--vpc", daveNet.vpc, "--subnet", daveNet.subnet,
                exit: 6, code: "PERMISSION_DENIED", reason: "ACCESS_DENIED", field: "service_id")
            try await server.cliFailure(
                "alice", "permission", "add", service, "erin", "--expires", "2001-01-01T00:00:00Z",
                exit: 3, code: "INVALID_ARGUMENT", reason: "EXPIRY_IN_PAST", field: "entries[0].expires_at")
            try await server.cliFailure(
                "alice", "permission", "add", service, "erin", "--expires", "tomorrow",
                exit: 3, code: "INVALID_ARGUMENT", reason: "TIME_INVALID", field: "entries[0].expires_at")
            try await server.cliFailure(
                "alice", "permission", "add", service, "erin", "--on-expiry", "reject",
                exit: 3, code: "INVALID_ARGUMENT", reason: "EXPIRY_REQUIRED", field: "entries[0].on_expiry")
            #expect(try await state(server, service) == before, "refused calls change nothing")

            // access check, as the provider and as consumers.
            let bobCheck = try await server.cliJSON("alice", "access", "check", service, "--tenant", "bob")
            #expect(bobCheck["admitted"] as? Bool == false)
            #expect(bobCheck["refusal_reason"] as? String == "CONNECTION_LIMIT_EXCEEDED")
            #expect(bobCheck["basis"] as? String == "tenant_entry")
            #expect(bobCheck["held"] as? Int == 2)
            #expect(bobCheck["remaining"] as? Int == 0)
            #expect((bobCheck["explanation"] as? String)?.contains("2 of its 2 connections") == true)
            let daveCheck = try await server.cli("dave", "access", "check", service)
            #expect(daveCheck.status == 0)
            #expect(daveCheck.stdout.contains("ACCESS_DENIED"), "table output: \(daveCheck.stdout)")
            try await server.cliFailure(
                "bob", "access", "check", service, "--tenant", "carol",
                exit: 6, code: "PERMISSION_DENIED", reason: "OWNER_ONLY", field: "tenant_id")
            try await server.cliFailure(
                "erin", "access", "check", service, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND")

            // carol is let in until a whole second some seconds ahead, which passes during the test (added
            // after the before/after comparisons above, which her connection's rejection would disturb).
            let expiry = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 15).rounded(.up))
            let expires = expiry.formatted(.iso8601)
            let carolEntry = try await server.cliJSON(
                "alice", "permission", "add", service, "carol", "--auto-accept", "--expires", expires, "--on-expiry", "reject")
            #expect(carolEntry.items.first?["on_expiry"] as? String == "reject")
            // carol connects before her entry expires.
            let carol = try await create("carol", carolNet)
            #expect(carol.status == 0, "\(carol.stderr)")
            let carolEndpoint = try #require(try carol.json()["id"] as? String)
            let carolCheck = try await server.cliJSON("carol", "access", "check", service)
            #expect(carolCheck["admitted"] as? Bool == true)
            #expect(carolCheck["initial_status"] as? String == "accepted")
            #expect((carolEntry.items.first?["expires_at"] as? String)?.hasPrefix(String(expires.dropLast())) == true)

            let table = try await server.cli("alice", "permission", "list", service, "--wide")
            #expect(table.status == 0, "\(table.stderr)")
            for column in ["DECISION", "LIMIT", "EXPIRES", "ON EXPIRY", "auto_accept", "deny", "reject"] {
                #expect(table.stdout.contains(column), "\(column) in \(table.stdout)")
            }

            // The sweep rejects carol's connection once her entry's time has come.
            var status = ""
            for _ in 0..<600 {
                status = try await server.cliJSON("carol", "endpoint", "get", carolEndpoint)["status"] as? String ?? ""
                if status == "rejected" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == "rejected")
            #expect(Date() >= expiry, "never before the entry's time")
            let history = try await server.cliJSON("alice", "history", carolEndpoint)
            #expect(history.items.first?["type"] as? String == "connection_rejected")
            #expect(history.items.first?["actor"] as? String == "system:expiry")
            try await server.cliFailure(
                "carol", "endpoint", "create", "--service", service, "--vpc", carolNet.vpc, "--subnet", carolNet.subnet,
                exit: 6, code: "PERMISSION_DENIED", reason: "ACCESS_EXPIRED", field: "service_id")
            let expired = try await server.cliJSON("alice", "access", "check", service, "--tenant", "carol")
            #expect(expired["admitted"] as? Bool == false)
            #expect(expired["refusal_reason"] as? String == "ACCESS_EXPIRED")
            // bob's connections were admitted by his own entry: untouched.
            let connections = try await server.cliJSON("alice", "connection", "list", service)
            #expect(connections.items.filter { $0["status"] as? String == "accepted" }.count == 2)

            // Adding bob's entry again with other terms replaces them: an `updated` event naming what changed.
            let bobID = try #require(bobEntry.items.first?["id"] as? String)
            let replaced = try await server.cliJSON("alice", "permission", "add", service, "bob", "--limit", "3")
            #expect(replaced.items.first?["id"] as? String == bobID)
            #expect(replaced.items.first?["decision"] as? String == "manual")
            let entryHistory = try await server.cliJSON("alice", "history", bobID)
            #expect(entryHistory.items.first?["type"] as? String == "updated")
            let changed = entryHistory.items.first?["changed_fields"] as? [String] ?? []
            #expect(changed.contains("decision") && changed.contains("connection_limit") && changed.contains("updated_at"))
            #expect(try await server.cliJSON("bob", "access", "check", service)["remaining"] as? Int == 1)
        }
    }
}
