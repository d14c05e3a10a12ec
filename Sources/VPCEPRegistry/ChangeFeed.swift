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
/// reads the new events once, keeps a bounded window of them and wakes the watchers waiting. A watcher
/// is a cursor and a filter in its own task; it filters the window itself, and reads from the store
/// when it is behind the window. Correctness never rests on a wake-up: events are always taken by
/// sequence, so a lost one costs latency only.
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

    private struct Waiter {
        var cursor: UInt64
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct Watcher {
        var task: Task<Void, any Error>?
        var sendingSince: ContinuousClock.Instant?
        var tooSlow = false
    }

    private struct State {
        /// Recent events, contiguous by sequence, the last being `head`.
        var window: [ChangeEvent] = []
        var sizes: [Int] = []
        var bytes = 0
        /// The last sequence the feed has read; nil until it has looked at the log.
        var head: UInt64?
        var waiters: [UInt64: Waiter] = [:]
        /// Waits cancelled before they were registered.
        var cancelledWaits: Set<UInt64> = []
        var nextWaitID: UInt64 = 0
        /// Every registered watcher: its task, and since when its current send has been waiting.
        var watchers: [UInt64: Watcher] = [:]
        var nextWatcherID: UInt64 = 0
        var loop: Task<Void, Never>?
        var signal: AsyncStream<Void>.Continuation?
        var refreshing = false
        var dirty = false
        var shuttingDown = false
    }

    init(store: any RegistryStore, configuration: ChangeFeedConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    /// How many watchers are registered now.
    public var watcherCount: Int { state.withLock { $0.watchers.count } }

    /// Whether the server is shutting down: watchers end (docs/DOMAIN.md, "Watch").
    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// The head moved (a local commit returned). Cheap when nobody watches.
    public func headMoved() {
        let signal = state.withLock { $0.signal }
        signal?.yield()
    }

    /// Ends every watch (with `SERVER_SHUTTING_DOWN`) and refuses new ones; for a draining server.
    public func shutDown() {
        let waiters = state.withLock { state in
            state.shuttingDown = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    // MARK: Watchers

    /// A watcher begins; the first one starts the feed's loop, which runs while anybody watches.
    func register() -> UInt64 {
        state.withLock { state in
            state.nextWatcherID += 1
            let id = state.nextWatcherID
            state.watchers[id] = Watcher()
            guard state.loop == nil else { return id }
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            state.signal = continuation
            state.loop = Task { [self] in await self.run(signals: stream) }
            return id
        }
    }

    /// The task running the watcher's loop, which the feed cancels when a send stays blocked too long.
    func attach(_ id: UInt64, task: Task<Void, any Error>) {
        state.withLock { $0.watchers[id]?.task = task }
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
            state.watchers[id] = nil
            guard state.watchers.isEmpty, let loop = state.loop else { return nil }
            state.loop = nil
            state.signal?.finish()
            state.signal = nil
            // The window would go stale without the loop; a new first watcher starts from the store.
            state.window = []
            state.sizes = []
            state.bytes = 0
            state.head = nil
            return loop
        }
        loop?.cancel()
    }

    func batch(after cursor: UInt64, limit: Int) -> Batch {
        state.withLock { state in
            guard let head = state.head else { return .starting }
            if cursor >= head { return .caughtUp }
            guard let first = state.window.first?.seq, first <= cursor + 1 else { return .behind }
            let start = Int(cursor + 1 - first)
            let end = min(state.window.count, start + limit)
            let events = Array(state.window[start..<end])
            return .events(events, through: events.last?.seq ?? cursor)
        }
    }

    /// Returns once the feed has read past `cursor`, at `deadline`, at shutdown or when the task is
    /// cancelled, whichever is first. A waiting watcher holds only this entry.
    func wait(after cursor: UInt64, until deadline: ContinuousClock.Instant) async {
        let id = state.withLock { state in
            state.nextWaitID += 1
            return state.nextWaitID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.cancelledWaits.remove(id) != nil || state.shuttingDown || (state.head ?? 0) > cursor
                        || ContinuousClock.now >= deadline
                    {
                        return true
                    }
                    state.waiters[id] = Waiter(cursor: cursor, deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelledWaits.insert(id)
                    return Waiter?.none
                }
                return waiter
            }
            waiter?.continuation.resume()
        }
        // A wait that ended otherwise leaves no mark behind.
        state.withLock { _ = $0.cancelledWaits.remove(id) }
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

    /// One page of new events; true when there may be more.
    private func readOnce() async throws -> Bool {
        let pageSize = configuration.pageSize
        guard let head = state.withLock({ $0.head }) else {
            let head = try await store.read { reader in try await reader.logHead() }
            let woken: [Waiter] = state.withLock { state in
                guard state.head == nil else { return [] }
                state.head = head
                let ready = state.waiters.filter { $0.value.cursor < head }
                for id in ready.keys { state.waiters[id] = nil }
                return Array(ready.values)
            }
            for waiter in woken { waiter.continuation.resume() }
            return false
        }
        var unread = EventQuery(viewer: .system, afterSeq: head, limit: pageSize)
        unread.countsTotal = false
        let query = unread
        let events = try await store.read { reader in try await reader.listEvents(query).items }
        guard !events.isEmpty else { return false }
        let sizes = events.map(Self.estimatedSize)
        let woken: [Waiter] = state.withLock { state in
            // Only a contiguous continuation of the window is kept; anything else starts it afresh.
            if state.head != head || events.first?.seq != head + 1 {
                state.window = []
                state.sizes = []
                state.bytes = 0
            }
            state.window += events
            state.sizes += sizes
            state.bytes += sizes.reduce(0, +)
            state.head = events.last?.seq
            var drop = 0
            while drop < state.window.count - 1,
                state.window.count - drop > configuration.windowEvents || state.bytes > configuration.windowBytes
            {
                state.bytes -= state.sizes[drop]
                drop += 1
            }
            if drop > 0 {
                state.window.removeFirst(drop)
                state.sizes.removeFirst(drop)
            }
            let newHead = state.head ?? 0
            let ready = state.waiters.filter { $0.value.cursor < newHead }
            for id in ready.keys { state.waiters[id] = nil }
            return Array(ready.values)
        }
        for waiter in woken { waiter.continuation.resume() }
        return events.count == pageSize
    }

    /// Cancels the watchers whose send has waited longer than `slowWatcherTimeout`: their send stops
    /// waiting (the sink honours cancellation) and they end with `WATCH_TOO_SLOW`. One timer for all,
    /// so a send costs no timer of its own.
    private func cancelSlowSends() {
        let cutoff = ContinuousClock.now - configuration.slowWatcherTimeout
        let slow: [Task<Void, any Error>] = state.withLock { state in
            var tasks: [Task<Void, any Error>] = []
            for (id, watcher) in state.watchers {
                guard let since = watcher.sendingSince, since <= cutoff, let task = watcher.task else { continue }
                state.watchers[id]?.tooSlow = true
                tasks.append(task)
            }
            return tasks
        }
        for task in slow { task.cancel() }
    }

    private func expireWaits() {
        let now = ContinuousClock.now
        let expired: [Waiter] = state.withLock { state in
            let due = state.waiters.filter { $0.value.deadline <= now }
            for id in due.keys { state.waiters[id] = nil }
            return Array(due.values)
        }
        for waiter in expired { waiter.continuation.resume() }
    }

    /// Roughly what an event holds in memory: its strings and its states' encodings.
    static func estimatedSize(_ event: ChangeEvent) -> Int {
        let states = ((try? event.state.serialized())?.utf8.count ?? 512)
            + ((try? event.previous?.serialized())?.utf8.count ?? 0)
        return 256 + states + event.actor.utf8.count + event.requestID.utf8.count + event.idempotencyKey.utf8.count
    }
}
