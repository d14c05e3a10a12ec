import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Watchers whose streams are cut at random moments resume by themselves and end with exactly the
/// events of the log: no gap, no duplicate (docs/PROTOCOL.md §9, "Resuming a watch"). Each test prints
/// its seed; VPCEP_TEST_SEED=<seed> replays the same writes and the same cut schedule.
@Suite("Watch: cut watchers resume without gap or duplicate", .timeLimit(.minutes(2)))
struct WatchCutTests {
    @Test("watchers behind a proxy that resets their connections see what an uncut watcher sees")
    func tcpResets() async throws {
        let seed = SeededGenerator.seed(for: "tcpResets")
        var random = SeededGenerator(seed: seed)
        let server = try await ServerProcess.start(extraArguments: ["--watch-bookmark-interval", "1"])
        let proxy = try CuttingProxy(upstreamPort: server.port)
        var clients: [VPCEPClient] = []
        do {
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            clients = [alice, bob]
            var workload = try await Workload.make(provider: alice, consumer: bob)
            // The same identity, so the same view, on a connection of its own that the proxy does not carry.
            let uncutClient = try server.client("alice")
            let cutClients = try (0..<3).map { _ in try makeClient("alice", port: proxy.port) }
            clients += [uncutClient] + cutClients
            let uncut = RecordingWatcher(uncutClient)
            let cut = cutClients.map { RecordingWatcher($0) }

            let cutter = Task { [schedule = random.next()] in
                var random = SeededGenerator(seed: schedule)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 5...120, using: &random)))
                    proxy.cutAll()
                }
            }
            // At least 150 steps, and more until the proxy has cut enough connections: how many cuts fall
            // within 150 steps depends on how fast the server commits.
            var step = 0
            while step < 150 || (proxy.connectionsCut < 3 * 10 && step < 3000) {
                try await workload.step(step, using: &random)
                step += 1
            }
            cutter.cancel()
            await cutter.value

            let head = try await alice.logHead()
            let expected = try await alice.wholeHistory().map(Trail.init)
            #expect(expected.count > 150)
            expectSameEvents(try await uncut.events(through: head), expected, "the uncut watcher", seed: seed)
            for (index, watcher) in cut.enumerated() {
                expectSameEvents(try await watcher.events(through: head), expected, "cut watcher \(index)", seed: seed)
            }
            // Every cut watcher lost its connection many times while events flowed.
            #expect(proxy.connectionsCut >= 3 * 10, "only \(proxy.connectionsCut) connections were cut")
            await uncut.stop()
            for watcher in cut { await watcher.stop() }
        } catch {
            proxy.stop()
            for client in clients { await client.close() }
            await server.stop()
            throw error
        }
        proxy.stop()
        for client in clients { await client.close() }
        await server.stop()
    }

    @Test("watchers of a server stopped by SIGTERM or SIGKILL and restarted see the log as one uninterrupted watch")
    func serverRestarts() async throws {
        let seed = SeededGenerator.seed(for: "serverRestarts")
        var random = SeededGenerator(seed: seed)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-data-\(UUID().uuidString)")
        let settings = ["--watch-bookmark-interval", "1", "--shutdown-grace", "2"]
        var server = try await ServerProcess.start(dataDirectory: directory, extraArguments: settings)
        let port = server.port
        var clients: [VPCEPClient] = []
        do {
            let alice = try makeClient("alice", port: port)
            let bob = try makeClient("bob", port: port)
            clients = [alice, bob]
            let workload = try await Workload.make(provider: alice, consumer: bob)
            let watcherClients = try (0..<2).map { _ in try makeClient("alice", port: port) }
            clients += watcherClients
            let watchers = watcherClients.map { RecordingWatcher($0) }

            let writing = Task { [workload, steps = random.next()] in
                var workload = workload
                var random = SeededGenerator(seed: steps)
                var made = 0
                for step in 0..<120 {
                    do {
                        try await workload.step(step, using: &random)
                        made += 1
                    } catch {
                        // The server is down or going: this change may or may not have been made.
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
                return made
            }
            // Both kinds of stop, twice each, in an order of the seed's choosing.
            let stops = [SIGTERM, SIGKILL, SIGTERM, SIGKILL].shuffled(using: &random)
            var stopped: [String] = []
            for signal in stops {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...600, using: &random)))
                server.send(signal)
                _ = await server.waitForExit()
                // How many watches a drain ended with where to resume (a SIGKILL ends none): shown, not
                // asserted, since a watcher may be between connections at that moment.
                let drained = server.logText.split(separator: "\n")
                    .filter { $0.contains("History/Watch") && $0.contains("SERVER_SHUTTING_DOWN") }.count
                stopped.append("\(signal == SIGKILL ? "SIGKILL" : "SIGTERM") (\(drained) watches drained)")
                server = try await ServerProcess.start(
                    dataDirectory: directory, extraArguments: settings + ["--listen", "127.0.0.1:\(port)"])
            }
            let made = await writing.value
            print("serverRestarts: \(stopped.joined(separator: ", ")); \(made) of 120 steps acknowledged")

            let head = try await alice.logHead()
            let expected = try await alice.wholeHistory().map(Trail.init)
            #expect(made > 0)
            // One stream from the start of the log, after the last restart: never cut.
            let uncutClient = try makeClient("alice", port: port)
            clients.append(uncutClient)
            let uncut = RecordingWatcher(uncutClient)
            expectSameEvents(try await uncut.events(through: head), expected, "the uncut watcher", seed: seed)
            for (index, watcher) in watchers.enumerated() {
                expectSameEvents(try await watcher.events(through: head), expected, "restarted watcher \(index)", seed: seed)
            }
            await uncut.stop()
            for watcher in watchers { await watcher.stop() }
        } catch {
            for client in clients { await client.close() }
            await server.stop()
            throw error
        }
        for client in clients { await client.close() }
        await server.stop()
    }
}
