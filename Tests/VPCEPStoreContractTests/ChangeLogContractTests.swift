import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

private struct Refused: Error {}

private let anyone = EventViewer(region: "r1", ownerID: "operator:test", isOperator: true)

private func event(_ name: String) -> ChangeEvent {
    let vpc = vpc(name, at: 1_700_000_000)
    return ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
}

private func event(_ name: String, at seconds: Double) -> ChangeEvent {
    var event = event(name)
    event.committedAt = Date(timeIntervalSince1970: seconds)
    return event
}

private func storedIDs(_ store: any RegistryStore) async throws -> [(UInt64, String)] {
    try await store.read { try await $0.listEvents(EventQuery(viewer: anyone, limit: 10_000)) }.items.map { ($0.seq, $0.resourceID) }
}

/// The change log's numbering (docs/DOMAIN.md, "Change log"; `RegistryTransaction.appendEvents`).
@Suite("Store contract: change log")
struct ChangeLogContractTests {
    /// Retention removes a prefix only: an old event after a newer one (another server's clock) waits
    /// for the newer one, so every event after `logCompacted()` is still there.
    @Test(arguments: StoreKind.underTest)
    func compactionRemovesAPrefixAndRemembersIt(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.read { try await $0.logCompacted() } == 0)
            _ = try await store.transaction { tx in
                try await tx.appendEvents([
                    event("a", at: 100), event("b", at: 200), event("c", at: 900), event("d", at: 150), event("e", at: 950),
                ])
            }
            let removed = try await store.transaction { tx in
                try await tx.compactEvents(committedBefore: Date(timeIntervalSince1970: 500), limit: 10)
            }
            #expect(removed == 2)
            #expect(try await storedIDs(store).map(\.1) == ["c", "d", "e"])
            #expect(try await store.read { try await $0.logCompacted() } == 2)
            // A limit bounds one batch; the mark never moves back.
            let batch = try await store.transaction { tx in
                try await tx.compactEvents(committedBefore: Date(timeIntervalSince1970: 1000), limit: 1)
            }
            #expect(batch == 1)
            #expect(try await store.read { try await $0.logCompacted() } == 3)
            #expect(try await store.transaction { tx in
                try await tx.compactEvents(committedBefore: Date(timeIntervalSince1970: 0), limit: 10)
            } == 0)
            #expect(try await store.read { try await $0.logCompacted() } == 3)
            // A page read without its total does not count the rest.
            var uncounted = EventQuery(viewer: anyone, limit: 1)
            uncounted.countsTotal = false
            let query = uncounted
            let page = try await store.read { try await $0.listEvents(query) }
            #expect(page.items.map(\.resourceID) == ["d"] && page.totalCount == 1)
            #expect(try await store.read { try await $0.listEvents(EventQuery(viewer: anyone, limit: 1)) }.totalCount == 2)
        }
    }

    /// More events than one statement carries (PostgreSQL writes them in chunks), numbered in order.
    @Test(arguments: StoreKind.underTest)
    func oneTransactionAppendsManyEventsInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            _ = try await store.transaction { tx in try await tx.appendEvents([event("first")]) }
            let names = (0..<1_200).map { "e\($0)" }
            let numbered = try await store.transaction { tx in
                let numbered = try await tx.appendEvents(names.map(event))
                // The head a transaction reads covers its own events.
                #expect(try await tx.logHead() == 1_201)
                return numbered
            }
            #expect(numbered.map(\.seq) == Array(2...1_201))
            #expect(try await store.read { try await $0.logHead() } == 1_201)
            let stored = try await storedIDs(store)
            #expect(stored.map(\.0) == Array(1...1_201))
            #expect(stored.map(\.1) == ["first"] + names)
        }
    }

    @Test(arguments: StoreKind.underTest)
    func aRolledBackTransactionLeavesNoEventAndNoHole(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, database in
            let first = try await store.transaction { tx in try await tx.appendEvents([event("a"), event("b")]) }
            #expect(first.map(\.seq) == [1, 2])
            await #expect(throws: Refused.self) {
                try await store.transaction { tx in
                    let numbered = try await tx.appendEvents([event("refused")])
                    #expect(numbered.map(\.seq) == [3])
                    throw Refused()
                }
            }
            #expect(try await store.read { try await $0.logHead() } == 2)
            let next = try await store.transaction { tx in try await tx.appendEvents([event("c")]) }
            #expect(next.map(\.seq) == [3])
            let stored = try await storedIDs(store)
            #expect(stored.map(\.0) == [1, 2, 3])
            #expect(stored.map(\.1) == ["a", "b", "c"])
            // The numbering survives a restart.
            try await store.closeStore()
            let reopened = try await database.open()
            let after = try await reopened.transaction { tx in try await tx.appendEvents([event("d")]) }
            #expect(after.map(\.seq) == [4])
            #expect(try await storedIDs(reopened).map(\.1) == ["a", "b", "c", "d"])
        }
    }

    /// Concurrent writers (on PostgreSQL, on two stores sharing the database, as replicas do), some
    /// of which fail after appending: what commits is numbered 1...n without a hole, each writer's
    /// events are consecutive, and the numbers follow commit order (a reader never sees a number
    /// before every smaller one is visible).
    @Test(arguments: StoreKind.underTest)
    func concurrentWritersLeaveNoHoleAndCommitInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { first, database in
            let second = kind.sharesDatabase ? try await database.open() : first
            // A watcher polls the head and the log while writers commit: any snapshot shows a gapless prefix.
            let watching = Task {
                var snapshots = 0
                while !Task.isCancelled {
                    let head: UInt64
                    let events: [ChangeEvent]
                    do {
                        (head, events) = try await first.read { reader in
                            (try await reader.logHead(), try await reader.listEvents(EventQuery(viewer: anyone, limit: 10_000)).items)
                        }
                    } catch is CancellationError {
                        break
                    }
                    #expect(events.map(\.seq) == Array(stride(from: 1, through: head, by: 1)), "a snapshot with a hole")
                    snapshots += 1
                    await Task.yield()
                }
                return snapshots
            }
            let committed = await withTaskGroup(of: [ChangeEvent]?.self) { group in
                for i in 0..<60 {
                    let store = i % 2 == 0 ? first : second
                    group.addTask {
                        do {
                            return try await store.transaction { tx in
                                let numbered = try await tx.appendEvents([event("e\(i)a"), event("e\(i)b")])
                                if i % 3 == 0 { throw Refused() }
                                return numbered
                            }
                        } catch {
                            return nil
                        }
                    }
                }
                var all: [[ChangeEvent]] = []
                for await events in group { if let events { all.append(events) } }
                return all
            }
            watching.cancel()
            _ = try await watching.value
            #expect(committed.count == 40)
            let stored = try await storedIDs(first)
            #expect(stored.map(\.0) == Array(1...80))
            for events in committed {
                #expect(events[1].seq == events[0].seq + 1)
                #expect(stored.first { $0.0 == events[0].seq }?.1 == events[0].resourceID)
            }
            #expect(try await second.read { try await $0.logHead() } == 80)
        }
    }

    /// A transaction that reads the log sees its own and every earlier commit's events, and when it
    /// then fails, only its own are given back (SQLite's group commit holds its members' events until
    /// it commits, so a read inside a member writes them early and its rollback must hold them again).
    @Test(arguments: StoreKind.underTest)
    func aTransactionThatReadsTheLogAndFailsGivesBackOnlyItsOwnEvents(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let committed = await withTaskGroup(of: String?.self) { group in
                for i in 0..<60 {
                    group.addTask {
                        do {
                            return try await store.transaction { tx in
                                let numbered = try await tx.appendEvents([event("e\(i)")])
                                guard i % 4 == 0 else { return "e\(i)" }
                                let seen = try await tx.listEvents(EventQuery(viewer: anyone, ascending: true, limit: 1000))
                                #expect(seen.items.last?.resourceID == "e\(i)")
                                #expect(seen.items.map(\.seq) == Array(1...(numbered.first?.seq ?? 0)))
                                #expect(try await tx.logHead() == numbered.first?.seq)
                                throw Refused()
                            }
                        } catch {
                            return nil
                        }
                    }
                }
                var names: [String] = []
                for await name in group { if let name { names.append(name) } }
                return names
            }
            #expect(committed.count == 45)
            let stored = try await storedIDs(store)
            #expect(stored.map(\.0) == Array(1...45))
            #expect(Set(stored.map(\.1)) == Set(committed))
            #expect(try await store.read { try await $0.logHead() } == 45)
            // The next transaction numbers on from the stored head.
            let next = try await store.transaction { tx in try await tx.appendEvents([event("after")]) }
            #expect(next.map(\.seq) == [46])
        }
    }

    /// What a store hands the change feed from memory (`recentEvents`) is exactly what the feed would
    /// read back: every committed event after the sequence asked about, in order, none of a refused
    /// member's, equal field by field (times as the registry's clock makes them: whole milliseconds of
    /// today's dates, which a stored state's JSON carries as numbers). A store that does not hold them
    /// says so (nil) rather than answer from a partial view.
    @Test(arguments: StoreKind.underTest)
    func recentEventsAreTheCommittedEventsAsTheStoreReadsThem(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            // A fresh store's head, before any commit.
            #expect(store.recentHead == (kind.sharesDatabase ? nil : 0))
            @Sendable func event(_ index: Int, _ part: Int) -> ChangeEvent {
                // Milliseconds of late 2026 with every last digit, as `Registry.now()` makes them.
                let at = Date(timeIntervalSince1970: Double(1_764_583_200_000 + index * 7 + part) / 1000)
                let service = EndpointService(
                    id: "svc-\(index)-\(part)", serviceName: "r1.svc", name: "n\(index)", ownerID: "tenant-a", region: "r1",
                    vpcID: "vpc-1", serviceType: .interface, backendKind: .loadBalancer, backendID: "lb-1",
                    ports: [PortMapping(terminalPort: 80, servicePort: 8000 + index)], approvalEnabled: true,
                    clientIPMode: .close, description: "d \u{e9}\u{1F600} \"q\"", tags: [Tag(key: "env", value: "e\(part)")],
                    status: .available, connectionCount: index, createdAt: at, updatedAt: at, revision: UInt64(part + 1),
                    warnings: ["w"], clientIPNote: "")
                var previous = service
                previous.revision = UInt64(part)
                var made = ChangeEvent(
                    type: part == 0 ? .created : .updated, state: .endpointService(service),
                    previous: part == 0 ? nil : .endpointService(previous), actor: "tenant-a", committedAt: at)
                made.requestID = "req-\(index)"
                made.idempotencyKey = index % 2 == 0 ? "key-\(index)" : ""
                return made
            }
            _ = try await store.transaction { tx in try await tx.appendEvents([event(0, 0)]) }
            // Concurrent writers share batches; every third is refused after appending, so its numbers go back.
            await withTaskGroup(of: Void.self) { group in
                for index in 1...60 {
                    group.addTask {
                        _ = try? await store.transaction { tx in
                            _ = try await tx.appendEvents([event(index, 0), event(index, 1)])
                            if index % 3 == 0 { throw Refused() }
                        }
                    }
                }
            }
            let stored = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, limit: 10_000)) }.items
            #expect(stored.count == 1 + 40 * 2)
            guard let recent = store.recentEvents(after: 0, limit: 10_000) else {
                // Only a store that is its database's only writer may answer from memory.
                #expect(kind.sharesDatabase)
                return
            }
            #expect(!kind.sharesDatabase)
            #expect(recent == stored)
            #expect(store.recentHead == stored.last?.seq)
            #expect(store.recentEvents(after: 5, limit: 3) == Array(stored[5..<8]))
            #expect(store.recentEvents(after: UInt64(stored.count), limit: 10) == [])
            #expect(store.recentEvents(after: UInt64(stored.count) + 1, limit: 10) == nil)
        }
    }
}
