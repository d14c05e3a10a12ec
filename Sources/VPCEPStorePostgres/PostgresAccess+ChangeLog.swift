import Foundation
import VPCEPRegistry

/// The change log (schema v4): `log_head` and `change_events`; retention's mark (v5): `log_compaction`.
extension PostgresAccess {
    private static let eventColumns = """
        seq, region, kind, resource_id, type, state, previous, revision_before, revision_after, actor, request_id, \
        idempotency_key, committed_at, owner_id, provider_id, service_id, provider_sees
        """

    /// Events per `INSERT`: 17 parameters each, well under PostgreSQL's 65,535.
    private static let eventsPerInsert = 500

    func appendEvents(_ events: [ChangeEvent]) async throws -> [ChangeEvent] {
        guard !events.isEmpty else { return [] }
        // Numbered in memory from the head that the write batch read under the head row's lock, held
        // until the batch ends (`PostgresRegistryStore.runBatch`), so numbers are taken in commit order;
        // the batch writes the head back before its commit, and a rollback gives the numbers back.
        guard let head else {
            throw StoreError(code: .internalError, message: "change events appended outside a write transaction")
        }
        let first = head.take(events.count)
        head.note(events.lazy.compactMap(\.serviceID))
        var numbered = events
        for index in numbered.indices { numbered[index].seq = UInt64(first + Int64(index)) }
        for start in stride(from: 0, to: numbered.count, by: Self.eventsPerInsert) {
            let chunk = numbered[start..<min(start + Self.eventsPerInsert, numbered.count)]
            try await insert(into: "change_events", columns: Self.eventColumns, width: 17, try chunk.flatMap(Self.eventBinds))
        }
        return numbered
    }

    private static func eventBinds(_ event: ChangeEvent) throws -> [PGBind] {
        [
            .integer(Int64(event.seq)), .text(event.region), .text(event.kind.rawValue),
            .text(event.resourceID), .text(event.type.rawValue), .text(try event.state.serialized()),
            try event.previous.map { .text(try $0.serialized()) } ?? .null,
            event.revisionBefore.map { .integer(Int64(clamping: $0)) } ?? .null,
            event.revisionAfter.map { .integer(Int64(clamping: $0)) } ?? .null,
            .text(event.actor), .text(event.requestID), .text(event.idempotencyKey), .date(event.committedAt),
            .text(event.ownerID), event.providerID.map { .text($0) } ?? .null,
            event.serviceID.map { .text($0) } ?? .null, .integer(event.providerSees ? 1 : 0),
        ]
    }

    func logHead() async throws -> UInt64 {
        // In a write batch the stored head is written back only at its end.
        if let head { return UInt64(head.value) }
        guard let head = try await rows("SELECT seq FROM log_head WHERE id = 1").first?.int("seq") else {
            throw StoreError.corrupt("log_head")
        }
        return UInt64(head)
    }

    func logCompacted() async throws -> UInt64 {
        guard let seq = try await rows("SELECT seq FROM log_compaction WHERE id = 1").first?.int("seq") else {
            throw StoreError.corrupt("log_compaction")
        }
        return UInt64(max(seq, 0))
    }

    func compactEvents(committedBefore date: Date, limit: Int) async throws -> Int {
        // A prefix by sequence: the first event at or after the cutoff ends it, even if a later one is
        // older (clocks of several servers), so nothing after `logCompacted()` is ever missing.
        let oldest = try await rows(
            """
            SELECT seq, committed_at < ? AS expired FROM change_events ORDER BY seq ASC LIMIT ?
            """, [.date(date), .integer(Int64(max(limit, 0)))])
        var last: Int?
        for row in oldest {
            guard try row.int("expired") != 0 else { break }
            last = try row.int("seq")
        }
        guard let last else { return 0 }
        let removed = try await rows(
            "DELETE FROM change_events WHERE seq <= ? RETURNING seq", [.integer(Int64(last))]).count
        try await execute(
            "UPDATE log_compaction SET seq = GREATEST(seq, ?) WHERE id = 1", [.integer(Int64(last))])
        return removed
    }

    func listEvents(_ query: EventQuery) async throws -> ListResult<ChangeEvent> {
        var (conditions, binds) = Self.eventVisibility(query.viewer)
        func add(_ condition: String, _ values: [PGBind]) {
            conditions.append(condition)
            binds += values
        }
        if query.afterSeq > 0 { add("seq > ?", [.integer(Int64(clamping: query.afterSeq))]) }
        if let resourceID = query.resourceID { add("resource_id = ?", [.text(resourceID)]) }
        if let since = query.since { add("committed_at >= ?", [.date(since)]) }
        if let until = query.until { add("committed_at < ?", [.date(until)]) }
        if !query.kinds.isEmpty {
            let kinds = query.kinds.map(\.rawValue).sorted()
            add("kind IN (\(Self.placeholders(kinds.count)))", kinds.map { .text($0) })
        }
        if !query.types.isEmpty {
            let types = query.types.map(\.rawValue).sorted()
            add("type IN (\(Self.placeholders(types.count)))", types.map { .text($0) })
        }
        if let serviceID = query.serviceID { add("service_id = ?", [.text(serviceID)]) }
        let whereClause = conditions.joined(separator: " AND ")
        let page = try await rows(
            """
            SELECT \(Self.eventColumns) FROM change_events WHERE \(whereClause)
            ORDER BY seq \(query.ascending ? "ASC" : "DESC") LIMIT ? OFFSET ?
            """,
            binds + [.integer(Int64(query.limit)), .integer(Int64(query.offset))])
        guard query.countsTotal else { return ListResult(items: try page.map(Self.event), totalCount: page.count) }
        let total = try await rows("SELECT count(*) AS n FROM change_events WHERE \(whereClause)", binds)
            .first?.int("n") ?? 0
        return ListResult(items: try page.map(Self.event), totalCount: total)
    }

    /// `ChangeEvent.view(for:)` as conditions on `change_events`: the viewer's region, then for tenants
    /// their own resources' events and the events their services' providers see.
    static func eventVisibility(_ viewer: EventViewer) -> (conditions: [String], binds: [PGBind]) {
        if viewer.isSystem { return (["1 = 1"], []) }
        if viewer.isOperator {
            return (["region = ?"], [.text(viewer.region)])
        }
        return (
            ["region = ?", "(owner_id = ? OR (provider_id = ? AND provider_sees = 1))"],
            [.text(viewer.region), .text(viewer.ownerID), .text(viewer.ownerID)]
        )
    }

    private static func event(_ row: PGRow) throws -> ChangeEvent {
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
