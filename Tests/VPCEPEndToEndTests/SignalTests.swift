import Foundation
import SQLiteNIO
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// What the server does on SIGTERM and SIGHUP, seen from outside the process.
@Suite("Signals", .timeLimit(.minutes(2)))
struct SignalTests {
    @Test("SIGTERM during in-flight calls: accepted calls complete and are durable, the rest are retryable, exit 0")
    func sigtermDrains() async throws {
        let server = try await ServerProcess.start()
        let clients = try (0..<4).map { _ in try server.client("alice") }
        // Connect first so that the signal meets calls rather than handshakes.
        for client in clients { _ = try await client.whoAmI(WhoAmIRequest()) }

        // SIGTERM goes out once some calls have completed, so that it meets others mid-flight.
        let completed = CompletionCounter()
        let outcomes = await withTaskGroup(of: (name: String, outcome: Result<Vpc, VPCEPError>)?.self) { group in
            for index in 0..<400 {
                let client = clients[index % clients.count]
                let name = "v\(index)"
                group.addTask {
                    do {
                        let vpc = try await client.createVpc(CreateVpcRequest(name: name, cidr: "10.0.0.0/16"))
                        completed.count.add(1, ordering: .relaxed)
                        return (name, .success(vpc))
                    } catch let error as VPCEPError {
                        return (name, .failure(error))
                    } catch {
                        return (name, .failure(VPCEPError(code: .unknown, reason: .init(rawValue: "UNEXPECTED"), message: "\(error)")))
                    }
                }
            }
            group.addTask {
                while completed.count.load(ordering: .relaxed) < 20 { try? await Task.sleep(for: .milliseconds(2)) }
                server.send(SIGTERM)
                return nil
            }
            var all: [(name: String, outcome: Result<Vpc, VPCEPError>)] = []
            for await outcome in group {
                if let outcome { all.append(outcome) }
            }
            return all
        }
        #expect(await server.waitForExit() == 0)
        for client in clients { await client.close() }

        let succeeded = outcomes.compactMap { try? $0.outcome.get() }
        let failures = outcomes.compactMap { entry -> (name: String, error: VPCEPError)? in
            if case .failure(let error) = entry.outcome { return (entry.name, error) }
            return nil
        }
        #expect(!succeeded.isEmpty)
        for failure in failures {
            #expect(failure.error.code == .unavailable, "only 'not processed, try again' failures: \(failure.error)")
        }
        // A call still running when the drain's grace ran out (a slow, loaded machine) is cut with
        // CONNECTION_CLOSED: it may have committed. A call refused as never processed must not have.
        let mayHaveCommitted = Set(failures.filter { !$0.error.wasNeverProcessed }.map(\.name))

        // Every call that reported success committed before the exit; nothing else did but calls cut
        // with their outcome unknown.
        try await withServer(dataDirectory: server.dataDirectory) { again in
            let client = try again.client("alice")
            let stored = try await client.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000)))
            let storedIDs = Set(stored.items.map { $0.id })
            #expect(storedIDs.isSuperset(of: succeeded.map { $0.id }))
            let succeededIDs = Set(succeeded.map { $0.id })
            for vpc in stored.items where !succeededIDs.contains(vpc.id) {
                #expect(mayHaveCommitted.contains(vpc.name), "\(vpc.name) is stored but its call was refused as never processed")
            }
            await client.close()
        }
    }

    @Test("SIGHUP reloads the certificate and CA: new connections see the new ones, a broken file keeps the old")
    func sighupReloads() async throws {
        let certificates = TestCertificates.shared
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let ca = folder.appendingPathComponent("ca.crt").path
        let cert = folder.appendingPathComponent("server.crt").path
        let key = folder.appendingPathComponent("server.key").path
        func install(from directory: URL) throws {
            for (name, target) in [("ca.crt", ca), ("server.crt", cert), ("server.key", key)] {
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: directory.appendingPathComponent(name).path, toPath: target)
            }
        }
        try install(from: certificates.directory)

        let server = try await ServerProcess.start(tlsFiles: (ca, cert, key))
        func client(trusting directory: URL) throws -> VPCEPClient {
            try VPCEPClient(configuration: .init(
                host: "127.0.0.1", port: server.port, region: "eu-west-1",
                caFile: directory.appendingPathComponent("ca.crt").path,
                certificateFile: directory.appendingPathComponent("alice.crt").path,
                keyFile: directory.appendingPathComponent("alice.key").path,
                // A bound, not a speed check: a full parallel run on 2 cores has kept a call here past 10 s.
                serverHostname: "localhost", defaultTimeout: .seconds(60)
            ))
        }
        do {
            let old = try client(trusting: certificates.directory)
            #expect(try await old.whoAmI(WhoAmIRequest()).id == "alice")
            await old.close()
            let newcomer = try client(trusting: certificates.rogueDirectory)
            await expectFailure(.unavailable, "SERVER_CERTIFICATE_INVALID") { () async throws(VPCEPError) in
                try await newcomer.whoAmI(WhoAmIRequest())
            }
            await newcomer.close()

            try install(from: certificates.rogueDirectory)
            server.send(SIGHUP)
            try await Task.sleep(for: .milliseconds(500))

            let after = try client(trusting: certificates.rogueDirectory)
            #expect(try await after.whoAmI(WhoAmIRequest()).id == "alice")
            await after.close()
            let stale = try client(trusting: certificates.directory)
            await expectFailure(.unavailable, "SERVER_CERTIFICATE_INVALID") { () async throws(VPCEPError) in
                try await stale.whoAmI(WhoAmIRequest())
            }
            await stale.close()

            // A broken key file is refused and the server keeps serving with what it had.
            try "not a key".write(toFile: key, atomically: true, encoding: .utf8)
            server.send(SIGHUP)
            try await Task.sleep(for: .milliseconds(500))
            let still = try client(trusting: certificates.rogueDirectory)
            #expect(try await still.whoAmI(WhoAmIRequest()).id == "alice")
            await still.close()
            #expect(server.logText.contains("TLS reload refused"))
        } catch {
            await server.stop()
            throw error
        }
        #expect(await server.stop() == 0)
    }

    @Test("while draining, /readyz answers 503 and calls in flight still complete; then exit 0")
    func notReadyWhileDraining() async throws {
        let server = try await ServerProcess.start()
        let adminPort = try #require(server.adminPort)
        let client = try server.client("alice")
        _ = try await client.whoAmI(WhoAmIRequest())
        #expect(try await httpGet("/readyz", port: adminPort).status == 200)

        // Another connection holds the database's write lock, so writes wait in flight, one after
        // the other, each for up to the store's busy timeout: the drain cannot finish before the
        // lock is let go, however slowly this test gets to look.
        let holder = try await SQLiteConnection.open(
            storage: .file(path: server.dataDirectory.appendingPathComponent("vpcep.sqlite3").path)
        )
        _ = try await holder.query("BEGIN IMMEDIATE", [])
        let held = (0..<6).map { index in
            Task { () -> Result<Vpc, VPCEPError> in
                do {
                    return .success(try await client.createVpc(CreateVpcRequest(name: "held\(index)", cidr: "10.0.0.0/16")))
                } catch let error as VPCEPError {
                    return .failure(error)
                } catch {
                    return .failure(VPCEPError(code: .unknown, reason: .init(rawValue: "UNEXPECTED"), message: "\(error)"))
                }
            }
        }
        try await Task.sleep(for: .seconds(1))
        server.send(SIGTERM)

        var readyz = try await httpGet("/readyz", port: adminPort)
        let giveUp = ContinuousClock.now + .seconds(10)
        while readyz.status == 200, ContinuousClock.now < giveUp {
            try await Task.sleep(for: .milliseconds(50))
            readyz = try await httpGet("/readyz", port: adminPort)
        }
        #expect(readyz.status == 503)
        #expect(readyz.body.contains("shutting down"), "\(readyz.body)")

        _ = try await holder.query("ROLLBACK", [])
        try await holder.close()
        var succeeded = 0
        for call in held {
            switch await call.value {
            case .success: succeeded += 1
            case .failure(let error): #expect(error.code == .unavailable, "only 'not processed, try again' failures: \(error)")
            }
        }
        #expect(succeeded > 0, "the calls still waiting when the lock went complete")
        await client.close()
        #expect(await server.waitForExit() == 0)
    }
}

/// Counts finished calls across tasks.
final class CompletionCounter: Sendable {
    let count = Atomic<Int>(0)
}
