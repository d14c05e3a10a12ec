import Foundation
import Synchronization
import VPCEPRegistry

/// A tenant's store transaction while `ScaleSeeder` seeds it, answering from memory the look-ups that
/// the registry repeats for every endpoint of the tenant (its VPC, subnets, services and their
/// allow-lists, its endpoint count, quota and the subnets' allocated addresses): about two thirds of
/// the statements of a create, so the seed takes minutes rather than tens of minutes at 1,000,000
/// records. Only answers that nothing in the transaction can change, or that this wrapper keeps up to
/// date from the writes passing through it, are kept; a miss (`nil`) is never kept. Every write and
/// every other read goes to the store. It lives for one tenant's transaction, in which only that
/// tenant's calls run, one at a time; the seed's rows are checked against the per-record seeder's
/// (BENCHMARKS.md, "Scale (issue 14)").
final class SeedTransaction: RegistryTransaction {
    private let base: any RegistryTransaction
    private let memo = Mutex(Memo())

    private struct Key: Hashable {
        var id: String
        var visibility: Visibility
    }

    private struct Memo {
        var vpcs: [Key: VPC] = [:]
        var subnets: [Key: Subnet] = [:]
        var services: [Key: EndpointService] = [:]
        var permissions: [Key: [Permission]] = [:]
        var allocated: [String: [String]] = [:]
        var endpointCounts: [String: Int] = [:]
        var quotas: [String: Int?] = [:]
    }

    init(_ base: any RegistryTransaction) {
        self.base = base
    }

    private static func countKey(_ ownerID: String, _ region: String) -> String { "\(ownerID)\u{0}\(region)" }
    private static func quotaKey(_ ownerID: String, _ region: String, _ type: QuotaType) -> String {
        "\(ownerID)\u{0}\(region)\u{0}\(type.rawValue)"
    }

    // MARK: Remembered reads

    func vpc(id: String, visibleTo visibility: Visibility) async throws -> VPC? {
        let key = Key(id: id, visibility: visibility)
        if let hit = memo.withLock({ $0.vpcs[key] }) { return hit }
        let found = try await base.vpc(id: id, visibleTo: visibility)
        if let found { memo.withLock { $0.vpcs[key] = found } }
        return found
    }

    func subnet(id: String, visibleTo visibility: Visibility) async throws -> Subnet? {
        let key = Key(id: id, visibility: visibility)
        if let hit = memo.withLock({ $0.subnets[key] }) { return hit }
        let found = try await base.subnet(id: id, visibleTo: visibility)
        if let found { memo.withLock { $0.subnets[key] = found } }
        return found
    }

    /// The seed never changes a service after creating it (its connection count, derived from the
    /// endpoints, is not what the registry writes from).
    func endpointService(id: String, visibleTo visibility: Visibility) async throws -> EndpointService? {
        let key = Key(id: id, visibility: visibility)
        if let hit = memo.withLock({ $0.services[key] }) { return hit }
        let found = try await base.endpointService(id: id, visibleTo: visibility)
        if let found { memo.withLock { $0.services[key] = found } }
        return found
    }

    /// The seed writes no allow-list entries.
    func permissions(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Permission] {
        let key = Key(id: serviceID, visibility: visibility)
        if let hit = memo.withLock({ $0.permissions[key] }) { return hit }
        let found = try await base.permissions(serviceID: serviceID, serviceVisibleTo: visibility)
        memo.withLock { $0.permissions[key] = found }
        return found
    }

    func allocatedIPs(subnetID: String) async throws -> [String] {
        if let hit = memo.withLock({ $0.allocated[subnetID] }) { return hit }
        let found = try await base.allocatedIPs(subnetID: subnetID)
        memo.withLock { $0.allocated[subnetID] = found }
        return found
    }

    func countEndpoints(ownerID: String, region: String) async throws -> Int {
        let key = Self.countKey(ownerID, region)
        if let hit = memo.withLock({ $0.endpointCounts[key] }) { return hit }
        let found = try await base.countEndpoints(ownerID: ownerID, region: region)
        memo.withLock { $0.endpointCounts[key] = found }
        return found
    }

    func quotaLimit(ownerID: String, region: String, type: QuotaType) async throws -> Int? {
        let key = Self.quotaKey(ownerID, region, type)
        if let hit = memo.withLock({ $0.quotas[key] }) { return hit }
        let found = try await base.quotaLimit(ownerID: ownerID, region: region, type: type)
        memo.withLock { $0.quotas[key] = .some(found) }
        return found
    }

    // MARK: Writes that keep the remembered answers true

    func insertBackend(_ backend: Backend) async throws {
        try await base.insertBackend(backend)
        remember(backend.ip, in: backend.subnetID)
    }

    func insertEndpoint(_ endpoint: Endpoint) async throws {
        try await base.insertEndpoint(endpoint)
        remember(endpoint.ip, in: endpoint.subnetID)
        memo.withLock { $0.endpointCounts[Self.countKey(endpoint.ownerID, endpoint.region)]? += 1 }
    }

    func setQuotaLimit(ownerID: String, region: String, type: QuotaType, limit: Int?) async throws {
        try await base.setQuotaLimit(ownerID: ownerID, region: region, type: type, limit: limit)
        memo.withLock { $0.quotas[Self.quotaKey(ownerID, region, type)] = .some(limit) }
    }

    private func remember(_ ip: String, in subnetID: String) {
        memo.withLock { $0.allocated[subnetID]?.append(ip) }
    }

    /// Writes the seed never makes: they would make remembered answers stale, so they are refused.
    private func unexpected(_ what: String) -> StoreError {
        StoreError(code: .internalError, message: "seeding: \(what) is not expected while seeding")
    }

    func updateEndpointService(_ service: EndpointService) async throws { throw unexpected("updateEndpointService") }
    func deleteEndpointService(id: String) async throws { throw unexpected("deleteEndpointService") }
    func insertPermission(_ permission: Permission) async throws { throw unexpected("insertPermission") }
    func updatePermission(_ permission: Permission) async throws { throw unexpected("updatePermission") }
    func deletePermissions(ids: [String]) async throws { throw unexpected("deletePermissions") }
    func updateEndpoint(_ endpoint: Endpoint) async throws { throw unexpected("updateEndpoint") }
    func deleteEndpoint(id: String) async throws { throw unexpected("deleteEndpoint") }
    func deleteVPC(id: String) async throws { throw unexpected("deleteVPC") }
    func deleteSubnet(id: String) async throws { throw unexpected("deleteSubnet") }
    func deleteBackend(id: String) async throws { throw unexpected("deleteBackend") }

    // MARK: Passed through

    func insertVPC(_ vpc: VPC) async throws { try await base.insertVPC(vpc) }
    func insertSubnet(_ subnet: Subnet) async throws { try await base.insertSubnet(subnet) }
    func insertEndpointService(_ service: EndpointService) async throws { try await base.insertEndpointService(service) }
    func nextMarkerID() async throws -> UInt64 { try await base.nextMarkerID() }
    func idempotencyRecord(ownerID: String, region: String, key: String) async throws -> IdempotencyRecord? {
        try await base.idempotencyRecord(ownerID: ownerID, region: region, key: key)
    }
    func saveIdempotencyRecord(_ record: IdempotencyRecord) async throws { try await base.saveIdempotencyRecord(record) }
    func deleteIdempotencyRecords(expiredBy date: Date, limit: Int) async throws -> Int {
        try await base.deleteIdempotencyRecords(expiredBy: date, limit: limit)
    }
    func appendEvents(_ events: [ChangeEvent]) async throws -> [ChangeEvent] { try await base.appendEvents(events) }
    func compactEvents(committedBefore date: Date, limit: Int) async throws -> Int {
        try await base.compactEvents(committedBefore: date, limit: limit)
    }

    func listVPCs(_ query: ListQuery) async throws -> ListResult<VPC> { try await base.listVPCs(query) }
    func subnets(vpcID: String) async throws -> [Subnet] { try await base.subnets(vpcID: vpcID) }
    func listSubnets(_ query: ListQuery, vpcID: String?) async throws -> ListResult<Subnet> {
        try await base.listSubnets(query, vpcID: vpcID)
    }
    func backend(id: String, visibleTo visibility: Visibility) async throws -> Backend? {
        try await base.backend(id: id, visibleTo: visibility)
    }
    func listBackends(_ query: ListQuery, kind: BackendKind, vpcID: String?) async throws -> ListResult<Backend> {
        try await base.listBackends(query, kind: kind, vpcID: vpcID)
    }
    func endpointService(serviceName: String, visibleTo visibility: Visibility) async throws -> EndpointService? {
        try await base.endpointService(serviceName: serviceName, visibleTo: visibility)
    }
    func endpointServices(backendID: String) async throws -> [EndpointService] {
        try await base.endpointServices(backendID: backendID)
    }
    func listEndpointServices(_ query: ListQuery, filter: EndpointServiceFilter) async throws -> ListResult<EndpointService> {
        try await base.listEndpointServices(query, filter: filter)
    }
    func countEndpointServices(ownerID: String, region: String) async throws -> Int {
        try await base.countEndpointServices(ownerID: ownerID, region: region)
    }
    func listPermissions(
        _ query: ListQuery, serviceID: String, serviceVisibleTo visibility: Visibility, permission: String?
    ) async throws -> ListResult<Permission> {
        try await base.listPermissions(query, serviceID: serviceID, serviceVisibleTo: visibility, permission: permission)
    }
    func permissionsDueForExpiry(by date: Date, limit: Int) async throws -> [Permission] {
        try await base.permissionsDueForExpiry(by: date, limit: limit)
    }
    func endpoint(id: String, visibleTo visibility: Visibility) async throws -> Endpoint? {
        try await base.endpoint(id: id, visibleTo: visibility)
    }
    func listEndpoints(_ query: ListQuery, filter: EndpointFilter) async throws -> ListResult<Endpoint> {
        try await base.listEndpoints(query, filter: filter)
    }
    func endpoints(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Endpoint] {
        try await base.endpoints(serviceID: serviceID, serviceVisibleTo: visibility)
    }
    func countEndpoints(serviceID: String, ownerID: String, excludingStatuses: [EndpointStatus]) async throws -> Int {
        try await base.countEndpoints(serviceID: serviceID, ownerID: ownerID, excludingStatuses: excludingStatuses)
    }
    func usage(vpcID: String) async throws -> InventoryUsage { try await base.usage(vpcID: vpcID) }
    func usage(subnetID: String) async throws -> InventoryUsage { try await base.usage(subnetID: subnetID) }
    func usage(backendID: String) async throws -> InventoryUsage { try await base.usage(backendID: backendID) }
    func listEvents(_ query: EventQuery) async throws -> ListResult<ChangeEvent> { try await base.listEvents(query) }
    func logHead() async throws -> UInt64 { try await base.logHead() }
    func logCompacted() async throws -> UInt64 { try await base.logCompacted() }
}
