import Foundation
import Synchronization
import Testing
import VPCEPRegistry
@testable import VPCEPStorePostgres
import VPCEPTestSupport

/// The read lease's own rules, by the clock it is given.
@Suite("Read lease")
struct ReadLeaseTests {
    private let start = ContinuousClock.now

    @Test func aNewLeaseServesNothingUntilCaughtUp() {
        var lease = ReadLease(trusted: .seconds(1))
        #expect(!lease.serves(at: start))
        lease.caughtUp(askedAt: start)
        #expect(lease.serves(at: start + .milliseconds(999)))
        #expect(!lease.serves(at: start + .seconds(1)))
    }

    @Test func aRenewalAnsweredWhileTrustedExtendsFromWhenItWasAsked() {
        var lease = ReadLease(trusted: .seconds(1))
        lease.caughtUp(askedAt: start)
        let extended = lease.renewed(askedAt: start + .milliseconds(600), answeredAt: start + .milliseconds(900))
        #expect(extended)
        #expect(lease.serves(at: start + .milliseconds(1599)))
        #expect(!lease.serves(at: start + .milliseconds(1600)))
        // An older renewal answered late never shortens it.
        let late = lease.renewed(askedAt: start + .milliseconds(100), answeredAt: start + .milliseconds(1000))
        #expect(late)
        #expect(lease.serves(at: start + .milliseconds(1599)))
    }

    @Test func aRenewalAnsweredAfterTheLeaseRanOutLeavesItUntrusted() {
        var lease = ReadLease(trusted: .seconds(1))
        lease.caughtUp(askedAt: start)
        // Writers may have stopped waiting for this server meanwhile: it must catch up first.
        let lapsed = !lease.renewed(askedAt: start + .milliseconds(900), answeredAt: start + .seconds(1))
        #expect(lapsed)
        #expect(!lease.serves(at: start + .milliseconds(1001)))
        lease.caughtUp(askedAt: start + .milliseconds(900))
        #expect(lease.serves(at: start + .milliseconds(1001)))
        lease.lapse()
        #expect(!lease.serves(at: start + .milliseconds(1001)))
    }
}

/// Read leases on a real PostgreSQL: reads from memory while one is held, and writers that wait for
/// every live lease to have seen their commit (docs/DOMAIN.md, "Read cache across servers").
@Suite(
    "PostgreSQL read leases",
    .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"),
    .timeLimit(.minutes(2)))
struct PostgresReadLeaseTests {
    private static func event(_ name: String) -> ChangeEvent {
        let vpc = vpc(name, at: 1_700_000_000)
        return ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
    }

    private static func open(_ database: TestDatabase, leases: Bool) async throws -> PostgresRegistryStore {
        var configuration = try TestDatabase.postgresConfiguration(schema: database.location)
        configuration.readLeases = leases
        return try await PostgresRegistryStore.open(configuration)
    }

    private static func waitForLease(_ store: PostgresRegistryStore) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !store.holdsReadLease() {
            try #require(ContinuousClock.now < deadline, "no read lease within 30 s")
            // A server takes a lease once it is asked for cached reads.
            _ = try await store.commitChanges(since: 0)
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func aServerHoldingItsLeaseAnswersTheVersionFromMemory() async throws {
        try await withStore(.postgres) { _, database in
            let leased = try await Self.open(database, leases: true)
            let fenced = try await Self.open(database, leases: false)
            defer { Task { await leased.close(); await fenced.close() } }
            try await Self.waitForLease(leased)
            let fencedBefore = fenced.headRounds.load(ordering: .relaxed)
            var fromMemory = 0
            for _ in 0..<200 {
                // Trusted for long enough that it cannot run out during the call (on a loaded machine the
                // keeper may renew late, and then the reads wait for rounds, as they must).
                let trusted = leased.holdsReadLease(for: .milliseconds(500))
                let before = leased.readsAfterRounds.load(ordering: .relaxed)
                _ = try await leased.commitChanges(since: 0)
                if trusted {
                    fromMemory += 1
                    #expect(leased.readsAfterRounds.load(ordering: .relaxed) == before, "a read waited for a round under a lease")
                }
                _ = try await fenced.commitChanges(since: 0)
            }
            #expect(fromMemory > 0)
            // Without a lease every call waits for a round of its own.
            let rounds = fenced.headRounds.load(ordering: .relaxed) - fencedBefore
            #expect(rounds == 200)
        }
    }

    /// A server that holds a lease but does not move (a stand-in row: as a paused server's would look).
    private static func ghost(_ database: TestDatabase, for seconds: Int, seen: Int64 = 0) async throws {
        try await postgresAdmin([
            """
            INSERT INTO "\(database.location)".replica_leases (replica_id, expires_at, seen_seq)
            VALUES ('ghost', clock_timestamp() + interval '\(seconds) seconds', \(seen))
            ON CONFLICT (replica_id) DO UPDATE SET expires_at = excluded.expires_at, seen_seq = excluded.seen_seq
            """,
        ])
    }

    @Test func aWriteIsAnsweredOnlyOnceEveryLiveLeaseHasSeenIt() async throws {
        try await withStore(.postgres) { store, database in
            try await Self.ghost(database, for: 600)
            let finished = Atomic<Bool>(false)
            let write = Task {
                _ = try await store.transaction { tx in try await tx.appendEvents([Self.event("vpc-held")]) }
                finished.store(true, ordering: .sequentiallyConsistent)
            }
            try await Task.sleep(for: .milliseconds(500))
            let early = finished.load(ordering: .sequentiallyConsistent)
            #expect(!early, "answered before the live lease saw the commit")
            // The ghost reports a head past the commit, as a server does once it has read the log.
            try await postgresAdmin([
                "UPDATE \"\(database.location)\".replica_leases SET seen_seq = seen_seq + 1000000 WHERE replica_id = 'ghost'",
                "NOTIFY vpcep_seen",
            ])
            try await write.value
        }
    }

    @Test func aWriteWaitsForALeaseThatDoesNotMoveUntilItExpires() async throws {
        try await withStore(.postgres) { store, database in
            let started = ContinuousClock.now
            try await Self.ghost(database, for: 2)
            _ = try await store.transaction { tx in try await tx.appendEvents([Self.event("vpc-late")]) }
            // Not a speed check: answering sooner would break the ghost's promise to its readers.
            #expect(ContinuousClock.now - started >= .milliseconds(1900))
            // An expired lease is not waited for (the ghost never moves: a wait would last to the time limit).
            _ = try await store.transaction { tx in try await tx.appendEvents([Self.event("vpc-free")]) }
        }
    }
}
