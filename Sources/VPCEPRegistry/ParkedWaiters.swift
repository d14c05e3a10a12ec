/// The watchers parked on the change feed, indexed by what may wake them, so that a read of new
/// events touches only the watchers that one of them concerns.
///
/// A parked watcher's cursor is never written when events pass it by: `floor` is the head up to which
/// the feed has read and found nothing for any watcher still parked, and a watcher's cursor is the
/// larger of its own and the floor. Before, each read visited every parked watcher to move its cursor
/// (with 1,000 watchers of one resource each, a tenth of the server's CPU at 500 writes/s).
struct ParkedWaiters {
    struct Waiter {
        /// Where the watcher parked; `cursor(of:)` is where it stands.
        var parkedAt: UInt64
        var deadline: ContinuousClock.Instant
        /// What the watcher may see (an interned query); nil: every event wakes it.
        var interest: Int?
        let watcher: any ParkedWatcher
    }

    private var byID: [UInt64: Waiter] = [:]
    private var byInterest: [Int: Set<UInt64>] = [:]
    /// Watchers without an interest: every event wakes them.
    private var unfiltered: Set<UInt64> = []
    /// Every parked watcher has seen nothing for it up to here.
    private(set) var floor: UInt64 = 0

    var count: Int { byID.count }

    /// Where waiter `waiter` stands: nothing for it up to here.
    func cursor(of waiter: Waiter) -> UInt64 { max(waiter.parkedAt, floor) }

    mutating func insert(_ id: UInt64, _ waiter: Waiter) {
        remove(id)
        byID[id] = waiter
        if let interest = waiter.interest {
            byInterest[interest, default: []].insert(id)
        } else {
            unfiltered.insert(id)
        }
    }

    /// Takes watcher `id` off, its cursor raised to where it stands.
    @discardableResult
    mutating func remove(_ id: UInt64) -> Waiter? {
        guard var waiter = byID.removeValue(forKey: id) else { return nil }
        if let interest = waiter.interest {
            byInterest[interest]?.remove(id)
            if byInterest[interest]?.isEmpty == true { byInterest[interest] = nil }
        } else {
            unfiltered.remove(id)
        }
        waiter.parkedAt = cursor(of: waiter)
        return waiter
    }

    mutating func removeAll() -> [Waiter] {
        let all = byID.values.map { waiter in
            var waiter = waiter
            waiter.parkedAt = cursor(of: waiter)
            return waiter
        }
        byID = [:]
        byInterest = [:]
        unfiltered = []
        return all
    }

    /// Takes off the watchers whose deadline has come.
    mutating func removeExpired(at now: ContinuousClock.Instant) -> [Waiter] {
        let due = byID.filter { $0.value.deadline <= now }.keys
        return due.compactMap { remove($0) }
    }

    /// Whether some watcher parked with `interest`.
    func hasWaiters(interest: Int) -> Bool { byInterest[interest] != nil }

    /// Takes off the watchers that stand before `head`, whatever their interest.
    mutating func removeAll(before head: UInt64) -> [Waiter] {
        let behind = byID.filter { cursor(of: $0.value) < head }.keys
        return behind.compactMap { remove($0) }
    }

    /// The ids of the watchers without an interest that stand before `head`.
    func uninterested(before head: UInt64) -> [UInt64] {
        unfiltered.filter { id in byID[id].map { cursor(of: $0) < head } ?? false }
    }

    /// The ids of the watchers parked with `interest` that stand before `seq`.
    func waiting(interest: Int, before seq: UInt64) -> [UInt64] {
        guard let ids = byInterest[interest] else { return [] }
        return ids.filter { id in byID[id].map { cursor(of: $0) < seq } ?? false }
    }

    /// Every watcher still parked has nothing up to `head`: the feed read that far and woke the others.
    mutating func raiseFloor(to head: UInt64) {
        floor = max(floor, head)
    }

    /// The feed forgot its head (nobody watches): nothing is parked, and the next head starts afresh.
    mutating func resetFloor() {
        floor = 0
    }
}
