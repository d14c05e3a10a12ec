import Foundation
import Testing
import VPCEPTestSupport

/// List tables at a real terminal (a pseudo-terminal of a chosen width): an id is never cut, the
/// least useful columns give way first, `--wide` shows every column, and piped output stays whole.
@Suite("CLI tables at a terminal", .timeLimit(.minutes(2)))
struct CLITableWidthTests {
    /// Two VPCs (one with a long name) and a load-balancer service with two port mappings.
    private func makeResources(_ server: ServerProcess) async throws -> (vpcs: [[String: Any]], services: [[String: Any]]) {
        let network = try await server.cliNetwork("alice")
        _ = try await server.cliID("alice", "vpc", "create", "--name", "customer-facing-production", "--cidr", "10.1.0.0/16")
        _ = try await server.cliID(
            "alice", "service", "create", "--vpc", network.vpc, "--backend-type", "lb", "--backend", network.loadBalancer,
            "--port", "80:8080", "--port", "443:8443", "--name", "storefront-api", "--no-approval"
        )
        let vpcs = try await server.cliJSON("alice", "vpc", "list").items
        let services = try await server.cliJSON("alice", "service", "list").items
        try #require(vpcs.count == 2 && services.count == 1)
        return (vpcs, services)
    }

    /// The table's lines after the header, each starting with one of `items`' ids, whole.
    private func expectWholeIDs(
        _ result: CommandResult, _ items: [[String: Any]], fitting columns: Int?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Substring] {
        #expect(result.status == 0, "\(result.stderr)", sourceLocation: sourceLocation)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == items.count + 1, "\(result.stdout)", sourceLocation: sourceLocation)
        let ids = items.compactMap { $0["id"] as? String }
        let firstCells = lines.dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(Set(firstCells) == Set(ids), "ids cut or missing:\n\(result.stdout)", sourceLocation: sourceLocation)
        if let columns {
            for line in lines {
                #expect(line.count <= columns, "wider than \(columns): \(line)", sourceLocation: sourceLocation)
            }
        }
        return lines
    }

    private func headers(_ line: Substring?) -> [String] {
        (line ?? "").components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    @Test("at 80 columns every id is whole: CREATED, SERVICE NAME and PORTS give way first")
    func eightyColumns() async throws {
        try await withServer { server in
            let (vpcs, services) = try await makeResources(server)

            let vpcTable = try await server.cliAtTerminal("alice", columns: 80, "vpc", "list")
            let vpcLines = expectWholeIDs(vpcTable, vpcs, fitting: 80)
            #expect(headers(vpcLines.first) == ["ID", "NAME", "CIDR"], "\(vpcTable.stdout)")
            #expect(vpcTable.stdout.contains("customer-facing-production"), "a name that fits stays whole")
            #expect(!vpcTable.stdout.contains("…"), "\(vpcTable.stdout)")

            let serviceTable = try await server.cliAtTerminal("alice", columns: 80, "service", "list")
            let serviceLines = expectWholeIDs(serviceTable, services, fitting: 80)
            let serviceHeaders = headers(serviceLines.first)
            #expect(serviceHeaders.first == "ID")
            #expect(serviceHeaders.contains("STATUS"), "\(serviceTable.stdout)")
            #expect(!serviceHeaders.contains("SERVICE NAME"), "\(serviceTable.stdout)")
            #expect(!serviceHeaders.contains("PORTS"), "\(serviceTable.stdout)")
            #expect(!serviceTable.stdout.contains("…"), "a service name is dropped whole, never cut: \(serviceTable.stdout)")
        }
    }

    @Test("at 40 columns ids are still whole and every other column is dropped")
    func fortyColumns() async throws {
        try await withServer { server in
            let (vpcs, services) = try await makeResources(server)

            let vpcTable = try await server.cliAtTerminal("alice", columns: 40, "vpc", "list")
            #expect(headers(expectWholeIDs(vpcTable, vpcs, fitting: 40).first) == ["ID"], "\(vpcTable.stdout)")

            let serviceTable = try await server.cliAtTerminal("alice", columns: 40, "service", "list")
            #expect(headers(expectWholeIDs(serviceTable, services, fitting: 40).first) == ["ID"], "\(serviceTable.stdout)")
        }
    }

    @Test("--wide at 80 columns shows every column whole; piped output is the same whole table")
    func wideAndPiped() async throws {
        try await withServer { server in
            let (vpcs, services) = try await makeResources(server)

            let vpcWide = try await server.cliAtTerminal("alice", columns: 80, "vpc", "list", "--wide")
            let vpcLines = expectWholeIDs(vpcWide, vpcs, fitting: nil)
            #expect(headers(vpcLines.first) == ["ID", "NAME", "CIDR", "CREATED"], "\(vpcWide.stdout)")
            for vpc in vpcs {
                #expect(vpcWide.stdout.contains(try #require(vpc["created_at"] as? String)), "\(vpcWide.stdout)")
            }
            #expect(vpcLines.contains { $0.count > 80 }, "the whole table is wider than the terminal")

            let serviceWide = try await server.cliAtTerminal("alice", columns: 80, "service", "list", "--wide")
            let serviceLines = expectWholeIDs(serviceWide, services, fitting: nil)
            #expect(headers(serviceLines.first) == [
                "ID", "SERVICE NAME", "STATUS", "BACKEND", "PORTS", "APPROVAL", "CONNECTIONS",
            ], "\(serviceWide.stdout)")
            #expect(serviceWide.stdout.contains(try #require(services[0]["service_name"] as? String)))
            #expect(serviceWide.stdout.contains("80:8080,443:8443"))
            #expect(!serviceWide.stdout.contains("…"))

            // Not a terminal: nothing gives way, with or without --wide.
            let vpcPiped = try await server.cli("alice", "vpc", "list")
            #expect(vpcPiped.status == 0, "\(vpcPiped.stderr)")
            #expect(vpcPiped.stdout == vpcWide.stdout)
            let servicePiped = try await server.cli("alice", "service", "list")
            #expect(servicePiped.status == 0, "\(servicePiped.stderr)")
            #expect(servicePiped.stdout == serviceWide.stdout)
        }
    }

    @Test("every other list table keeps its ids whole at 80 and 40 columns", arguments: [80, 40])
    func otherTables(columns: Int) async throws {
        try await withServer { server in
            let alice = try await server.cliNetwork("alice")
            let serviceID = try await server.cliID(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "80:8080", "--name", "shop"
            )
            _ = try await server.cliJSON("alice", "permission", "add", serviceID, "bob", "--description", "bob's storefront team")
            let bob = try await server.cliNetwork("bob", cidr: "10.8.0.0/16", subnetCIDR: "10.8.1.0/24", loadBalancer: false)
            _ = try await server.cliID(
                "bob", "endpoint", "create", "--service", "eu-west-1.shop.\(serviceID)", "--vpc", bob.vpc, "--subnet", bob.subnet,
                "--tag", "app=storefront", "--tag", "team=checkout"
            )

            let tables: [(identity: String, arguments: [String])] = [
                ("alice", ["subnet", "list"]), ("alice", ["lb", "list"]), ("alice", ["permission", "list", serviceID]),
                ("alice", ["connection", "list", serviceID]), ("bob", ["endpoint", "list"]),
            ]
            for (identity, arguments) in tables {
                let items = try await server.cli(identity, arguments: arguments + ["--output", "json"]).json().items
                try #require(!items.isEmpty, "vpcep \(arguments.joined(separator: " ")) listed nothing")
                let table = try await runCommandAtTerminal(
                    RepositoryPaths.executable("vpcep"), arguments, environment: server.cliEnvironment(identity), columns: columns
                )
                _ = expectWholeIDs(table, items, fitting: columns)
            }
        }
    }

    @Test("config show at 40 columns keeps every value whole; only the source note is cut")
    func configShow() async throws {
        let ca = "/srv/vpcep/certificates/production/eu-west-1/ca-bundle.crt"
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["HOME"] = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-home-\(UUID().uuidString)").path
        environment.removeValue(forKey: "XDG_CONFIG_HOME")
        environment["VPCEP_CA"] = ca
        let result = try await runCommandAtTerminal(RepositoryPaths.executable("vpcep"), ["config", "show"],
                                                    environment: environment, columns: 40)
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("ca ") }, "\(result.stdout)")
        #expect(line.contains(ca), "\(result.stdout)")
    }
}
