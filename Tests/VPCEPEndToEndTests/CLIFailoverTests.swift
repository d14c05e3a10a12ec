import Foundation
import Testing
import VPCEPTestSupport

/// `--server` with several addresses (README "CLI configuration").
@Suite("CLI failover", .timeLimit(.minutes(1)))
struct CLIFailoverTests {
    @Test("vpcep --server bad:1,127.0.0.1:PORT vpc list: the first is unreachable, the second answers")
    func secondAnswers() async throws {
        try await withServer { server in
            let vpc = try await server.cliID("alice", "vpc", "create", "--name", "net", "--cidr", "10.0.0.0/16")
            let refused = try RefusedPort()
            defer { withExtendedLifetime(refused) {} }  // held until the test is done
            for servers in ["bad:1,127.0.0.1:\(server.port)", "127.0.0.1:\(refused.port),localhost:\(server.port)"] {
                let result = try await server.cli("alice", arguments: ["--server", servers, "vpc", "list", "--output", "json"])
                #expect(result.status == 0, "\(servers): \(result.stderr)")
                #expect(try result.json().items.contains { $0["id"] as? String == vpc }, "\(servers): \(result.stdout)")
            }
        }
    }

    @Test("a malformed --server list is a configuration error (exit 78) naming the fault", arguments: [
        ("a:7443,", "empty"), ("a:7443,b", "no port"), ("::1:7443", "brackets"), ("a:7443,a:7443", "listed twice"),
    ])
    func malformed(servers: String, says: String) async throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["VPCEP_CONFIG"] = "/nonexistent/vpcep.toml"
        let result = try await runCommand(RepositoryPaths.executable("vpcep"), ["--server", servers, "vpc", "list"],
                                          environment: environment)
        #expect(result.status == 78, "\(result.stderr)")
        #expect(result.stderr.contains("--server must be HOST:PORT[,HOST:PORT…]"), "\(result.stderr)")
        #expect(result.stderr.contains(says), "\(result.stderr)")
        #expect(result.stderr.contains("CLIENT_CONFIGURATION"), "\(result.stderr)")
    }
}
