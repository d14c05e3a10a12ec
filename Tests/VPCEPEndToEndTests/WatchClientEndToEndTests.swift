import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Watch from the client's side against real servers: `vpcep watch` as a long-running process, and
/// the library's resuming watch across a server restart (docs/PROTOCOL.md §9, "Resuming a watch").
@Suite("Watch: CLI and resuming client", .timeLimit(.minutes(3)))
struct WatchClientEndToEndTests {
    @Test("vpcep watch --output json prints a create made by another CLI process, outlives --timeout, exits 0 on SIGINT")
    func cliSeesAnotherProcessesCreate() async throws {
        let server = try await ServerProcess.start(extraArguments: ["--watch-bookmark-interval", "1"])
        do {
            var environment = server.cliEnvironment("alice")
            // A call's timeout does not bound a watch (docs/PROTOCOL.md §9).
            environment["VPCEP_TIMEOUT"] = "1"
            let watcher = try BackgroundCommand(
                RepositoryPaths.executable("vpcep"), ["watch", "--snapshot", "--kind", "vpc", "--output", "json"],
                environment: environment)
            // The snapshot of no VPC ends with its bookmark: from here on every change is delivered.
            let bookmark = try await watcher.line { $0.contains(#""kind":"bookmark""#) }
            #expect(try Self.object(bookmark)["seq"] != nil)

            let created = try await server.cliJSON("alice", "vpc", "create", "--name", "watched", "--cidr", "10.1.0.0/16")
            let id = try #require(created["id"] as? String)
            let line = try await watcher.line { $0.contains(id) }
            let event = try Self.object(line)
            #expect(event["kind"] as? String == "event")
            let entry = try #require(event["entry"] as? [String: Any])
            #expect(entry["type"] as? String == "created")
            #expect(entry["kind"] as? String == "vpc")
            #expect(entry["resource_id"] as? String == id)
            #expect(entry["actor"] as? String == "alice")
            #expect((entry["seq"] as? Int ?? 0) > 0)
            #expect((entry["vpc"] as? [String: Any])?["name"] as? String == "watched")

            // Idle bookmarks, one a second, long after the 1 s timeout would have ended the stream.
            _ = try await watcher.line { line in
                watcher.stdout.split(separator: "\n").filter { $0.contains(#""kind":"bookmark""#) }.count >= 4
            }

            watcher.send(SIGINT)
            let result = await watcher.finish()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.isEmpty, "\(result.stderr)")
            // Every line is one JSON object: a script reads them one by one.
            for line in result.stdout.split(separator: "\n") { _ = try Self.object(String(line)) }
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    @Test("vpcep watch as a table: one line of seven fields per matching change; a position beyond the log exits 3")
    func cliTableLines() async throws {
        try await withServer { server in
            let vpc = try await server.cliJSON("alice", "vpc", "create", "--name", "a", "--cidr", "10.2.0.0/16")
            let id = try #require(vpc["id"] as? String)
            _ = try await server.cliJSON("alice", "vpc", "create", "--name", "b", "--cidr", "10.3.0.0/16")
            _ = try await server.cli("alice", "vpc", "delete", id)
            let watcher = try BackgroundCommand(
                RepositoryPaths.executable("vpcep"), ["watch", "--since", "0", "--resource", id, "--type", "CREATED"],
                environment: server.cliEnvironment("alice"))
            let line = try await watcher.line { $0.contains(id) }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            #expect(fields.count == 7, "\(line)")
            #expect(fields.count == 7 && fields[2] == "vpc" && fields[3] == "created" && fields[4] == id[...] && fields[5] == "alice")
            // Other VPCs' creates and this one's delete are filtered out.
            _ = try await server.cliJSON("alice", "vpc", "create", "--name", "c", "--cidr", "10.4.0.0/16")
            watcher.send(SIGINT)
            let result = await watcher.finish()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.split(separator: "\n").count == 1, "\(result.stdout)")

            let refused = try await server.cli("alice", "watch", "--since", "999999")
            #expect(refused.status == 3, "\(refused.stderr)")
            #expect(refused.stderr.contains("SEQUENCE_BEYOND_HEAD"), "\(refused.stderr)")
            let usage = try await server.cli("alice", "watch", "--since", "1", "--snapshot")
            #expect(usage.status == 64)
            // An empty id (an unset shell variable) is refused rather than read as "no filter".
            for arguments in [["watch", "--service", ""], ["watch", "--resource", ""], ["history", ""]] {
                let empty = try await server.cli("alice", arguments: arguments)
                #expect(empty.status == 64, "\(arguments): \(empty.stderr)")
                #expect(empty.stderr.contains("is empty; leave it out"), "\(arguments): \(empty.stderr)")
            }
        }
    }

    @Test("a watcher survives a server restart and ends with exactly the writes made, in order")
    func survivesRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-data-\(UUID().uuidString)")
        let first = try await ServerProcess.start(dataDirectory: directory)
        let port = first.port
        var second: ServerProcess?
        do {
            let watcherClient = try first.client("alice")
            let total = 12
            let watching = Task { () throws -> [(seq: UInt64, id: String)] in
                var seen: [(seq: UInt64, id: String)] = []
                // After sequence 0: everything alice may see of VPCs, so nothing depends on when the stream starts.
                for try await change in watcherClient.watchChanges(WatchRequest(kinds: [.vpc], start: .afterSeq, afterSeq: 0)) {
                    if case .event(let entry) = change { seen.append((entry.seq, entry.resourceId)) }
                    if seen.count == total { return seen }
                }
                return seen
            }

            var written: [String] = []
            let writer = try first.client("alice")
            for index in 0..<total / 2 {
                written.append(try await writer.createVpc(CreateVpcRequest(name: "r\(index)", cidr: "10.\(index).0.0/16")).id)
            }
            await writer.close()
            #expect(await first.stop() == 0)

            let restarted = try await ServerProcess.start(
                dataDirectory: directory, extraArguments: ["--listen", "127.0.0.1:\(port)"])
            second = restarted
            #expect(restarted.port == port)
            let later = try restarted.client("alice")
            for index in total / 2..<total {
                written.append(try await later.createVpc(CreateVpcRequest(name: "r\(index)", cidr: "10.\(index).0.0/16")).id)
            }

            let seen = try await watching.value
            #expect(seen.map(\.id) == written)
            let history = try await later.listHistory(ListHistoryRequest(page: PageRequest(limit: 100, sortDir: "asc")))
            let logged = history.items.filter { $0.kind == .vpc }.map { (seq: $0.seq, id: $0.resourceId) }
            #expect(seen.map(\.seq) == logged.map(\.seq))
            #expect(seen.map(\.id) == logged.map(\.id))
            await later.close()
            await watcherClient.close()
            await restarted.stop()
        } catch {
            await first.stop()
            await second?.stop()
            throw error
        }
    }

    @Test("endpoint wait, now on a watch, keeps its exit codes: 4 for no such endpoint, 10 on its timeout")
    func endpointWaitExitCodes() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let (service, endpoint) = try await Network.endpointOnProvidersService(provider: alice, consumer: bob)

            let missing = try await server.cli("bob", "endpoint", "wait", "ep-none")
            #expect(missing.status == 4, "\(missing.stderr)")
            #expect(missing.stderr.contains("ENDPOINT_NOT_FOUND"), "\(missing.stderr)")
            // Another tenant's endpoint is as missing as one that does not exist.
            let foreign = try await server.cli("carol", "endpoint", "wait", endpoint.id)
            #expect(foreign.status == 4, "\(foreign.stderr)")

            let timedOut = try await server.cli("bob", "endpoint", "wait", endpoint.id, "--wait-timeout", "1")
            #expect(timedOut.status == 10, "\(timedOut.stderr)")
            #expect(timedOut.stderr.contains("WAIT_TIMED_OUT"), "\(timedOut.stderr)")
            #expect(timedOut.stderr.contains("still pending_acceptance"), "\(timedOut.stderr)")

            _ = try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id]))
            let reached = try await server.cli("bob", "endpoint", "wait", endpoint.id, "--output", "json")
            #expect(reached.status == 0, "\(reached.stderr)")
            #expect(try reached.json()["id"] as? String == endpoint.id)
            await alice.close()
            await bob.close()
        }
    }

    static func object(_ line: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw JSONShapeError(text: line)
        }
        return object
    }
}

/// A command left running while the test acts: its stdout is read as it grows.
final class BackgroundCommand: Sendable {
    private let process: Process
    private let outURL: URL
    private let errURL: URL
    private let exited: Mutex<Int32?> = Mutex(nil)

    init(_ executable: URL, _ arguments: [String], environment: [String: String]) throws {
        let folder = FileManager.default.temporaryDirectory
        outURL = folder.appendingPathComponent("vpcep-bg-\(UUID().uuidString).out")
        errURL = folder.appendingPathComponent("vpcep-bg-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.terminationHandler = { [self] process in exited.withLock { $0 = process.terminationStatus } }
        try process.run()
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// The first whole line of stdout that `matches`; waits for it while the command runs.
    func line(where matches: (String) -> Bool) async throws -> String {
        while true {
            let text = stdout
            let lines = text.hasSuffix("\n") ? text.split(separator: "\n") : text.split(separator: "\n").dropLast()
            if let line = lines.first(where: { matches(String($0)) }) { return String(line) }
            if exited.withLock({ $0 }) != nil {
                throw BackgroundCommandEnded(stdout: text, stderr: stderr)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    func finish() async -> CommandResult {
        while exited.withLock({ $0 }) == nil { try? await Task.sleep(for: .milliseconds(20)) }
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        return CommandResult(status: exited.withLock { $0 } ?? -1, stdout: stdout, stderr: stderr)
    }
}

struct BackgroundCommandEnded: Error, CustomStringConvertible {
    var stdout: String
    var stderr: String
    var description: String { "the command ended early:\n\(stdout)\n\(stderr)" }
}
