import Foundation
import Synchronization

/// Which changes a Watch follows; the filters combine with AND, an empty one matches everything.
public struct WatchFilter: Sendable, Hashable {
    public var kinds: Set<ResourceKind>
    public var types: Set<ChangeType>
    public var resourceID: String?
    /// A service, its allow-list entries and the endpoints connected to it.
    public var serviceID: String?

    public init(kinds: Set<ResourceKind> = [], types: Set<ChangeType> = [], resourceID: String? = nil, serviceID: String? = nil) {
        self.kinds = kinds
        self.types = types
        self.resourceID = resourceID
        self.serviceID = serviceID
    }
}

/// Where a Watch begins (docs/DOMAIN.md, "Watch").
public enum WatchStart: Sendable, Hashable {
    /// After the newest committed change.
    case now
    /// After this sequence; 0: from the oldest retained change.
    case afterSeq(UInt64)
    /// The current state, a bookmark with the sequence it reflects, then every change after it.
    case snapshot
}

/// One message of a Watch. `indirect` for the same reason as `ResourceState`: a message held across
/// a send is then one pointer in the watch loop's async frames, which an idle watch keeps.
public indirect enum WatchMessage: Sendable, Hashable {
    case event(HistoryEntry)
    /// A resource's current state at a snapshot start (`seq` 0, type `.created` as a placeholder).
    case snapshot(HistoryEntry)
    /// Nothing the watcher may see is missing up to this sequence.
    case bookmark(UInt64)
}

extension Registry {
    /// Follows the change log for the caller (docs/DOMAIN.md, "Watch"), handing each message to `send`
    /// (which may suspend: a slow reader slows its watch down). Never returns normally: it ends by
    /// throwing, with `CancellationError` when the call is cancelled, `WATCH_TOO_SLOW` when a send stays
    /// blocked past the configured time, `SERVER_SHUTTING_DOWN` when the server drains, or a resume
    /// error (`SEQUENCE_COMPACTED`, `SEQUENCE_BEYOND_HEAD`).
    public func watch(
        _ ctx: CallContext, filter: WatchFilter, start: WatchStart,
        send: @escaping @Sendable (WatchMessage) async throws -> Void
    ) async throws {
        try await watch(ctx, filter: filter, start: start, encode: { $0 }, send: send)
    }

    /// `watch`, with each message made into what `send` takes by `encode`: an event's is made once for
    /// all the watchers of one view and shared (`encode` must depend on the message only).
    public func watch<Encoded: Sendable>(
        _ ctx: CallContext, filter: WatchFilter, start: WatchStart,
        encode: @escaping @Sendable (WatchMessage) throws -> Encoded,
        send: @escaping @Sendable (Encoded) async throws -> Void
    ) async throws {
        let watch = try makeWatch(ctx, filter: filter, start: start, encode: encode, send: send)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                watch.start { error in continuation.resume(throwing: error) }
            }
        } onCancel: {
            watch.cancel()
        }
    }

    /// A watch that runs on its own once started (`Watch.start`), with no task waiting for it: while it
    /// is caught up it is parked on the change feed and holds no task (docs/DOMAIN.md, "Watch"). Its
    /// tasks prefer `executor` (a server's connection's event loop, where `send` goes). Throws what the
    /// caller's scope and the server's state refuse at once; everything later ends the watch through
    /// `start`'s `ended`.
    public func makeWatch<Encoded: Sendable>(
        _ ctx: CallContext, filter: WatchFilter, start: WatchStart, executor: (any TaskExecutor)? = nil,
        encode: @escaping @Sendable (WatchMessage) throws -> Encoded,
        send: @escaping @Sendable (Encoded) async throws -> Void
    ) throws(RegistryError) -> Watch {
        let output = WatchOutput(
            encoding: ObjectIdentifier(Encoded.self), encode: { try encode($0) }, send: { try await send($0 as! Encoded) })
        let scope = try scope(ctx)
        let feed = changeFeed
        guard !feed.isShuttingDown else { throw Self.shuttingDown(after: nil) }
        var filtered = EventQuery(
            viewer: scope.viewer, resourceID: nonEmpty(filter.resourceID), kinds: filter.kinds, types: filter.types,
            serviceID: nonEmpty(filter.serviceID), limit: feed.configuration.pageSize)
        filtered.countsTotal = false
        return Watch(registry: self, query: filtered, scope: scope, output: output, start: start, executor: executor)
    }

    /// Removes the change log's events older than `retention`, in batches (docs/DOMAIN.md, "Watch").
    /// Returns how many.
    public func compactChangeLog(retention: Duration, batch: Int = 1000) async throws(RegistryError) -> Int {
        let cutoff = now().addingTimeInterval(-Double(retention.components.seconds))
        var removed = 0
        while true {
            let count = try await write { tx in try await tx.compactEvents(committedBefore: cutoff, limit: batch) }
            removed += count
            if count < batch { return removed }
        }
    }

    static func compacted(_ compacted: UInt64) -> RegistryError {
        RegistryError(
            code: .outOfRange, reason: .sequenceCompacted,
            message: "the change log up to sequence \(compacted) was removed by retention; the oldest retained "
                + "sequence is \(compacted + 1); start again with a snapshot",
            field: "after_seq")
    }

    static func shuttingDown(after seq: UInt64?) -> RegistryError {
        RegistryError(
            code: .unavailable, reason: .serverShuttingDown,
            message: "the server is shutting down; resume after sequence \(seq.map(String.init) ?? "0")")
    }

    /// The current state of everything the caller may see, as events (seq 0), read in one snapshot.
    /// Quotas are not part of it (a quota is a setting, not a resource; its changes are events).
    static func snapshot(_ reader: any RegistryReader, _ scope: Scope) async throws -> [ChangeEvent] {
        let owner = scope.listOwner
        let pageSize = 1000
        func all<T: Sendable>(_ list: (ListQuery) async throws -> ListResult<T>) async throws -> [T] {
            var items: [T] = []
            var after: ListCursor?
            // By keyset: each page starts at the last one's end, so no page re-reads the rows before it.
            while true {
                let page = try await list(ListQuery(
                    region: scope.region, ownerID: owner, sortKey: .createdAt, ascending: true, limit: pageSize,
                    offset: 0, after: after))
                items += page.items
                guard let next = page.next else { return items }
                after = next
            }
        }
        var states: [ChangeEvent] = []
        func add(_ state: ResourceState, providerID: String? = nil) {
            // seq 1 so that a query's "after" test admits it; the entry made of it says 0.
            states.append(ChangeEvent(seq: 1, type: .created, state: state, providerID: providerID))
        }
        for vpc in try await all({ try await reader.listVPCs($0) }) { add(.vpc(vpc)) }
        for subnet in try await all({ try await reader.listSubnets($0, vpcID: nil) }) { add(.subnet(subnet)) }
        for kind in BackendKind.allCases {
            for backend in try await all({ try await reader.listBackends($0, kind: kind, vpcID: nil) }) {
                add(.backend(backend))
            }
        }
        let services = try await all { try await reader.listEndpointServices($0, filter: EndpointServiceFilter()) }
            .filter { scope.isOperator || $0.ownerID.utf8.elementsEqual(scope.ownerID.utf8) }
        var providers: [String: String] = [:]
        for service in services {
            providers[service.id] = service.ownerID
            add(.endpointService(service))
        }
        for service in services {
            for permission in try await reader.permissions(serviceID: service.id, serviceVisibleTo: scope.reading) {
                add(.permission(permission), providerID: service.ownerID)
            }
        }
        var endpoints = try await all { try await reader.listEndpoints($0, filter: EndpointFilter()) }
        var seen = Set(endpoints.map(\.id))
        for service in services {
            for endpoint in try await reader.endpoints(serviceID: service.id, serviceVisibleTo: scope.reading) where seen.insert(endpoint.id).inserted {
                endpoints.append(endpoint)
            }
        }
        for endpoint in endpoints { add(.endpoint(endpoint), providerID: providers[endpoint.serviceID]) }
        return states
    }
}

/// How a watch's messages leave: encoded (an event's once per view, shared), then sent. Type-erased so
/// that the watch loop is not generic.
private struct WatchOutput: Sendable {
    let encoding: ObjectIdentifier
    let encode: @Sendable (WatchMessage) throws -> any Sendable
    let send: @Sendable (any Sendable) async throws -> Void
}

/// A running watch (docs/DOMAIN.md, "Watch"). It runs in a task while it has something to do: its
/// start, then sending what the feed has after its cursor. Caught up, it parks on the change feed and
/// its task ends; the feed wakes it with a new task when something it may see arrives, its bookmark is
/// due or the server shuts down. So a watch that waits holds its cursor and its registrations, no task.
public final class Watch: ParkedWatcher, @unchecked Sendable {
    // @unchecked: `cursor` is used by one task at a time. A task hands it on only by parking, under the
    // feed's lock, which the waking side takes too; `state` guards the rest.
    private let feed: ChangeFeed
    private let cursor: WatchCursor
    private let executor: (any TaskExecutor)?
    private let id: UInt64
    private let cancelled = Atomic(false)
    private let state: Mutex<RunState>

    private struct RunState {
        var start: WatchStart?
        var ended: (@Sendable (any Error) -> Void)?
        var isOver = false
        /// The task running now (when its spawner still knew it), for `cancel` and slow sends.
        var task: Task<Void, Never>?
        var runs: UInt64 = 0
        /// The last run that parked: its task may end before its spawner stores the handle.
        var parkedRun: UInt64 = 0
    }

    fileprivate init(
        registry: Registry, query: EventQuery, scope: Scope, output: WatchOutput, start: WatchStart,
        executor: (any TaskExecutor)?
    ) {
        feed = registry.changeFeed
        id = feed.newWatcherID()
        cursor = WatchCursor(registry: registry, id: id, query: query, scope: scope, output: output)
        self.executor = executor
        state = Mutex(RunState(start: start))
    }

    /// Starts the watch. `ended` is called once, with why the watch ended (it never ends normally: see
    /// `Registry.watch`), after the feed has let it go.
    public func start(ended: @escaping @Sendable (any Error) -> Void) {
        state.withLock { $0.ended = ended }
        feed.register(id, self, interest: cursor.query)
        run(reaching: nil)
    }

    /// Ends the watch with `CancellationError`: at once when it is parked, else when its task sees it.
    public func cancel() {
        cancelled.store(true, ordering: .releasing)
        let task = state.withLock { $0.task }
        task?.cancel()
        if feed.unpark(id) { end(CancellationError()) }
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Whether a task of this watch's runs now (or its spawner still holds it); false once it parked.
    var hasTask: Bool { state.withLock { $0.task != nil } }

    func wake(reaching: UInt64) {
        run(reaching: reaching)
    }

    func stopSending() {
        state.withLock { $0.task }?.cancel()
    }

    private func run(reaching: UInt64?) {
        let run = state.withLock { state -> UInt64? in
            guard !state.isOver else { return nil }
            state.runs += 1
            return state.runs
        }
        guard let run else { return }
        let task = Task(executorPreference: executor) { await self.step(reaching: reaching, run: run) }
        let cancelNow = state.withLock { state in
            // A later run may have started, or this one parked or ended already: only a running one is kept
            // (a finished task's handle keeps its memory).
            if state.runs == run, state.parkedRun != run, !state.isOver { state.task = task }
            return isCancelled
        }
        if cancelNow { task.cancel() }
    }

    /// One run: what there is to send, then park (the task ends) or end.
    private func step(reaching: UInt64?, run: UInt64) async {
        do {
            if let start = state.withLock({ state in defer { state.start = nil }; return state.start }) {
                try await cursor.begin(start)
            } else if let reaching {
                cursor.cursor = max(cursor.cursor, reaching)
            }
            while true {
                if isCancelled { throw CancellationError() }
                if let deadline = try await cursor.advance(),
                    feed.park(id, after: cursor.cursor, until: deadline, waitsForHead: cursor.feedWasStarting)
                {
                    // A finished task keeps its memory while a handle to it lives: a parked watch keeps none.
                    state.withLock { state in
                        state.parkedRun = run
                        if state.runs == run { state.task = nil }
                    }
                    return
                }
            }
        } catch {
            end(error)
        }
    }

    private func end(_ error: any Error) {
        let ended = state.withLock { state -> (@Sendable (any Error) -> Void)? in
            guard !state.isOver else { return nil }
            state.isOver = true
            state.task = nil
            defer { state.ended = nil }
            return state.ended
        }
        guard let ended else { return }
        feed.deregister(id)
        ended(error)
    }
}

/// One watch's position and what it has sent (docs/DOMAIN.md, "Watch"); used by one task at a time.
private final class WatchCursor {
    let registry: Registry
    let id: UInt64
    let query: EventQuery
    let scope: Scope
    let output: WatchOutput
    var cursor: UInt64 = 0
    /// The last position sent (event or bookmark); nil before the first.
    var delivered: UInt64?
    var bookmarkDue = false
    var lastSent = ContinuousClock.now
    /// The last `advance` found the feed yet to read the log's head.
    var feedWasStarting = false

    init(registry: Registry, id: UInt64, query: EventQuery, scope: Scope, output: WatchOutput) {
        self.registry = registry
        self.id = id
        self.query = query
        self.scope = scope
        self.output = output
    }

    private var feed: ChangeFeed { registry.changeFeed }

    func deliver(_ message: WatchMessage, position: UInt64?) async throws {
        try await deliver(encoded: try output.encode(message), position: position)
    }

    func deliver(encoded: any Sendable, position: UInt64?) async throws {
        feed.sendStarted(id)
        var failure: (any Error)?
        do {
            try await output.send(encoded)
        } catch {
            failure = error
        }
        let tooSlow = feed.sendEnded(id)
        if let failure, !tooSlow { throw failure }
        guard !tooSlow else {
            // Not the blocked message's sequence: it may never leave the connection, and a duplicate
            // after a resume is harmless where a gap is not.
            throw RegistryError(
                code: .unavailable, reason: .watchTooSlow,
                message: "the watch was not read for \(feed.configuration.slowWatcherTimeout); "
                    + (delivered.map { "resume after sequence \($0)" } ?? "start again with a snapshot"))
        }
        if let position { delivered = position }
        lastSent = .now
    }

    func begin(_ start: WatchStart) async throws {
        switch start {
        case .now:
            // From memory when the store can vouch for it: a burst of new watches then costs no reads.
            if let head = registry.store.recentHead {
                cursor = head
            } else {
                cursor = try await registry.read { reader in try await reader.logHead() }
            }
            delivered = cursor
            // At once, so that a client whose stream breaks before the first event still has a
            // position to resume from: "now" again would skip what was committed meanwhile.
            bookmarkDue = true
        case .afterSeq(let seq):
            let (head, compacted) = try await registry.read { reader in
                (try await reader.logHead(), try await reader.logCompacted())
            }
            guard seq <= head else {
                throw RegistryError(
                    code: .outOfRange, reason: .sequenceBeyondHead,
                    message: "after_seq \(seq) is beyond the newest sequence, \(head)", field: "after_seq")
            }
            if seq != 0, seq < compacted { throw Registry.compacted(compacted) }
            cursor = max(seq, compacted)
            delivered = cursor
            bookmarkDue = true
        case .snapshot:
            try await beginWithSnapshot()
        }
    }

    /// The snapshot, then its bookmark.
    private func beginWithSnapshot() async throws {
        var snapshotQuery = query
        snapshotQuery.types = []
        let scope = scope
        let (states, head) = try await registry.read { reader in
            (try await Registry.snapshot(reader, scope), try await reader.logHead())
        }
        let viewer = scope.viewer
        for event in states where snapshotQuery.matches(event) {
            guard let view = event.view(for: viewer) else { continue }
            var entry = HistoryEntry(event, view: view, viewer: viewer)
            entry.seq = 0
            try await deliver(.snapshot(entry), position: nil)
        }
        try await deliver(.bookmark(head), position: head)
        cursor = head
    }

    /// Sends what is there after the cursor, or a bookmark when one is due; returns nil when it did,
    /// or when the watcher is caught up, the time until which to wait.
    func advance() async throws -> ContinuousClock.Instant? {
        try Task.checkCancellation()
        guard !feed.isShuttingDown else { throw Registry.shuttingDown(after: delivered.map { max($0, cursor) } ?? cursor) }
        let configuration = feed.configuration
        var events: [ChangeEvent] = []
        let batch = feed.batch(after: cursor, limit: configuration.pageSize)
        if case .starting = batch { feedWasStarting = true } else { feedWasStarting = false }
        switch batch {
        case .events(let window, let through):
            events = window.filter(query.matches)
            cursor = through
        case .behind:
            events = try await readBehind()
        case .starting:
            // Woken when the feed has read the head; the poll interval bounds a missed wake-up.
            return .now + configuration.pollInterval
        case .caughtUp:
            let deadline = lastSent + configuration.bookmarkInterval
            guard bookmarkDue || ContinuousClock.now >= deadline else { return deadline }
            bookmarkDue = false
            try await deliver(.bookmark(cursor), position: cursor)
            return nil
        }
        try await deliverEvents(events)
        return nil
    }

    /// What the watcher may see of `events` (the feed's are unfiltered; the view decides, as for every
    /// read), each encoded once for every watcher of this view.
    private func deliverEvents(_ events: [ChangeEvent]) async throws {
        let viewer = scope.viewer
        let encodings = feed.encodings
        let encode = output.encode
        for event in events {
            guard let view = event.view(for: viewer) else { continue }
            let encoded = try encodings.value(SharedEncodings.Key(seq: event.seq, viewer: viewer, encoding: output.encoding)) {
                try encode(.event(HistoryEntry(event, view: view, viewer: viewer)))
            }
            try await deliver(encoded: encoded, position: event.seq)
        }
    }

    /// The page after the cursor from the store, the cursor moved past it.
    private func readBehind() async throws -> [ChangeEvent] {
        var next = query
        next.afterSeq = cursor
        let page = next
        let (found, head, compacted) = try await registry.read { reader in
            (try await reader.listEvents(page).items, try await reader.logHead(), try await reader.logCompacted())
        }
        if cursor < compacted { throw Registry.compacted(compacted) }
        // A short page read everything up to the head of the same snapshot.
        cursor = found.count == page.limit ? found.last?.seq ?? head : max(cursor, head)
        return found
    }
}
