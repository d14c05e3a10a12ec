import Foundation
import Testing
import VPCEPTestSupport

/// `--output json` is a contract with scripts (README "Output"). Its text, byte for byte, is what the
/// CLI printed before it went through `Codable`, except that enum values are snake_case
/// (`load_balancer`, `pending_acceptance`, `toa_open`): the expected texts were captured from the
/// CLI of the Mirror-based release, with only those spellings changed, and fields added since
/// (new fields are added at the end, in schema order: `request_message`, `decision_reason`).
@Suite("CLI: JSON output text", .timeLimit(.minutes(3)))
struct CLIJSONOutputTests {
    @Test("a service, an endpoint, a list and an error print the same JSON text as before, enums in snake_case")
    func jsonTextIsStable() async throws {
        try await withServer { server in
            let alice = try await server.cliNetwork("alice")
            let serviceID = try await server.cliID(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "443:8443", "--name", "shop", "--approval", "--client-ip-mode", "toaOpen", "--tag", "env=prod"
            )
            let bob = try await server.cliNetwork("bob", cidr: "10.8.0.0/16", subnetCIDR: "10.8.1.0/24", loadBalancer: false)
            _ = try await server.cliID("alice", "permission", "add", serviceID, "bob")
            let endpointID = try await server.cliID(
                "bob", "endpoint", "create", "--service", "eu-west-1.shop.\(serviceID)", "--vpc", bob.vpc,
                "--subnet", bob.subnet, "--tag", "app=shop"
            )
            let names = [
                serviceID: "<service>", endpointID: "<endpoint>", alice.vpc: "<alice-vpc>", alice.subnet: "<alice-subnet>",
                alice.loadBalancer: "<lb>", bob.vpc: "<bob-vpc>", bob.subnet: "<bob-subnet>",
            ]

            let service = try await server.cli("alice", "service", "get", serviceID, "--output", "json")
            #expect(service.status == 0, "\(service.stderr)")
            #expect(Self.normalized(service.stdout, names) == Self.service)

            let endpoint = try await server.cli("bob", "endpoint", "get", endpointID, "--output", "json")
            #expect(endpoint.status == 0, "\(endpoint.stderr)")
            #expect(Self.normalized(endpoint.stdout, names) == Self.endpoint)

            let list = try await server.cli("bob", "endpoint", "list", "--output", "json")
            #expect(list.status == 0, "\(list.stderr)")
            #expect(Self.normalized(list.stdout, names) == Self.endpointList)

            let missing = try await server.cli("bob", "endpoint", "get", "ep-0000000000000000", "--output", "json")
            #expect(missing.status == 4)
            #expect(Self.normalized(missing.stderr, names) == Self.error)

            // Tables spell enum values the same way.
            let table = try await server.cli("bob", "endpoint", "get", endpointID)
            #expect(table.stdout.contains("pending_acceptance"), "\(table.stdout)")
            #expect(!table.stdout.contains("pendingAcceptance"), "\(table.stdout)")
        }
    }

    /// Replaces what differs between runs (ids, times, markers, request ids) with placeholders.
    private static func normalized(_ text: String, _ names: [String: String]) -> String {
        var text = text
        for (id, name) in names.sorted(by: { $0.key.count > $1.key.count }) {
            text = text.replacingOccurrences(of: id, with: name)
        }
        let patterns = [
            (#""\d{4}-\d\d-\d\dT[^"]*""#, #""<time>""#),
            (#""marker_id": \d+"#, #""marker_id": <marker>"#),
            (#""request_id": "[^"]*""#, #""request_id": "<request>""#),
        ]
        for (pattern, replacement) in patterns {
            text = text.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        }
        return text
    }

    static let service = """
        {
          "id": "<service>",
          "service_name": "eu-west-1.shop.<service>",
          "name": "shop",
          "tenant_id": "alice",
          "region": "eu-west-1",
          "vpc_id": "<alice-vpc>",
          "service_type": "interface",
          "backend_type": "load_balancer",
          "backend_id": "<lb>",
          "ports": [
            {
              "terminal_port": 443,
              "service_port": 8443,
              "protocol": "tcp"
            }
          ],
          "approval_enabled": true,
          "client_ip_mode": "toa_open",
          "description": "",
          "tags": [
            {
              "key": "env",
              "value": "prod"
            }
          ],
          "status": "available",
          "connection_count": 0,
          "created_at": "<time>",
          "updated_at": "<time>",
          "revision": 1,
          "warnings": [],
          "client_ip_note": "The load balancer backend sees connections from 198.19.128.0/17, not from the real client IP; client_ip_mode toa_open carries the client IP, port and the endpoint's marker_id in a TCP option (TOA), which the backend must read.",
          "public": false
        }

        """

    static let endpoint = """
        {
          "id": "<endpoint>",
          "tenant_id": "bob",
          "region": "eu-west-1",
          "vpc_id": "<bob-vpc>",
          "subnet_id": "<bob-subnet>",
          "service_id": "<service>",
          "service_name": "eu-west-1.shop.<service>",
          "service_type": "interface",
          "ip": "",
          "status": "pending_acceptance",
          "marker_id": <marker>,
          "dns_name": "",
          "whitelist": [],
          "enable_whitelist": false,
          "description": "",
          "tags": [
            {
              "key": "app",
              "value": "shop"
            }
          ],
          "created_at": "<time>",
          "updated_at": "<time>",
          "request_message": "",
          "decision_reason": "",
          "revision": 1
        }

        """

    static let endpointList = """
        {
          "items": [
            {
              "id": "<endpoint>",
              "tenant_id": "bob",
              "region": "eu-west-1",
              "vpc_id": "<bob-vpc>",
              "subnet_id": "<bob-subnet>",
              "service_id": "<service>",
              "service_name": "eu-west-1.shop.<service>",
              "service_type": "interface",
              "ip": "",
              "status": "pending_acceptance",
              "marker_id": <marker>,
              "dns_name": "",
              "whitelist": [],
              "enable_whitelist": false,
              "description": "",
              "tags": [
                {
                  "key": "app",
                  "value": "shop"
                }
              ],
              "created_at": "<time>",
              "updated_at": "<time>",
              "request_message": "",
              "decision_reason": "",
              "revision": 1
            }
          ],
          "total_count": 1,
          "next_page_token": ""
        }

        """

    static let error = """
        {
          "code": "NOT_FOUND",
          "reason": "ENDPOINT_NOT_FOUND",
          "message": "no such endpoint",
          "field": "id",
          "request_id": "<request>"
        }

        """
}
