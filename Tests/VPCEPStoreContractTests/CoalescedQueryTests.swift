import Synchronization
import Testing
@testable import VPCEPStorePostgres

/// The rounds that give reads the change log's head (the read cache's fence): every caller gets the
/// value of a query that began after it called, however many callers share a round.
@Suite("Coalesced query rounds")
struct CoalescedQueryTests {
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Callers are numbered as they arrive; a round's query answers how many had arrived when it began.
    @Test func everyCallerGetsARoundThatBeganAfterItCalled() async throws {
        let arrivals = Counter()
        let rounds = CoalescedQuery<Int>()
        let query: @Sendable () async throws -> Int = {
            let seen = arrivals.value.load(ordering: .sequentiallyConsistent)
            // Lets more callers arrive while this round runs, so that later rounds serve many.
            await Task.yield()
            return seen
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<400 {
                group.addTask {
                    let mine = arrivals.value.add(1, ordering: .sequentiallyConsistent).newValue
                    let seen = try await rounds.next(query)
                    #expect(seen >= mine, "caller \(mine) was given a round that began after \(seen) callers")
                }
            }
            try await group.waitForAll()
        }
    }

    /// A failed query fails every caller of its round, and the next round runs again.
    @Test func aFailedRoundFailsItsCallersAndTheNextRuns() async throws {
        struct Failed: Error {}
        let rounds = CoalescedQuery<Int>()
        await #expect(throws: Failed.self) { try await rounds.next { throw Failed() } }
        #expect(try await rounds.next { 7 } == 7)
    }
}
