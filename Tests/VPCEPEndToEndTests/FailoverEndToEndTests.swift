import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// A client given several servers (replicas) moves to another when one fails (docs/PROTOCOL.md §9).
/// The servers here have a data directory each; failover does not depend on the store.
@Suite("Client failover", .timeLimit(.minutes(2)))
struct FailoverEndToEndTests {
    private func client(_ ports: [Int], timeout: Duration = .seconds(20), policy: RetryPolicy = RetryPolicy()) throws -> VPCEPClient {
        let certificates = TestCertificates.shared
        var configuration = VPCEPClient.Configuration(
            servers: ports.map { ServerAddress(host: "127.0.0.1", port: $0) }, region: ServerProcess.regions[0],
            caFile: certificates.ca, certificateFile: certificates.certificate("alice"), keyFile: certificates.key("alice"),
            serverHostname: "localhost", defaultTimeout: timeout)
        configuration.retryPolicy = policy
        return try VPCEPClient(configuration: configuration)
    }

    private func address(_ port: Int) -> ServerAddress { ServerAddress(host: "127.0.0.1", port: port) }

    @Test("the first server refuses connections: the call succeeds on the second, in one attempt")
    func firstRefuses() async throws {
        try await withServer { server in
            let refused = try RefusedPort()
            defer { withExtendedLifetime(refused) {} }  // held until the test is done
            let client = try client([refused.port, server.port], policy: .disabled)
            #expect(try await client.whoAmI(WhoAmIRequest()).id == "alice")
            #expect(client.currentServer == address(server.port))
            // The failed server is passed over while it is in back-off: the next connection goes
            // straight to the second.
            await client.close()
            #expect(try await client.whoAmI(WhoAmIRequest()).id == "alice")
            #expect(client.currentServer == address(server.port))
            await client.close()
        }
    }

    @Test("the server in use goes away with SIGTERM (GOAWAY) between calls: the next calls go to the other")
    func goAwayBetweenCalls() async throws {
        try await withServer { second in
            let first = try await ServerProcess.start()
            let client = try client([first.port, second.port])
            #expect(try await client.whoAmI(WhoAmIRequest()).id == "alice")
            #expect(client.currentServer == address(first.port))

            first.send(SIGTERM)
            #expect(await first.waitForExit() == 0)
            #expect(try await client.whoAmI(WhoAmIRequest()).id == "alice")
            #expect(client.currentServer == address(second.port))
            let vpc = try await client.createVpc(CreateVpcRequest(name: "after", cidr: "10.0.0.0/16"))
            let onSecond = try second.client("alice")
            #expect(try await onSecond.listVpcs(ListVpcsRequest()).items.contains { $0.id == vpc.id && $0.name == "after" })
            await onSecond.close()
            await client.close()
        }
    }

    @Test("SIGKILL with calls in flight: a read and a keyed write are retried on the other server; an unkeyed write is not")
    func killInFlight() async throws {
        try await withServer { second in
            let first = try await ServerProcess.start()
            do {
                let onSecond = try second.client("alice")
                let marker = try await onSecond.createVpc(CreateVpcRequest(name: "on-second", cidr: "10.0.0.0/16"))

                let client = try client([first.port, second.port])
                _ = try await client.whoAmI(WhoAmIRequest())
                #expect(client.currentServer == address(first.port))

                // A stopped process answers nothing, but the kernel still takes the calls' bytes: they are
                // in flight on its connection when it dies.
                first.send(SIGSTOP)
                let read = Task { try await client.listVpcs(ListVpcsRequest()) }
                let unkeyed = Task { try await client.createVpc(CreateVpcRequest(name: "unkeyed", cidr: "10.1.0.0/16")) }
                let keyed = Task {
                    try await client.createVpc(CreateVpcRequest(name: "keyed", cidr: "10.2.0.0/16"),
                                               options: CallOptions(idempotencyKey: "failover-keyed-create"))
                }
                // No clock to inject into another process: give the three calls time to be written.
                try await Task.sleep(for: .milliseconds(500))
                first.send(SIGKILL)
                _ = await first.waitForExit()

                let listed = try await read.value
                #expect(listed.items.map(\.id).contains(marker.id), "the read was answered by the second server")
                do {
                    let vpc = try await unkeyed.value
                    Issue.record("the unkeyed write succeeded: \(vpc)")
                } catch let error as VPCEPError {
                    #expect(error.code == .unavailable, "\(error)")
                    #expect(!error.wasNeverProcessed, "\(error)")
                    #expect(error.message.hasPrefix("127.0.0.1:\(first.port): "), "the error names the server: \(error)")
                }
                let created = try await keyed.value
                #expect(client.currentServer == address(second.port))

                let names = try await onSecond.listVpcs(ListVpcsRequest()).items.map(\.name)
                #expect(names.filter { $0 == "keyed" }.count == 1)
                #expect(!names.contains("unkeyed"), "a write without a key that may have run is never sent again")
                #expect(try await onSecond.listVpcs(ListVpcsRequest()).items.contains { $0.id == created.id })
                await onSecond.close()
                await client.close()
            } catch {
                first.send(SIGCONT)
                await first.stop()
                throw error
            }
        }
    }

    @Test("SIGKILL of the server in use during parallel keyed writes: every write succeeds, and is stored on one of the two")
    func killUnderLoad() async throws {
        try await withServer { second in
            let first = try await ServerProcess.start()
            let client = try client([first.port, second.port])
            _ = try await client.whoAmI(WhoAmIRequest())
            let completed = CompletionCounter()
            let outcomes = await withTaskGroup(of: [Result<Vpc, VPCEPError>].self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        var results: [Result<Vpc, VPCEPError>] = []
                        for index in 0..<12 {
                            do throws(VPCEPError) {
                                let vpc = try await client.createVpc(
                                    CreateVpcRequest(name: "w\(worker)-\(index)", cidr: "10.0.0.0/16"),
                                    options: CallOptions(idempotencyKey: "load-\(worker)-\(index)"))
                                completed.count.add(1, ordering: .relaxed)
                                results.append(.success(vpc))
                            } catch {
                                results.append(.failure(error))
                            }
                        }
                        return results
                    }
                }
                group.addTask {
                    while completed.count.load(ordering: .relaxed) < 40 { try? await Task.sleep(for: .milliseconds(2)) }
                    first.send(SIGKILL)
                    return []
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
            _ = await first.waitForExit()
            #expect(client.currentServer == address(second.port))
            let failures = outcomes.compactMap { outcome -> VPCEPError? in
                if case .failure(let error) = outcome { return error }
                return nil
            }
            #expect(failures.isEmpty, "keyed writes are retried on the other server: \(failures)")
            let acknowledged = Set(outcomes.compactMap { try? $0.get().id })
            #expect(acknowledged.count == 16 * 12 - failures.count)

            let onSecond = try second.client("alice")
            var stored = Set(try await onSecond.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000))).items.map(\.id))
            await onSecond.close()
            try await withServer(dataDirectory: first.dataDirectory) { again in
                let onFirst = try again.client("alice")
                stored.formUnion(try await onFirst.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000))).items.map(\.id))
                await onFirst.close()
            }
            #expect(acknowledged.isSubset(of: stored), "every acknowledged write is stored on one of the servers")
            await client.close()
        }
    }

    @Test("servers that accept and then say nothing: the call ends at its own deadline, not at each attempt's")
    func sharedDeadlineWithHungServers() async throws {
        let hung = try (0..<2).map { _ in try FakeListener(.silent) }
        defer { for listener in hung { listener.stop() } }
        var policy = RetryPolicy()
        policy.maxAttempts = 1000
        policy.initialBackoff = .milliseconds(1)
        policy.maxBackoff = .milliseconds(5)
        let client = try client(hung.map(\.port), timeout: .milliseconds(800), policy: policy)
        do {
            let answer = try await client.whoAmI(WhoAmIRequest())
            Issue.record("a hung server answered: \(answer)")
        } catch {
            #expect(error.code == .deadlineExceeded, "\(error)")
        }
        // Each server's connect timeout (10 s) is cut to what is left of the one deadline, so the
        // call never gets past its first walk through the list, whatever maxAttempts allows.
        #expect(hung.map(\.connections).reduce(0, +) <= 2)
        await client.close()
    }

    @Test("all servers close every connection: the call fails UNAVAILABLE or DEADLINE_EXCEEDED after a bounded number of attempts")
    func allDown() async throws {
        let down = try (0..<2).map { _ in try FakeListener(.closeAtOnce) }
        defer { for listener in down { listener.stop() } }
        // A deadline far beyond what the attempts take: the retry policy's maxAttempts ends the call.
        let client = try client(down.map(\.port), timeout: .seconds(20))
        do {
            let answer = try await client.whoAmI(WhoAmIRequest())
            Issue.record("a closed server answered: \(answer)")
        } catch {
            #expect([StatusCode.unavailable, .deadlineExceeded].contains(error.code), "\(error)")
            #expect(error.message.contains("127.0.0.1:\(down[0].port)") && error.message.contains("127.0.0.1:\(down[1].port)"),
                    "the error names every server tried: \(error.message)")
        }
        let attempts = down.map(\.connections)
        // A server's close is what failed the attempt, so it was accepted (and counted) first.
        #expect(attempts.allSatisfy { $0 >= 1 }, "both servers were tried: \(attempts)")
        #expect(attempts.reduce(0, +) <= RetryPolicy().maxAttempts * down.count, "\(attempts)")
        await client.close()
    }
}
