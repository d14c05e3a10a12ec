import Foundation
import Testing
import VPCEPTestSupport

private let postgresURL = testPostgresURL

/// `vpcep-server --store postgres://…`: replicas on one database, the password kept out of sight.
@Suite(
    "vpcep-server on PostgreSQL",
    .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"))
struct PostgresEndToEndTests {
    private static let password = "pw-\(UUID().uuidString)"

    /// The test server's URL with a schema of this test's own, and a password file.
    private func storeArguments() throws -> [String] {
        try postgresStoreArguments(url: try #require(postgresURL), password: Self.password)
    }

    @Test("two servers on one database serve the same registry; the password is never shown")
    func replicasShareTheRegistry() async throws {
        let store = try storeArguments()
        let first = try await ServerProcess.start(extraArguments: store)
        do {
            let second = try await ServerProcess.start(extraArguments: store)
            do {
                let net = try await first.cliNetwork("alice")
                let id = try await first.cliID(
                    "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                    "--port", "80:8080")
                let listed = try await second.cliJSON("alice", "service", "list")
                #expect(listed.items.map { $0["id"] as? String } == [id])
                // A write through the second is read through the first.
                _ = try await second.cliJSON("alice", "permission", "add", id, "iam:domain::bob")
                let entries = try await first.cliJSON("alice", "permission", "list", id)
                #expect(entries.items.map { $0["permission"] as? String } == ["iam:domain::bob"])
                for server in [first, second] {
                    #expect(server.logText.contains("store=postgres://"))
                    #expect(!server.logText.contains(Self.password))
                }
            } catch {
                await second.stop()
                throw error
            }
            await second.stop()
        } catch {
            await first.stop()
            throw error
        }
        await first.stop()
    }

    @Test("a watch on one server streams the changes made through every server, in one order")
    func aWatchSeesEveryReplica() async throws {
        let store = try storeArguments()
        let first = try await ServerProcess.start(extraArguments: store)
        do {
            let second = try await ServerProcess.start(extraArguments: store + ["--watch-bookmark-interval", "1"])
            do {
                let watcher = try BackgroundCommand(
                    RepositoryPaths.executable("vpcep"), ["watch", "--snapshot", "--kind", "vpc", "--output", "json"],
                    environment: second.cliEnvironment("alice"))
                _ = try await watcher.line { $0.contains(#""kind":"bookmark""#) }
                let a = try #require(try await first.cliJSON("alice", "vpc", "create", "--name", "a", "--cidr", "10.1.0.0/16")["id"] as? String)
                let b = try #require(try await second.cliJSON("alice", "vpc", "create", "--name", "b", "--cidr", "10.2.0.0/16")["id"] as? String)
                let c = try #require(try await first.cliJSON("alice", "vpc", "create", "--name", "c", "--cidr", "10.3.0.0/16")["id"] as? String)
                _ = try await watcher.line { $0.contains(c) }
                watcher.send(SIGINT)
                let result = await watcher.finish()
                let entries = try result.stdout.split(separator: "\n").map { try WatchClientEndToEndTests.object(String($0)) }
                    .filter { $0["kind"] as? String == "event" }.compactMap { $0["entry"] as? [String: Any] }
                #expect(entries.map { $0["resource_id"] as? String } == [a, b, c])
                let seqs = entries.compactMap { $0["seq"] as? Int }
                #expect(seqs.count == 3 && seqs == seqs.sorted() && Set(seqs).count == 3)
            } catch {
                await second.stop()
                throw error
            }
            await second.stop()
        } catch {
            await first.stop()
            throw error
        }
        await first.stop()
    }

    @Test("--print-config shows the store without its password; a password in the URL is refused unrepeated")
    func theStoreSettingsAndTheirRefusals() async throws {
        let store = try storeArguments()
        let certificates = TestCertificates.shared
        let tls = ["--tls-ca", certificates.ca, "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey]
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        let server = RepositoryPaths.executable("vpcep-server")

        let printed = try await runCommand(server, store + tls + ["--print-config"], environment: environment)
        #expect(printed.status == 0)
        #expect(printed.stdout.contains("store = \"postgres://"))
        #expect(printed.stdout.contains("# flag --store"))
        #expect(printed.stdout.contains("store_password_file = "))
        #expect(!printed.stdout.contains(Self.password))
        #expect(printed.stdout.contains("store_read_leases = \"on\""))

        // Read leases off, from the file as a TOML boolean; a value that is neither is refused.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-leases-\(UUID().uuidString).toml")
        try "store_read_leases = false\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let off = try await runCommand(server, store + tls + ["--config", file.path, "--print-config"], environment: environment)
        #expect(off.status == 0)
        #expect(off.stdout.contains("store_read_leases = \"off\""))
        let bad = try await runCommand(server, store + tls + ["--store-read-leases", "maybe", "--print-config"], environment: environment)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("store read leases must be on or off (flag --store-read-leases)"))

        let url = try #require(postgresURL)
        var components = try #require(URLComponents(string: url))
        components.password = Self.password
        let withPassword = try #require(components.string)
        let refused = try await runCommand(server, ["--store", withPassword] + tls + ["--listen", "127.0.0.1:0"], environment: environment)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("must not carry a password"))
        #expect(!refused.stderr.contains(Self.password))
    }
}
