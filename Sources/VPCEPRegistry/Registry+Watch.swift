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

/// One message of a Watch.
public enum WatchMessage: Sendable, Hashable {
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

        let id = feed.register()
        defer { feed.deregister(id) }
        // The loop runs in a task of its own so that the feed can cancel a send that stays blocked.
        let loop = Task {
            try await follow(id: id, query: query, scope: scope, start: start, send: send)
        }
        feed.attach(id, task: loop)
        try await withTaskCancellationHandler {
            try await loop.value
        } onCancel: {
            loop.cancel()
        }
    }

    private func follow(
        id: UInt64, query: EventQuery, scope: Scope, start: WatchStart,
        send: @escaping @Sendable (WatchMessage) async throws -> Void
    ) async throws {
        let viewer = scope.viewer
        let feed = changeFeed
        let configuration = feed.configuration
        var delivered: UInt64?
        func deliver(_ message: WatchMessage, position: UInt64?) async throws {
            feed.sendStarted(id)
            var failure: (any Error)?
            do {
                try await send(message)
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
                    message: "the watch was not read for \(configuration.slowWatcherTimeout); "
                        + (delivered.map { "resume after sequence \($0)" } ?? "start again with a snapshot"))
            }
            if let position { delivered = position }
        }

        var cursor: UInt64
        var bookmarkDue = false
        switch start {
        case .now:
            cursor = try await read { reader in try await reader.logHead() }
            delivered = cursor
        case .afterSeq(let seq):
            let (head, compacted) = try await read { reader in (try await reader.logHead(), try await reader.logCompacted()) }
            guard seq <= head else {
                throw RegistryError(
                    code: .outOfRange, reason: .sequenceBeyondHead,
                    message: "after_seq \(seq) is beyond the newest sequence, \(head)", field: "after_seq")
            }
            if seq != 0, seq < compacted { throw Self.compacted(compacted) }
            cursor = max(seq, compacted)
            delivered = cursor
            bookmarkDue = true
        case .snapshot:
            var snapshotQuery = query
            snapshotQuery.types = []
            let (states, head) = try await read { reader in
                (try await Self.snapshot(reader, scope), try await reader.logHead())
            }
            for event in states where snapshotQuery.matches(event) {
                guard let view = event.view(for: viewer) else { continue }
                var entry = HistoryEntry(event, view: view, viewer: viewer)
                entry.seq = 0
                try await deliver(.snapshot(entry), position: nil)
            }
            try await deliver(.bookmark(head), position: head)
            cursor = head
        }

        var lastSent = ContinuousClock.now
        while true {
            try Task.checkCancellation()
            guard !feed.isShuttingDown else { throw Self.shuttingDown(after: delivered ?? cursor) }
            var events: [ChangeEvent] = []
            switch feed.batch(after: cursor, limit: configuration.pageSize) {
            case .events(let window, let through):
                events = window.filter(query.matches)
                cursor = through
            case .behind:
                var next = query
                next.afterSeq = cursor
                let page = next
                let (found, head, compacted) = try await read { reader in
                    (try await reader.listEvents(page).items, try await reader.logHead(), try await reader.logCompacted())
                }
                if cursor < compacted { throw Self.compacted(compacted) }
                events = found
                // A short page read everything up to the head of the same snapshot.
                cursor = found.count == page.limit ? found.last?.seq ?? head : max(cursor, head)
            case .caughtUp:
                let deadline = lastSent + configuration.bookmarkInterval
                if bookmarkDue || ContinuousClock.now >= deadline {
                    bookmarkDue = false
                    try await deliver(.bookmark(cursor), position: cursor)
                    lastSent = .now
                } else {
                    await feed.wait(after: cursor, until: deadline)
                }
                continue
            }
            for event in events {
                // The feed's events are unfiltered; the view decides, as for every read.
                guard let view = event.view(for: viewer) else { continue }
                try await deliver(.event(HistoryEntry(event, view: view, viewer: viewer)), position: event.seq)
                lastSent = .now
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
            while true {
                let page = try await list(ListQuery(
                    region: scope.region, ownerID: owner, sortKey: .createdAt, ascending: true, limit: pageSize,
                    offset: items.count))
                items += page.items
                if page.items.count < pageSize { return items }
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
            for permission in try await reader.permissions(serviceID: service.id) {
                add(.permission(permission), providerID: service.ownerID)
            }
        }
        var endpoints = try await all { try await reader.listEndpoints($0, filter: EndpointFilter()) }
        var seen = Set(endpoints.map(\.id))
        for service in services {
            for endpoint in try await reader.endpoints(serviceID: service.id) where seen.insert(endpoint.id).inserted {
                endpoints.append(endpoint)
            }
        }
        for endpoint in endpoints { add(.endpoint(endpoint), providerID: providers[endpoint.serviceID]) }
        return states
    }
}
