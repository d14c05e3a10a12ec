import Foundation
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

private struct Refused: Error {}

private let anyone = EventViewer(region: "r1", ownerID: "operator:test", isOperator: true)

private func event(_ name: String) -> ChangeEvent {
    let vpc = VPC(
        id: name, name: name, cidr: "10.0.0.0/16", region: "r1", ownerID: "tenant-a",
        createdAt: Date(timeIntervalSince1970: 1_700_000_000), updatedAt: Date(timeIntervalSince1970: 1_700_000_000))
    return ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
}

private func event(_ name: String, at seconds: Double) -> ChangeEvent {
    var event = event(name)
    event.committedAt = Date(timeIntervalSince1970: seconds)
    return event
}

private func storedIDs(_ store: SQLiteRegistryStore) async throws -> [(UInt64, String)] {
    try await store.read { try await $0.listEvents(EventQuery(viewer: anyone, limit: 1000)) }.items.map { ($0.seq, $0.resourceID) }
}

/// The change log's numbering in the SQLite store (docs/DOMAIN.md, "Change log").
@Suite("SQLite change log")
struct ChangeLogStoreTests {
    /// Retention removes a prefix only: an old event after a newer one (another server's clock) waits
    /// for the newer one, so every event after `logCompacted()` is still there.
    @Test func compactionRemovesAPrefixAndRemembersIt() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
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
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test func aRolledBackTransactionLeavesNoEventAndNoHole() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
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
            try await store.close()
            let reopened = try await SQLiteRegistryStore.open(directory: directory)
            let after = try await reopened.transaction { tx in try await tx.appendEvents([event("d")]) }
            #expect(after.map(\.seq) == [4])
            #expect(try await storedIDs(reopened).map(\.1) == ["a", "b", "c", "d"])
            try await reopened.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Concurrent transactions share commits (each in its own savepoint); the ones that fail after
    /// appending give their numbers back, so what commits is numbered 1...n without a hole.
    @Test func failedMembersOfAGroupCommitLeaveNoHole() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
            let committed = await withTaskGroup(of: String?.self) { group in
                for i in 0..<60 {
                    group.addTask {
                        do {
                            return try await store.transaction { tx in
                                _ = try await tx.appendEvents([event("e\(i)")])
                                if i % 3 == 0 { throw Refused() }
                                return "e\(i)"
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
            #expect(committed.count == 40)
            let stored = try await storedIDs(store)
            #expect(stored.map(\.0) == Array(1...40))
            #expect(Set(stored.map(\.1)) == Set(committed))
            #expect(try await store.read { try await $0.logHead() } == 40)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// A group commit holds its members' events until it commits; a member that reads the log sees
    /// its own and the earlier members' events, and when it then fails, only its own are given back.
    @Test func aMemberThatReadsTheLogAndFailsGivesBackOnlyItsOwnEvents() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
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
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }
}
