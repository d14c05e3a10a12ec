import Foundation
internal import SQLiteNIO
import Synchronization
import VPCEPRegistry

/// The reads and writes of one transaction (or read snapshot) on one connection. Valid only until
/// the transaction ends; the store serializes all use of the connection.
final class SQLiteAccess: RegistryTransaction {
    private let connection: SQLiteConnection
    private let isActive = Mutex(true)

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    func end() {
        isActive.withLock { $0 = false }
    }

    private func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        guard isActive.withLock({ $0 }) else {
            throw StoreError(code: .internalError, message: "a transaction was used after it ended")
        }
        do {
            return try await connection.query(sql, binds)
        } catch {
            throw StoreError(sqlite: error)
        }
    }

    private func execute(_ sql: String, _ binds: [SQLiteData]) async throws {
        _ = try await rows(sql, binds)
    }

    // MARK: VPCs

    private static let vpcColumns = "id, region, owner_id, name, cidr, created_at, updated_at"

    private static func vpc(_ row: SQLiteRow) throws -> VPC {
        VPC(
            id: try row.text("id"), name: try row.text("name"), cidr: try row.text("cidr"),
            region: try row.text("region"), ownerID: try row.text("owner_id"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    func vpc(id: String) async throws -> VPC? {
        try await rows("SELECT \(Self.vpcColumns) FROM vpcs WHERE id = ?", [.text(id)]).first.map(Self.vpc)
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

    private static func subnet(_ row: SQLiteRow) throws -> Subnet {
        Subnet(
            id: try row.text("id"), vpcID: try row.text("vpc_id"), name: try row.text("name"),
            cidr: try row.text("cidr"), region: try row.text("region"), ownerID: try row.text("owner_id"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    func subnet(id: String) async throws -> Subnet? {
        try await rows("SELECT \(Self.subnetColumns) FROM subnets WHERE id = ?", [.text(id)]).first.map(Self.subnet)
    }

    func subnets(vpcID: String) async throws -> [Subnet] {
        try await rows("SELECT \(Self.subnetColumns) FROM subnets WHERE vpc_id = ?", [.text(vpcID)]).map(Self.subnet)
    }

    func listSubnets(_ query: ListQuery, vpcID: String?) async throws -> ListResult<Subnet> {
        try await list(
            table: "subnets", columns: Self.subnetColumns, query: query,
            filters: vpcID.map { [("vpc_id = ?", .text($0))] } ?? [], decode: Self.subnet)
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

    private static func backend(_ row: SQLiteRow) throws -> Backend {
        let kindText = try row.text("kind")
        guard let kind = BackendKind(rawValue: kindText) else { throw StoreError.corrupt("backend kind \(kindText)") }
        return Backend(
            id: try row.text("id"), kind: kind, vpcID: try row.text("vpc_id"), subnetID: try row.text("subnet_id"),
            name: try row.text("name"), ip: try row.text("ip"), ingressCIDRs: try row.json("ingress_cidrs"),
            region: try row.text("region"), ownerID: try row.text("owner_id"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    func backend(id: String) async throws -> Backend? {
        try await rows("SELECT \(Self.backendColumns) FROM backends WHERE id = ?", [.text(id)]).first.map(Self.backend)
    }

    func listBackends(_ query: ListQuery, kind: BackendKind, vpcID: String?) async throws -> ListResult<Backend> {
        var filters: [(String, SQLiteData)] = [("kind = ?", .text(kind.rawValue))]
        if let vpcID { filters.append(("vpc_id = ?", .text(vpcID))) }
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
                try .json(backend.ingressCIDRs), .date(backend.createdAt), .date(backend.updatedAt),
            ])
        try await execute(
            "INSERT INTO ip_allocations (subnet_id, ip, holder_id) VALUES (?, ?, ?)",
            [.text(backend.subnetID), .text(backend.ip), .text(backend.id)])
    }

    // MARK: Endpoint services

    private static let serviceColumns = """
        id, service_name, name, region, owner_id, vpc_id, service_type, backend_kind, backend_id, ports, \
        approval_enabled, client_ip_mode, description, tags, status, connection_count, created_at, updated_at, \
        revision, warnings
        """

    private static func service(_ row: SQLiteRow) throws -> EndpointService {
        func decode<E: RawRepresentable<String>>(_ column: String, as: E.Type) throws -> E {
            let text = try row.text(column)
            guard let value = E(rawValue: text) else { throw StoreError.corrupt("\(column) \(text)") }
            return value
        }
        let ports: [PortRecord] = try row.json("ports")
        let tags: [TagRecord] = try row.json("tags")
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
            revision: UInt64(max(revision, 0)), warnings: try row.json("warnings"), clientIPNote: "")
    }

    func endpointService(id: String) async throws -> EndpointService? {
        try await rows("SELECT \(Self.serviceColumns) FROM endpoint_services WHERE id = ?", [.text(id)])
            .first.map(Self.service)
    }

    func endpointService(serviceName: String) async throws -> EndpointService? {
        try await rows("SELECT \(Self.serviceColumns) FROM endpoint_services WHERE service_name = ?", [.text(serviceName)])
            .first.map(Self.service)
    }

    func endpointServices(backendID: String) async throws -> [EndpointService] {
        try await rows("SELECT \(Self.serviceColumns) FROM endpoint_services WHERE backend_id = ?", [.text(backendID)])
            .map(Self.service)
    }

    func listEndpointServices(_ query: ListQuery, filter: EndpointServiceFilter) async throws -> ListResult<EndpointService> {
        var filters: [(String, SQLiteData)] = []
        if let name = filter.name { filters.append(("instr(lower(name), lower(?)) > 0", .text(name))) }
        if let id = filter.id { filters.append(("id = ?", .text(id))) }
        if let status = filter.status { filters.append(("status = ?", .text(status.rawValue))) }
        return try await list(
            table: "endpoint_services", columns: Self.serviceColumns, query: query, filters: filters,
            decode: Self.service)
    }

    func countEndpointServices(ownerID: String, region: String) async throws -> Int {
        try await rows(
            "SELECT count(*) AS n FROM endpoint_services WHERE owner_id = ? AND region = ?",
            [.text(ownerID), .text(region)]
        ).first?.int("n") ?? 0
    }

    func insertEndpointService(_ service: EndpointService) async throws {
        let ports = service.ports.map { PortRecord(terminal: $0.terminalPort, service: $0.servicePort, proto: $0.protocol) }
        try await execute(
            """
            INSERT INTO endpoint_services (\(Self.serviceColumns))
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(service.id), .text(service.serviceName), .text(service.name), .text(service.region),
                .text(service.ownerID), .text(service.vpcID), .text(service.serviceType.rawValue),
                .text(service.backendKind.rawValue), .text(service.backendID), try .json(ports),
                .integer(service.approvalEnabled ? 1 : 0), .text(service.clientIPMode.rawValue),
                .text(service.description), try .json(service.tags.map { TagRecord(key: $0.key, value: $0.value) }),
                .text(service.status.rawValue), .integer(SQLiteInt64(service.connectionCount)),
                .date(service.createdAt), .date(service.updatedAt), .integer(SQLiteInt64(clamping: service.revision)),
                try .json(service.warnings),
            ])
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

    // MARK: Lists

    /// One page in the query's order (ties by id), and the count of every match.
    private func list<T: Sendable>(
        table: String, columns: String, query: ListQuery, filters: [(String, SQLiteData)],
        decode: (SQLiteRow) throws -> T
    ) async throws -> ListResult<T> {
        var conditions = ["region = ?"]
        var binds: [SQLiteData] = [.text(query.region)]
        if let ownerID = query.ownerID {
            conditions.append("owner_id = ?")
            binds.append(.text(ownerID))
        }
        for (condition, bind) in filters {
            conditions.append(condition)
            binds.append(bind)
        }
        let whereClause = conditions.joined(separator: " AND ")
        let direction = query.ascending ? "ASC" : "DESC"
        let sortColumn = query.sortKey == .createdAt ? "created_at" : "updated_at"
        let page = try await rows(
            """
            SELECT \(columns) FROM \(table) WHERE \(whereClause)
            ORDER BY \(sortColumn) \(direction), id \(direction) LIMIT ? OFFSET ?
            """,
            binds + [.integer(SQLiteInt64(query.limit)), .integer(SQLiteInt64(query.offset))])
        let total = try await rows("SELECT count(*) AS n FROM \(table) WHERE \(whereClause)", binds).first?.int("n") ?? 0
        return ListResult(items: try page.map(decode), totalCount: total)
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

    static func json(_ value: some Encodable) throws -> SQLiteData {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return .text(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

extension SQLiteRow {
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

    func json<T: Decodable>(_ column: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(try text(column).utf8))
        } catch {
            throw StoreError.corrupt(column)
        }
    }
}
