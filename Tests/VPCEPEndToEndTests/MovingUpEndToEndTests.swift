import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

private let postgresURL = ProcessInfo.processInfo.environment["VPCEP_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

/// `vpcep-server backup` and `vpcep-server migrate-store`, run as an operator would, next to real servers.
@Suite("vpcep-server backup and migrate-store", .timeLimit(.minutes(5)))
struct MovingUpEndToEndTests {
    private static let password = "pw-\(UUID().uuidString)"
    private let serverExecutable = RepositoryPaths.executable("vpcep-server")
    private let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }

    private func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-\(name)-\(UUID().uuidString)")
    }

    @Test("a backup taken during writes holds every write acknowledged before it, and a server starts on it with a gapless log")
    func backupDuringWrites() async throws {
        let server = try await ServerProcess.start()
        let copy = temporary("backup").appendingPathExtension("sqlite3")
        let acknowledged = Mutex<[String]>([])
        let stop = Atomic(false)
        let client = try server.client("alice")
        let writer = Task {
            var index = 0
            while !stop.load(ordering: .relaxed) {
                let vpc = try await client.createVpc(CreateVpcRequest(name: "w\(index)", cidr: "10.0.0.0/16"))
                acknowledged.withLock { $0.append(vpc.id) }
                index += 1
            }
        }
        let before: [String]
        let result: CommandResult
        do {
            while acknowledged.withLock({ $0.count }) < 30 { try await Task.sleep(for: .milliseconds(10)) }
            before = acknowledged.withLock { $0 }
            result = try await runCommand(
                serverExecutable, ["backup", "--data-dir", server.dataDirectory.path, "--to", copy.path], environment: environment)
            // Writes go on after the backup too: none of those may be missing from the live server.
            let after = acknowledged.withLock { $0.count }
            while acknowledged.withLock({ $0.count }) < after + 10 { try await Task.sleep(for: .milliseconds(10)) }
            stop.store(true, ordering: .relaxed)
            try await writer.value
        } catch {
            stop.store(true, ordering: .relaxed)
            _ = try? await writer.value
            await client.close()
            await server.stop()
            throw error
        }
        await client.close()
        await server.stop()
        try #require(result.status == 0, "backup: \(result.stderr)")
        #expect(result.stdout.contains("backed up"), "\(result.stdout)")

        let restored = temporary("restored")
        try FileManager.default.createDirectory(at: restored, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: copy, to: restored.appendingPathComponent("vpcep.sqlite3"))
        try await withServer(dataDirectory: restored) { server in
            let vpcs = try await server.cliJSON("alice", "vpc", "list", "--limit", "1000").items.compactMap { $0["id"] as? String }
            #expect(Set(before).isSubset(of: Set(vpcs)), "a write acknowledged before the backup is missing")
            #expect(vpcs.count >= before.count)
            let history = try await server.cliJSON("alice", "history", "--sort-dir", "asc", "--limit", "1000").items
            let seqs = history.compactMap { $0["seq"] as? Int }
            #expect(seqs == Array(1...max(seqs.count, 1)), "the change log of the copy has a gap")
            #expect(Set(history.compactMap { $0["resource_id"] as? String }) == Set(vpcs), "log and registry disagree")
        }
    }

    @Test("backup refuses to overwrite a file")
    func backupDoesNotOverwrite() async throws {
        try await withServer { server in
            let existing = temporary("existing")
            try Data("keep".utf8).write(to: existing)
            let result = try await runCommand(
                serverExecutable, ["backup", "--data-dir", server.dataDirectory.path, "--to", existing.path], environment: environment)
            #expect(result.status != 0)
            #expect(result.stderr.contains("already exists"), "\(result.stderr)")
            #expect(try Data(contentsOf: existing) == Data("keep".utf8))
        }
    }

    @Test("migrate-store refuses a data directory a server is running on, before reaching PostgreSQL")
    func migrateRefusesALockedDirectory() async throws {
        try await withServer { server in
            let result = try await runCommand(serverExecutable, [
                "migrate-store", "--from", "sqlite:" + server.dataDirectory.path, "--to", "postgres://vpcep@127.0.0.1:1/vpcep",
            ], environment: environment)
            #expect(result.status != 0)
            #expect(result.stderr.contains("in use"), "\(result.stderr)")
        }
    }

    /// The test server's URL with a schema of this test's own, and a password file.
    private func storeArguments() throws -> (url: String, passwordFile: String) {
        let url = try #require(postgresURL)
        let schema = "mig_" + UUID().uuidString.prefix(8).lowercased()
        let file = temporary("store-password")
        try Data((Self.password + "\n").utf8).write(to: file)
        return (url + "?sslmode=disable&schema=" + schema, file.path)
    }

    /// What a registry answers, through the CLI, for comparing two servers.
    private func reads(_ server: ServerProcess, service: String, endpoint: String) async throws -> [String] {
        let calls: [(String, [String])] = [
            ("alice", ["vpc", "list"]), ("alice", ["service", "list"]), ("alice", ["permission", "list", service]),
            ("alice", ["connection", "list", service]), ("bob", ["endpoint", "list"]), ("bob", ["endpoint", "get", endpoint]),
            ("alice", ["quota", "list"]), ("alice", ["history", "--sort-dir", "asc", "--limit", "1000"]),
            ("bob", ["history", "--sort-dir", "asc", "--limit", "1000"]),
        ]
        var answers: [String] = []
        for (identity, arguments) in calls {
            let result = try await server.cli(identity, arguments: arguments + ["--output", "json"])
            try #require(result.status == 0, "vpcep \(arguments.joined(separator: " ")): \(result.stderr)")
            answers.append(result.stdout)
        }
        return answers
    }

    @Test(
        "a registry migrated to PostgreSQL answers as it did on SQLite, replays a keyed write, and is never migrated onto twice",
        .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"))
    func migrateToPostgres() async throws {
        let keyed = CreateVpcRequest(name: "keyed", cidr: "10.9.0.0/16")
        let key = CallOptions(idempotencyKey: "moving-up")
        let source = try await ServerProcess.start()
        let (service, endpoint, keyedID, before): (String, String, String, [String])
        do {
            let alice = try await source.cliNetwork("alice")
            service = try await source.cliID(
                "alice", "service", "create", "--vpc", alice.vpc, "--backend-type", "lb", "--backend", alice.loadBalancer,
                "--port", "443:8443", "--approval")
            _ = try await source.cliJSON("alice", "permission", "add", service, "bob")
            let bob = try await source.cliNetwork("bob", cidr: "10.8.0.0/16", subnetCIDR: "10.8.1.0/24", loadBalancer: false)
            endpoint = try await source.cliID("bob", "endpoint", "create", "--service", service, "--vpc", bob.vpc, "--subnet", bob.subnet)
            _ = try await source.cliJSON("alice", "connection", "accept", service, endpoint)
            _ = try await source.cliJSON("ops", "quota", "set", "--tenant", "alice", "--type", "endpoint_service", "--limit", "7")
            let client = try source.client("alice")
            keyedID = try await client.createVpc(keyed, options: key).id
            await client.close()
            before = try await reads(source, service: service, endpoint: endpoint)
        } catch {
            await source.stop()
            throw error
        }
        await source.stop()

        let (url, passwordFile) = try storeArguments()
        let migrate = ["migrate-store", "--from", "sqlite:" + source.dataDirectory.path, "--to", url, "--store-password-file", passwordFile]
        let migrated = try await runCommand(serverExecutable, migrate, environment: environment)
        try #require(migrated.status == 0, "migrate-store: \(migrated.stderr)")
        for table in ["idempotency_records", "quota_limits", "change_events", "endpoints", "permissions"] {
            #expect(migrated.stdout.contains(table), "\(migrated.stdout)")
        }
        #expect(migrated.stdout.contains("change log head: "), "\(migrated.stdout)")
        #expect(!(migrated.stdout + migrated.stderr).contains(Self.password))

        let target = try await ServerProcess.start(extraArguments: ["--store", url, "--store-password-file", passwordFile])
        do {
            #expect(try await reads(target, service: service, endpoint: endpoint) == before)
            let client = try target.client("alice")
            let replayed = try await client.createVpc(keyed, options: key)
            await client.close()
            #expect(replayed.id == keyedID, "the idempotent replay made a new VPC")
            // A write on the target carries on the log where the source stopped.
            _ = try await target.cliID("alice", "vpc", "create", "--name", "after", "--cidr", "10.10.0.0/16")
            let seqs = try await target.cliJSON("alice", "history", "--sort-dir", "asc", "--limit", "1000").items.compactMap { $0["seq"] as? Int }
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
        } catch {
            await target.stop()
            throw error
        }
        await target.stop()

        // The target now holds a registry: a second migration is refused and changes nothing.
        let again = try await runCommand(serverExecutable, migrate, environment: environment)
        #expect(again.status != 0)
        #expect(again.stderr.contains("already holds a registry"), "\(again.stderr)")
        let check = try await ServerProcess.start(extraArguments: ["--store", url, "--store-password-file", passwordFile])
        let names = try await check.cliJSON("alice", "vpc", "list", "--limit", "1000").items.compactMap { $0["name"] as? String }
        await check.stop()
        #expect(names.filter { $0 == "after" }.count == 1)
    }
}
