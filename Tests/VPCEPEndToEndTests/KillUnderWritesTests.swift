import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// SIGKILL while several clients write: after a restart on the same data, every acknowledged write
/// is there, and the change log holds exactly the committed changes (docs/DOMAIN.md, "Change log").
@Suite("SIGKILL under write load", .timeLimit(.minutes(2)))
struct KillUnderWritesTests {
    /// What the writers were told: VPCs whose create or delete was acknowledged, per tenant.
    struct Acknowledged: Sendable {
        var created: [String: Set<String>] = [:]
        var deleted: [String: Set<String>] = [:]
        /// The call each writer had in flight when the server died: it may or may not have been made.
        var deletesInDoubt: [String: Set<String>] = [:]
        var createsInDoubt: [String: Int] = [:]
        var count = 0
    }

    final class Writes: Sendable {
        let acknowledged = Mutex(Acknowledged())
    }

    @Test("every acknowledged write survives, and every stored VPC is explained by a gapless log")
    func killNineUnderWrites() async throws {
        let seed = SeededGenerator.seed(for: "killNineUnderWrites")
        var random = SeededGenerator(seed: seed)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-data-\(UUID().uuidString)")
        let first = try await ServerProcess.start(dataDirectory: directory)
        var restarted: ServerProcess?
        let tenants = ["alice", "bob", "carol", "dave"]
        var clients: [VPCEPClient] = []
        do {
            let writes = Writes()
            // Two connections per tenant, two writers on each.
            var writers: [Task<Void, Never>] = []
            for tenant in tenants {
                for connection in 0..<2 {
                    var configuration = try first.client(tenant).configuration
                    // A write that was cut is not sent again: what it did is what the test asks about.
                    configuration.retryPolicy.maxAttempts = 1
                    let client = try VPCEPClient(configuration: configuration)
                    clients.append(client)
                    for writer in 0..<2 {
                        writers.append(Task {
                            await Self.write(client, tenant: tenant, name: "k\(connection)\(writer)", into: writes)
                        })
                    }
                }
            }
            // A moment in which every writer has had acknowledgements, then the kill.
            while writes.acknowledged.withLock({ $0.count }) < 40 { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...400, using: &random)))
            first.send(SIGKILL)
            #expect(await first.waitForExit() == SIGKILL)
            for writer in writers { await writer.value }
            let acked = writes.acknowledged.withLock { $0 }
            print("killNineUnderWrites: killed after \(acked.count) acknowledged writes")

            let server = try await ServerProcess.start(dataDirectory: directory)
            restarted = server
            let operatorClient = try server.client("ops")
            clients.append(operatorClient)
            let log = try await operatorClient.wholeHistory()
            let head = try await operatorClient.logHead()
            try #require(head > 0)
            #expect(log.map(\.seq) == Array(1...head), "the log is not 1...\(head) without gap")

            for tenant in tenants {
                let client = try server.client(tenant)
                clients.append(client)
                let stored = Set(try await client.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000))).items.map(\.id))
                let events = log.filter { $0.kind == .vpc && $0.actor == tenant }
                let createdInLog = Set(events.filter { $0.type == .created }.map(\.resourceId))
                let deletedInLog = Set(events.filter { $0.type == .deleted }.map(\.resourceId))
                // No change without its event and no event without its change.
                #expect(stored == createdInLog.subtracting(deletedInLog), "\(tenant): stored VPCs and the log disagree")
                #expect(deletedInLog.isSubset(of: createdInLog))
                for id in createdInLog {
                    let types = events.filter { $0.resourceId == id }.map(\.type)
                    #expect(types == [.created] || types == [.created, .deleted], "\(tenant) \(id): \(types)")
                }
                // Nothing acknowledged is lost; of the calls cut by the kill, each was made or not.
                let created = acked.created[tenant] ?? []
                let deleted = acked.deleted[tenant] ?? []
                let deletesInDoubt = acked.deletesInDoubt[tenant] ?? []
                #expect(created.isSubset(of: createdInLog), "\(tenant): acknowledged creates missing")
                #expect(deleted.isSubset(of: deletedInLog), "\(tenant): acknowledged deletes missing")
                #expect(created.subtracting(deleted).subtracting(deletesInDoubt).isSubset(of: stored))
                #expect(stored.isDisjoint(with: deleted))
                #expect(stored.subtracting(created).count <= acked.createsInDoubt[tenant] ?? 0,
                        "\(tenant): VPCs stored that no create in flight explains")
            }
        } catch {
            for client in clients { await client.close() }
            await first.stop()
            await restarted?.stop()
            throw error
        }
        for client in clients { await client.close() }
        await restarted?.stop()
    }

    /// Creates VPCs, deleting every third one it made, until a call fails (the server was killed).
    private static func write(_ client: VPCEPClient, tenant: String, name: String, into writes: Writes) async {
        var mine: [String] = []
        for index in 0... {
            if index % 3 == 2, !mine.isEmpty {
                let id = mine.removeFirst()
                do {
                    _ = try await client.deleteVpc(DeleteResourceRequest(id: id))
                } catch {
                    writes.acknowledged.withLock { _ = $0.deletesInDoubt[tenant, default: []].insert(id) }
                    return
                }
                writes.acknowledged.withLock {
                    $0.deleted[tenant, default: []].insert(id)
                    $0.count += 1
                }
            } else {
                let vpc: Vpc
                do {
                    vpc = try await client.createVpc(CreateVpcRequest(name: "\(name)-\(index)", cidr: "10.\(index % 250).0.0/16"))
                } catch {
                    writes.acknowledged.withLock { $0.createsInDoubt[tenant, default: 0] += 1 }
                    return
                }
                mine.append(vpc.id)
                writes.acknowledged.withLock {
                    $0.created[tenant, default: []].insert(vpc.id)
                    $0.count += 1
                }
            }
        }
    }
}
