import Foundation
import Synchronization

/// Settings of a registry's change feed and of its Watch streams (docs/DOMAIN.md, "Watch").
public struct ChangeFeedConfiguration: Sendable, Hashable {
    /// The in-memory window of recent events, bounded by count and by (estimated) bytes; a watcher
    /// further behind reads from the store.
    public var windowEvents = 4096
    public var windowBytes = 8 << 20
    /// Events per store read, for the feed and for a watcher catching up.
    public var pageSize = 256
    /// How often the feed looks at the log without being told that it moved: the safety net for a
    /// lost wake-up (and for commits of other processes), and the resolution of idle bookmarks.
    public var pollInterval: Duration = .seconds(1)
    /// A watcher that sent nothing for this long sends a bookmark.
    public var bookmarkInterval: Duration = .seconds(10)
    /// A watcher whose send stays blocked this long is ended with `WATCH_TOO_SLOW`.
    public var slowWatcherTimeout: Duration = .seconds(30)

    public init() {}

    public static let defaults = ChangeFeedConfiguration()

    public static func defaults(_ configure: (inout ChangeFeedConfiguration) -> Void) -> ChangeFeedConfiguration {
        var configuration = ChangeFeedConfiguration()
        configure(&configuration)
        return configuration
    }
}

/// The registry's one reader of its change log for every watcher (docs/DOMAIN.md, "Watch"). It learns
/// that the log's head moved (`headMoved()`, after each local commit; a poll as the safety net),
/// reads the new events once, keeps a bounded window of them and wakes the watchers parked on it. A
/// watcher is a cursor and a filter; while it has something to send it runs in a task of its own,
/// filtering the window itself (reading from the store when it is behind the window), and once it is
/// caught up it parks here and its task ends, so an idle watcher holds no task. Correctness never
/// rests on a wake-up: events are always taken by sequence, so a lost one costs latency only.
public final class ChangeFeed: Sendable {
    public let configuration: ChangeFeedConfiguration
    private let store: any RegistryStore
    private let state = Mutex(State())

    /// What a watcher at `cursor` should do next.
    enum Batch {
        /// The window's events after the cursor (up to a page), the last being `through`.
        case events([ChangeEvent], through: UInt64)
        /// The cursor is before the window: read from the store.
        case behind
        /// Nothing after the cursor yet.
        case caughtUp
        /// The feed has not read the log's head yet (its loop just started): wait for it.
        case starting
    }

    private struct Watcher {
        var interest: Int?
        let watcher: any ParkedWatcher
        var sendingSince: ContinuousClock.Instant?
        var tooSlow = false
    }

    private struct Interest {
        let id: Int
        var users: Int
    }

    private struct State {
        /// Recent events, contiguous by sequence, the last being `head`.
        var window = EventWindow()
        /// The last sequence the feed has read; nil until it has looked at the log.
        var head: UInt64?
        /// The parked watchers, by what may wake them.
        var parked = ParkedWaiters()
        /// Every registered watcher, and since when its current send has been waiting.
        var watchers: [UInt64: Watcher] = [:]
        var nextWatcherID: UInt64 = 0
        /// The watchers' queries, interned: many watchers share one (a view and a filter), and a read
        /// tests each once.
        var interests: [EventQuery: Interest] = [:]
        var interestQueries: [Int: EventQuery] = [:]
        /// The interests by the one resource or service they follow, and those that follow neither:
        /// a new event is tested against its resource's and service's interests and the broad ones only.
        var interestsByResource: [String: Set<Int>] = [:]
        var interestsByService: [String: Set<Int>] = [:]
        var broadInterests: Set<Int> = []
        var nextInterestID = 0
        /// How many times a read of new events woke a waiting watcher.
        var wakeUps = 0
        var loop: Task<Void, Never>?
        var signal: AsyncStream<Void>.Continuation?
        var refreshing = false
        var dirty = false
        var shuttingDown = false

        /// Files a new interest under the resource or service it follows, or among the broad ones.
        mutating func index(interest: Int, _ query: EventQuery) {
            if let resource = query.resourceID {
                interestsByResource[resource, default: []].insert(interest)
            } else if let service = query.serviceID {
                interestsByService[service, default: []].insert(interest)
            } else {
                broadInterests.insert(interest)
            }
        }

        mutating func unindex(interest: Int, _ query: EventQuery) {
            if let resource = query.resourceID {
                interestsByResource[resource]?.remove(interest)
                if interestsByResource[resource]?.isEmpty == true { interestsByResource[resource] = nil }
            } else if let service = query.serviceID {
                interestsByService[service]?.remove(interest)
                if interestsByService[service]?.isEmpty == true { interestsByService[service] = nil }
            } else {
                broadInterests.remove(interest)
            }
        }
    }

    /// Each event's message encoded once per viewer, for every watcher with that view.
    let encodings = SharedEncodings()

    init(store: any RegistryStore, configuration: ChangeFeedConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    /// How many watchers are parked now (caught up, holding no task).
    var parkedCount: Int { state.withLock { $0.parked.count } }

    /// How many watchers are registered now.
    public var watcherCount: Int { state.withLock { $0.watchers.count } }

    /// How many times new events woke a parked watcher: the fan-out's cost in task starts.
    var wakeUpCount: Int { state.withLock { $0.wakeUps } }

    /// Whether the server is shutting down: watchers end (docs/DOMAIN.md, "Watch").
    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// The head moved (a local commit returned). Cheap when nobody watches.
    public func headMoved() {
        guard let signal = state.withLock({ $0.signal }) else { return }
        if !refreshFromMemory() { signal.yield() }
    }

    /// Ends every watch (with `SERVER_SHUTTING_DOWN`) and refuses new ones; for a draining server.
    public func shutDown() {
        let waiters = state.withLock { state in
            state.shuttingDown = true
            return state.parked.removeAll()
        }
        for waiter in waiters { waiter.watcher.wake(reaching: waiter.parkedAt) }
    }

    // MARK: Watchers

    /// An id for a watcher that will `register`.
    func newWatcherID() -> UInt64 {
        state.withLock { state in
            state.nextWatcherID += 1
            return state.nextWatcherID
        }
    }

    /// Watcher `id` begins, following what `interest` matches (nil: it is woken for every event); the
    /// first one starts the feed's loop, which runs while anybody watches.
    func register(_ id: UInt64, _ parked: any ParkedWatcher, interest: EventQuery? = nil) {
        state.withLock { state in
            var watcher = Watcher(watcher: parked)
            if var query = interest {
                query.afterSeq = 0
                if let known = state.interests[query] {
                    state.interests[query]?.users += 1
                    watcher.interest = known.id
                } else {
                    state.nextInterestID += 1
                    state.interests[query] = Interest(id: state.nextInterestID, users: 1)
                    state.interestQueries[state.nextInterestID] = query
                    state.index(interest: state.nextInterestID, query)
                    watcher.interest = state.nextInterestID
                }
            }
            state.watchers[id] = watcher
            guard state.loop == nil else { return }
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            state.signal = continuation
            state.loop = Task { [self] in await self.run(signals: stream) }
        }
    }

    /// A send begins; until `sendEnded`, the loop's tick checks how long it takes.
    func sendStarted(_ id: UInt64) {
        let now = ContinuousClock.now
        state.withLock { $0.watchers[id]?.sendingSince = now }
    }

    /// A send ended; true when the feed cancelled it for taking too long.
    func sendEnded(_ id: UInt64) -> Bool {
        state.withLock { state in
            state.watchers[id]?.sendingSince = nil
            return state.watchers[id]?.tooSlow ?? false
        }
    }

    func deregister(_ id: UInt64) {
        let loop: Task<Void, Never>? = state.withLock { state in
            state.parked.remove(id)
            if let interest = state.watchers.removeValue(forKey: id)?.interest,
                let query = state.interestQueries[interest]
            {
                state.interests[query]?.users -= 1
                if state.interests[query]?.users == 0 {
                    state.interests[query] = nil
                    state.interestQueries[interest] = nil
                    state.unindex(interest: interest, query)
                }
            }
            guard state.watchers.isEmpty, let loop = state.loop else { return nil }
            state.loop = nil
            state.signal?.finish()
            state.signal = nil
            // The window would go stale without the loop; a new first watcher starts from the store.
            state.window.removeAll()
            state.head = nil
            state.parked.resetFloor()
            return loop
        }
        if loop != nil { encodings.removeAll() }
        loop?.cancel()
    }

    func batch(after cursor: UInt64, limit: Int) -> Batch {
        state.withLock { state in
            guard let head = state.head else { return .starting }
            if cursor >= head { return .caughtUp }
            guard let events = state.window.events(after: cursor, limit: limit) else { return .behind }
            return .events(events, through: events.last?.seq ?? cursor)
        }
    }

    /// Parks watcher `id` at `cursor` until the feed has read past it an event that its interest
    /// matches (any event when it has none), until `deadline`, or until shutdown, whichever is first:
    /// then the feed wakes it (`ParkedWatcher.wake(reaching:)`) with the sequence up to which it found
    /// nothing for it. False, and nothing parked, when one of those has already happened or the
    /// watcher was cancelled: the caller goes on instead. A parked watcher holds only this entry, and
    /// a write it may not see does not wake it. `waitsForHead`: the watcher found the feed `.starting`;
    /// if the feed has read its head since, there is nothing to wait for.
    func park(
        _ id: UInt64, after cursor: UInt64, until deadline: ContinuousClock.Instant, waitsForHead: Bool = false
    ) -> Bool {
        state.withLock { state in
            guard let watcher = state.watchers[id], !watcher.watcher.isCancelled, !state.shuttingDown,
                (state.head ?? 0) <= cursor, !(waitsForHead && state.head != nil), ContinuousClock.now < deadline
            else { return false }
            state.parked.insert(id, .init(parkedAt: cursor, deadline: deadline, interest: watcher.interest, watcher: watcher.watcher))
            return true
        }
    }

    /// Takes a parked watcher off the feed; false when it was not parked (it runs, or is being woken).
    func unpark(_ id: UInt64) -> Bool {
        state.withLock { $0.parked.remove(id) != nil }
    }

    /// The waiters to wake now that the feed read `events` after `previousHead` (contiguous when the
    /// window went on from there): those that may see one of them; the others stand at the new head.
    /// Each event is tested against the interests of its resource and its service and the broad ones,
    /// each interest once per event, and only the watchers of an interest that matched are visited.
    private static func wake(
        _ state: inout State, after previousHead: UInt64?, contiguous: Bool, events: [ChangeEvent]
    ) -> [ParkedWaiters.Waiter] {
        let newHead = state.head ?? 0
        let woken: [ParkedWaiters.Waiter]
        if previousHead == nil {
            // The first read of the head wakes everyone: a watcher that parked before it was known waits for it.
            woken = state.parked.removeAll()
        } else if !contiguous {
            woken = state.parked.removeAll(before: newHead)
        } else {
            // Per interest, the last event it matched: a watcher standing before it may see it.
            var lastMatch: [Int: UInt64] = [:]
            for event in events {
                func test(_ interests: Set<Int>?) {
                    for interest in interests ?? [] where state.parked.hasWaiters(interest: interest) {
                        if state.interestQueries[interest]?.matches(event) ?? true { lastMatch[interest] = event.seq }
                    }
                }
                test(state.interestsByResource[event.resourceID])
                if let service = event.serviceID { test(state.interestsByService[service]) }
                test(state.broadInterests)
            }
            var ids = Set(state.parked.uninterested(before: newHead))
            for (interest, seq) in lastMatch { ids.formUnion(state.parked.waiting(interest: interest, before: seq)) }
            woken = ids.compactMap { state.parked.remove($0) }
        }
        state.parked.raiseFloor(to: newHead)
        state.wakeUps += woken.count
        return woken
    }

    // MARK: The loop

    private func run(signals: AsyncStream<Void>) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                for await _ in signals { await refresh() }
            }
            group.addTask { [self] in
                while !Task.isCancelled {
                    await refresh()
                    expireWaits()
                    cancelSlowSends()
                    try? await Task.sleep(for: configuration.pollInterval)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Reads what the log gained since the feed's head; one reader at a time, and a request made while
    /// it reads makes it read again.
    func refresh() async {
        let proceed = state.withLock { state in
            if state.refreshing {
                state.dirty = true
                return false
            }
            state.refreshing = true
            state.dirty = false
            return true
        }
        guard proceed else { return }
        var more = true
        while more {
            do {
                more = try await readOnce()
            } catch {
                // The poll tries again; watchers keep waiting meanwhile.
                more = false
            }
            more = state.withLock { state in
                let again = more || state.dirty
                state.dirty = false
                if !again { state.refreshing = false }
                return again
            }
            if Task.isCancelled {
                state.withLock { $0.refreshing = false }
                return
            }
        }
    }

    /// Takes a page of what the log gained from the store's memory, on the committing caller's thread,
    /// so that a local commit reaches its watchers without a hop through the feed's loop task: that
    /// was a thread of the global executor to wake for every commit, on cores the writers and the
    /// deliveries already share (BENCHMARKS.md, "A local commit reaches its watchers without the
    /// feed's task"). One page at most: a caller is not kept to read others' commits. False when the
    /// loop is to read instead: the feed has not read its head yet, the store no longer holds the
    /// events, more came than a page, or another caller committed meanwhile. True when another reader
    /// is at work (it reads again).
    private func refreshFromMemory() -> Bool {
        enum Start { case reads(after: UInt64), anotherReads, cannot }
        let start: Start = state.withLock { state in
            if state.refreshing {
                state.dirty = true
                return .anotherReads
            }
            guard let head = state.head else { return .cannot }
            state.refreshing = true
            state.dirty = false
            return .reads(after: head)
        }
        let head: UInt64
        switch start {
        case .anotherReads: return true
        case .cannot: return false
        case .reads(let after): head = after
        }
        let pageSize = configuration.pageSize
        let recent = store.recentEvents(after: head, limit: pageSize)
        if let recent, !recent.isEmpty { take(recent, after: head) }
        return state.withLock { state in
            state.refreshing = false
            return (recent?.count ?? pageSize) < pageSize && !state.dirty
        }
    }

    /// One page of new events; true when there may be more.
    private func readOnce() async throws -> Bool {
        let pageSize = configuration.pageSize
        guard let head = state.withLock({ $0.head }) else {
            let head = try await store.read { reader in try await reader.logHead() }
            let woken: [ParkedWaiters.Waiter] = state.withLock { state in
                guard state.head == nil else { return [] }
                state.head = head
                return Self.wake(&state, after: nil, contiguous: false, events: [])
            }
            for waiter in woken { waiter.watcher.wake(reaching: waiter.parkedAt) }
            return false
        }
        let events: [ChangeEvent]
        // A local commit's events, when the store still holds them: no read, and no decoding of states.
        if let recent = store.recentEvents(after: head, limit: pageSize) {
            events = recent
        } else {
            var unread = EventQuery(viewer: .system, afterSeq: head, limit: pageSize)
            unread.countsTotal = false
            let query = unread
            events = try await store.read { reader in try await reader.listEvents(query).items }
        }
        guard !events.isEmpty else { return false }
        take(events, after: head)
        return events.count == pageSize
    }

    /// Adds `events`, read after `head`, to the window and wakes the watchers they concern.
    private func take(_ events: [ChangeEvent], after head: UInt64) {
        let sizes = events.map(Self.estimatedSize)
        let woken: [ParkedWaiters.Waiter] = state.withLock { state in
            // Only a contiguous continuation of the window is kept; anything else starts it afresh.
            let contiguous = state.head == head && events.first?.seq == head + 1
            if !contiguous { state.window.removeAll() }
            state.window.append(events, sizes: sizes, maxCount: configuration.windowEvents, maxBytes: configuration.windowBytes)
            state.head = events.last?.seq
            return Self.wake(&state, after: head, contiguous: contiguous, events: events)
        }
        for waiter in woken { waiter.watcher.wake(reaching: waiter.parkedAt) }
    }

    /// Stops the sends that have waited longer than `slowWatcherTimeout`: the send stops waiting (the
    /// sink honours its task's cancellation) and the watcher ends with `WATCH_TOO_SLOW`. One timer for
    /// all, so a send costs no timer of its own.
    private func cancelSlowSends() {
        let cutoff = ContinuousClock.now - configuration.slowWatcherTimeout
        let slow: [any ParkedWatcher] = state.withLock { state in
            var slow: [any ParkedWatcher] = []
            for (id, watcher) in state.watchers {
                guard let since = watcher.sendingSince, since <= cutoff else { continue }
                state.watchers[id]?.tooSlow = true
                slow.append(watcher.watcher)
            }
            return slow
        }
        for watcher in slow { watcher.stopSending() }
    }

    private func expireWaits() {
        let now = ContinuousClock.now
        let expired = state.withLock { $0.parked.removeExpired(at: now) }
        for waiter in expired { waiter.watcher.wake(reaching: waiter.parkedAt) }
    }

    /// Roughly what an event holds in memory: its strings and its states (`ResourceState.estimatedBytes`,
    /// which costs no encoding: the feed estimates every event it reads).
    static func estimatedSize(_ event: ChangeEvent) -> Int {
        256 + event.state.estimatedBytes + (event.previous?.estimatedBytes ?? 0) + event.actor.utf8.count
            + event.requestID.utf8.count + event.idempotencyKey.utf8.count
    }
}

/// A watcher as the feed sees it: parked on the feed while it is caught up, woken to run again.
protocol ParkedWatcher: AnyObject, Sendable {
    /// The feed found something for it after `reaching`, its deadline came, or the server shuts down:
    /// it runs again, its cursor at least at `reaching` (the feed found nothing for it up to there).
    func wake(reaching: UInt64)
    /// Whether its watch is over: the feed does not park it.
    var isCancelled: Bool { get }
    /// Its send has waited too long: the running send is to give up (`WATCH_TOO_SLOW`).
    func stopSending()
}

/// Encoded watch messages of recent events, by sequence and viewer: the watchers of one view share
/// one encoding of an event instead of each mapping and encoding it again. Bounded: the oldest go
/// first, and a watcher that misses encodes for itself (the same bytes).
final class SharedEncodings: Sendable {
    struct Key: Hashable {
        let seq: UInt64
        let viewer: EventViewer
        /// The encoding's type: watchers that encode differently share nothing.
        let encoding: ObjectIdentifier
    }

    static let capacity = 4096

    private struct State {
        var values: [Key: any Sendable] = [:]
        /// Insertion order, a ring of `capacity` slots.
        var order: [Key?] = Array(repeating: nil, count: SharedEncodings.capacity)
        var next = 0
    }

    private let state = Mutex(State())

    /// The encoding of `key`'s message as `T`, made by `encode` when nobody made it yet. Two watchers
    /// that miss at once both encode; the second's is kept.
    func value<T: Sendable>(_ key: Key, encode: () throws -> T) rethrows -> T {
        if let known = state.withLock({ $0.values[key] }), let typed = known as? T { return typed }
        let made = try encode()
        state.withLock { state in
            if state.values.updateValue(made, forKey: key) == nil {
                if let old = state.order[state.next] { state.values[old] = nil }
                state.order[state.next] = key
                state.next = (state.next + 1) % Self.capacity
            }
        }
        return made
    }

    var count: Int { state.withLock { $0.values.count } }

    /// Nobody watches: the encodings would only take memory.
    func removeAll() {
        state.withLock { $0 = State() }
    }
}
