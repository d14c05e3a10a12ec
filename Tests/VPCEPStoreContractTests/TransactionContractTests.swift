import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// `RegistryStore.transaction` and `read`: atomic, serializable, rolled back on a throw, not run when
/// cancelled before it begins; store failures reach callers as the registry's errors.
@Suite("Store contract: transactions")
struct TransactionContractTests {
    @Test(arguments: StoreKind.underTest)
    func aThrowingTransactionIsRolledBack(_ kind: StoreKind) async throws {
        struct Boom: Error {}
        try await withRegistry(kind) { registry, store in
            let vpc = vpc("vpc-rolled-back")
            await #expect(throws: Boom.self) {
                try await store.transaction { tx in
                    try await tx.insertVPC(vpc)
                    #expect(try await tx.vpc(id: vpc.id, visibleTo: .anyOwner(in: "r1")) == vpc)  // visible inside its own transaction
                    throw Boom()
                }
            }
            #expect(try await store.read { try await $0.vpc(id: vpc.id, visibleTo: .anyOwner(in: "r1")) } == nil)
            try await store.transaction { tx in try await tx.insertVPC(vpc) }
            #expect(try await store.read { try await $0.vpc(id: vpc.id, visibleTo: .anyOwner(in: "r1")) } == vpc)
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).items == [vpc])
        }
    }

    @Test(arguments: StoreKind.underTest)
    func concurrentTransactionsCommitIndependently(_ kind: StoreKind) async throws {
        struct Boom: Error {}
        try await withStore(kind) { store, _ in
            let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        do {
                            try await store.transaction { tx in
                                try await tx.insertVPC(vpc("vpc-\(i)", at: Double(i)))
                                if i % 3 == 0 { throw Boom() }
                            }
                            return (i, true)
                        } catch {
                            return (i, false)
                        }
                    }
                }
                var outcomes: [Int: Bool] = [:]
                for await (i, ok) in group { outcomes[i] = ok }
                return outcomes
            }
            for i in 0..<200 {
                #expect(outcomes[i] == (i % 3 != 0))
                let stored = try await store.read { try await $0.vpc(id: "vpc-\(i)", visibleTo: .anyOwner(in: "r1")) }
                #expect(stored == (i % 3 == 0 ? nil : vpc("vpc-\(i)", at: Double(i))))
            }
        }
    }

    @Test(arguments: StoreKind.underTest)
    func failedMutationsChangeNothing(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let network = try await makeNetwork(registry, tenantA)
            let other = try await makeNetwork(registry, tenantB)
            _ = try await registry.createEndpointService(tenantA, spec(network))
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 2)
            }
            _ = try await registry.createEndpointService(tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1)]))
            let before = try await snapshot(registry)

            let failures: [() async throws -> Void] = [
                { _ = try await registry.createEndpointService(tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 2)])) },
                { _ = try await registry.createEndpointService(tenantB, spec(other, ports: [PortMapping(terminalPort: 80, servicePort: 8080), PortMapping(terminalPort: 81, servicePort: 70000)])) },
                { _ = try await registry.createSubnet(tenantA, vpcID: network.vpc.id, name: "s", cidr: "10.0.1.0/25") },
                { _ = try await registry.createSubnet(tenantA, vpcID: network.vpc.id, name: "s", cidr: "10.9.0.0/24") },
                {
                    _ = try await registry.createBackend(
                        tenantA, kind: .vm, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "b",
                        ip: network.loadBalancer.ip, ingressCIDRs: [])
                },
                { _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.1/16") },
                { _ = try await registry.createVPC(tenantAInR2, name: "", cidr: "10.0.0.0/16") },
            ]
            for failure in failures {
                do {
                    try await failure()
                    Issue.record("a mutation expected to fail succeeded")
                } catch let error as RegistryError {
                    #expect(error.code != .internalError, "\(error.debugDescription)")
                }
            }
            #expect(try await snapshot(registry) == before)
        }
    }

    /// The registry's check-then-write rules (a quota: count, then insert below the limit) hold under
    /// concurrency: transactions that each read the count and insert never together pass the limit.
    /// On PostgreSQL the writers are spread over two stores on one database, as replicas are.
    @Test(arguments: StoreKind.underTest)
    func concurrentCountThenInsertNeverPassesALimit(_ kind: StoreKind) async throws {
        try await withStore(kind) { first, database in
            let second = kind.sharesDatabase ? try await database.open() : first
            let limit = 5
            let refusals = Counter()
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<24 {
                    let store = i % 2 == 0 ? first : second
                    group.addTask {
                        do {
                            try await store.transaction { tx in
                                let used = try await tx.listVPCs(listQuery(owner: "tenant-a", limit: 1)).totalCount
                                guard used < limit else { return }
                                try await tx.insertVPC(vpc("vpc-\(i)", at: Double(i)))
                            }
                        } catch let error as StoreError {
                            // Conflicts beyond the store's retries are reported, never committed.
                            #expect(error.code == .conflict, "\(error)")
                            refusals.increment()
                        } catch {
                            Issue.record("unexpected \(error)")
                        }
                    }
                }
            }
            let stored = try await first.read { try await $0.listVPCs(listQuery(owner: "tenant-a")) }
            #expect(stored.totalCount <= limit)
            #expect(stored.items.count == stored.totalCount)
            #expect(stored.totalCount >= 1)
        }
    }

    /// A transaction whose task is cancelled before it begins is not run at all.
    @Test(arguments: StoreKind.underTest)
    func aTransactionCancelledBeforeItBeginsIsNotRun(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let ran = Counter()
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                try await store.transaction { tx in
                    ran.increment()
                    try await tx.insertVPC(vpc("vpc-cancelled"))
                }
            }
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(ran.count == 0)
            #expect(try await store.read { try await $0.vpc(id: "vpc-cancelled", visibleTo: .anyOwner(in: "r1")) } == nil)
            // And the store goes on working.
            try await store.transaction { tx in try await tx.insertVPC(vpc("vpc-after")) }
            #expect(try await store.read { try await $0.vpc(id: "vpc-after", visibleTo: .anyOwner(in: "r1")) } != nil)
        }
    }

    /// Cancelled while its body runs, a transaction is rolled back or committed, never left open.
    @Test(arguments: StoreKind.underTest)
    func cancellingARunningTransactionLeavesNoneOpen(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let started = AsyncStream<Void>.makeStream()
            let task = Task {
                try await store.transaction { tx in
                    try await tx.insertVPC(vpc("vpc-running"))
                    started.continuation.yield()
                    // Waits to be cancelled, then fails the body.
                    try await Task.sleep(for: .seconds(60))
                }
            }
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(try await store.read { try await $0.vpc(id: "vpc-running", visibleTo: .anyOwner(in: "r1")) } == nil)
            // Every connection is usable: as many transactions as the store has connections go through.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    group.addTask { try await store.transaction { tx in try await tx.insertVPC(vpc("vpc-\(i)")) } }
                }
                try await group.waitForAll()
            }
            #expect(try await store.read { try await $0.listVPCs(listQuery(limit: 1)) }.totalCount == 20)
        }
    }

    @Test(arguments: StoreKind.underTest)
    func storeFailuresBecomeRegistryErrors(_ kind: StoreKind) async throws {
        // A duplicate id is a store conflict: retryable ABORTED, and nothing is written.
        try await withRegistry(kind, makeID: { "same-id" }) { registry, _ in
            let first = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            await expectError(.aborted, "CONCURRENT_MODIFICATION", field: nil) {
                try await registry.createVPC(tenantA, name: "w", cidr: "10.1.0.0/16")
            }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).items == [first])
        }
        // A closed store is unavailable.
        try await withStore(kind) { store, _ in
            let registry = Registry(store: store, regions: servedRegions)
            try await store.closeStore()
            try await store.closeStore()  // idempotent
            await expectError(.unavailable, "STORE_UNAVAILABLE", field: nil) {
                try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            }
            await expectError(.unavailable, "STORE_UNAVAILABLE", field: nil) {
                try await registry.listVPCs(tenantA, page: PageRequest())
            }
        }
    }

    /// What one store commits, a store opened later on the same database reads (a restart; for
    /// PostgreSQL also another replica).
    @Test(arguments: StoreKind.underTest)
    func committedDataOutlivesTheStore(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, database in
            let registry = Registry(store: store, regions: servedRegions, clock: { Date(timeIntervalSince1970: 1_700_000_000.123_456) })
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.tags = [Tag(key: "k", value: "v")]
            let service = try await registry.createEndpointService(tenantA, request)
            // Sub-millisecond clock readings are truncated to what the store keeps.
            #expect(service.createdAt == Date(timeIntervalSince1970: 1_700_000_000.123))
            let before = try await snapshot(registry)
            try await store.closeStore()

            let reopened = try await database.open()
            let again = Registry(store: reopened, regions: servedRegions)
            #expect(try await snapshot(again) == before)
            #expect(try await again.getEndpointService(tenantA, id: nil, serviceName: service.serviceName) == service)
        }
    }
}

/// The registry's own rules on two stores sharing one database (replicas; on SQLite, one store).
@Suite("Store contract: registry rules across replicas")
struct ReplicaRuleContractTests {
    /// Services created at once through four registries never pass the owner's quota, and each
    /// creation either succeeds or is refused as over quota or as a conflict to retry.
    @Test(arguments: StoreKind.underTest)
    func aQuotaIsNeverExceededAcrossReplicas(_ kind: StoreKind) async throws {
        try await withStore(kind) { first, database in
            var stores: [any RegistryStore] = [first]
            if kind.sharesDatabase {
                for _ in 0..<3 { stores.append(try await database.open()) }
            }
            let registries = stores.map { Registry(store: $0, regions: servedRegions) }
            let network = try await makeNetwork(registries[0], tenantA)
            try await first.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 3)
            }
            let created = Counter()
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<24 {
                    let registry = registries[i % registries.count]
                    group.addTask {
                        do {
                            _ = try await registry.createEndpointService(
                                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 9000 + i)]))
                            created.increment()
                        } catch let error as RegistryError {
                            #expect(error.code == .resourceExhausted || error.code == .aborted, "\(error.debugDescription)")
                        } catch {
                            Issue.record("unexpected \(error)")
                        }
                    }
                }
            }
            let stored = try await first.read { try await $0.countEndpointServices(ownerID: "tenant-a", region: "r1") }
            #expect(stored == created.count)
            #expect(stored <= 3)
            #expect(stored >= 1)
        }
    }
}
