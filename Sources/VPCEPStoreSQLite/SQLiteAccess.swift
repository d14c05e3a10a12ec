import Foundation
internal import SQLiteNIO
import Synchronization
import VPCEPRegistry

/// The reads and writes of one transaction (or read snapshot) on one connection. Valid only until
/// the transaction ends; the store serializes all use of the connection.
final class SQLiteAccess: RegistryTransaction {
    private let connection: StoreConnection
    private let isActive = Mutex(true)
    /// The batch's held change-log events; nil on the read connection.
    let log: ChangeLogBuffer?
    /// Whether the transaction's caller went away, when the transaction runs in another task than
    /// its caller's (the writer's): its statements are then skipped as a cancelled task's are.
    private let isCancelled: (@Sendable () -> Bool)?

    init(connection: StoreConnection, log: ChangeLogBuffer? = nil, isCancelled: (@Sendable () -> Bool)? = nil) {
        self.connection = connection
        self.log = log
        self.isCancelled = isCancelled
    }

    func end() {
        isActive.withLock { $0 = false }
    }

    func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [StoreRow] {
        guard isActive.withLock({ $0 }) else {
            throw StoreError(code: .internalError, message: "a transaction was used after it ended")
        }
        do {
            if let isCancelled, isCancelled() { throw CancellationError() }
            return try await connection.query(sql, binds)
        } catch is CancellationError {
            // The calling task was cancelled and the statement was skipped: the transaction
            // rolls back, and the caller learns that it was cancelled, not that the store failed.
            throw CancellationError()
        } catch {
            throw StoreError(sqlite: error)
        }
    }

    func execute(_ sql: String, _ binds: [SQLiteData]) async throws {
        _ = try await rows(sql, binds)
    }

    // MARK: VPCs

    private static let vpcColumns = "id, region, owner_id, name, cidr, created_at, updated_at"

    private static func vpc(_ row: StoreRow) throws -> VPC {
        VPC(
            id: try row.text("id"), name: try row.text("name"), cidr: try row.text("cidr"),
            region: try row.text("region"), ownerID: try row.text("owner_id"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    func vpc(id: String, visibleTo visibility: Visibility) async throws -> VPC? {
        try await row(table: "vpcs", columns: Self.vpcColumns, id: id, visibleTo: visibility).map(Self.vpc)
    }

    func listVPCs(_ query: ListQuery) async throws -> ListResult<VPC> {
        try await list(table: "vpcs", columns: Self.vpcColumns, query: query, filters: [], decode: Self.vpc)
    }

    func insertVPC(_ vpc: VPC) async throws {
        try await execute(
            "INSERT INTO vpcs (\(Self.vpcColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                .text(vpc.id), .text(vpc.region), .text(vpc.ownerID), .text(vpc.name), .text(vpc.cidr),
                .date(vpc.createdAt), .date(vpc.updatedAt),
            ])
    }

    // MARK: Subnets

    private static let subnetColumns = "id, vpc_id, region, owner_id, name, cidr, created_at, updated_at"

    private static func subnet(_ row: StoreRow) throws -> Subnet {
        Subnet(
            id: try row.text("id"), vpcID: try row.text("vpc_id"), name: try row.text("name"),
            cidr: try row.text("cidr"), region: try row.text("region"), ownerID: try row.text("owner_id"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    func subnet(id: String, visibleTo visibility: Visibility) async throws -> Subnet? {
        try await row(table: "subnets", columns: Self.subnetColumns, id: id, visibleTo: visibility).map(Self.subnet)
    }

    func subnets(vpcID: String) async throws -> [Subnet] {
        try await rows("SELECT \(Self.subnetColumns) FROM subnets WHERE vpc_id = ?", [.text(vpcID)]).map(Self.subnet)
    }

    func listSubnets(_ query: ListQuery, vpcID: String?) async throws -> ListResult<Subnet> {
        try await list(
            table: "subnets", columns: Self.subnetColumns, query: query,
            filters: vpcID.map { [("vpc_id = ?", [.text($0)])] } ?? [], decode: Self.subnet)
    }

    func insertSubnet(_ subnet: Subnet) async throws {
        try await execute(
            "INSERT INTO subnets (\(Self.subnetColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(subnet.id), .text(subnet.vpcID), .text(subnet.region), .text(subnet.ownerID),
                .text(subnet.name), .text(subnet.cidr), .date(subnet.createdAt), .date(subnet.updatedAt),
            ])
    }

    // MARK: Backends

    private static let backendColumns =
        "id, kind, vpc_id, subnet_id, region, owner_id, name, ip, ingress_cidrs, created_at, updated_at"

    private static func backend(_ row: StoreRow) throws -> Backend {
        let kindText = try row.text("kind")
        guard let kind = BackendKind(rawValue: kindText) else { throw StoreError.corrupt("backend kind \(kindText)") }
        return Backend(
            id: try row.text("id"), kind: kind, vpcID: try row.text("vpc_id"), subnetID: try row.text("subnet_id"),
            name: try row.text("name"), ip: try row.text("ip"), ingressCIDRs: try row.json("ingress_cidrs"),
            region: try row.text("region"), ownerID: try row.text("owner_id"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    func backend(id: String, visibleTo visibility: Visibility) async throws -> Backend? {
        try await row(table: "backends", columns: Self.backendColumns, id: id, visibleTo: visibility).map(Self.backend)
    }

    func listBackends(_ query: ListQuery, kind: BackendKind, vpcID: String?) async throws -> ListResult<Backend> {
        var filters: [(String, [SQLiteData])] = [("kind = ?", [.text(kind.rawValue)])]
        if let vpcID { filters.append(("vpc_id = ?", [.text(vpcID)])) }
        return try await list(
            table: "backends", columns: Self.backendColumns, query: query, filters: filters, decode: Self.backend)
    }

    func allocatedIPs(subnetID: String) async throws -> [String] {
        try await rows("SELECT ip FROM ip_allocations WHERE subnet_id = ?", [.text(subnetID)]).map { try $0.text("ip") }
    }

    func insertBackend(_ backend: Backend) async throws {
        try await execute(
            "INSERT INTO backends (\(Self.backendColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(backend.id), .text(backend.kind.rawValue), .text(backend.vpcID), .text(backend.subnetID),
                .text(backend.region), .text(backend.ownerID), .text(backend.name), .text(backend.ip),
                .json(strings: backend.ingressCIDRs), .date(backend.createdAt), .date(backend.updatedAt),
            ])
        try await execute(
            "INSERT INTO ip_allocations (subnet_id, ip, holder_id) VALUES (?, ?, ?)",
            [.text(backend.subnetID), .text(backend.ip), .text(backend.id)])
    }

    // MARK: Endpoint services

    /// What is stored of a service.
    private static let serviceStoredColumns = """
        id, service_name, name, region, owner_id, vpc_id, service_type, backend_kind, backend_id, ports, \
        approval_enabled, client_ip_mode, description, tags, status, created_at, updated_at, revision, warnings, \
        is_public
        """

    /// What is read: the stored columns and the connection count, computed so it is always exact.
    private static let serviceColumns = serviceStoredColumns + """
        , (SELECT count(*) FROM endpoints e WHERE e.service_id = endpoint_services.id \
        AND e.status IN ('creating', 'accepted', 'suspended')) AS connection_count
        """

    private static func service(_ row: StoreRow) throws -> EndpointService {
        func decode<E: RawRepresentable<String>>(_ column: String, as: E.Type) throws -> E {
            let text = try row.text(column)
            guard let value = E(rawValue: text) else { throw StoreError.corrupt("\(column) \(text)") }
            return value
        }
        let ports = try row.portRecords("ports")
        let tags = try row.tagRecords("tags")
        let revision = try row.int("revision")
        return EndpointService(
            id: try row.text("id"), serviceName: try row.text("service_name"), name: try row.text("name"),
            ownerID: try row.text("owner_id"), region: try row.text("region"), vpcID: try row.text("vpc_id"),
            serviceType: try decode("service_type", as: ServiceType.self),
            backendKind: try decode("backend_kind", as: BackendKind.self), backendID: try row.text("backend_id"),
            ports: ports.map { PortMapping(terminalPort: $0.terminal, servicePort: $0.service, protocol: $0.proto) },
            approvalEnabled: try row.int("approval_enabled") != 0,
            clientIPMode: try decode("client_ip_mode", as: ClientIPMode.self),
            description: try row.text("description"), tags: tags.map { Tag(key: $0.key, value: $0.value) },
            status: try decode("status", as: ServiceStatus.self), connectionCount: try row.int("connection_count"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            revision: UInt64(max(revision, 0)), warnings: try row.strings("warnings"), clientIPNote: "",
            isPublic: try row.int("is_public") != 0)
    }

    func endpointService(id: String, visibleTo visibility: Visibility) async throws -> EndpointService? {
        let (sql, binds) = try Self.serviceLookup(.id, key: id, visibleTo: visibility)
        return try await rows(sql, binds).first.map(Self.service)
    }

    func endpointService(serviceName: String, visibleTo visibility: Visibility) async throws -> EndpointService? {
        let (sql, binds) = try Self.serviceLookup(.serviceName, key: serviceName, visibleTo: visibility)
        return try await rows(sql, binds).first.map(Self.service)
    }

    /// The unique columns a service is looked up by.
    enum ServiceKey: String {
        case id
        case serviceName = "service_name"
    }

    /// One service by a unique key, filtered by `visibility` in the same statement, so that a service the
    /// caller may not see returns no row, exactly like a missing key. The key's unique index finds the
    /// row; the visibility terms (and the allow-list probe) are evaluated on it inside SQLite.
    static func serviceLookup(
        _ key: ServiceKey, key value: String, visibleTo visibility: Visibility
    ) throws -> (sql: String, binds: [SQLiteData]) {
        let (condition, binds) = try visibilityCondition(visibility, table: "endpoint_services")
        return (
            "SELECT \(serviceColumns) FROM endpoint_services WHERE \(key.rawValue) = ? AND \(condition)",
            [.text(value)] + binds
        )
    }

    /// `visibility` as a condition on `table`, whose rows have `region` and `owner_id` columns. The
    /// registry's `Visibility.admits` is the same rule in memory; a grant is translated here, one case each.
    static func visibilityCondition(_ visibility: Visibility, table: String) throws -> (String, [SQLiteData]) {
        var terms: [String] = []
        var binds: [SQLiteData] = [.text(visibility.region)]
        for grant in visibility.grants {
            switch grant {
            case .anyOwner:
                terms.append("1")
            case .owner(let ownerID):
                terms.append("\(table).owner_id = ?")
                binds.append(.text(ownerID))
            case .publicService:
                try requireServices(table)
                terms.append("\(table).is_public = 1")
            case .allowListEntry(let entries):
                try requireServices(table)
                guard !entries.isEmpty else {
                    terms.append("0")
                    continue
                }
                // UNIQUE (service_id, permission) makes this one probe of an index per entry.
                terms.append(
                    "EXISTS (SELECT 1 FROM permissions WHERE permissions.service_id = \(table).id "
                        + "AND permissions.permission IN (\(placeholders(entries.count))))")
                binds += entries.map { .text($0) }
            case .endpointOfService(let serviceID):
                guard table == "endpoints" else {
                    throw StoreError(code: .internalError, message: "an endpoint-of-service grant used on \(table)")
                }
                terms.append("\(table).service_id = ?")
                binds.append(.text(serviceID))
            }
        }
        return ("\(table).region = ? AND (\(terms.isEmpty ? "0" : terms.joined(separator: " OR ")))", binds)
    }

    /// One row of `table` by its id, filtered by `visibility` in the same statement, so that a row the
    /// caller may not see comes back as no row, exactly like a missing id: nothing of it is decoded.
    /// The primary key finds the row; the visibility terms are evaluated on it inside the database.
    private func row(table: String, columns: String, id: String, visibleTo visibility: Visibility) async throws -> StoreRow? {
        let (condition, binds) = try Self.visibilityCondition(visibility, table: table)
        return try await rows(
            "SELECT \(columns) FROM \(table) WHERE \(table).id = ? AND \(condition)", [.text(id)] + binds
        ).first
    }

    /// `visibility` applied to the service that a row of `table` (with a `service_id` column) belongs
    /// to: rows of a service the caller may not see are left out like those of a missing service.
    static func serviceVisibleCondition(_ visibility: Visibility, table: String) throws -> (String, [SQLiteData]) {
        let (condition, binds) = try visibilityCondition(visibility, table: "endpoint_services")
        return (
            "EXISTS (SELECT 1 FROM endpoint_services WHERE endpoint_services.id = \(table).service_id AND \(condition))",
            binds
        )
    }

    private static func requireServices(_ table: String) throws {
        guard table == "endpoint_services" else {
            throw StoreError(
                code: .internalError, message: "a public or allow-list visibility grant used on \(table)")
        }
    }

    func endpointServices(backendID: String) async throws -> [EndpointService] {
        try await rows("SELECT \(Self.serviceColumns) FROM endpoint_services WHERE backend_id = ?", [.text(backendID)])
            .map(Self.service)
    }

    func listEndpointServices(_ query: ListQuery, filter: EndpointServiceFilter) async throws -> ListResult<EndpointService> {
        try await list(Self.serviceListStatements(query, filter: filter), query: query, decode: Self.service)
    }

    static func serviceListStatements(_ query: ListQuery, filter: EndpointServiceFilter) -> ListStatements {
        var filters: [(String, [SQLiteData])] = []
        if let name = filter.name { filters.append(("instr(lower(name), lower(?)) > 0", [.text(name)])) }
        if let id = filter.id { filters.append(("id = ?", [.text(id)])) }
        if let status = filter.status { filters.append(("status = ?", [.text(status.rawValue)])) }
        if filter.publicOnly { filters.append(("is_public = 1", [])) }
        let (driver, tagFilters) = tagPlan(
            filter.tags, match: filter.tagMatch, query: query, table: "endpoint_services", tagTable: "endpoint_service_tags")
        let counter = filter.name == nil && filter.id == nil && !filter.publicOnly
            ? CountKey(status: filter.status?.rawValue, tags: filter.tags) : nil
        return listStatements(
            table: "endpoint_services", columns: serviceColumns, query: query, filters: filters + tagFilters,
            tagDriver: driver, counter: counter)
    }

    func countEndpointServices(ownerID: String, region: String) async throws -> Int {
        try await keptCount(table: "endpoint_services", ownerID: ownerID, region: region)
    }

    /// How many rows of `table` an owner has in a region, as `list_counts` keeps it (migration 9):
    /// one row read, where counting the owner's index entries made each create's quota check cost in
    /// proportion to what the owner already has.
    private func keptCount(table: String, ownerID: String, region: String) async throws -> Int {
        try await rows(
            "SELECT n FROM list_counts WHERE tbl = ? AND region = ? AND owner_id = ? AND dim = 'all' AND k = '' AND v = ''",
            [.text(table), .text(region), .text(ownerID)]
        ).first?.int("n") ?? 0
    }

    private static func serviceBinds(_ service: EndpointService) -> [SQLiteData] {
        [
            .text(service.id), .text(service.serviceName), .text(service.name), .text(service.region),
            .text(service.ownerID), .text(service.vpcID), .text(service.serviceType.rawValue),
            .text(service.backendKind.rawValue), .text(service.backendID), .json(ports: service.ports),
            .integer(service.approvalEnabled ? 1 : 0), .text(service.clientIPMode.rawValue),
            .text(service.description), .json(tags: service.tags),
            .text(service.status.rawValue), .date(service.createdAt), .date(service.updatedAt),
            .integer(SQLiteInt64(clamping: service.revision)), .json(strings: service.warnings),
            .integer(service.isPublic ? 1 : 0),
        ]
    }

    func insertEndpointService(_ service: EndpointService) async throws {
        try await execute(
            "INSERT INTO endpoint_services (\(Self.serviceStoredColumns)) VALUES (\(Self.placeholders(20)))",
            Self.serviceBinds(service))
    }

    func updateEndpointService(_ service: EndpointService) async throws {
        try await updateChangedColumns(table: "endpoint_services", columns: Self.serviceStoredColumnNames,
                                       binds: Self.serviceBinds(service))
    }

    func deleteEndpointService(id: String) async throws {
        try await execute("DELETE FROM permissions WHERE service_id = ?", [.text(id)])
        try await execute("DELETE FROM endpoint_services WHERE id = ?", [.text(id)])
    }

    private static let serviceStoredColumnNames = columnNames(serviceStoredColumns)
    private static let endpointStoredColumnNames = columnNames(endpointStoredColumns)

    /// The names of a column list whose first column is `id`.
    private static func columnNames(_ columns: String) -> [String] {
        let names = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        precondition(names.first == "id", "the first column must be id")
        return names
    }

    /// Stores a record's new values (`binds`, in the order of `columns`, the first being its id),
    /// setting only the columns whose value differs from the stored one.
    ///
    /// SQLite rewrites the entry of every index that holds a column named in an UPDATE's SET list,
    /// changed or not, and a service is in ten indexes, an endpoint in eleven: setting every column made a
    /// description change dirty about nine pages, each written to the log and copied back by the
    /// checkpoint; setting what changed, about three (BENCHMARKS.md). The stored row is on a page the
    /// transaction has just read, so reading it again costs little.
    private func updateChangedColumns(table: String, columns: [String], binds: [SQLiteData]) async throws {
        let id = binds[0]
        let stored = try await rows(
            "SELECT \(columns.dropFirst().joined(separator: ", ")) FROM \(table) WHERE id = ?", [id])
        // No such row: an UPDATE would change nothing either.
        guard let stored = stored.first else { return }
        var assignments: [String] = []
        var values: [SQLiteData] = []
        for index in 1..<columns.count where stored.values[index - 1] != binds[index] {
            assignments.append("\(columns[index]) = ?")
            values.append(binds[index])
        }
        guard !assignments.isEmpty else { return }
        try await execute("UPDATE \(table) SET \(assignments.joined(separator: ", ")) WHERE id = ?", values + [id])
    }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    /// A `key=value` tag filter that drives a list from its tag table's `…_page` index (migration 9).
    struct TagDriver {
        var tagTable: String
        var key: String
        var value: String
    }

    /// How a list applies its tag filter. The common case, one key with one value (or several keys under
    /// `all`, the first of which has one value), in the default order over the whole region, is driven
    /// from the tag table's index in the list's order, so a page reads ~a page of tag rows; any other keys
    /// become conditions. Every other shape (`any` over several keys, several values or any value of a
    /// key, updated_at order, one owner's list) walks the table's own order index and probes each row's
    /// tags by primary key: no sort, but it reads rows until a page of them matches, so a rare tag costs
    /// more (one owner's list reads at most that owner's rows).
    static func tagPlan(
        _ tags: [Tag], match: TagMatch, query: ListQuery, table: String, tagTable: String
    ) -> (TagDriver?, [(String, [SQLiteData])]) {
        let groups = tagGroups(tags)
        guard query.ownerID == nil, query.sortKey == .createdAt, match == .all || groups.count == 1,
            let first = groups.first, first.values.count == 1, let value = first.values.first, !value.isEmpty
        else {
            return (nil, tagConditions(groups, match: match, table: table, tagTable: tagTable))
        }
        let driver = TagDriver(tagTable: tagTable, key: first.key, value: value)
        return (driver, tagConditions(Array(groups.dropFirst()), match: match, table: table, tagTable: tagTable))
    }

    /// The filter's keys in their first order, each with the values asked for.
    private static func tagGroups(_ tags: [Tag]) -> [(key: String, values: [String])] {
        var keys: [String] = []
        var values: [String: [String]] = [:]
        for tag in tags {
            if values[tag.key] == nil { keys.append(tag.key) }
            values[tag.key, default: []].append(tag.value)
        }
        return keys.map { ($0, values[$0] ?? []) }
    }

    /// Tag filters as probes of the tag table's primary key: keys ANDed (`all`) or ORed (`any`), a key's
    /// values ORed, an empty value matches any.
    private static func tagConditions(
        _ groups: [(key: String, values: [String])], match: TagMatch, table: String, tagTable: String
    ) -> [(String, [SQLiteData])] {
        let perKey = groups.map { key, wanted in
            var condition = "EXISTS (SELECT 1 FROM \(tagTable) AS t WHERE t.resource_id = \(table).id AND t.key = ?"
            var binds: [SQLiteData] = [.text(key)]
            if !wanted.contains("") {
                condition += " AND t.value IN (\(placeholders(wanted.count)))"
                binds += wanted.map { .text($0) }
            }
            return (condition + ")", binds)
        }
        // `any`: one condition, the keys' conditions ORed.
        guard match == .any, !perKey.isEmpty else { return perKey }
        return [("(" + perKey.map(\.0).joined(separator: " OR ") + ")", perKey.flatMap(\.1))]
    }

    // MARK: Quotas

    func quotaLimit(ownerID: String, region: String, type: QuotaType) async throws -> Int? {
        try await rows(
            "SELECT quota_limit FROM quota_limits WHERE owner_id = ? AND region = ? AND type = ?",
            [.text(ownerID), .text(region), .text(type.rawValue)]
        ).first?.int("quota_limit")
    }

    func setQuotaLimit(ownerID: String, region: String, type: QuotaType, limit: Int?) async throws {
        if let limit {
            try await execute(
                """
                INSERT INTO quota_limits (owner_id, region, type, quota_limit) VALUES (?, ?, ?, ?)
                ON CONFLICT (owner_id, region, type) DO UPDATE SET quota_limit = excluded.quota_limit
                """,
                [.text(ownerID), .text(region), .text(type.rawValue), .integer(SQLiteInt64(limit))])
        } else {
            try await execute(
                "DELETE FROM quota_limits WHERE owner_id = ? AND region = ? AND type = ?",
                [.text(ownerID), .text(region), .text(type.rawValue)])
        }
    }

    // MARK: Idempotency records

    private static let idempotencyColumns =
        "owner_id, region, idempotency_key, method, fingerprint, result, created_at, expires_at"

    func idempotencyRecord(ownerID: String, region: String, key: String) async throws -> IdempotencyRecord? {
        try await rows(
            "SELECT \(Self.idempotencyColumns) FROM idempotency_records WHERE owner_id = ? AND region = ? AND idempotency_key = ?",
            [.text(ownerID), .text(region), .text(key)]
        ).first.map { row in
            IdempotencyRecord(
                ownerID: try row.text("owner_id"), region: try row.text("region"), key: try row.text("idempotency_key"),
                method: try row.text("method"), fingerprint: try row.text("fingerprint"), result: try row.text("result"),
                createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"))
        }
    }

    func saveIdempotencyRecord(_ record: IdempotencyRecord) async throws {
        try await execute(
            "INSERT OR REPLACE INTO idempotency_records (\(Self.idempotencyColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(record.ownerID), .text(record.region), .text(record.key), .text(record.method),
                .text(record.fingerprint), .text(record.result), .date(record.createdAt), .date(record.expiresAt),
            ])
    }

    func deleteIdempotencyRecords(expiredBy date: Date, limit: Int) async throws -> Int {
        try await rows(
            """
            DELETE FROM idempotency_records WHERE rowid IN
                (SELECT rowid FROM idempotency_records WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)
            RETURNING 1
            """,
            [.date(date), .integer(SQLiteInt64(limit))]
        ).count
    }

    // MARK: Permissions

    private static let permissionColumns = """
        id, service_id, region, permission, permission_type, description, created_at, updated_at, decision, \
        connection_limit, expires_at, on_expiry, expiry_handled
        """

    private static func permission(_ row: StoreRow) throws -> Permission {
        func decode<E: RawRepresentable<String>>(_ column: String, as: E.Type) throws -> E {
            let text = try row.text(column)
            guard let value = E(rawValue: text) else { throw StoreError.corrupt("\(column) \(text)") }
            return value
        }
        let limit: Int? = if case .integer? = row.column("connection_limit") { try row.int("connection_limit") } else { nil }
        let expiresAt: Date? = if case .integer? = row.column("expires_at") { try row.date("expires_at") } else { nil }
        return Permission(
            id: try row.text("id"), serviceID: try row.text("service_id"), permission: try row.text("permission"),
            permissionType: try row.text("permission_type"), description: try row.text("description"),
            region: try row.text("region"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            decision: try decode("decision", as: AccessDecision.self), connectionLimit: limit, expiresAt: expiresAt,
            onExpiry: try decode("on_expiry", as: ExpiryAction.self), expiryHandled: try row.int("expiry_handled") != 0)
    }

    private static func permissionBinds(_ permission: Permission) -> [SQLiteData] {
        [
            .text(permission.id), .text(permission.serviceID), .text(permission.region), .text(permission.permission),
            .text(permission.permissionType), .text(permission.description), .date(permission.createdAt),
            .date(permission.updatedAt), .text(permission.decision.rawValue),
            permission.connectionLimit.map { .integer(.init($0)) } ?? .null, permission.expiresAt.map { .date($0) } ?? .null,
            .text(permission.onExpiry.rawValue), .integer(permission.expiryHandled ? 1 : 0),
        ]
    }

    func permissions(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Permission] {
        let (serviceVisible, binds) = try Self.serviceVisibleCondition(visibility, table: "permissions")
        return try await rows(
            """
            SELECT \(Self.permissionColumns) FROM permissions WHERE service_id = ? AND \(serviceVisible)
            ORDER BY created_at, id
            """,
            [.text(serviceID)] + binds
        ).map(Self.permission)
    }

    func listPermissions(
        _ query: ListQuery, serviceID: String, serviceVisibleTo visibility: Visibility, permission: String?
    ) async throws -> ListResult<Permission> {
        var query = query
        query.ownerID = nil  // permissions have no owner column; the service scopes them
        var filters: [(String, [SQLiteData])] = [
            ("service_id = ?", [.text(serviceID)]), try Self.serviceVisibleCondition(visibility, table: "permissions"),
        ]
        if let permission { filters.append(("instr(lower(permission), lower(?)) > 0", [.text(permission)])) }
        return try await list(
            table: "permissions", columns: Self.permissionColumns, query: query, filters: filters,
            decode: Self.permission)
    }

    func insertPermission(_ permission: Permission) async throws {
        try await execute(
            "INSERT INTO permissions (\(Self.permissionColumns)) VALUES (\(Self.placeholders(13)))",
            Self.permissionBinds(permission))
    }

    func updatePermission(_ permission: Permission) async throws {
        try await execute(
            """
            UPDATE permissions SET description = ?, updated_at = ?, decision = ?, connection_limit = ?, expires_at = ?,
                on_expiry = ?, expiry_handled = ?
            WHERE id = ?
            """,
            // description, then updated_at through expiry_handled, in the column order of `permissionBinds`.
            [.text(permission.description)] + Self.permissionBinds(permission)[7...] + [.text(permission.id)])
    }

    func permissionsDueForExpiry(by date: Date, limit: Int) async throws -> [Permission] {
        try await rows(
            """
            SELECT \(Self.permissionColumns) FROM permissions
            WHERE on_expiry = 'reject' AND expiry_handled = 0 AND expires_at <= ?
            ORDER BY expires_at, id LIMIT ?
            """,
            [.date(date), .integer(.init(limit))]
        ).map(Self.permission)
    }

    func deletePermissions(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        try await execute("DELETE FROM permissions WHERE id IN (\(Self.placeholders(ids.count)))", ids.map { .text($0) })
    }

    // MARK: Endpoints

    private static let endpointStoredColumns = """
        id, region, owner_id, vpc_id, subnet_id, service_id, service_name, service_type, ip, status, marker_id, \
        dns_name, whitelist, enable_whitelist, description, tags, connection_description, decided_by, decided_at, \
        ever_accepted, created_at, updated_at, request_message, decision_reason, revision
        """

    /// The service's current name while it exists, else the last one stored.
    private static let endpointServiceName = """
        COALESCE((SELECT s.service_name FROM endpoint_services s WHERE s.id = endpoints.service_id), \
        endpoints.service_name)
        """

    private static let endpointColumns = endpointStoredColumns.replacingOccurrences(
        of: "service_id, service_name,", with: "service_id, \(endpointServiceName) AS service_name,")

    private static func endpoint(_ row: StoreRow) throws -> Endpoint {
        func decode<E: RawRepresentable<String>>(_ column: String, as: E.Type) throws -> E {
            let text = try row.text(column)
            guard let value = E(rawValue: text) else { throw StoreError.corrupt("\(column) \(text)") }
            return value
        }
        let tags = try row.tagRecords("tags")
        let decidedAt: Date? = if case .integer? = row.column("decided_at") { try row.date("decided_at") } else { nil }
        return Endpoint(
            id: try row.text("id"), ownerID: try row.text("owner_id"), region: try row.text("region"),
            vpcID: try row.text("vpc_id"), subnetID: try row.text("subnet_id"), serviceID: try row.text("service_id"),
            serviceName: try row.text("service_name"), serviceType: try decode("service_type", as: ServiceType.self),
            ip: try row.text("ip"), status: try decode("status", as: EndpointStatus.self),
            markerID: UInt64(max(try row.int("marker_id"), 0)), dnsName: try row.text("dns_name"),
            whitelist: try row.strings("whitelist"), enableWhitelist: try row.int("enable_whitelist") != 0,
            description: try row.text("description"), tags: tags.map { Tag(key: $0.key, value: $0.value) },
            connectionDescription: try row.text("connection_description"), decidedBy: try row.text("decided_by"),
            decidedAt: decidedAt, everAccepted: try row.int("ever_accepted") != 0,
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            requestMessage: try row.text("request_message"), decisionReason: try row.text("decision_reason"),
            revision: UInt64(max(try row.int("revision"), 1)))
    }

    private static func endpointBinds(_ endpoint: Endpoint) -> [SQLiteData] {
        [
            .text(endpoint.id), .text(endpoint.region), .text(endpoint.ownerID), .text(endpoint.vpcID),
            .text(endpoint.subnetID), .text(endpoint.serviceID), .text(endpoint.serviceName),
            .text(endpoint.serviceType.rawValue), .text(endpoint.ip), .text(endpoint.status.rawValue),
            .integer(SQLiteInt64(clamping: endpoint.markerID)), .text(endpoint.dnsName), .json(strings: endpoint.whitelist),
            .integer(endpoint.enableWhitelist ? 1 : 0), .text(endpoint.description),
            .json(tags: endpoint.tags),
            .text(endpoint.connectionDescription), .text(endpoint.decidedBy), endpoint.decidedAt.map { .date($0) } ?? .null,
            .integer(endpoint.everAccepted ? 1 : 0), .date(endpoint.createdAt), .date(endpoint.updatedAt),
            .text(endpoint.requestMessage), .text(endpoint.decisionReason),
            .integer(SQLiteInt64(clamping: endpoint.revision)),
        ]
    }

    func endpoint(id: String, visibleTo visibility: Visibility) async throws -> Endpoint? {
        try await row(table: "endpoints", columns: Self.endpointColumns, id: id, visibleTo: visibility).map(Self.endpoint)
    }

    func listEndpoints(_ query: ListQuery, filter: EndpointFilter) async throws -> ListResult<Endpoint> {
        try await list(Self.endpointListStatements(query, filter: filter), query: query, decode: Self.endpoint)
    }

    static func endpointListStatements(_ query: ListQuery, filter: EndpointFilter) -> ListStatements {
        var filters: [(String, [SQLiteData])] = []
        if let id = filter.id { filters.append(("id = ?", [.text(id)])) }
        if let vpcID = filter.vpcID { filters.append(("vpc_id = ?", [.text(vpcID)])) }
        if let serviceID = filter.serviceID { filters.append(("service_id = ?", [.text(serviceID)])) }
        if let name = filter.serviceName {
            filters.append(("instr(lower(\(endpointServiceName)), lower(?)) > 0", [.text(name)]))
        }
        if let status = filter.status { filters.append(("status = ?", [.text(status.rawValue)])) }
        if let marker = filter.markerID { filters.append(("marker_id = ?", [.integer(SQLiteInt64(clamping: marker))])) }
        let (driver, tagFilters) = tagPlan(
            filter.tags, match: filter.tagMatch, query: query, table: "endpoints", tagTable: "endpoint_tags")
        let counter = filter.id == nil && filter.vpcID == nil && filter.serviceID == nil && filter.serviceName == nil
            && filter.markerID == nil ? CountKey(status: filter.status?.rawValue, tags: filter.tags) : nil
        return listStatements(
            table: "endpoints", columns: endpointColumns, query: query, filters: filters + tagFilters, tagDriver: driver,
            counter: counter)
    }

    func endpoints(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Endpoint] {
        let (serviceVisible, binds) = try Self.serviceVisibleCondition(visibility, table: "endpoints")
        return try await rows(
            "SELECT \(Self.endpointColumns) FROM endpoints WHERE service_id = ? AND \(serviceVisible)",
            [.text(serviceID)] + binds
        ).map(Self.endpoint)
    }

    func countEndpoints(ownerID: String, region: String) async throws -> Int {
        try await keptCount(table: "endpoints", ownerID: ownerID, region: region)
    }

    func countEndpoints(serviceID: String, ownerID: String, excludingStatuses: [EndpointStatus]) async throws -> Int {
        let excluded = excludingStatuses.isEmpty ? "" : " AND status NOT IN (\(Self.placeholders(excludingStatuses.count)))"
        return try await count(
            "SELECT count(*) AS n FROM endpoints WHERE service_id = ? AND owner_id = ?\(excluded)",
            [.text(serviceID), .text(ownerID)] + excludingStatuses.map { .text($0.rawValue) })
    }

    func nextMarkerID() async throws -> UInt64 {
        let value = try await rows("UPDATE sequences SET value = value + 1 WHERE name = 'marker_id' RETURNING value")
            .first?.int("value")
        guard let value else { throw StoreError.corrupt("sequences.marker_id") }
        return UInt64(value)
    }

    func insertEndpoint(_ endpoint: Endpoint) async throws {
        try await execute(
            "INSERT INTO endpoints (\(Self.endpointStoredColumns)) VALUES (\(Self.placeholders(25)))",
            Self.endpointBinds(endpoint))
        try await execute(
            "INSERT INTO ip_allocations (subnet_id, ip, holder_id) VALUES (?, ?, ?)",
            [.text(endpoint.subnetID), .text(endpoint.ip), .text(endpoint.id)])
    }

    func updateEndpoint(_ endpoint: Endpoint) async throws {
        try await updateChangedColumns(table: "endpoints", columns: Self.endpointStoredColumnNames,
                                       binds: Self.endpointBinds(endpoint))
    }

    func deleteEndpoint(id: String) async throws {
        try await execute("DELETE FROM ip_allocations WHERE holder_id = ?", [.text(id)])
        try await execute("DELETE FROM endpoints WHERE id = ?", [.text(id)])
    }

    // MARK: Inventory deletes

    private func count(_ sql: String, _ binds: [SQLiteData]) async throws -> Int {
        try await rows(sql, binds).first?.int("n") ?? 0
    }

    func usage(vpcID: String) async throws -> InventoryUsage {
        let id: [SQLiteData] = [.text(vpcID)]
        return InventoryUsage(
            subnets: try await count("SELECT count(*) AS n FROM subnets WHERE vpc_id = ?", id),
            backends: try await count("SELECT count(*) AS n FROM backends WHERE vpc_id = ?", id),
            services: try await count("SELECT count(*) AS n FROM endpoint_services WHERE vpc_id = ?", id),
            endpoints: try await count("SELECT count(*) AS n FROM endpoints WHERE vpc_id = ?", id))
    }

    func usage(subnetID: String) async throws -> InventoryUsage {
        let id: [SQLiteData] = [.text(subnetID)]
        return InventoryUsage(
            backends: try await count("SELECT count(*) AS n FROM backends WHERE subnet_id = ?", id),
            endpoints: try await count("SELECT count(*) AS n FROM endpoints WHERE subnet_id = ?", id))
    }

    func usage(backendID: String) async throws -> InventoryUsage {
        InventoryUsage(
            services: try await count("SELECT count(*) AS n FROM endpoint_services WHERE backend_id = ?", [.text(backendID)]))
    }

    func deleteVPC(id: String) async throws {
        try await execute("DELETE FROM vpcs WHERE id = ?", [.text(id)])
    }

    func deleteSubnet(id: String) async throws {
        try await execute("DELETE FROM subnets WHERE id = ?", [.text(id)])
    }

    func deleteBackend(id: String) async throws {
        try await execute("DELETE FROM ip_allocations WHERE holder_id = ?", [.text(id)])
        try await execute("DELETE FROM backends WHERE id = ?", [.text(id)])
    }

    // MARK: Lists

    /// One page in the query's order (ties by id), and the count of every match.
    private func list<T: Sendable>(
        table: String, columns: String, query: ListQuery, filters: [(String, [SQLiteData])],
        decode: (StoreRow) throws -> T
    ) async throws -> ListResult<T> {
        try await list(
            Self.listStatements(table: table, columns: columns, query: query, filters: filters, tagDriver: nil, counter: nil),
            query: query, decode: decode)
    }

    private func list<T: Sendable>(
        _ statements: ListStatements, query: ListQuery, decode: (StoreRow) throws -> T
    ) async throws -> ListResult<T> {
        var page = try await rows(statements.page.sql, statements.page.binds)
        var next: ListCursor?
        if page.count > query.limit {
            page.removeLast(page.count - query.limit)
            if let last = page.last {
                next = ListCursor(sortValue: Int64(try last.int(query.sortKey.rawValue)), id: try last.text("id"))
            }
        }
        let total = try await rows(statements.count.sql, statements.count.binds).first?.int("n") ?? 0
        return ListResult(items: try page.map(decode), totalCount: total, next: next)
    }

    /// A list's two statements: the page (one row more than the limit, which tells whether another page
    /// follows) and the count of every match.
    struct ListStatements {
        var page: (sql: String, binds: [SQLiteData])
        var count: (sql: String, binds: [SQLiteData])
    }

    /// The page in the query's order (ties by id) and the count. With a tag driver the rows come from the
    /// tag table's `…_page` index joined to `table` by id (CROSS JOIN keeps the tag table outside, so its
    /// index gives the order); the tag rows' copies of region and created_at equal the resource's (the
    /// triggers of migration 9).
    static func listStatements(
        table: String, columns: String, query: ListQuery, filters: [(String, [SQLiteData])], tagDriver: TagDriver?,
        counter: CountKey?
    ) -> ListStatements {
        let source: String
        var conditions: [String]
        var binds: [SQLiteData]
        let sortColumns: (String, String)
        if let tagDriver {
            source = "\(tagDriver.tagTable) AS d CROSS JOIN \(table) ON \(table).id = d.resource_id"
            conditions = ["d.resource_region = ?", "d.key = ?", "d.value = ?"]
            binds = [.text(query.region), .text(tagDriver.key), .text(tagDriver.value)]
            sortColumns = ("d.resource_created_at", "d.resource_id")
        } else {
            source = table
            conditions = ["\(table).region = ?"]
            binds = [.text(query.region)]
            if let ownerID = query.ownerID {
                conditions.append("\(table).owner_id = ?")
                binds.append(.text(ownerID))
            }
            sortColumns = ("\(table).\(query.sortKey.rawValue)", "\(table).id")
        }
        for (condition, values) in filters {
            conditions.append(condition)
            binds += values
        }
        let whereClause = conditions.joined(separator: " AND ")
        let direction = query.ascending ? "ASC" : "DESC"
        // Keyset: strictly after the cursor in the same order as ORDER BY (a row-value comparison, which
        // the order index turns into the start of its range), so the page continues where the last one
        // ended however many rows came or went before it.
        var pageClause = whereClause
        var pageBinds = binds
        if let after = query.after {
            pageClause += " AND (\(sortColumns.0), \(sortColumns.1)) \(query.ascending ? ">" : "<") (?, ?)"
            pageBinds += [.integer(SQLiteInt64(after.sortValue)), .text(after.id)]
        }
        let pageSQL = """
            SELECT \(columns) FROM \(source) WHERE \(pageClause)
            ORDER BY \(sortColumns.0) \(direction), \(sortColumns.1) \(direction) LIMIT ? OFFSET ?
            """
        pageBinds += [.integer(SQLiteInt64(query.limit + 1)), .integer(SQLiteInt64(query.offset))]
        if let counter {
            // One row of `list_counts` (migration 9), whatever the number of matches; none is 0.
            let count = "SELECT n FROM list_counts WHERE tbl = ? AND region = ? AND owner_id = ? AND dim = ? AND k = ? AND v = ?"
            let countBinds: [SQLiteData] = [
                .text(table), .text(query.region), .text(query.ownerID ?? ""), .text(counter.dimension), .text(counter.key),
                .text(counter.value),
            ]
            return ListStatements(page: (pageSQL, pageBinds), count: (count, countBinds))
        }
        // Other shapes walk the same index range as the page, covering (no row of `table` is read) when the
        // filter is the index's own or the driver's alone: exact, at the cost of the matches' index entries.
        let countSource = if let tagDriver, filters.isEmpty { "\(tagDriver.tagTable) AS d" } else { source }
        return ListStatements(
            page: (pageSQL, pageBinds), count: ("SELECT count(*) AS n FROM \(countSource) WHERE \(whereClause)", binds))
    }

    /// The row of `list_counts` that holds a list's `total_count`, for the shapes it keeps: no filter,
    /// a status alone, or one tag `key=value` alone.
    struct CountKey {
        var dimension: String
        var key: String
        var value: String

        init?(status: String?, tags: [Tag]) {
            switch (status, tags.count) {
            case (nil, 0): (dimension, key, value) = ("all", "", "")
            case (let status?, 0): (dimension, key, value) = ("status", status, "")
            case (nil, 1) where !tags[0].value.isEmpty: (dimension, key, value) = ("tag", tags[0].key, tags[0].value)
            default: return nil
            }
        }
    }
}

/// The JSON shapes of list columns.
private struct PortRecord: Codable {
    var terminal: Int
    var service: Int
    var proto: String
}

private struct TagRecord: Codable {
    var key: String
    var value: String
}

extension StoreRow {
    /// A `[PortRecord]` column, read by `StoredJSON` (written with sorted keys: `proto`, `service`,
    /// `terminal`): Foundation's `JSONDecoder` here was 2.6% of the server's samples under writes alone
    /// at 100,000 records, where every update and endpoint create reads its service.
    fileprivate func portRecords(_ column: String) throws -> [PortRecord] {
        guard let objects = StoredJSON.records(try text(column)) else { return try json(column) }
        var records: [PortRecord] = []
        records.reserveCapacity(objects.count)
        for members in objects {
            guard members.count == 3, members[0].0 == "proto", case .string(let proto) = members[0].1,
                members[1].0 == "service", case .integer(let service) = members[1].1,
                members[2].0 == "terminal", case .integer(let terminal) = members[2].1
            else { return try json(column) }
            records.append(PortRecord(terminal: terminal, service: service, proto: proto))
        }
        return records
    }

    /// A `[TagRecord]` column, read by `StoredJSON` (written with sorted keys: `key`, then `value`).
    fileprivate func tagRecords(_ column: String) throws -> [TagRecord] {
        if let objects = StoredJSON.objects(try text(column)) {
            var records: [TagRecord] = []
            records.reserveCapacity(objects.count)
            for members in objects {
                guard members.count == 2, members[0].0 == "key", members[1].0 == "value" else { return try json(column) }
                records.append(TagRecord(key: members[0].1, value: members[1].1))
            }
            return records
        }
        return try json(column)
    }
}

extension StoreError {
    static func corrupt(_ what: String) -> StoreError {
        StoreError(code: .internalError, message: "unreadable stored value: \(what)")
    }
}

extension SQLiteData {
    /// Milliseconds since 1970.
    static func date(_ date: Date) -> SQLiteData {
        .integer(SQLiteInt64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    // The JSON columns, in the bytes `JSONEncoder` with sorted keys gives them (what stored rows hold,
    // and what an update compares to leave an unchanged column out; `StoredJSONTests` holds them equal),
    // written directly: the encoder was 2.4% of the server's samples under writes alone at 100,000 records.

    static func json(strings: [String]) -> SQLiteData {
        var json = StableJSON()
        json.array(strings) { $0.string($1) }
        return .text(json.string)
    }

    static func json(tags: [Tag]) -> SQLiteData {
        var json = StableJSON()
        json.array(tags) { $0.tag($1) }
        return .text(json.string)
    }

    /// As `PortRecord` encodes: `proto`, `service`, `terminal`.
    static func json(ports: [PortMapping]) -> SQLiteData {
        var json = StableJSON()
        json.array(ports) { json, port in
            json.object { json in
                json.key("proto"); json.string(port.protocol)
                json.key("service"); json.integer(port.servicePort)
                json.key("terminal"); json.integer(port.terminalPort)
            }
        }
        return .text(json.string)
    }
}

extension StoreRow {
    func text(_ column: String) throws -> String {
        guard case .text(let value)? = self.column(column) else { throw StoreError.corrupt(column) }
        return value
    }

    func int(_ column: String) throws -> Int {
        guard case .integer(let value)? = self.column(column) else { throw StoreError.corrupt(column) }
        return Int(value)
    }

    func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try int(column)) / 1000)
    }

    /// A `[String]` column, read by `StoredJSON`, or by `JSONDecoder` when it declines.
    func strings(_ column: String) throws -> [String] {
        if let values = StoredJSON.strings(try text(column)) { return values }
        return try json(column)
    }

    func json<T: Decodable>(_ column: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(try text(column).utf8))
        } catch {
            throw StoreError.corrupt(column)
        }
    }
}
