import Foundation
import Synchronization
import Testing
import VPCEPRegistry
@testable import VPCEPStorePostgres

/// Transactions that run together (a group-committed batch) commit or fail each on its own, however
/// each fails: on PostgreSQL their inserts are held back and sent together, and a failure that shows
/// only then, or after a member's own inserts were sent, must still be that member's alone.
@Suite("Store contract: a batch's members fail alone")
struct BatchFailureContractTests {
    private struct Refused: Error {}

    private enum Way: CaseIterable {
        /// Inserts a VPC and its event.
        case commits
        /// Then inserts a row whose id is taken: the unique index refuses it.
        case duplicate
        /// Then reads its own row back (so its inserts reach the database first), then throws.
        case readsThenThrows
        /// Then throws, having read nothing.
        case throwsAtOnce
        /// Then inserts a subnet of that VPC with nothing read in between (a foreign key to a row
        /// inserted in the same transaction).
        case insertsAChild
        /// Sets a quota first (a statement that is no plain insert, sent before any of its inserts),
        /// then inserts and throws: the quota must go with the rest.
        case writesThenThrows
    }

    /// Rounds of concurrent transactions, each round mixing the ways that commit with one way to fail
    /// (each failure takes its own path through a batch), then all of them at once. On PostgreSQL,
    /// whether a batch of the round may have to run again with a savepoint per member: never for a
    /// member that fails before its inserts were sent, nor for a row whose foreign key names a row
    /// inserted with it.
    private static let rounds: [(ways: [Way], mayRunAgain: Bool)] = [
        ([.commits, .throwsAtOnce], false), ([.commits, .duplicate], true), ([.commits, .readsThenThrows], true),
        ([.commits, .insertsAChild], false), ([.commits, .writesThenThrows], true), (Way.allCases, true),
    ]

    @Test(arguments: StoreKind.underTest)
    func everyMemberCommitsOrFailsOnItsOwn(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let taken = vpc("vpc-taken")
            try await Self.commit(taken, store)
            var committed: Set<String> = [taken.id]
            var parents: Set<String> = []
            for (round, (ways, mayRunAgain)) in Self.rounds.enumerated() {
                let count = 60
                let runAgainBefore = (store as? PostgresRegistryStore)?.batchesRunAgain.load(ordering: .relaxed)
                let outcomes = await withTaskGroup(of: (Int, (any Error)?).self) { group in
                    for i in 0..<count {
                        let own = vpc("vpc-\(round)-\(i)", at: Double(round * count + i))
                        group.addTask {
                            do {
                                try await store.transaction { tx in try await Self.run(ways[i % ways.count], own, tx, taken: taken) }
                                return (i, nil)
                            } catch {
                                return (i, error)
                            }
                        }
                    }
                    var outcomes: [Int: (any Error)?] = [:]
                    for await (i, error) in group { outcomes[i] = error }
                    return outcomes
                }
                for i in 0..<count {
                    let error = outcomes[i] ?? nil
                    let id = "vpc-\(round)-\(i)"
                    switch ways[i % ways.count] {
                    case .commits:
                        #expect(error == nil, "\(id): \(String(describing: error))")
                        committed.insert(id)
                    case .insertsAChild:
                        #expect(error == nil, "\(id): \(String(describing: error))")
                        committed.insert(id)
                        parents.insert(id)
                    case .duplicate:
                        #expect((error as? StoreError)?.code == .conflict, "\(id): \(String(describing: error))")
                    case .readsThenThrows, .throwsAtOnce, .writesThenThrows:
                        #expect(error is Refused, "\(id): \(String(describing: error))")
                    }
                    if ways[i % ways.count] == .writesThenThrows {
                        let quota = try await store.read { try await $0.quotaLimit(ownerID: "owner-" + id, region: "r1", type: .endpointService) }
                        #expect(quota == nil, "\(id): a refused transaction's quota was stored")
                    }
                }
                if let runAgainBefore, let postgres = store as? PostgresRegistryStore, !mayRunAgain {
                    #expect(postgres.batchesRunAgain.load(ordering: .relaxed) == runAgainBefore, "round \(ways)")
                }
            }
            let stored = try await store.read { try await $0.listVPCs(listQuery(limit: 1_000)) }.items
            #expect(Set(stored.map(\.id)) == committed)
            #expect(stored.count == committed.count)
            let subnets = try await store.read { try await $0.listSubnets(listQuery(limit: 1_000), vpcID: nil) }.items
            #expect(Set(subnets.map(\.vpcID)) == parents)
            // The committed transactions' events and no other, numbered without a gap.
            let events = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, limit: 10_000)) }.items
            #expect(events.map(\.seq) == Array(1...UInt64(committed.count)))
            #expect(Set(events.map(\.resourceID)) == committed)
            #expect(try await store.read { try await $0.logHead() } == UInt64(committed.count))
        }
    }

    /// Transactions with more rows than one statement may carry (PostgreSQL takes 65,535 values a
    /// statement; 4,000 events are 68,000) commit whole among others, on PostgreSQL without a second
    /// run; one that throws after as many leaves none of them.
    @Test(arguments: StoreKind.underTest)
    func transactionsOfManyRowsCommitOrFailWhole(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let many = 4_000
            let postgres = store as? PostgresRegistryStore
            let runAgainBefore = postgres?.batchesRunAgain.load(ordering: .relaxed)
            // Two of twelve carry many events; none fails.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<12 {
                    group.addTask {
                        let own = vpc("vpc-\(i)", at: Double(i))
                        try await store.transaction { tx in
                            try await tx.insertVPC(own)
                            _ = try await tx.appendEvents(Array(repeating: Self.created(own), count: i % 6 == 0 ? many : 1))
                        }
                    }
                }
                try await group.waitForAll()
            }
            if let postgres { #expect(postgres.batchesRunAgain.load(ordering: .relaxed) == runAgainBefore) }
            // One of six carries many events and throws after them.
            await withTaskGroup(of: Void.self) { group in
                for i in 12..<18 {
                    group.addTask {
                        let own = vpc("vpc-\(i)", at: Double(i))
                        do {
                            try await store.transaction { tx in
                                try await tx.insertVPC(own)
                                _ = try await tx.appendEvents(Array(repeating: Self.created(own), count: i == 12 ? many : 1))
                                if i == 12 { throw Refused() }
                            }
                            #expect(i != 12)
                        } catch {
                            #expect(i == 12 && error is Refused, "\(i): \(error)")
                        }
                    }
                }
            }
            let committed = Set((0..<18).filter { $0 != 12 }.map { "vpc-\($0)" })
            let events = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, limit: 10_000)) }.items
            #expect(events.map(\.seq) == Array(1...UInt64(2 * many + 15)))
            #expect(Set(events.map(\.resourceID)) == committed)
            let stored = try await store.read { try await $0.listVPCs(listQuery(limit: 100)) }.items
            #expect(Set(stored.map(\.id)) == committed)
        }
    }

    /// A transaction that has the store to itself (nothing else in its batch: on SQLite it runs with no
    /// savepoint) writes, lets others queue behind it, then fails: nothing of it stays, and the queued
    /// transactions commit in a transaction of their own, their events following the log's head.
    @Test(arguments: StoreKind.underTest)
    func aLoneTransactionThatFailsWithOthersQueuedLeavesNothing(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await Self.commit(vpc("vpc-first"), store)
            let (wrote, wroteSignal) = AsyncStream.makeStream(of: Void.self)
            let (release, releaseSignal) = AsyncStream.makeStream(of: Void.self)
            let failing = Task {
                try await store.transaction { tx in
                    let own = vpc("vpc-failed", at: 2)
                    try await tx.insertVPC(own)
                    _ = try await tx.appendEvents([Self.created(own)])
                    try await tx.setQuotaLimit(ownerID: "owner-failed", region: "r1", type: .endpointService, limit: 3)
                    wroteSignal.yield()
                    // Finished, not yielded to: a body PostgreSQL's batch runs again does not wait twice.
                    for await _ in release {}
                    throw Refused()
                }
            }
            for await _ in wrote { break }
            // These queue behind the failing one (a store runs one write at a time, or in one batch).
            let queued = (0..<8).map { i in
                Task {
                    let own = vpc("vpc-queued-\(i)", at: Double(3 + i))
                    try await store.transaction { tx in
                        try await tx.insertVPC(own)
                        _ = try await tx.appendEvents([Self.created(own)])
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            releaseSignal.finish()
            await #expect(throws: Refused.self) { try await failing.value }
            for task in queued { try await task.value }
            let stored = try await store.read { try await $0.listVPCs(listQuery(limit: 100)) }.items
            #expect(Set(stored.map(\.id)) == Set(["vpc-first"] + (0..<8).map { "vpc-queued-\($0)" }))
            #expect(try await store.read { try await $0.quotaLimit(ownerID: "owner-failed", region: "r1", type: .endpointService) } == nil)
            let events = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, limit: 100)) }.items
            #expect(events.map(\.seq) == Array(1...9))
            #expect(!events.map(\.resourceID).contains("vpc-failed"))
            #expect(try await store.read { try await $0.logHead() } == 9)
        }
    }

    /// Commits `vpc` and its event alone.
    private static func commit(_ vpc: VPC, _ store: any RegistryStore) async throws {
        _ = try await store.transaction { tx in
            try await tx.insertVPC(vpc)
            return try await tx.appendEvents([created(vpc)])
        }
    }

    private static func created(_ vpc: VPC) -> ChangeEvent {
        ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
    }

    private static func run(_ way: Way, _ own: VPC, _ tx: any RegistryTransaction, taken: VPC) async throws {
        if way == .writesThenThrows {
            try await tx.setQuotaLimit(ownerID: "owner-" + own.id, region: "r1", type: .endpointService, limit: 7)
        }
        try await tx.insertVPC(own)
        _ = try await tx.appendEvents([created(own)])
        switch way {
        case .commits:
            break
        case .duplicate:
            try await tx.insertVPC(taken)
        case .readsThenThrows:
            #expect(try await tx.vpc(id: own.id, visibleTo: .anyOwner(in: "r1")) == own)
            throw Refused()
        case .throwsAtOnce, .writesThenThrows:
            throw Refused()
        case .insertsAChild:
            try await tx.insertSubnet(
                Subnet(
                    id: "subnet-" + own.id, vpcID: own.id, name: "s", cidr: "10.0.1.0/24", region: "r1",
                    ownerID: "tenant-a", createdAt: own.createdAt, updatedAt: own.createdAt))
        }
    }
}
