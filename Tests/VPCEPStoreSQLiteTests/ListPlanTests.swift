import Foundation
import SQLiteNIO
import Testing
@testable import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// Every list filter shape the registry issues for endpoints and services is an index range in the
/// list's order (issue 14): no full scan of the table, no sort of the matches, for the page (first or
/// by token) and for its count. What the lists return is the store contract's concern
/// (Tests/VPCEPStoreContractTests); this checks only how SQLite plans them.
@Suite("List pages are index ranges")
struct ListPlanTests {
    struct Shape: CustomStringConvertible {
        var name: String
        var statements: SQLiteAccess.ListStatements

        var description: String { name }
    }

    /// Region-wide (an operator) and one owner's; both orders, both directions; first page and by token.
    static func queries() -> [ListQuery] {
        var queries: [ListQuery] = []
        for ownerID in [nil, "tenant-a"] {
            for sortKey in [ListQuery.SortKey.createdAt, .updatedAt] {
                for ascending in [false, true] {
                    for after in [nil, ListCursor(sortValue: 1_700_000_000_000, id: "ep-1")] {
                        queries.append(
                            ListQuery(
                                region: "r1", ownerID: ownerID, sortKey: sortKey, ascending: ascending, limit: 100,
                                offset: 0, after: after))
                    }
                }
            }
        }
        return queries
    }

    static func name(_ query: ListQuery, _ filter: String) -> String {
        "\(filter) \(query.ownerID == nil ? "region" : "owner") \(query.sortKey.rawValue) "
            + "\(query.ascending ? "asc" : "desc") \(query.after == nil ? "first" : "token")"
    }

    static func shapes() -> [Shape] {
        let endpointFilters: [(String, EndpointFilter)] = [
            ("endpoints", EndpointFilter()),
            ("endpoints status", EndpointFilter(status: .pendingAcceptance)),
            ("endpoints tag", EndpointFilter(tags: [Tag(key: "env", value: "dev")])),
            ("endpoints tag+status", EndpointFilter(status: .accepted, tags: [Tag(key: "env", value: "dev")])),
            ("endpoints two tags", EndpointFilter(tags: [Tag(key: "env", value: "dev"), Tag(key: "app", value: "a")])),
            ("endpoints tag any value", EndpointFilter(tags: [Tag(key: "env", value: "")])),
            (
                "endpoints tags any",
                EndpointFilter(tags: [Tag(key: "env", value: "dev"), Tag(key: "app", value: "a")], tagMatch: .any)
            ),
        ]
        let serviceFilters: [(String, EndpointServiceFilter)] = [
            ("services", EndpointServiceFilter()),
            ("services status", EndpointServiceFilter(status: .available)),
            ("services tag", EndpointServiceFilter(tags: [Tag(key: "env", value: "dev")])),
            ("services tag+status", EndpointServiceFilter(status: .available, tags: [Tag(key: "env", value: "dev")])),
        ]
        return queries().flatMap { query in
            endpointFilters.map { name, filter in
                Shape(name: Self.name(query, name), statements: SQLiteAccess.endpointListStatements(query, filter: filter))
            }
                + serviceFilters.map { name, filter in
                    Shape(name: Self.name(query, name), statements: SQLiteAccess.serviceListStatements(query, filter: filter))
                }
        }
    }

    /// A store connection on a fresh database with every migration applied, closed afterwards.
    private static func withMigratedConnection(_ body: (StoreConnection) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let connection = try await StoreConnection.open(path: directory + "/plan.sqlite")
        do {
            for statement in SQLiteRegistryStore.migrations.joined() { _ = try await connection.query(statement) }
            try await body(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    @Test func everyFilterShapeIsAnIndexRangeInOrder() async throws {
        try await Self.withMigratedConnection { connection in
            for shape in Self.shapes() {
                for (sql, binds) in [shape.statements.page, shape.statements.count] {
                    let plan = try await connection.query("EXPLAIN QUERY PLAN " + sql, binds)
                        .compactMap { $0.column("detail")?.string }
                    #expect(plan.contains { $0.hasPrefix("SEARCH") }, "\(shape): \(plan)")
                    #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(shape): \(plan)")
                    #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(shape): \(plan)")
                }
            }
        }
    }

    /// A page of the change log reads index ranges in sequence order whichever the viewer and filter,
    /// never the region's events whole: by service, the service's own events (by resource) and its
    /// allow-list's and endpoints' (the partial service index of migration 10); by resource, one range;
    /// a tenant's view, its own events (by owner) and others' on its services (the partial provider
    /// index); an operator's, the log itself in sequence order. The only sorts are of what those
    /// ranges return, each cut at the page's end.
    @Test func everyChangeLogPageIsIndexRanges() async throws {
        let tenant = EventViewer(region: "r1", ownerID: "tenant-a", isOperator: false)
        let operatorView = EventViewer(region: "r1", ownerID: "operator:ops", isOperator: true)
        var cases: [(name: String, query: EventQuery, ranges: [String])] = []
        for ascending in [true, false] {
            for afterSeq: UInt64 in [0, 10] {
                let direction = "\(ascending ? "asc" : "desc") after \(afterSeq)"
                for (viewerName, viewer) in [("tenant", tenant), ("operator", operatorView)] {
                    cases.append((
                        "\(viewerName) service \(direction)",
                        EventQuery(viewer: viewer, afterSeq: afterSeq, serviceID: "svc-1", ascending: ascending, limit: 256),
                        ["change_events_by_resource", "change_events_by_service"]))
                    cases.append((
                        "\(viewerName) resource \(direction)",
                        EventQuery(viewer: viewer, resourceID: "ep-1", afterSeq: afterSeq, ascending: ascending, limit: 20),
                        ["change_events_by_resource"]))
                }
                cases.append((
                    "tenant \(direction)", EventQuery(viewer: tenant, afterSeq: afterSeq, ascending: ascending, limit: 20, offset: 40),
                    ["change_events_by_owner", "change_events_by_provider"]))
                cases.append((
                    "tenant kinds \(direction)",
                    EventQuery(viewer: tenant, afterSeq: afterSeq, kinds: [.endpoint], ascending: ascending, limit: 20),
                    ["change_events_by_owner", "change_events_by_provider"]))
                cases.append(("operator \(direction)", EventQuery(viewer: operatorView, afterSeq: afterSeq, ascending: ascending, limit: 20), []))
            }
        }
        try await Self.withMigratedConnection { connection in
            for (name, query, ranges) in cases {
                let statement = SQLiteAccess.eventListStatements(query).page
                let plan = try await connection.query("EXPLAIN QUERY PLAN " + statement.sql, statement.binds)
                    .compactMap { $0.column("detail")?.string }
                for index in ranges {
                    #expect(plan.contains { $0.hasPrefix("SEARCH change_events USING INDEX \(index) (") }, "\(name): \(plan)")
                }
                #expect(!plan.contains { $0.contains("change_events_by_time") }, "\(name): \(plan)")
                if ranges.isEmpty {
                    // The log in sequence order, no sort: a page reads about a page of rows.
                    #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(name): \(plan)")
                } else {
                    #expect(!plan.contains { $0.hasPrefix("SCAN change_events") }, "\(name): \(plan)")
                }
            }
        }
    }

    /// A kept statement is prepared once: binding other values does not make SQLite prepare it again.
    /// Without the stable-plan setting of the store's connections, SQLite would for each of these: a
    /// bare `LIMIT ?`, an equality on a column before an ORDER BY, every list page.
    @Test func anotherBindingDoesNotPrepareAStatementAgain() async throws {
        try await Self.withMigratedConnection { connection in
            let migrationStatements = connection.count
            for limit in [1, 2, 3] { _ = try await connection.query("SELECT 1 AS one LIMIT ?", [.integer(limit)]) }
            for region in ["a", "b", "c"] {
                _ = try await connection.query("SELECT id FROM vpcs WHERE region = ? ORDER BY name", [.text(region)])
            }
            for (offset, limit) in [(0, 100), (0, 20), (40, 20)] {
                for ownerID in ["tenant-a", "tenant-b"] {
                    let query = ListQuery(region: "r1", ownerID: ownerID, sortKey: .createdAt, ascending: false,
                                          limit: limit, offset: offset, after: nil)
                    let statements = [
                        SQLiteAccess.endpointListStatements(query, filter: EndpointFilter(status: .pendingAcceptance)),
                        SQLiteAccess.serviceListStatements(query, filter: EndpointServiceFilter(tags: [Tag(key: "env", value: "dev")])),
                    ]
                    for statement in statements { _ = try await connection.query(statement.page.sql, statement.page.binds) }
                }
            }
            // One statement each, whatever the values: the lists' text does not carry them.
            #expect(connection.count == migrationStatements + 4)
            #expect(connection.reprepares == 0)
        }
    }

    /// The common tag filter, `key=value` over the region in the default order, reads the tag table's
    /// index in order and joins each row by id: the page reads ~a page of tag rows; its count is one
    /// row of `list_counts`.
    @Test func aTagFilterIsDrivenByTheTagIndex() async throws {
        try await Self.withMigratedConnection { connection in
            let query = ListQuery(
                region: "r1", ownerID: nil, sortKey: .createdAt, ascending: false, limit: 100, offset: 0,
                after: ListCursor(sortValue: 1, id: "ep-1"))
            let endpoints = SQLiteAccess.endpointListStatements(query, filter: EndpointFilter(tags: [Tag(key: "env", value: "dev")]))
            let services = SQLiteAccess.serviceListStatements(
                query, filter: EndpointServiceFilter(tags: [Tag(key: "env", value: "dev")]))
            for (statements, index) in [(endpoints, "endpoint_tags_page"), (services, "endpoint_service_tags_page")] {
                let plan = try await connection.query("EXPLAIN QUERY PLAN " + statements.page.sql, statements.page.binds)
                    .compactMap { $0.column("detail")?.string }
                #expect(
                    plan.first
                        == "SEARCH d USING COVERING INDEX \(index) "
                        + "(resource_region=? AND key=? AND value=? AND (resource_created_at,resource_id)<(?,?))",
                    "\(plan)")
                let count = try await connection.query("EXPLAIN QUERY PLAN " + statements.count.sql, statements.count.binds)
                    .compactMap { $0.column("detail")?.string }
                #expect(count.contains { $0.hasPrefix("SEARCH list_counts USING PRIMARY KEY") }, "\(count)")
            }
        }
    }
}
