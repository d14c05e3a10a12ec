import Foundation
internal import SQLiteNIO
import VPCEPRegistry

/// The change log (schema v4): `log_head` and `change_events`; retention's mark (v5): `log_compaction`.
extension SQLiteAccess {
    static let eventColumns = """
        seq, region, kind, resource_id, type, state, previous, revision_before, revision_after, actor, request_id, \
        idempotency_key, committed_at, owner_id, provider_id, service_id, provider_sees
        """

    /// Numbers `events` from the batch's head and holds them in the writer's `ChangeLogBuffer`; the
    /// batch writes them all just before it commits (`writeHeldEvents`), so a transaction's events cost
    /// it no statement of its own. The numbers are still the transaction's alone: members run one at a
    /// time, and a member's rollback gives its numbers back (`ChangeLogBuffer.memberRolledBack`).
    func appendEvents(_ events: [ChangeEvent]) async throws -> [ChangeEvent] {
        guard !events.isEmpty else { return [] }
        guard let log else { throw StoreError(code: .internalError, message: "events appended outside a write transaction") }
        let head = try await batchHead(log)
        var numbered = events
        var rows: [[SQLiteData]] = []
        rows.reserveCapacity(events.count)
        for index in numbered.indices {
            numbered[index].seq = head + 1 + UInt64(index)
            rows.append(try Self.eventRow(numbered[index]))
        }
        log.append(rows, events: numbered, after: head)
        log.noteServices(events.lazy.compactMap(\.serviceID))
        return numbered
    }

    /// The head as this batch sees it: read from `log_head` once, then counted in memory.
    private func batchHead(_ log: ChangeLogBuffer) async throws -> UInt64 {
        if let head = log.head { return head }
        log.learnHead(try await storedHead())
        guard let head = log.head else { throw StoreError.corrupt("log_head") }
        return head
    }

    private func storedHead() async throws -> UInt64 {
        guard let head = try await rows("SELECT seq FROM log_head WHERE id = 1").first?.int("seq") else {
            throw StoreError.corrupt("log_head")
        }
        return UInt64(head)
    }

    private static func eventRow(_ event: ChangeEvent) throws -> [SQLiteData] {
        [
            .integer(SQLiteInt64(event.seq)), .text(event.region), .text(event.kind.rawValue),
            .text(event.resourceID), .text(event.type.rawValue), .text(try event.state.serialized()),
            try event.previous.map { .text(try $0.serialized()) } ?? .null,
            event.revisionBefore.map { .integer(SQLiteInt64(clamping: $0)) } ?? .null,
            event.revisionAfter.map { .integer(SQLiteInt64(clamping: $0)) } ?? .null,
            .text(event.actor), .text(event.requestID), .text(event.idempotencyKey), .date(event.committedAt),
            .text(event.ownerID), event.providerID.map { .text($0) } ?? .null,
            event.serviceID.map { .text($0) } ?? .null, .integer(event.providerSees ? 1 : 0),
        ]
    }

    /// Rows per `INSERT`: 17 columns each, well under SQLite's 32,766 bound parameters.
    private static let rowsPerInsert = 512

    /// Writes held rows in as few statements as SQLite's parameter limit allows.
    static func insertEventRows(_ rows: [[SQLiteData]], _ run: (String, [SQLiteData]) async throws -> Void) async throws {
        var start = rows.startIndex
        while start < rows.endIndex {
            let end = min(start + rowsPerInsert, rows.endIndex)
            let values = Array(repeating: "(\(placeholders(17)))", count: end - start).joined(separator: ", ")
            try await run("INSERT INTO change_events (\(eventColumns)) VALUES \(values)", Array(rows[start..<end].joined()))
            start = end
        }
    }

    /// A read of the log inside a write transaction sees the events held so far.
    private func writeHeldEvents() async throws {
        guard let log else { return }
        let held = log.takeForRead()
        guard !held.isEmpty else { return }
        try await Self.insertEventRows(held) { sql, binds in try await execute(sql, binds) }
    }

    func logHead() async throws -> UInt64 {
        if let head = log?.head { return head }
        return try await storedHead()
    }

    func logCompacted() async throws -> UInt64 {
        guard let seq = try await rows("SELECT seq FROM log_compaction WHERE id = 1").first?.int("seq") else {
            throw StoreError.corrupt("log_compaction")
        }
        return UInt64(max(seq, 0))
    }

    func compactEvents(committedBefore date: Date, limit: Int) async throws -> Int {
        try await writeHeldEvents()
        // A prefix by sequence: the first event at or after the cutoff ends it, even if a later one is
        // older (clocks of several servers), so nothing after `logCompacted()` is ever missing.
        let oldest = try await rows(
            """
            SELECT seq, committed_at < ? AS expired FROM change_events ORDER BY seq ASC LIMIT ?
            """, [.date(date), .integer(SQLiteInt64(max(limit, 0)))])
        var last: Int?
        for row in oldest {
            guard try row.int("expired") != 0 else { break }
            last = try row.int("seq")
        }
        guard let last else { return 0 }
        let removed = try await rows(
            "DELETE FROM change_events WHERE seq <= ? RETURNING seq", [.integer(SQLiteInt64(last))]).count
        try await execute(
            "UPDATE log_compaction SET seq = max(seq, ?) WHERE id = 1", [.integer(SQLiteInt64(last))])
        return removed
    }

    func listEvents(_ query: EventQuery) async throws -> ListResult<ChangeEvent> {
        try await writeHeldEvents()
        let statements = Self.eventListStatements(query)
        let page = try await rows(statements.page.sql, statements.page.binds)
        guard query.countsTotal else { return ListResult(items: try page.map(Self.event), totalCount: page.count) }
        let total = try await rows(statements.count.sql, statements.count.binds).first?.int("n") ?? 0
        return ListResult(items: try page.map(Self.event), totalCount: total)
    }

    /// The page of `query` in sequence order, and the count of its matches.
    static func eventListStatements(_ query: EventQuery) -> ListStatements {
        var (conditions, binds) = eventVisibility(query.viewer)
        func add(_ condition: String, _ values: [SQLiteData]) {
            conditions.append(condition)
            binds += values
        }
        if query.afterSeq > 0 { add("seq > ?", [.integer(SQLiteInt64(clamping: query.afterSeq))]) }
        if let resourceID = query.resourceID { add("resource_id = ?", [.text(resourceID)]) }
        if let since = query.since { add("committed_at >= ?", [.date(since)]) }
        if let until = query.until { add("committed_at < ?", [.date(until)]) }
        if !query.kinds.isEmpty {
            let kinds = query.kinds.map(\.rawValue).sorted()
            add("kind IN (\(placeholders(kinds.count)))", kinds.map { .text($0) })
        }
        if !query.types.isEmpty {
            let types = query.types.map(\.rawValue).sorted()
            add("type IN (\(placeholders(types.count)))", types.map { .text($0) })
        }
        let order = query.ascending ? "ASC" : "DESC"
        let limit = SQLiteData.integer(SQLiteInt64(clamping: query.limit))
        let offset = SQLiteData.integer(SQLiteInt64(clamping: query.offset))
        guard let serviceID = query.serviceID else {
            let whereClause = conditions.joined(separator: " AND ")
            return ListStatements(
                page: ("""
                    SELECT \(eventColumns) FROM change_events WHERE \(whereClause)
                    ORDER BY seq \(order) LIMIT ? OFFSET ?
                    """, binds + [limit, offset]),
                count: ("SELECT count(*) AS n FROM change_events WHERE \(whereClause)", binds))
        }
        // A service's events are two index ranges (migration 10): its own, found by resource, and its
        // allow-list's and endpoints', found by service. Each is read in order up to the page's end and
        // the two merged, so a page costs about a page of rows however long the log goes on.
        let own = (conditions + ["resource_id = ?", "service_id = ?"]).joined(separator: " AND ")
        let related = (conditions + ["service_id = ?", "service_id != resource_id"]).joined(separator: " AND ")
        let ownBinds = binds + [.text(serviceID), .text(serviceID)]
        let relatedBinds = binds + [.text(serviceID)]
        let (reach, overflow) = query.limit.addingReportingOverflow(query.offset)
        let arm = SQLiteData.integer(SQLiteInt64(clamping: overflow ? Int.max : reach))
        return ListStatements(
            page: ("""
                SELECT * FROM (SELECT \(eventColumns) FROM change_events WHERE \(own) ORDER BY seq \(order) LIMIT ?)
                UNION ALL
                SELECT * FROM (SELECT \(eventColumns) FROM change_events WHERE \(related) ORDER BY seq \(order) LIMIT ?)
                ORDER BY seq \(order) LIMIT ? OFFSET ?
                """, ownBinds + [arm] + relatedBinds + [arm, limit, offset]),
            count: ("""
                SELECT (SELECT count(*) FROM change_events WHERE \(own))
                    + (SELECT count(*) FROM change_events WHERE \(related)) AS n
                """, ownBinds + relatedBinds))
    }

    /// `ChangeEvent.view(for:)` as conditions on `change_events`: the viewer's region, then for tenants
    /// their own resources' events and the events their services' providers see. The provider's term
    /// says `provider_id != owner_id` because `change_events_by_provider` holds only those (migration 10):
    /// an event whose provider is its owner is found by `owner_id = ?`.
    static func eventVisibility(_ viewer: EventViewer) -> (conditions: [String], binds: [SQLiteData]) {
        if viewer.isSystem { return (["1 = 1"], []) }
        if viewer.isOperator {
            return (["region = ?"], [.text(viewer.region)])
        }
        return (
            ["region = ?", "(owner_id = ? OR (provider_id = ? AND provider_sees = 1 AND provider_id != owner_id))"],
            [.text(viewer.region), .text(viewer.ownerID), .text(viewer.ownerID)]
        )
    }

    private static func event(_ row: StoreRow) throws -> ChangeEvent {
        func decode<E: RawRepresentable<String>>(_ column: String, as: E.Type) throws -> E {
            let text = try row.text(column)
            guard let value = E(rawValue: text) else { throw StoreError.corrupt("\(column) \(text)") }
            return value
        }
        func optionalText(_ column: String) throws -> String? {
            switch row.column(column) {
            case .text(let value)?: return value
            case .null?, nil: return nil
            default: throw StoreError.corrupt(column)
            }
        }
        func optionalRevision(_ column: String) throws -> UInt64? {
            switch row.column(column) {
            case .integer(let value)?: return UInt64(max(value, 0))
            case .null?, nil: return nil
            default: throw StoreError.corrupt(column)
            }
        }
        let kind = try decode("kind", as: ResourceKind.self)
        let state: ResourceState
        let previous: ResourceState?
        do {
            state = try ResourceState(kind: kind, serialized: try row.text("state"))
            previous = try optionalText("previous").map { try ResourceState(kind: kind, serialized: $0) }
        } catch {
            throw StoreError.corrupt("change_events.state")
        }
        var event = ChangeEvent(
            seq: UInt64(max(try row.int("seq"), 0)), type: try decode("type", as: ChangeType.self), state: state,
            previous: previous, actor: try row.text("actor"), requestID: try row.text("request_id"),
            idempotencyKey: try row.text("idempotency_key"), committedAt: try row.date("committed_at"),
            providerID: try optionalText("provider_id"))
        // What was decided when the event was written stands, whatever the constructor derives today.
        event.region = try row.text("region")
        event.ownerID = try row.text("owner_id")
        event.serviceID = try optionalText("service_id")
        event.providerSees = try row.int("provider_sees") != 0
        event.revisionBefore = try optionalRevision("revision_before")
        event.revisionAfter = try optionalRevision("revision_after")
        return event
    }
}
