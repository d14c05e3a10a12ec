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
    ///
    /// The matches are read as disjoint index ranges ("arms"), each in sequence order and cut at the
    /// page's end, then merged, so a page reads about a page of rows however long the log is: SQLite,
    /// left to itself, reads a tenant's or an operator's view through the region's time index and
    /// sorts every event of the region for each page. A read by resource is one range of
    /// `change_events_by_resource`; by service, the service's own events (by resource) and its
    /// allow-list's and endpoints' (by service, migration 10); otherwise the view drives: a tenant's
    /// own events (by owner) and those others made on its services (by provider, migration 10), an
    /// operator's the log in sequence order. The count adds the arms' counts.
    static func eventListStatements(_ query: EventQuery) -> ListStatements {
        var filters: [String] = []
        var binds: [SQLiteData] = []
        func add(_ condition: String, _ values: [SQLiteData]) {
            filters.append(condition)
            binds += values
        }
        if query.afterSeq > 0 { add("seq > ?", [.integer(SQLiteInt64(clamping: query.afterSeq))]) }
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
        let byTime = query.since != nil || query.until != nil
        func arms(counting: Bool) -> [Arm] {
            if let resourceID = query.resourceID {
                var arm = eventVisibility(query.viewer)
                arm.append("resource_id = ?", [.text(resourceID)])
                if let serviceID = query.serviceID { arm.append("service_id = ?", [.text(serviceID)]) }
                return [arm]
            }
            if let serviceID = query.serviceID {
                var own = eventVisibility(query.viewer)
                own.append("resource_id = ?", [.text(serviceID)])
                own.append("service_id = ?", [.text(serviceID)])
                var related = eventVisibility(query.viewer)
                related.append("service_id = ?", [.text(serviceID)])
                related.append("service_id != resource_id", [])
                return [own, related]
            }
            return eventViewArms(query.viewer, inSequenceOrder: !counting && !byTime)
        }
        let order = query.ascending ? "ASC" : "DESC"
        let limit = SQLiteData.integer(SQLiteInt64(clamping: query.limit))
        let offset = SQLiteData.integer(SQLiteInt64(clamping: query.offset))
        let pageArms = arms(counting: false).map { $0.and(filters, binds) }
        let countArms = arms(counting: true).map { $0.and(filters, binds) }
        let count = (
            sql: "SELECT " + countArms.map { "(SELECT count(*) FROM change_events WHERE \($0.whereClause))" }
                .joined(separator: " + ") + " AS n",
            binds: countArms.flatMap(\.binds))
        if pageArms.count == 1 {
            return ListStatements(
                page: ("""
                    SELECT \(eventColumns) FROM change_events WHERE \(pageArms[0].whereClause)
                    ORDER BY seq \(order) LIMIT ? OFFSET ?
                    """, pageArms[0].binds + [limit, offset]),
                count: count)
        }
        let (reach, overflow) = query.limit.addingReportingOverflow(query.offset)
        let armLimit = SQLiteData.integer(SQLiteInt64(clamping: overflow ? Int.max : reach))
        let union = pageArms.map { arm in
            "SELECT * FROM (SELECT \(eventColumns) FROM change_events WHERE \(arm.whereClause) ORDER BY seq \(order) LIMIT ?)"
        }.joined(separator: "\nUNION ALL\n")
        return ListStatements(
            page: ("\(union)\nORDER BY seq \(order) LIMIT ? OFFSET ?", pageArms.flatMap { $0.binds + [armLimit] } + [limit, offset]),
            count: count)
    }

    /// Conditions on `change_events` that together select one disjoint part of a query's matches.
    struct Arm {
        var conditions: [String]
        var binds: [SQLiteData]

        var whereClause: String { conditions.joined(separator: " AND ") }

        mutating func append(_ condition: String, _ values: [SQLiteData]) {
            conditions.append(condition)
            binds += values
        }

        func and(_ more: [String], _ values: [SQLiteData]) -> Arm {
            Arm(conditions: conditions + more, binds: binds + values)
        }
    }

    /// `ChangeEvent.view(for:)` as one condition on `change_events`: the viewer's region, then for
    /// tenants their own resources' events and the events their services' providers see. The
    /// provider's term says `provider_id != owner_id` because `change_events_by_provider` holds only
    /// those (migration 10): an event whose provider is its owner is found by `owner_id = ?`.
    static func eventVisibility(_ viewer: EventViewer) -> Arm {
        if viewer.isSystem { return Arm(conditions: ["1 = 1"], binds: []) }
        if viewer.isOperator { return Arm(conditions: ["region = ?"], binds: [.text(viewer.region)]) }
        return Arm(
            conditions: ["region = ?", "(owner_id = ? OR (provider_id = ? AND provider_sees = 1 AND provider_id != owner_id))"],
            binds: [.text(viewer.region), .text(viewer.ownerID), .text(viewer.ownerID)])
    }

    /// The same view as disjoint index ranges: a tenant's own events (`change_events_by_owner`) and
    /// the events of other tenants' endpoints on its services (`change_events_by_provider`). An
    /// operator's region is tested on each row of the log read in sequence order when the page is
    /// (`+region` keeps SQLite off the region's time index, which it would read whole and sort), and
    /// through that index when counting or reading a time range.
    static func eventViewArms(_ viewer: EventViewer, inSequenceOrder: Bool) -> [Arm] {
        if viewer.isSystem { return [Arm(conditions: ["1 = 1"], binds: [])] }
        if viewer.isOperator {
            return [Arm(conditions: [inSequenceOrder ? "+region = ?" : "region = ?"], binds: [.text(viewer.region)])]
        }
        return [
            Arm(conditions: ["region = ?", "owner_id = ?"], binds: [.text(viewer.region), .text(viewer.ownerID)]),
            Arm(
                conditions: ["region = ?", "provider_id = ?", "provider_sees = 1", "provider_id != owner_id"],
                binds: [.text(viewer.region), .text(viewer.ownerID)]),
        ]
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
