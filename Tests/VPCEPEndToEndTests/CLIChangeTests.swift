import Foundation
import Testing
import VPCEPTestSupport

/// The `vpcep` binary on the paths that change things after creation: service updates, allow-lists,
/// quotas, tags, endpoint and connection changes, and deletes, with the errors of each.
@Suite("CLI: updates, permissions, quotas, tags and deletes", .timeLimit(.minutes(3)))
struct CLIChangeTests {
    @Test("service update changes only what is given, replaces ports, and honours --revision")
    func serviceUpdate() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let created = try await server.cliJSON(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080", "--name", "web", "--description", "first", "--client-ip-mode", "toa_open"
            )
            let id = try #require(created["id"] as? String)
            #expect(created["revision"] as? Int == 1)
            #expect(created["approval_enabled"] as? Bool == true)
            #expect(created["client_ip_mode"] as? String == "toa_open")

            let updated = try await server.cliJSON(
                "alice", "service", "update", "eu-west-1.web.\(id)", "--no-approval", "--name", "api", "--port", "81:9081", "--port", "82:9082",
                "--client-ip-mode", "proxy_open", "--revision", "1"
            )
            #expect(updated["service_name"] as? String == "eu-west-1.api.\(id)")
            #expect(updated["approval_enabled"] as? Bool == false)
            #expect(updated["client_ip_mode"] as? String == "proxy_open")
            #expect(updated["description"] as? String == "first", "unchanged when not given")
            let ports = try #require(updated["ports"] as? [[String: Any]])
            #expect(ports.map { $0["terminal_port"] as? Int } == [81, 82])
            #expect(ports.map { $0["service_port"] as? Int } == [9081, 9082])
            #expect(updated["revision"] as? Int == 2)

            let table = try await server.cli("alice", "service", "update", id, "--description", "")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("proxy_open"))
            #expect(!table.stdout.contains("first"), "description cleared: \(table.stdout)")

            try await server.cliFailure(
                "alice", "service", "update", id, "--description", "stale", "--revision", "1",
                exit: 5, code: "ABORTED", reason: "REVISION_MISMATCH", field: "expected_revision"
            )
            try await server.cliFailure(
                "alice", "service", "update", id, exit: 3, code: "INVALID_ARGUMENT", reason: "UPDATE_EMPTY"
            )
            try await server.cliFailure(
                "alice", "service", "update", id, "--port", "80:0",
                exit: 3, code: "INVALID_ARGUMENT", reason: "PORT_OUT_OF_RANGE", field: "ports[0].service_port"
            )
            try await server.cliFailure(
                "alice", "service", "update", id, "--name", "no.dots",
                exit: 3, code: "INVALID_ARGUMENT", reason: "SERVICE_NAME_INVALID", field: "name"
            )
            try await server.cliFailure(
                "bob", "service", "update", id, "--description", "mine now",
                exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
            try await server.cliFailure(
                "alice", "service", "update", "eu-west-1.web.\(id)", "--description", "renamed away",
                exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND", field: "service_name"
            )
            let usage = try await server.cli("alice", "service", "update", id, "--client-ip-mode", "sideways")
            #expect(usage.status == 64)
            #expect(usage.stderr.contains("toa_open"), "the error lists the values: \(usage.stderr)")

            // Nothing of the failed attempts stuck.
            let now = try await server.cliJSON("alice", "service", "get", id)
            #expect(now["revision"] as? Int == 3)
            #expect(now["description"] as? String == "")
        }
    }

    @Test("permission add, list and remove, by entry, by bare tenant id and by --id; bad entries and strangers refused")
    func permissions() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let id = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080"
            )

            let added = try await server.cliJSON("alice", "permission", "add", id, "*", "iam:domain::carol", "dave")
            #expect(added.items.map { $0["permission"] as? String } == ["*", "iam:domain::carol", "iam:domain::dave"])
            let daveID = try #require(added.items.last?["id"] as? String)

            let quiet = try await server.cli("alice", "permission", "list", id, "--quiet")
            #expect(quiet.stdout.split(separator: "\n").count == 3)
            #expect(quiet.stdout.contains(daveID))
            let filtered = try await server.cliJSON("alice", "permission", "list", id, "--permission", "carol")
            #expect(filtered.items.map { $0["permission"] as? String } == ["iam:domain::carol"])

            // "*" lets any tenant look the service up.
            #expect(try await server.cliJSON("erin", "service", "describe", id)["owner"] as? String == "alice")

            let byEntry = try await server.cliJSON("alice", "permission", "remove", id, "carol")
            #expect(byEntry["removed_count"] as? Int == 1)
            let byID = try await server.cliJSON("alice", "permission", "remove", id, "--id", daveID)
            #expect(byID["removed_count"] as? Int == 1)
            let again = try await server.cliJSON("alice", "permission", "remove", id, "iam:domain::carol")
            #expect(again["removed_count"] as? Int == 0)
            let table = try await server.cli("alice", "permission", "remove", id, "*")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("removed_count"))
            #expect(try await server.cliJSON("alice", "permission", "list", id)["total_count"] as? Int == 0)
            try await server.cliFailure(
                "erin", "service", "describe", id, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )

            try await server.cliFailure(
                "alice", "permission", "add", id, "carol", "iam:domain::no spaces",
                exit: 3, code: "INVALID_ARGUMENT", reason: "PERMISSION_INVALID", field: "entries[1].permission"
            )
            try await server.cliFailure(
                "alice", "permission", "add", id, "carol", "iam:domain::carol",
                exit: 3, code: "INVALID_ARGUMENT", reason: "PERMISSION_DUPLICATE", field: "entries[1].permission"
            )
            try await server.cliFailure(
                "bob", "permission", "add", id, "bob", exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
            try await server.cliFailure(
                "bob", "permission", "list", id, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
            #expect(try await server.cli("alice", "permission", "remove", id).status == 64)
            #expect(try await server.cliJSON("alice", "permission", "list", id)["total_count"] as? Int == 0)
        }
    }

    @Test("quota set is for operators; the new limit is what tenants see and what creates hit")
    func quotaSet() async throws {
        try await withServer { server in
            let set = try await server.cliJSON("ops", "quota", "set", "--tenant", "alice", "--type", "endpoint_service", "--limit", "1")
            #expect(set["type"] as? String == "endpoint_service")
            #expect(set["quota"] as? Int == 1)
            #expect(set["used"] as? Int == 0)
            let table = try await server.cli("ops", "quota", "set", "--tenant", "bob", "--type", "endpoint", "--limit", "0")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("QUOTA"))
            #expect(table.stdout.contains("endpoint"))

            let quotas = try await server.cliJSON("alice", "quota", "list")
            #expect(quotas.items.first?["type"] as? String == "endpoint_service")
            #expect(quotas.items.first?["quota"] as? Int == 1)
            let bobQuotas = try await server.cliJSON("bob", "quota", "list")
            #expect(bobQuotas.items.first { $0["type"] as? String == "endpoint" }?["quota"] as? Int == 0)

            let net = try await server.cliNetwork("alice")
            let service = try await server.cliJSON(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080", "--no-approval"
            )
            let serviceID = try #require(service["id"] as? String)
            let exceeded = try await server.cliFailure(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "81:8081", exit: 8, code: "RESOURCE_EXHAUSTED", reason: "QUOTA_EXCEEDED"
            )
            #expect((exceeded["message"] as? String)?.contains("1 of 1") == true, "\(exceeded)")

            // bob's endpoint quota of 0 stops him even where the service admits him.
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "bob")
            let bob = try await server.cliNetwork("bob", loadBalancer: false)
            try await server.cliFailure(
                "bob", "endpoint", "create", "--service", serviceID, "--vpc", bob.vpc, "--subnet", bob.subnet,
                exit: 8, code: "RESOURCE_EXHAUSTED", reason: "QUOTA_EXCEEDED"
            )

            try await server.cliFailure(
                "alice", "quota", "set", "--tenant", "alice", "--type", "endpoint_service", "--limit", "100",
                exit: 6, code: "PERMISSION_DENIED", reason: "OPERATOR_REQUIRED"
            )
            try await server.cliFailure(
                "ops", "quota", "set", "--tenant", "no such:tenant", "--type", "endpoint", "--limit", "5",
                exit: 3, code: "INVALID_ARGUMENT", reason: "TENANT_ID_INVALID", field: "tenant_id"
            )
            #expect(try await server.cli("ops", "quota", "set", "--tenant", "alice", "--type", "vpc", "--limit", "5").status == 64)
            #expect(try await server.cli("ops", "quota", "set", "--tenant", "alice", "--type", "endpoint").status == 64)
        }
    }

    @Test("tags on service and endpoint creates, and as list filters: keys ANDed, values of one key ORed")
    func tags() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let web = try await server.cliJSON(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080", "--name", "web", "--tag", "env=prod", "--tag", "team=web"
            )
            let webID = try #require(web["id"] as? String)
            let tags = try #require(web["tags"] as? [[String: Any]])
            #expect(tags.map { "\($0["key"] ?? "")=\($0["value"] ?? "")" } == ["env=prod", "team=web"])
            let apiID = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "81:8081", "--name", "api", "--tag", "env=dev"
            )

            func serviceIDs(_ filters: String...) async throws -> Set<String> {
                let result = try await server.cli("alice", arguments: ["service", "list", "--quiet"] + filters)
                #expect(result.status == 0, "\(result.stderr)")
                return Set(result.stdout.split(separator: "\n").map(String.init))
            }
            #expect(try await serviceIDs("--tag", "env=prod") == [webID])
            #expect(try await serviceIDs("--tag", "team") == [webID])
            #expect(try await serviceIDs("--tag", "env") == [webID, apiID])
            #expect(try await serviceIDs("--tag", "env=prod", "--tag", "env=dev") == [webID, apiID])
            #expect(try await serviceIDs("--tag", "env=dev", "--tag", "team").isEmpty)
            #expect(try await serviceIDs("--status", "available", "--tag", "env=dev") == [apiID])
            #expect(try await serviceIDs("--status", "deleting").isEmpty)

            let table = try await server.cli("alice", "service", "get", webID)
            #expect(table.stdout.contains("env=prod,team=web"), "\(table.stdout)")

            try await server.cliFailure(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "82:8082", "--tag", "_sys_owner=x",
                exit: 3, code: "INVALID_ARGUMENT", reason: "TAG_INVALID", field: "tags[0].key"
            )
            try await server.cliFailure(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "82:8082", "--tag", "a=1", "--tag", "a=2",
                exit: 3, code: "INVALID_ARGUMENT", reason: "TAG_DUPLICATE_KEY", field: "tags[1].key"
            )
            #expect(try await server.cli("alice", "service", "list", "--tag", "=x").status == 64)

            // Endpoints: alice may always connect to her own services.
            let first = try await server.cliJSON(
                "alice", "endpoint", "create", "--service", webID, "--vpc", net.vpc, "--subnet", net.subnet,
                "--tag", "app=shop", "--tag", "tier=front"
            )
            let firstID = try #require(first["id"] as? String)
            let secondID = try await server.cliID(
                "alice", "endpoint", "create", "--service", apiID, "--vpc", net.vpc, "--subnet", net.subnet, "--tag", "app=admin"
            )
            let tagged = try await server.cliJSON("alice", "endpoint", "list", "--tag", "app=shop")
            #expect(tagged.items.map { $0["id"] as? String } == [firstID])
            let anyApp = try await server.cliJSON("alice", "endpoint", "list", "--tag", "app", "--vpc", net.vpc)
            #expect(Set(anyApp.items.compactMap { $0["id"] as? String }) == [firstID, secondID])
            #expect(try await server.cliJSON("alice", "endpoint", "list", "--tag", "tier", "--tag", "app=admin").items.isEmpty)
            try await server.cliFailure(
                "alice", "endpoint", "create", "--service", webID, "--vpc", net.vpc, "--subnet", net.subnet,
                "--tag", "bad<key>=1", exit: 3, code: "INVALID_ARGUMENT", reason: "TAG_INVALID", field: "tags[0].key"
            )
        }
    }

    @Test("endpoint update of the whitelist and description; connection description, reject and its limits")
    func endpointAndConnectionChanges() async throws {
        try await withServer { server in
            let alice = try await server.cliNetwork("alice")
            let serviceID = try await server.cliID(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "80:8080", "--no-approval"
            )
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "iam:domain::bob")
            let bob = try await server.cliNetwork("bob", cidr: "10.9.0.0/16", subnetCIDR: "10.9.4.0/24", loadBalancer: false)
            let endpoint = try await server.cliJSON(
                "bob", "endpoint", "create", "--service", serviceID, "--vpc", bob.vpc, "--subnet", bob.subnet,
                "--ip", "10.9.4.20", "--whitelist", "192.168.0.0/24"
            )
            let endpointID = try #require(endpoint["id"] as? String)
            #expect(endpoint["status"] as? String == "accepted", "approval off: accepted at once")
            #expect(endpoint["ip"] as? String == "10.9.4.20")
            #expect(endpoint["whitelist"] as? [String] == ["192.168.0.0/24"])
            #expect(endpoint["enable_whitelist"] as? Bool == false)

            let updated = try await server.cliJSON(
                "bob", "endpoint", "update", endpointID, "--whitelist", "172.16.0.0/12", "--whitelist", "10.1.2.3",
                "--enable-whitelist", "--description", "to alice"
            )
            #expect(updated["whitelist"] as? [String] == ["172.16.0.0/12", "10.1.2.3/32"])
            #expect(updated["enable_whitelist"] as? Bool == true)
            #expect(updated["description"] as? String == "to alice")
            let cleared = try await server.cliJSON("bob", "endpoint", "update", endpointID, "--clear-whitelist", "--no-enable-whitelist")
            #expect(cleared["whitelist"] as? [String] == [])
            #expect(cleared["enable_whitelist"] as? Bool == false)
            #expect(cleared["description"] as? String == "to alice")

            #expect(try await server.cli("bob", "endpoint", "update", endpointID, "--whitelist", "1.2.3.4", "--clear-whitelist").status == 64)
            try await server.cliFailure(
                "bob", "endpoint", "update", endpointID, "--whitelist", "10.0.0.0/8", "--whitelist", "300.1.1.1",
                exit: 3, code: "INVALID_ARGUMENT", reason: "CIDR_INVALID", field: "whitelist[1]"
            )
            try await server.cliFailure(
                "bob", "endpoint", "update", endpointID, exit: 3, code: "INVALID_ARGUMENT", reason: "UPDATE_EMPTY"
            )
            try await server.cliFailure(
                "alice", "endpoint", "update", endpointID, "--description", "not hers",
                exit: 4, code: "NOT_FOUND", reason: "ENDPOINT_NOT_FOUND"
            )

            // alice's view of the connection: her own description, then a rejection that keeps bob's IP shown.
            let described = try await server.cliJSON(
                "alice", "connection", "update", serviceID, endpointID, "--description", "bob, prod"
            )
            #expect(described["description"] as? String == "bob, prod")
            #expect(described["tenant_id"] as? String == "bob")
            let alias = try await server.cli("alice", "connection", "set-description", serviceID, endpointID, "--description", "bob")
            #expect(alias.status == 0, "\(alias.stderr)")
            try await server.cliFailure(
                "alice", "connection", "update", serviceID, "nope", "--description", "x",
                exit: 4, code: "NOT_FOUND", reason: "CONNECTION_NOT_FOUND", field: "endpoint_id"
            )

            let rejected = try await server.cliJSON("alice", "connection", "reject", serviceID, endpointID)
            #expect(rejected.items.first?["status"] as? String == "rejected")
            #expect(rejected.items.first?["decided_by"] as? String == "alice")
            let afterReject = try await server.cliJSON("bob", "endpoint", "get", endpointID)
            #expect(afterReject["status"] as? String == "rejected")
            #expect(afterReject["ip"] as? String == "10.9.4.20", "shown after a rejection that followed an acceptance")
            #expect(try await server.cliJSON("alice", "service", "get", serviceID)["connection_count"] as? Int == 0)
            let byStatus = try await server.cliJSON("alice", "connection", "list", serviceID, "--status", "Rejected")
            #expect(byStatus.items.map { $0["id"] as? String } == [endpointID])

            try await server.cliFailure(
                "alice", "connection", "accept", serviceID, endpointID,
                exit: 9, code: "FAILED_PRECONDITION", reason: "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]"
            )
            try await server.cliFailure(
                "alice", "connection", "accept", serviceID, "no-such-endpoint",
                exit: 4, code: "NOT_FOUND", reason: "CONNECTION_NOT_FOUND", field: "endpoint_ids[0]"
            )
            try await server.cliFailure(
                "bob", "connection", "list", serviceID, exit: 4, code: "NOT_FOUND", reason: "SERVICE_NOT_FOUND"
            )
            #expect(try await server.cli("alice", "connection", "accept", serviceID).status == 64)
            #expect(try await server.cli("alice", "connection", "list", serviceID, "--status", "approved").status == 64)

            // A rejected endpoint does not hold the service.
            let deleted = try await server.cli("alice", "service", "delete", serviceID)
            #expect(deleted.status == 0, "\(deleted.stderr)")
        }
    }

    @Test("operators publish public and gateway services; tenants see them listed but connect only when allowed")
    func publicServices() async throws {
        try await withServer { server in
            let ops = try await server.cliNetwork("ops")
            let created = try await server.cliJSON(
                "ops", "service", "create", "--vpc", ops.vpc, "--backend-type", "lb", "--backend", ops.loadBalancer,
                "--port", "443:443", "--name", "obs", "--public", "--type", "gateway", "--no-approval"
            )
            let id = try #require(created["id"] as? String)
            #expect(created["public"] as? Bool == true)
            #expect(created["service_type"] as? String == "gateway")

            let listed = try await server.cliJSON("alice", "service", "list-public")
            #expect(listed.items.map { $0["id"] as? String } == [id])
            #expect(listed.items.first?["owner"] as? String == "operator:ops")
            let table = try await server.cli("alice", "service", "list-public", "--name", "obs")
            #expect(table.stdout.contains("OWNER"))
            #expect(table.stdout.contains("operator:ops"))
            #expect(try await server.cliJSON("alice", "service", "list-public", "--name", "nothing")["total_count"] as? Int == 0)

            // Listed is not admitted: the allow-list still decides who connects.
            let alice = try await server.cliNetwork("alice", loadBalancer: false)
            #expect(try await server.cliJSON("alice", "service", "describe", id)["public"] as? Bool == true)
            let refused = try await server.cliFailure(
                "alice", "endpoint", "create", "--service", id, "--vpc", alice.vpc, "--subnet", alice.subnet,
                exit: 6, code: "PERMISSION_DENIED", reason: "NOT_ALLOWED_BY_SERVICE", field: "service_id"
            )
            #expect(refused["message"] != nil)
            let hint = try await server.cli("alice", "endpoint", "create", "--service", id, "--vpc", alice.vpc, "--subnet", alice.subnet)
            #expect(hint.stderr.contains("permission add"), "\(hint.stderr)")
            _ = try await server.cliJSON("ops", "permission", "add", id, "*")
            let endpoint = try await server.cliJSON(
                "alice", "endpoint", "create", "--service", id, "--vpc", alice.vpc, "--subnet", alice.subnet
            )
            #expect(endpoint["status"] as? String == "accepted")
            #expect(endpoint["service_type"] as? String == "gateway")

            let net = try await server.cliNetwork("bob")
            try await server.cliFailure(
                "bob", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:80", "--public", exit: 6, code: "PERMISSION_DENIED", reason: "PUBLIC_REQUIRES_OPERATOR"
            )
            try await server.cliFailure(
                "bob", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:80", "--type", "gateway", exit: 6, code: "PERMISSION_DENIED", reason: "GATEWAY_REQUIRES_OPERATOR",
                field: "service_type"
            )
            #expect(try await server.cli("bob", "service", "create", "--vpc", net.vpc, "--backend-type", "lb",
                                         "--backend", net.loadBalancer, "--port", "80:80", "--type", "vpn").status == 64)
        }
    }

    @Test("inventory deletes: refused while in use, silent on success, not found for others")
    func inventoryDeletes() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let vm = try await server.cliID("alice", "vm", "create", "--vpc", net.vpc, "--subnet", net.subnet, "--name", "box")
            let serviceID = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080"
            )

            try await server.cliFailure(
                "alice", "lb", "delete", net.loadBalancer, exit: 9, code: "FAILED_PRECONDITION", reason: "RESOURCE_IN_USE", field: "id"
            )
            try await server.cliFailure(
                "alice", "subnet", "delete", net.subnet, exit: 9, code: "FAILED_PRECONDITION", reason: "RESOURCE_IN_USE"
            )
            try await server.cliFailure(
                "alice", "vpc", "delete", net.vpc, exit: 9, code: "FAILED_PRECONDITION", reason: "RESOURCE_IN_USE"
            )
            try await server.cliFailure("bob", "vpc", "delete", net.vpc, exit: 4, code: "NOT_FOUND", reason: "VPC_NOT_FOUND")
            try await server.cliFailure("bob", "vm", "delete", vm, exit: 4, code: "NOT_FOUND", reason: "BACKEND_NOT_FOUND")
            try await server.cliFailure("alice", "lb", "delete", vm, exit: 4, code: "NOT_FOUND", reason: "BACKEND_NOT_FOUND")

            for arguments in [
                ["service", "delete", serviceID], ["vm", "delete", vm], ["lb", "delete", net.loadBalancer],
                ["subnet", "delete", net.subnet], ["vpc", "delete", net.vpc],
            ] {
                let result = try await server.cli("alice", arguments: arguments)
                #expect(result.status == 0, "vpcep \(arguments.joined(separator: " ")): \(result.stderr)")
                #expect(result.stdout.isEmpty)
                #expect(result.stderr.isEmpty)
            }
            #expect(try await server.cliJSON("alice", "vpc", "list")["total_count"] as? Int == 0)
            #expect(try await server.cliJSON("alice", "lb", "list")["total_count"] as? Int == 0)
            try await server.cliFailure("alice", "vpc", "delete", net.vpc, exit: 4, code: "NOT_FOUND", reason: "VPC_NOT_FOUND")
        }
    }
}
