import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// The CLI for daily use: profiles instead of flags, --quiet, config show, waiting.
@Suite("CLI daily use", .timeLimit(.minutes(2)))
struct CLIDailyUseTests {
    private var vpcep: URL { RepositoryPaths.executable("vpcep") }

    /// An environment with no VPCEP_* settings at all, and a HOME of its own.
    private func bareEnvironment(home: URL) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["HOME"] = home.path
        environment.removeValue(forKey: "XDG_CONFIG_HOME")
        return environment
    }

    private func writeProfiles(home: URL, port: Int) throws {
        let certificates = TestCertificates.shared
        let folder = home.appendingPathComponent(".config/vpcep")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try """
            default_profile = "alice"

            [profile.alice]
            server = "localhost:\(port)"
            region = "eu-west-1"
            ca = "\(certificates.ca)"
            cert = "\(certificates.certificate("alice"))"
            key = "\(certificates.key("alice"))"

            [profile.bob-north]
            server = "localhost:\(port)"
            region = "eu-north-1"
            ca = "\(certificates.ca)"
            cert = "\(certificates.certificate("bob"))"
            key = "\(certificates.key("bob"))"
            output = "json"
            """.write(to: folder.appendingPathComponent("config.toml"), atomically: true, encoding: .utf8)
    }

    @Test("a profile file replaces the flags; --profile picks another; flags still win")
    func profiles() async throws {
        try await withServer { server in
            let home = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-home-\(UUID().uuidString)")
            try writeProfiles(home: home, port: server.port)
            let environment = bareEnvironment(home: home)

            let whoami = try await runCommand(vpcep, ["whoami", "--output", "json"], environment: environment)
            #expect(whoami.status == 0, "\(whoami.stderr)")
            #expect(try whoami.json()["id"] as? String == "alice")
            #expect(try whoami.json()["region"] as? String == "eu-west-1")
            // The short form kubectl users type, after the command words or before them.
            for arguments in [["whoami", "-o", "json"], ["-o", "json", "whoami"]] {
                let short = try await runCommand(vpcep, arguments, environment: environment)
                #expect(short.status == 0, "\(arguments): \(short.stderr)")
                #expect(try short.json()["id"] as? String == "alice")
            }

            let bob = try await runCommand(vpcep, ["--profile", "bob-north", "whoami"], environment: environment)
            #expect(bob.status == 0, "\(bob.stderr)")
            #expect(try bob.json()["id"] as? String == "bob", "the profile's output = json applies")
            #expect(try bob.json()["region"] as? String == "eu-north-1")

            let override = try await runCommand(vpcep, ["whoami", "--region", "eu-north-1"],
                                                environment: environment)
            #expect(override.status == 0, "\(override.stderr)")
            #expect(override.stdout.contains("eu-north-1"))

            let show = try await runCommand(vpcep, ["config", "show", "--region", "eu-north-1"], environment: environment)
            #expect(show.status == 0)
            #expect(show.stdout.contains("profile:      alice"))
            #expect(show.stdout.split(separator: "\n").contains { $0.hasPrefix("region") && $0.hasSuffix("flag --region") })
            #expect(show.stdout.split(separator: "\n").contains { $0.hasPrefix("server") && $0.contains("profile alice") })

            let missing = try await runCommand(vpcep, ["--profile", "nobody", "whoami"], environment: environment)
            #expect(missing.status == 78)
            #expect(missing.stderr.contains("no profile \"nobody\""))
            #expect(missing.stderr.contains("alice, bob-north"))
        }
    }

    @Test("with no settings at all, the CLI says what is missing and exits 78")
    func nothingConfigured() async throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-home-\(UUID().uuidString)")
        let result = try await runCommand(vpcep, ["vpc", "list"], environment: bareEnvironment(home: home))
        #expect(result.status == 78)
        #expect(result.stderr.contains("no CA"))
    }

    @Test("--quiet prints only ids, one per line")
    func quiet() async throws {
        try await withServer { server in
            let created = try await server.cli("alice", "vpc", "create", "--name", "q", "--cidr", "10.0.0.0/16", "--quiet")
            #expect(created.status == 0)
            let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(UUID(uuidString: id) != nil, "only an id: \(created.stdout)")
            _ = try await server.cli("alice", "vpc", "create", "--name", "r", "--cidr", "10.1.0.0/16")
            let listed = try await server.cli("alice", "-q", "vpc", "list")
            let lines = listed.stdout.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines.allSatisfy { UUID(uuidString: String($0)) != nil })
            #expect(lines.contains { $0 == id })
        }
    }

    @Test("endpoint wait returns once the provider accepts, and fails clearly when rejected")
    func waitForAcceptance() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let (service, endpoint) = try await Network.endpointOnProvidersService(provider: alice, consumer: bob)
            #expect(endpoint.status == .pendingAcceptance)

            async let waited = server.cli("bob", "endpoint", "wait", endpoint.id, "--for", "accepted", "--output", "json")
            try await Task.sleep(for: .milliseconds(1500))
            _ = try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id]))
            let result = try await waited
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try result.json()["status"] as? String == "accepted")

            _ = try await alice.rejectConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id]))
            let refused = try await server.cli("bob", "endpoint", "wait", endpoint.id, "--for", "accepted")
            #expect(refused.status == 9)
            #expect(refused.stderr.contains("STATUS_NOT_REACHED"))
            await alice.close()
            await bob.close()
        }
    }
}

@Suite("CLI shell completion")
struct CLICompletionTests {
    @Test("completion scripts for bash, zsh and fish come from the argument parser", arguments: ["bash", "zsh", "fish"])
    func completion(shell: String) async throws {
        let result = try await runCommand(RepositoryPaths.executable("vpcep"), ["--generate-completion-script", shell],
                                          environment: ProcessInfo.processInfo.environment)
        #expect(result.status == 0)
        #expect(result.stdout.contains("vpcep"))
        #expect(result.stdout.contains("endpoint"))
        #expect(result.stdout.contains("permission"))
    }
}
