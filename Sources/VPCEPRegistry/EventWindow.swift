/// The change feed's window: the most recent events, contiguous by sequence, bounded by count and by
/// estimated bytes, with the oldest dropped as new ones come.
///
/// Dropped events are removed in bulk, `releaseBatch` (or as many as are kept, when fewer) at a time,
/// not at every append: removing them at once shifted the whole window (4,096 events) for every
/// commit, and with watchers that was a third of the feed's time on the committing caller's thread
/// (BENCHMARKS.md, "A local commit reaches its watchers without the feed's task"). The price is memory
/// for at most that many dropped events beside the bound.
struct EventWindow {
    private var events: [ChangeEvent] = []
    private var sizes: [Int] = []
    /// Entries before this index are dropped.
    private var first = 0
    private(set) var bytes = 0

    static let releaseBatch = 256

    var count: Int { events.count - first }
    var isEmpty: Bool { count == 0 }
    var firstSeq: UInt64? { isEmpty ? nil : events[first].seq }

    /// Appends `added` (following the last kept event), each with its estimated size, then drops the
    /// oldest until at most `maxCount` events and `maxBytes` remain; the newest always stays.
    mutating func append(_ added: [ChangeEvent], sizes addedSizes: [Int], maxCount: Int, maxBytes: Int) {
        events += added
        sizes += addedSizes
        bytes += addedSizes.reduce(0, +)
        while count > 1, count > maxCount || bytes > maxBytes {
            bytes -= sizes[first]
            first += 1
        }
        if first > 0, first >= min(count, Self.releaseBatch) {
            events.removeFirst(first)
            sizes.removeFirst(first)
            first = 0
        }
    }

    /// The events after `cursor`, at most `limit`, when the window holds the one that follows it.
    func events(after cursor: UInt64, limit: Int) -> [ChangeEvent]? {
        guard let firstSeq, firstSeq <= cursor + 1 else { return nil }
        let start = first + Int(cursor + 1 - firstSeq)
        let end = min(events.count, start + max(limit, 0))
        return start < end ? Array(events[start..<end]) : []
    }

    mutating func removeAll() {
        self = EventWindow()
    }
}
