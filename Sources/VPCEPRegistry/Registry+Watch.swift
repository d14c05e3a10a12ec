import Foundation

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
        let output = WatchOutput(
            encoding: ObjectIdentifier(Encoded.self), encode: { try encode($0) }, send: { try await send($0 as! Encoded) })
        let scope = try scope(ctx)
        let viewer = scope.viewer
        let feed = changeFeed
        let configuration = feed.configuration
        guard !feed.isShuttingDown else { throw Self.shuttingDown(after: nil) }
        var filtered = EventQuery(
            viewer: viewer, resourceID: nonEmpty(filter.resourceID), kinds: filter.kinds, types: filter.types,
            serviceID: nonEmpty(filter.serviceID), limit: configuration.pageSize)
        filtered.countsTotal = false
        let query = filtered

        let id = feed.register(interest: query)
        defer { feed.deregister(id) }
        // The loop runs in a task of its own so that the feed can cancel a send that stays blocked.
        let loop = Task { [self] in
            try await follow(id: id, query: query, scope: scope, start: start, output: output)
        }
        feed.attach(id, task: loop)
        try await withTaskCancellationHandler {
            try await loop.value
        } onCancel: {
            loop.cancel()
        }
    }

    /// The watch's loop. Its frame is what an idle watcher keeps while it waits, so the work between
    /// waits is done in `WatchCursor`'s methods, whose frames are gone when they return.
    private func follow(id: UInt64, query: EventQuery, scope: Scope, start: WatchStart, output: WatchOutput) async throws {
        let watcher = WatchCursor(registry: self, id: id, query: query, scope: scope, output: output)
        try await watcher.begin(start)
        while true {
            if let deadline = try await watcher.advance() {
                // Events the watcher may not see do not wake it; its cursor moves past them.
                watcher.cursor = await changeFeed.wait(after: watcher.cursor, until: deadline, watcher: id)
            }
        }
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

    /// A store read in a child task of its own. A task keeps the memory its deepest call needed until it
    /// ends; a watcher lives long, and a read goes deep, so its reads run apart and an idle watcher holds
    /// only its own few frames (docs/DOMAIN.md, "Watch").
    func readApart<T: Sendable>(
        _ body: @escaping @Sendable (any RegistryReader) async throws -> T
    ) async throws -> T {
        // Not `async let`: its child is carved from this task's memory, which keeps the high mark.
        let task = Task { () async throws -> T in try await read(body) }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
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

/// One watch's position and what it has sent (docs/DOMAIN.md, "Watch"); used by its loop's task only.
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

    init(
        registry: Registry, id: UInt64, query: EventQuery, scope: Scope, output: WatchOutput
    ) {
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
            cursor = try await registry.readApart { reader in try await reader.logHead() }
            delivered = cursor
            // At once, so that a client whose stream breaks before the first event still has a
            // position to resume from: "now" again would skip what was committed meanwhile.
            bookmarkDue = true
        case .afterSeq(let seq):
            let (head, compacted) = try await registry.readApart { reader in
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

    /// The snapshot, then its bookmark. Out of line, so that only a watch that starts with a snapshot
    /// keeps frames of its size.
    @inline(never)
    private func beginWithSnapshot() async throws {
        var snapshotQuery = query
        snapshotQuery.types = []
        let scope = scope
        let (states, head) = try await registry.readApart { reader in
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
        switch feed.batch(after: cursor, limit: configuration.pageSize) {
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
    /// read), each encoded once for every watcher of this view. Out of line, as `readBehind`.
    @inline(never)
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

    /// The page after the cursor from the store, the cursor moved past it. Out of line, so that its
    /// values are not part of `advance`'s frame.
    @inline(never)
    private func readBehind() async throws -> [ChangeEvent] {
        var next = query
        next.afterSeq = cursor
        let page = next
        let (found, head, compacted) = try await registry.readApart { reader in
            (try await reader.listEvents(page).items, try await reader.logHead(), try await reader.logCompacted())
        }
        if cursor < compacted { throw Registry.compacted(compacted) }
        // A short page read everything up to the head of the same snapshot.
        cursor = found.count == page.limit ? found.last?.seq ?? head : max(cursor, head)
        return found
    }
}
