import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Issue 12's acceptance: three `vpcep-server` processes on one PostgreSQL database behave as one
/// registry (README, "Running several replicas"; docs/DOMAIN.md, "PostgreSQL store").
@Suite(
    "three replicas on one PostgreSQL",
    .enabled(if: testPostgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"),
    .timeLimit(.minutes(5)))
struct ReplicaEndToEndTests {
    private func store() throws -> [String] {
        try postgresStoreArguments(url: try #require(testPostgresURL), password: "pw-\(UUID().uuidString)")
    }

    @Test("100 parallel creates by one tenant spread over three replicas leave exactly the quota")
    func theQuotaHoldsAcrossReplicas() async throws {
        let quota = 10
        try await withReplicas(3, store: try store()) { servers in
            // 100 writes queue on one lock across the replicas: on a loaded machine the last waits
            // longer than the usual deadline, and the property here is exactness, not speed.
            let clients = try servers.map { try $0.client("alice", timeout: .seconds(120)) }
            defer { for client in clients { Task { await client.close() } } }
            let ops = try servers[0].client("ops")
            _ = try await ops.setQuota(SetQuotaRequest(tenantId: "alice", type: .endpointService, limit: UInt32(quota)))
            await ops.close()
            let network = try await Network.make(clients[0])
            let outcomes = await withTaskGroup(of: Result<EndpointService, VPCEPError>.self) { group in
                for index in 0..<100 {
                    let request = network.serviceRequest(name: "s\(index)", ports: [(80, UInt32(8000 + index))])
                    let client = clients[index % clients.count]
                    group.addTask {
                        do throws(VPCEPError) { return .success(try await client.createEndpointService(request)) }
                        catch { return .failure(error) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let created = outcomes.compactMap { try? $0.get() }
            let refusals = outcomes.compactMap { outcome -> VPCEPError? in
                if case .failure(let error) = outcome { return error }
                return nil
            }
            #expect(created.count == quota)
            // Every refusal is the quota's: writers of other replicas wait for one another rather than
            // lose conflicts (no ABORTED CONCURRENT_MODIFICATION).
            for error in refusals {
                #expect(error.code == .resourceExhausted && error.reason == .quotaExceeded, "\(error)")
            }
            for client in clients {
                let listed = try await client.listEndpointServices(ListEndpointServicesRequest(page: PageRequest(limit: 1000)))
                #expect(listed.totalCount == UInt32(quota))
                #expect(Set(listed.items.map(\.id)) == Set(created.map(\.id)))
            }
        }
    }

    @Test("an accept and a reject of one connection through different replicas end in one state")
    func racingDecisionsAgree() async throws {
        try await withReplicas(3, store: try store()) { servers in
            let providers = try servers.map { try $0.client("alice") }
            let consumer = try servers[2].client("bob")
            defer { for client in providers + [consumer] { Task { await client.close() } } }
            var acceptsThatLost = 0
            for _ in 0..<10 {
                let (service, endpoint) = try await Network.endpointOnProvidersService(provider: providers[0], consumer: consumer)
                let decision = DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id])
                async let accepted = Self.outcome { () async throws(VPCEPError) in try await providers[0].acceptConnections(decision) }
                async let rejected = Self.outcome { () async throws(VPCEPError) in try await providers[1].rejectConnections(decision) }
                let (accept, reject) = await (accepted, rejected)
                // A rejection is final and repeating a decision succeeds: the reject always wins;
                // the accept either came first or is refused (docs/DOMAIN.md, "Connections").
                #expect(reject == nil, "reject: \(String(describing: reject))")
                if let accept {
                    acceptsThatLost += 1
                    #expect(accept.code == .failedPrecondition && accept.reason == .connectionStateInvalid, "\(accept)")
                }
                for client in [providers[2], providers[0]] {
                    let connections = try await client.listConnections(ListConnectionsRequest(serviceId: service.id))
                    #expect(connections.totalCount == 1)
                    #expect(connections.items.map(\.id) == [endpoint.id])
                    #expect(connections.items.map(\.status) == [.rejected])
                }
                let seen = try await consumer.getEndpoint(GetEndpointRequest(id: endpoint.id))
                #expect(seen.status == .rejected)
            }
            print("racingDecisionsAgree: \(acceptsThatLost) of 10 accepts came after the reject")
        }
    }

    @Test("an idempotent create retried on another replica returns the first result and stores one row")
    func idempotentRetryOnAnotherReplica() async throws {
        try await withReplicas(3, store: try store()) { servers in
            let clients = try servers.map { try $0.client("alice") }
            defer { for client in clients { Task { await client.close() } } }
            let request = CreateVpcRequest(name: "prod", cidr: "10.0.0.0/16")
            let options = CallOptions(idempotencyKey: "create-prod-\(UUID().uuidString)")
            let first = try await clients[0].createVpc(request, options: options)
            let retried = try await clients[1].createVpc(request, options: options)
            #expect(retried == first)
            // The same key sent to all three at once: one create, one answer.
            let raced = CallOptions(idempotencyKey: "create-raced-\(UUID().uuidString)")
            let racedRequest = CreateVpcRequest(name: "raced", cidr: "10.1.0.0/16")
            let answers = try await withThrowingTaskGroup(of: Vpc.self) { group in
                for client in clients { group.addTask { try await client.createVpc(racedRequest, options: raced) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(answers.map(\.id)).count == 1)
            let listed = try await clients[2].listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000)))
            #expect(listed.items.map(\.name).sorted() == ["prod", "raced"])
            #expect(listed.items.first { $0.name == "prod" }?.id == first.id)
        }
    }

    @Test("a write through one replica is read through another at once, 1,000 times in a row")
    func readYourWritesAcrossReplicas() async throws {
        try await withReplicas(3, store: try store()) { servers in
            let writer = try servers[0].client("alice")
            let reader = try servers[1].client("alice")
            defer { for client in [writer, reader] { Task { await client.close() } } }
            let network = try await Network.make(writer)
            let service = try await writer.createEndpointService(network.serviceRequest())
            var stale = 0
            for round in 0..<1000 {
                var update = UpdateEndpointServiceRequest()
                update.id = service.id
                update.description = "round \(round)"
                let written = try await writer.updateEndpointService(update)
                let read = try await reader.getEndpointService(GetEndpointServiceRequest(id: service.id))
                if read.revision != written.revision || read.description != written.description { stale += 1 }
            }
            #expect(stale == 0, "\(stale) of 1000 reads were stale")
        }
    }

    /// Reads on a replica are answered from memory while it holds its read lease; a writer elsewhere waits
    /// until the lease has seen its commit or has expired. Paused for less than the lease, the replica
    /// holds the write up until it resumes; paused for longer, the write goes on without it, and the
    /// replica must not answer from its old cache when it comes back.
    @Test("a paused replica holds writes up at most its lease, and answers no read from before them when it resumes")
    func aPausedReplicaAnswersNothingStale() async throws {
        try await withReplicas(2, store: try store()) { servers in
            let writer = try servers[0].client("alice", timeout: .seconds(60))
            let reader = try servers[1].client("alice", timeout: .seconds(60))
            defer { for client in [writer, reader] { Task { await client.close() } } }
            let network = try await Network.make(writer)
            let service = try await writer.createEndpointService(network.serviceRequest())
            var stale = 0
            for (round, pause) in [100, 2_500, 700, 3_000, 1_200, 300].enumerated() {
                // Cached on the reader (and its lease renewed a few times).
                for _ in 0..<5 {
                    _ = try await reader.getEndpointService(GetEndpointServiceRequest(id: service.id))
                    try await Task.sleep(for: .milliseconds(100))
                }
                servers[1].send(SIGSTOP)
                var update = UpdateEndpointServiceRequest()
                update.id = service.id
                update.description = "paused \(round)"
                let write = Task { try await writer.updateEndpointService(update) }
                try await Task.sleep(for: .milliseconds(pause))
                servers[1].send(SIGCONT)
                let written = try await write.value
                let read = try await reader.getEndpointService(GetEndpointServiceRequest(id: service.id))
                if read.revision != written.revision || read.description != written.description { stale += 1 }
            }
            #expect(stale == 0, "\(stale) of 6 reads after a pause were stale")
        }
    }

    @Test("a watcher on the third replica sees the writes of the other two in sequence, without gap")
    func aWatchOnCSeesAAndB() async throws {
        try await withReplicas(3, store: try store(), extraArguments: ["--watch-bookmark-interval", "1"]) { servers in
            let (a, b, c) = (servers[0], servers[1], servers[2])
            let watcher = try BackgroundCommand(
                RepositoryPaths.executable("vpcep"), ["watch", "--output", "json"], environment: c.cliEnvironment("alice"))
            _ = try await watcher.line { $0.contains(#""kind":"bookmark""#) }
            // Mixed kinds, alternating replicas, each write depending on the one before.
            let net = try await a.cliNetwork("alice")
            let service = try await b.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080")
            _ = try await a.cliJSON("alice", "permission", "add", service, "iam:domain::bob")
            _ = try await b.cliJSON("alice", "service", "update", service, "--description", "through b")
            let last = try await a.cliID("alice", "vpc", "create", "--name", "last", "--cidr", "10.9.0.0/16")
            _ = try await watcher.line { $0.contains(last) }
            watcher.send(SIGINT)
            let result = await watcher.finish()
            let entries = try result.stdout.split(separator: "\n").map { try WatchClientEndToEndTests.object(String($0)) }
                .filter { $0["kind"] as? String == "event" }.compactMap { $0["entry"] as? [String: Any] }
            let kinds = entries.compactMap { $0["kind"] as? String }
            let types = entries.compactMap { $0["type"] as? String }
            #expect(kinds == ["vpc", "subnet", "load_balancer", "endpoint_service", "permission", "endpoint_service", "vpc"])
            #expect(types == ["created", "created", "created", "created", "permission_added", "updated", "created"])
            #expect(entries.first?["resource_id"] as? String == net.vpc)
            #expect(entries.last?["resource_id"] as? String == last)
            let seqs = entries.compactMap { $0["seq"] as? Int }
            #expect(seqs.count == entries.count)
            if let first = seqs.first { #expect(seqs == Array(first..<(first + seqs.count)), "\(seqs)") }
        }
    }

    /// What the writers were told: per tenant, the VPCs whose create was acknowledged.
    struct Acknowledged: Sendable {
        var created: [String: Set<String>] = [:]
        var count = 0
        var afterKill = 0
        var failures: [VPCEPError] = []
        var killed = false
        var stop = false
        var writersCarryingOn = Set<Int>()
    }

    @Test("SIGKILL of one replica under 64-way writes: acknowledged writes stay, clients carry on through the others")
    func killOneReplicaUnderWrites() async throws {
        try await withReplicas(3, store: try store()) { servers in
            let tenants = ["alice", "bob", "carol", "dave"]
            // Eight clients, each starting on a different replica; eight writers on each.
            let clients = try (0..<8).map { try replicaClient(tenants[$0 % tenants.count], of: servers, first: $0 % servers.count) }
            defer { for client in clients { Task { await client.close() } } }
            let state = Locked(Acknowledged())
            var writers: [Task<Void, Never>] = []
            for (number, client) in clients.enumerated() {
                let tenant = tenants[number % tenants.count]
                for writer in 0..<8 {
                    let id = number * 8 + writer
                    writers.append(Task { await Self.write(client, tenant: tenant, writer: id, name: "w\(id)", into: state) })
                }
            }
            while state.value.withLock({ $0.count }) < 200 { try await Task.sleep(for: .milliseconds(10)) }
            state.value.withLock { $0.killed = true }
            servers[1].send(SIGKILL)
            #expect(await servers[1].waitForExit() == SIGKILL)
            // Every writer has a write acknowledged after the kill.
            while state.value.withLock({ $0.writersCarryingOn.count }) < writers.count { try await Task.sleep(for: .milliseconds(10)) }
            state.value.withLock { $0.stop = true }
            for writer in writers { await writer.value }
            let acked = state.value.withLock { $0 }
            print("killOneReplicaUnderWrites: \(acked.count) acknowledged, \(acked.afterKill) after the kill, \(acked.failures.count) failed")
            // The kill cuts calls (UNAVAILABLE, not acknowledged); writers of the other replicas wait for
            // one another rather than lose conflicts (no ABORTED CONCURRENT_MODIFICATION).
            for error in acked.failures {
                #expect(error.code == .unavailable, "\(error)")
            }
            for tenant in tenants {
                let client = try servers[2].client(tenant)
                let stored = try await client.listVpcs(ListVpcsRequest(page: PageRequest(limit: 1000)))
                await client.close()
                #expect(stored.totalCount < 1000)
                let missing = (acked.created[tenant] ?? []).subtracting(stored.items.map(\.id))
                #expect(missing.isEmpty, "\(tenant): \(missing.count) acknowledged creates missing")
            }
        }
    }

    /// Creates VPCs until told to stop, recording what was acknowledged and what failed.
    private static func write(_ client: VPCEPClient, tenant: String, writer: Int, name: String, into state: Locked<Acknowledged>) async {
        for index in 0... {
            let (stop, startedAfterKill) = state.value.withLock { ($0.stop, $0.killed) }
            if stop { return }
            do throws(VPCEPError) {
                let vpc = try await client.createVpc(CreateVpcRequest(name: "\(name)-\(index)", cidr: "10.\(index % 250).0.0/16"))
                state.value.withLock {
                    $0.created[tenant, default: []].insert(vpc.id)
                    $0.count += 1
                    if startedAfterKill {
                        $0.afterKill += 1
                        $0.writersCarryingOn.insert(writer)
                    }
                }
            } catch {
                state.value.withLock { $0.failures.append(error) }
            }
        }
    }

    /// nil when the call succeeded, else its error.
    private static func outcome<T>(_ call: () async throws(VPCEPError) -> T) async -> VPCEPError? {
        do throws(VPCEPError) {
            _ = try await call()
            return nil
        } catch {
            return error
        }
    }
}

/// PostgreSQL stopped under load and started again, on a cluster of the test's own (the shared
/// one serves other tests in parallel).
@Suite(
    "three replicas through a PostgreSQL restart",
    .enabled(if: OwnPostgresCluster.binaries != nil, "VPCEP_TEST_POSTGRES_BIN is unset: scripts/test.sh sets it"),
    .timeLimit(.minutes(3)))
struct PostgresRestartEndToEndTests {
    /// How long PostgreSQL stays down: longer than the 5 s a call waits for a connection.
    static let downtime: Duration = .seconds(10)

    struct Calls: Sendable {
        var phase = Phase.up
        /// By the phase in which each call began.
        var successes: [Phase: Int] = [:]
        var failures: [Phase: [VPCEPError]] = [:]
        /// Calls that began and ended while PostgreSQL was down.
        var succeededWhileDown = 0
        var failedWhileDown = 0
        var stop = false
    }

    enum Phase: Sendable, Hashable { case up, stopping, down, starting, restarted }

    @Test("calls fail UNAVAILABLE while PostgreSQL is down and succeed after it is back, no replica restarted")
    func postgresStopsAndStarts() async throws {
        let cluster = try await OwnPostgresCluster.create()
        do {
            let store = try postgresStoreArguments(url: cluster.url, password: "unused")
            try await withReplicas(3, store: store) { servers in
                let clients = try servers.map { try $0.client("alice") }
                defer { for client in clients { Task { await client.close() } } }
                // A service every replica reads from its cache before and after: the read cache's head
                // query has a connection of its own, which must come back too.
                let network = try await Network.make(clients[0])
                let service = try await clients[0].createEndpointService(network.serviceRequest(name: "cached"))
                for client in clients { _ = try await client.getEndpointService(GetEndpointServiceRequest(id: service.id)) }
                let calls = Locked(Calls())
                let callers = clients.enumerated().flatMap { number, client in
                    (0..<4).map { caller in Task { await Self.call(client, name: "c\(number)-\(caller)", into: calls) } }
                }
                while calls.value.withLock({ $0.successes[.up, default: 0] }) < 50 { try await Task.sleep(for: .milliseconds(10)) }

                print("postgresStopsAndStarts: stopping PostgreSQL")
                calls.value.withLock { $0.phase = .stopping }
                try await cluster.stop()
                calls.value.withLock { $0.phase = .down }
                try await Task.sleep(for: Self.downtime)
                print("postgresStopsAndStarts: starting PostgreSQL")
                calls.value.withLock { $0.phase = .starting }
                try await cluster.start()
                print("postgresStopsAndStarts: PostgreSQL is back")
                calls.value.withLock { $0.phase = .restarted }
                // The pool reconnects with backoff: wait for each replica's success, however long
                // it takes (the suite's time limit bounds it).
                let restarted = ContinuousClock.now
                for (number, client) in clients.enumerated() {
                    while (try? await client.createVpc(CreateVpcRequest(name: "back", cidr: "10.201.0.0/16"))) == nil {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    print("postgresStopsAndStarts: replica \(number) serves again \(ContinuousClock.now - restarted) after the restart")
                }
                for client in clients {
                    // At most the first read after the outage may find the head's connection broken.
                    _ = try? await client.getEndpointService(GetEndpointServiceRequest(id: service.id))
                    for _ in 0..<5 {
                        let read = try await client.getEndpointService(GetEndpointServiceRequest(id: service.id))
                        #expect(read.id == service.id)
                    }
                }
                calls.value.withLock { $0.stop = true }
                for caller in callers { await caller.value }

                let seen = calls.value.withLock { $0 }
                print("postgresStopsAndStarts: successes \(seen.successes), failures \(seen.failures.mapValues(\.count))")
                #expect(seen.succeededWhileDown == 0, "calls succeeded while PostgreSQL was down")
                #expect(seen.failedWhileDown > 0, "no call failed while PostgreSQL was down")
                for error in seen.failures.values.joined() {
                    #expect(error.code == .unavailable, "\(error)")
                }
                // The same processes serve every call after the restart.
                for client in clients {
                    _ = try await client.createVpc(CreateVpcRequest(name: "after", cidr: "10.200.0.0/16"))
                }
            }
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    /// Creates VPCs until told to stop, counting outcomes by the phase in which each call began.
    private static func call(_ client: VPCEPClient, name: String, into calls: Locked<Calls>) async {
        for index in 0... {
            let (stop, phase) = calls.value.withLock { ($0.stop, $0.phase) }
            if stop { return }
            do throws(VPCEPError) {
                _ = try await client.createVpc(CreateVpcRequest(name: "\(name)-\(index)", cidr: "10.\(index % 250).0.0/16"))
                calls.value.withLock {
                    $0.successes[phase, default: 0] += 1
                    if phase == .down && $0.phase == .down { $0.succeededWhileDown += 1 }
                }
            } catch {
                calls.value.withLock {
                    $0.failures[phase, default: []].append(error)
                    if phase == .down && $0.phase == .down { $0.failedWhileDown += 1 }
                }
                // Not a busy loop while PostgreSQL is down.
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// A mutex that escaping tasks can share.
final class Locked<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}
