import Synchronization

/// The change-log events a store committed most recently, kept in memory in sequence order, so that the
/// change feed takes a local commit's events without reading them back (`RegistryStore.recentEvents`).
/// Only for a store that is its database's only writer: it must hand over every commit's events, in
/// commit order, before the commit is acknowledged, and `forget()` whenever it cannot say what a commit
/// left behind. Anything it cannot vouch for (a gap, a sequence it no longer holds) is answered `nil`,
/// and the caller reads the store.
public final class RecentEvents: Sendable {
    /// How many events are kept (the change feed's window keeps more; this only spares its reads).
    public static let defaultCapacity = 1024

    private struct State {
        /// Contiguous by sequence.
        var events: [ChangeEvent] = []
        /// Events before this index are dropped (removed in bulk, not one at a time).
        var first = 0
        /// The newest committed sequence, when it vouches for it: the last event handed over, or the
        /// head it was given when the store opened (`seed`) and nothing was committed since.
        var head: UInt64?
    }

    private let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = RecentEvents.defaultCapacity) {
        self.capacity = max(capacity, 1)
    }

    /// The log's head when the store opened, before anything was committed: the newest committed
    /// sequence until the first commit. Ignored once it knows more.
    public func seed(head: UInt64) {
        state.withLock { state in
            if state.head == nil, state.events.isEmpty { state.head = head }
        }
    }

    /// The newest committed sequence, when it can vouch for it (nil: read the store).
    public var head: UInt64? { state.withLock { $0.head } }

    /// A commit's events, in sequence order. Events that do not follow the last kept one start the
    /// memory afresh.
    public func committed(_ events: [ChangeEvent]) {
        guard let firstSeq = events.first?.seq, let lastSeq = events.last?.seq else { return }
        state.withLock { state in
            if let last = state.events.last?.seq ?? state.head, last + 1 != firstSeq {
                state = State()
            }
            state.head = lastSeq
            state.events += events
            let kept = state.events.count - state.first
            if kept > capacity { state.first += kept - capacity }
            if state.first > capacity {
                state.events.removeFirst(state.first)
                state.first = 0
            }
        }
    }

    /// What a commit left behind is not known: nothing is vouched for until the next commit.
    public func forget() {
        state.withLock { $0 = State() }
    }

    /// The kept events after `seq`, at most `limit`, starting at `seq + 1`; `[]` when `seq` is the last
    /// kept one; nil when an event after `seq` is not kept (or nothing is).
    public func events(after seq: UInt64, limit: Int) -> [ChangeEvent]? {
        state.withLock { state in
            if seq == state.head { return [] }
            guard state.first < state.events.count, let last = state.events.last?.seq else { return nil }
            let oldest = state.events[state.first].seq
            guard oldest <= seq + 1, seq <= last else { return nil }
            let start = state.first + Int(seq + 1 - oldest)
            let end = min(state.events.count, start + max(limit, 0))
            return Array(state.events[start..<end])
        }
    }
}
