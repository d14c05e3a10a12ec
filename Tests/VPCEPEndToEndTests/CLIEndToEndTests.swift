import Foundation
import Testing
import VPCEPTestSupport

/// The built `vpcep` binary against a real server: output shapes, errors and exit codes.
@Suite("CLI end to end", .timeLimit(.minutes(2)))
struct CLIEndToEndTests {
    @Test("the walkthrough: VPC, subnet, load balancer and service, in JSON with the design's field names")
    func walkthrough() async throws {
        try await withServer { server in
            let vpc = try await server.cli("alice", "vpc", "create", "--name", "prod", "--cidr", "10.0.0.0/16", "--output", "json")
            #expect(vpc.status == 0, "\(vpc.stderr)")
            let vpcJSON = try vpc.json()
            let vpcID = try #require(vpcJSON["id"] as? String)
            #expect(vpcJSON["cidr"] as? String == "10.0.0.0/16")
            #expect(vpcJSON["tenant_id"] as? String == "alice")

            let subnet = try await server.cli("alice", "--output", "json", "subnet", "create", "--vpc", vpcID, "--name", "a",
                                              "--cidr", "10.0.1.0/24")
            #expect(subnet.status == 0, "\(subnet.stderr)")
            let subnetID = try #require(try subnet.json()["id"] as? String)

            let lb = try await server.cli("alice", "lb", "create", "--vpc", vpcID, "--subnet", subnetID, "--name", "web",
                                          "--ingress", "198.19.128.0/17", "--output", "json")
            #expect(lb.status == 0, "\(lb.stderr)")
            let lbJSON = try lb.json()
            let lbID = try #require(lbJSON["id"] as? String)
            #expect(lbJSON["ingress_cidrs"] as? [String] == ["198.19.128.0/17"])

            let service = try await server.cli(
                "alice", "service", "create", "--vpc", vpcID, "--backend-type", "lb", "--backend", lbID,
                "--port", "80:8080", "--port", "443:8443", "--name", "web", "--no-approval", "--description", "the web tier",
                "--output", "json"
            )
            #expect(service.status == 0, "\(service.stderr)")
            let serviceJSON = try service.json()
            let serviceID = try #require(serviceJSON["id"] as? String)
            let serviceName = try #require(serviceJSON["service_name"] as? String)
            #expect(serviceName == "eu-west-1.web.\(serviceID)")
            #expect(serviceJSON["status"] as? String == "available")
            #expect(serviceJSON["approval_enabled"] as? Bool == false)
            #expect(serviceJSON["backend_type"] as? String == "load_balancer")
            #expect(serviceJSON["connection_count"] as? Int == 0)
            let ports = try #require(serviceJSON["ports"] as? [[String: Any]])
            #expect(ports.map { $0["terminal_port"] as? Int } == [80, 443])
            #expect(ports.map { $0["service_port"] as? Int } == [8080, 8443])
            #expect(ports.map { $0["protocol"] as? String } == ["tcp", "tcp"])

            let byName = try await server.cli("alice", "service", "get", serviceName, "--output", "json")
            #expect(byName.status == 0, "\(byName.stderr)")
            #expect(try byName.json()["id"] as? String == serviceID)

            let list = try await server.cli("alice", "service", "list", "--output", "json")
            #expect(list.status == 0, "\(list.stderr)")
            let listJSON = try list.json()
            #expect(listJSON["total_count"] as? Int == 1)
            #expect((listJSON["items"] as? [[String: Any]])?.first?["id"] as? String == serviceID)

            let table = try await server.cli("alice", "service", "list")
            #expect(table.status == 0)
            #expect(table.stdout.contains("SERVICE NAME"))
            #expect(table.stdout.contains(serviceName))
            #expect(table.stdout.contains("80:8080,443:8443"))
        }
    }

    @Test("errors go to stderr with the status, reason and field, and the documented exit code")
    func errorsAndExitCodes() async throws {
        try await withServer { server in
            let missing = try await server.cli("bob", "service", "get", "no-such-id", "--output", "json")
            #expect(missing.status == 4)
            #expect(missing.stdout.isEmpty)
            let missingJSON = try missing.errorJSON()
            #expect(missingJSON["code"] as? String == "NOT_FOUND")
            #expect(missingJSON["reason"] as? String == "SERVICE_NOT_FOUND")

            let badCIDR = try await server.cli("bob", "vpc", "create", "--name", "x", "--cidr", "10.0.0.1/16", "--output", "json")
            #expect(badCIDR.status == 3)
            let badJSON = try badCIDR.errorJSON()
            #expect(badJSON["code"] as? String == "INVALID_ARGUMENT")
            #expect(badJSON["field"] as? String == "cidr")

            let vpc = try await server.cli("bob", "vpc", "create", "--name", "x", "--cidr", "10.0.0.0/16", "--output", "json")
            let vpcID = try #require(try vpc.json()["id"] as? String)
            let subnet = try await server.cli("bob", "subnet", "create", "--vpc", vpcID, "--name", "a", "--cidr", "10.0.1.0/24",
                                              "--output", "json")
            let subnetID = try #require(try subnet.json()["id"] as? String)
            let lb = try await server.cli("bob", "lb", "create", "--vpc", vpcID, "--subnet", subnetID, "--name", "web", "--output", "json")
            let lbID = try #require(try lb.json()["id"] as? String)
            let badPort = try await server.cli("bob", "service", "create", "--vpc", vpcID, "--backend-type", "lb",
                                               "--backend", lbID, "--port", "0:80")
            #expect(badPort.status == 3)
            #expect(badPort.stderr.contains("ports[0].terminal_port"))
            #expect(badPort.stderr.contains("PORT_OUT_OF_RANGE"))

            let usage = try await server.cli("bob", "service", "create", "--vpc", vpcID)
            #expect(usage.status == 64)

            let unserved = try await server.cli("bob", "vpc", "list", region: "mars-1")
            #expect(unserved.status == 3)
            #expect(unserved.stderr.contains("REGION_NOT_SERVED"))
        }
    }
}
