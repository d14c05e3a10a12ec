import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Issue 10, defect 1, against a real server: calls cancelled or expired at random moments, among
/// 64-way mixed reads and writes, end only themselves. Every other call succeeds, the server stays
/// ready, and no transaction is left open in its database.
@Suite("Cancelled and expired calls end to end")
struct CancellationEndToEndTests {
    static let victims = 1_000
    static let loops = 64

    @Test("1,000 calls cancelled or expired at random moments during 64-way mixed load break nothing")
    func cancelledCallsBreakNothing() async throws {
        try await withServer { server in
            var configuration = try server.client("alice").configuration
            configuration.retryPolicy = .disabled
            // A few connections per tenant, as client processes would have; victims and
            // bystanders share them.
            let clients = try ["alice", "bob"].flatMap { tenant in
                try (0..<3).map { _ in
                    var own = configuration
                    own.certificateFile = TestCertificates.shared.certificate(tenant)
                    own.keyFile = TestCertificates.shared.key(tenant)
                    return try VPCEPClient(configuration: own)
                }
            }
            let tally = Tally()
            await withTaskGroup(of: Void.self) { group in
                for loop in 0..<Self.loops {
                    group.addTask {
                        let client = clients[loop % clients.count]
                        var index = loop
                        while index < Self.victims {
                            await Self.victim(client, index: index, tally: tally)
                            await Self.bystander(client, index: index, tally: tally)
                            index += Self.loops
                        }
                    }
                }
            }
            for client in clients { await client.close() }

            #expect(tally.unexpected.withLock { $0 } == [])
            #expect(tally.bystanders.load(ordering: .relaxed) == Self.victims)
            // The victims were really cut short, most of them before they finished.
            #expect(tally.cutShort.load(ordering: .relaxed) > Self.victims / 4)

            let alice = try server.client("alice")
            _ = try await alice.createVpc(CreateVpcRequest(name: "after", cidr: "10.9.0.0/16"))
            #expect(try await alice.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1))).totalCount > 0)
            await alice.close()
            let port = try #require(server.adminPort)
            #expect(try await httpGet("/readyz", port: port).status == 200)
            #expect(!server.logText.contains("registry store transaction failed"))
            #expect(!server.logText.contains("connection failed; repairing"))
            try await expectNoTransactionLeftOpen(server.dataDirectory.appendingPathComponent("vpcep.sqlite3").path)
        }
    }

    /// A create or a list, cancelled after 0-4 ms or given a 1-3 ms deadline.
    private static func victim(_ client: VPCEPClient, index: Int, tally: Tally) async {
        let expires = index.isMultiple(of: 2)
        let options = CallOptions(timeout: expires ? .milliseconds(Int.random(in: 1...3)) : .seconds(20))
        let call = Task {
            if index % 3 == 0 {
                _ = try await client.listVpcs(ListVpcsRequest(page: PageRequest(limit: 100)), options: options)
            } else {
                _ = try await client.createVpc(CreateVpcRequest(name: "v\(index)", cidr: "10.0.0.0/16"), options: options)
            }
        }
        if !expires {
            try? await Task.sleep(for: .microseconds(Int.random(in: 0...4000)))
            call.cancel()
        }
        do {
            try await call.value
        } catch let error as VPCEPError where [.cancelled, .deadlineExceeded].contains(error.code) {
            tally.cutShort.add(1, ordering: .relaxed)
        } catch {
            tally.unexpected.withLock { $0.append("victim \(index): \(error)") }
        }
    }

    /// A create and a list that nobody cancels: each must succeed.
    private static func bystander(_ client: VPCEPClient, index: Int, tally: Tally) async {
        do {
            _ = try await client.createVpc(CreateVpcRequest(name: "b\(index)", cidr: "10.1.0.0/16"))
            _ = try await client.listVpcs(ListVpcsRequest(page: PageRequest(limit: 5)))
            tally.bystanders.add(1, ordering: .relaxed)
        } catch {
            tally.unexpected.withLock { $0.append("bystander \(index): \(error)") }
        }
    }
}

private final class Tally: Sendable {
    let bystanders = Atomic<Int>(0)
    let cutShort = Atomic<Int>(0)
    let unexpected = Mutex<[String]>([])
}
