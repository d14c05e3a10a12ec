import Foundation
import Testing
import VPCEPTestSupport

/// `vpcep history` against a real server: the change log read back through `ListHistory`, each side
/// seeing what it may (docs/DOMAIN.md, "Change log" and "History").
@Suite("CLI: history", .timeLimit(.minutes(3)))
struct CLIHistoryTests {
    @Test("provider and consumer each see the connection's whole history, in their own view")
    func historyOfAConnection() async throws {
        try await withServer { server in
            let alice = try await server.cliNetwork("alice")
            let service = try await server.cliJSON(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "443:8443", "--name", "shop", "--approval")
            let serviceID = try #require(service["id"] as? String)
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "bob")
            let bob = try await server.cliNetwork("bob", cidr: "10.8.0.0/16", subnetCIDR: "10.8.1.0/24", loadBalancer: false)
            let endpoint = try await server.cliJSON(
                "bob", "endpoint", "create", "--service", serviceID, "--vpc", bob.vpc, "--subnet", bob.subnet)
            let endpointID = try #require(endpoint["id"] as? String)
            _ = try await server.cliJSON("alice", "connection", "accept", serviceID, endpointID)
            _ = try await server.cliJSON("alice", "connection", "update", serviceID, endpointID, "--description", "vip")
            _ = try await server.cliJSON("alice", "connection", "reject", serviceID, endpointID)

            // The provider: every decision, on the connection as it sees it.
            let seenByAlice = try await server.cliJSON("alice", "history", endpointID, "--sort-dir", "asc").items
            #expect(seenByAlice.map { $0["type"] as? String } == [
                "connection_requested", "connection_accepted", "updated", "connection_rejected",
            ])
            let seqs = seenByAlice.compactMap { $0["seq"] as? Int }
            #expect(seqs == seqs.sorted() && Set(seqs).count == 4)
            #expect(seenByAlice.allSatisfy { $0["connection"] != nil && $0["endpoint"] == nil })
            #expect(seenByAlice.allSatisfy { $0["kind"] as? String == "endpoint" && $0["resource_id"] as? String == endpointID })
            #expect(seenByAlice.map { $0["actor"] as? String } == ["bob", "alice", "alice", "alice"])
            // bob's request id is bob's; alice's own are hers to see.
            #expect(seenByAlice.map { ($0["request_id"] as? String ?? "").isEmpty } == [true, false, false, false])
            let accepted = seenByAlice[1]
            #expect(Set(accepted["changed_fields"] as? [String] ?? []).isSuperset(of: ["status", "decided_by", "decided_at"]))
            #expect((accepted["connection"] as? [String: Any])?["status"] as? String == "accepted")
            #expect(seenByAlice[2]["changed_fields"] as? [String] == ["description", "updated_at"])

            // The consumer: its endpoint and the decisions on it, not the provider's note.
            let seenByBob = try await server.cliJSON("bob", "history", endpointID, "--sort-dir", "asc").items
            #expect(seenByBob.map { $0["type"] as? String } == seenByAlice.map { $0["type"] as? String })
            #expect(seenByBob.allSatisfy { $0["endpoint"] != nil && $0["connection"] == nil })
            #expect(seenByBob[2]["changed_fields"] as? [String] == ["revision", "updated_at"])
            #expect((seenByBob[1]["endpoint"] as? [String: Any])?["ip"] as? String != "")
            // Nothing of alice's service or allow-list, nor of another tenant.
            #expect(try await server.cliJSON("bob", "history", serviceID)["total_count"] as? Int == 0)
            #expect(try await server.cliJSON("carol", "history")["total_count"] as? Int == 0)

            // The service's own history, as a table for people.
            let table = try await server.cli("alice", "history", serviceID)
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("SEQ") == true, "\(table.stdout)")
            #expect(lines.count == 2 && lines[1].contains("created") && lines[1].contains(serviceID), "\(table.stdout)")

            // A time range: nothing before the first change, everything from it.
            let first = try #require(seenByAlice.first?["time"] as? String)
            #expect(try await server.cliJSON("alice", "history", endpointID, "--until", first)["total_count"] as? Int == 0)
            #expect(try await server.cliJSON("alice", "history", endpointID, "--since", first)["total_count"] as? Int == 4)
            _ = try await server.cliFailure(
                "alice", "history", endpointID, "--since", "yesterday", exit: 3, code: "INVALID_ARGUMENT",
                reason: "TIME_INVALID", field: "since")
            _ = try await server.cliFailure(
                "alice", "history", "--since", "2026-11-30T12:00:00Z", "--until", "2026-11-30T11:00:00+00:00", exit: 3,
                code: "INVALID_ARGUMENT", reason: "HISTORY_RANGE_INVALID", field: "until")
        }
    }
}
