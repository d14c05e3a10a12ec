import Foundation
import Testing
import VPCEPRegistry

/// What `RecentEvents` vouches for: the committed events after a sequence, only while it holds every
/// one of them without a gap.
@Suite("Recent events")
struct RecentEventsTests {
    @Test func nothingIsVouchedForBeforeTheFirstCommitOrAfterForget() {
        let recent = RecentEvents()
        #expect(recent.events(after: 0, limit: 10) == nil)
        recent.committed(vpcCreatedEvents(1...3))
        #expect(recent.events(after: 0, limit: 10) == vpcCreatedEvents(1...3))
        recent.forget()
        #expect(recent.events(after: 0, limit: 10) == nil)
        #expect(recent.events(after: 3, limit: 10) == nil)
    }

    @Test func answersOnlyFromWhereItHoldsEveryEvent() {
        let recent = RecentEvents()
        recent.committed(vpcCreatedEvents(5...7))
        recent.committed(vpcCreatedEvents(8...8))
        #expect(recent.events(after: 4, limit: 10) == vpcCreatedEvents(5...8))
        #expect(recent.events(after: 6, limit: 10) == vpcCreatedEvents(7...8))
        #expect(recent.events(after: 5, limit: 2) == vpcCreatedEvents(6...7))
        #expect(recent.events(after: 8, limit: 10) == [])
        // Before what it holds, or beyond the last commit it saw: not its to say.
        #expect(recent.events(after: 3, limit: 10) == nil)
        #expect(recent.events(after: 9, limit: 10) == nil)
    }

    @Test func theHeadIsTheSeedUntilTheFirstCommitThenTheLastCommittedAndNothingAfterForget() {
        let recent = RecentEvents()
        #expect(recent.head == nil)
        recent.seed(head: 4)
        #expect(recent.head == 4)
        #expect(recent.events(after: 4, limit: 10) == [])
        #expect(recent.events(after: 3, limit: 10) == nil)
        recent.committed(vpcCreatedEvents(5...6))
        #expect(recent.head == 6)
        #expect(recent.events(after: 4, limit: 10) == vpcCreatedEvents(5...6))
        // A seed after commits is ignored: the commits know better.
        recent.seed(head: 2)
        #expect(recent.head == 6)
        recent.forget()
        #expect(recent.head == nil)
        #expect(recent.events(after: 6, limit: 10) == nil)
        // Events that do not follow the seeded head start afresh, and vouch for their own last.
        let reseeded = RecentEvents()
        reseeded.seed(head: 4)
        reseeded.committed(vpcCreatedEvents(9...9))
        #expect(reseeded.head == 9)
        #expect(reseeded.events(after: 4, limit: 10) == nil)
    }

    @Test func aGapStartsAfresh() {
        let recent = RecentEvents()
        recent.committed(vpcCreatedEvents(1...2))
        recent.committed(vpcCreatedEvents(5...6))
        #expect(recent.events(after: 0, limit: 10) == nil)
        #expect(recent.events(after: 2, limit: 10) == nil)
        #expect(recent.events(after: 4, limit: 10) == vpcCreatedEvents(5...6))
    }

    @Test func keepsTheNewestUpToItsCapacity() {
        let recent = RecentEvents(capacity: 4)
        for seq in UInt64(1)...20 { recent.committed(vpcCreatedEvents(seq...seq)) }
        #expect(recent.events(after: 16, limit: 10) == vpcCreatedEvents(17...20))
        #expect(recent.events(after: 15, limit: 10) == nil)
        recent.committed(vpcCreatedEvents(21...30))
        #expect(recent.events(after: 26, limit: 10) == vpcCreatedEvents(27...30))
        #expect(recent.events(after: 25, limit: 10) == nil)
    }
}
