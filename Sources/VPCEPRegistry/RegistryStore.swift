import Foundation

/// Where the registry keeps its state. Stores are dumb: every rule (validation, ownership, region
/// scoping, quotas, allocation) lives in `Registry`; a store reads and writes records, and where a
/// look-up takes a `Visibility` (every look-up by id of a tenant's record, see `RegistryReader`) it
/// applies that value, which the registry states, in the look-up.
///
/// A store must make each `transaction` atomic, serializable with respect to every other transaction
/// (including those of other processes sharing the database) and durable before it returns.
public protocol RegistryStore: Sendable {
    /// Runs `body` against one consistent snapshot of committed state. No writes.
    func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws -> T

    /// Runs `body` in one serializable transaction: committed (durably) when it returns, rolled back
    /// entirely when it throws, the body's error then rethrown unchanged. Store failures are `StoreError`s.
    /// A body must not start another transaction.
    ///
    /// Cancelling the calling task never leaves a transaction open: one that has begun is committed
    /// or rolled back, and one whose task is cancelled before it begins is not run at all (it throws
    /// `CancellationError`).
    func transaction<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws -> T

    /// A number that grows with every commit, moved on before the committing `transaction`
    /// returns, so that a value read under one version may be reused while the version stays the
    /// same. `nil` when the store cannot see every commit (others may write its database), which
    /// turns the registry's read cache off.
    var commitVersion: UInt64? { get }

    /// A commit version that covers every commit acknowledged before this call began, by this process
    /// or any other sharing the database, and that moves with every later commit that changes a
    /// record; `nil` turns the registry's read cache off. By default `commitVersion`; a store shared
    /// by several servers asks its database.
    func currentCommitVersion() async throws -> UInt64?

    /// `currentCommitVersion()` (with the same guarantee) and the services that commits after `since`
    /// up to it may have changed, so that the read cache drops only those; `nil` turns the cache off.
    /// By default any commit is said to change every service (`services` nil).
    func commitChanges(since: UInt64) async throws -> CommitChanges?

    /// Why the store cannot serve calls now (a connection that failed and is being repaired), or
    /// `nil` when it can. A store repairs itself; this is what readiness probes report meanwhile.
    var readinessProblem: String? { get }

    /// The change-log events committed after `seq` (at most `limit`, from `seq + 1` on, without a gap),
    /// as `listEvents` with the system's view would return them, when this process still holds them in
    /// memory; `[]` when nothing was committed after `seq`; nil when it cannot say (not held, or other
    /// processes write the log), and the caller reads the store. By default nil.
    func recentEvents(after seq: UInt64, limit: Int) -> [ChangeEvent]?

    /// The change log's head (the newest committed sequence) from memory, when this process can vouch
    /// for it as `recentEvents` does; nil when the caller must read the store. By default nil.
    var recentHead: UInt64? { get }
}

extension RegistryStore {
    public var commitVersion: UInt64? { nil }
    public func currentCommitVersion() async throws -> UInt64? { commitVersion }
    public func commitChanges(since: UInt64) async throws -> CommitChanges? {
        guard let version = try await currentCommitVersion() else { return nil }
        return CommitChanges(version: version, services: version <= since ? [] : nil)
    }
    public var readinessProblem: String? { nil }
    public func recentEvents(after seq: UInt64, limit: Int) -> [ChangeEvent]? { nil }
    public var recentHead: UInt64? { nil }
}

/// Primitive reads.
///
/// Every look-up by id of a tenant-owned record (a VPC, subnet, backend, service or endpoint), and of
/// the records that hang off a service (its allow-list, its endpoints), takes the `Visibility` of the
/// caller on whose behalf the registry reads, and the store applies it in the look-up itself: a record
/// the visibility does not admit is answered exactly as a missing one (`nil`, or no entries), and no row
/// of it is read into memory or decoded. The look-up stays an index look-up on the key; the visibility
/// terms are evaluated on the row found, inside the database. So isolation holds by the store's API, not
/// by each registry method remembering a check; the registry still checks the same rule again on what
/// comes back, as a second line. Where the registry reads beyond the caller's own records it says so
/// with a named visibility (`Visibility.provider(of:)`, `Visibility.anyOwner(in:)`), never by leaving
/// the scope out.
///
/// What takes no visibility: lists, which apply `ListQuery`'s region/owner scope, order and page and
/// count every match for `totalCount`; and the look-ups that serve the registry's own rules (counts,
/// usage, allocated addresses, sibling subnets, services sharing a backend, quotas), which the registry
/// makes with keys it found through a scoped look-up or takes from the caller's own scope, and whose
/// records it never returns to a caller.
public protocol RegistryReader: Sendable {
    /// The VPC when `visibility` admits it; `nil` when it does not exist and equally when it is hidden.
    func vpc(id: String, visibleTo visibility: Visibility) async throws -> VPC?
    func listVPCs(_ query: ListQuery) async throws -> ListResult<VPC>

    /// The subnet when `visibility` admits it; `nil` when it does not exist and equally when it is hidden.
    func subnet(id: String, visibleTo visibility: Visibility) async throws -> Subnet?
    /// Every subnet of the VPC, in no particular order.
    func subnets(vpcID: String) async throws -> [Subnet]
    func listSubnets(_ query: ListQuery, vpcID: String?) async throws -> ListResult<Subnet>

    /// The backend when `visibility` admits it; `nil` when it does not exist and equally when it is hidden.
    func backend(id: String, visibleTo visibility: Visibility) async throws -> Backend?
    func listBackends(_ query: ListQuery, kind: BackendKind, vpcID: String?) async throws -> ListResult<Backend>
    /// Every address held in the subnet by any resource (backends and endpoints).
    func allocatedIPs(subnetID: String) async throws -> [String]

    /// The service when `visibility` admits it; `nil` when it does not exist and equally when it exists
    /// but is not visible. A hidden service must cost what a missing one costs, so the store filters it
    /// out in the look-up itself: no row of it is read into memory or decoded, and its allow-list is
    /// consulted only inside the query (an index probe). The look-up stays an index look-up on the key.
    /// `clientIPNote` is left empty; the registry derives it.
    func endpointService(id: String, visibleTo visibility: Visibility) async throws -> EndpointService?
    func endpointService(serviceName: String, visibleTo visibility: Visibility) async throws -> EndpointService?
    /// Every service whose backend is `backendID`, of any owner.
    func endpointServices(backendID: String) async throws -> [EndpointService]
    func listEndpointServices(_ query: ListQuery, filter: EndpointServiceFilter) async throws -> ListResult<EndpointService>
    /// Services of one owner in one region, in any status.
    func countEndpointServices(ownerID: String, region: String) async throws -> Int

    /// The operator-set override for one owner in one region, `nil` when the default applies.
    func quotaLimit(ownerID: String, region: String, type: QuotaType) async throws -> Int?

    /// Every allow-list entry of the service, oldest first, when `visibility` admits the service; none
    /// when it does not exist and equally when it is hidden.
    func permissions(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Permission]
    /// The service's entries (`query.ownerID` is ignored), `permission` a case-insensitive substring; none
    /// (and a count of 0) when `visibility` does not admit the service.
    func listPermissions(
        _ query: ListQuery, serviceID: String, serviceVisibleTo visibility: Visibility, permission: String?
    ) async throws -> ListResult<Permission>
    /// Up to `limit` entries of any service and region whose `onExpiry` is `reject`, whose `expiresAt` is
    /// at or before `date` and whose expiry is not yet handled, earliest expiry first. The registry's own
    /// bookkeeping (the expiry sweep), never shown to a caller.
    func permissionsDueForExpiry(by date: Date, limit: Int) async throws -> [Permission]

    /// The endpoint when `visibility` admits it; `nil` when it does not exist and equally when it is
    /// hidden. `serviceName` is the service's current name while it exists.
    func endpoint(id: String, visibleTo visibility: Visibility) async throws -> Endpoint?
    func listEndpoints(_ query: ListQuery, filter: EndpointFilter) async throws -> ListResult<Endpoint>
    /// Every endpoint of the service, of any owner, when `visibility` admits the service; none when it
    /// does not exist and equally when it is hidden.
    func endpoints(serviceID: String, serviceVisibleTo visibility: Visibility) async throws -> [Endpoint]
    /// Endpoints of one owner in one region, in any status.
    func countEndpoints(ownerID: String, region: String) async throws -> Int
    /// Endpoints of one owner on one service whose status is not one of `excludingStatuses` (a rule's
    /// count, made with keys a scoped look-up found).
    func countEndpoints(serviceID: String, ownerID: String, excludingStatuses: [EndpointStatus]) async throws -> Int

    /// What still refers to a VPC, a subnet or a backend.
    func usage(vpcID: String) async throws -> InventoryUsage
    func usage(subnetID: String) async throws -> InventoryUsage
    func usage(backendID: String) async throws -> InventoryUsage

    /// The change log's events that `query` admits (its viewer's visibility applied in the look-up), in
    /// `seq` order, one page of them, and how many match in all.
    func listEvents(_ query: EventQuery) async throws -> ListResult<ChangeEvent>
    /// The sequence of the last event committed before this snapshot; 0 while the log is empty.
    func logHead() async throws -> UInt64
    /// The highest sequence that retention removed (every event up to it is gone, every later one is
    /// kept); 0 while nothing was removed.
    func logCompacted() async throws -> UInt64
}

/// How many resources refer to an inventory resource.
public struct InventoryUsage: Sendable, Hashable {
    public var subnets: Int
    public var backends: Int
    public var services: Int
    public var endpoints: Int

    public init(subnets: Int = 0, backends: Int = 0, services: Int = 0, endpoints: Int = 0) {
        self.subnets = subnets
        self.backends = backends
        self.services = services
        self.endpoints = endpoints
    }

    public var isEmpty: Bool { subnets == 0 && backends == 0 && services == 0 && endpoints == 0 }
}

/// Primitive writes, only inside `RegistryStore.transaction`.
public protocol RegistryTransaction: RegistryReader {
    func insertVPC(_ vpc: VPC) async throws
    func insertSubnet(_ subnet: Subnet) async throws
    /// Also records `backend.ip` as allocated in its subnet.
    func insertBackend(_ backend: Backend) async throws
    /// `clientIPNote` is not stored.
    func insertEndpointService(_ service: EndpointService) async throws
    /// Sets (or with `nil`, removes) an override.
    func setQuotaLimit(ownerID: String, region: String, type: QuotaType, limit: Int?) async throws

    /// Replaces the stored record of an existing service (`connectionCount` is derived, not stored).
    func updateEndpointService(_ service: EndpointService) async throws
    /// Removes the service and its allow-list.
    func deleteEndpointService(id: String) async throws

    func insertPermission(_ permission: Permission) async throws
    /// Replaces the stored terms of an existing entry (its id, service, permission and creation time stay).
    func updatePermission(_ permission: Permission) async throws
    func deletePermissions(ids: [String]) async throws

    /// The next marker id: unique and never reused.
    func nextMarkerID() async throws -> UInt64
    /// Also records `endpoint.ip` as allocated in its subnet.
    func insertEndpoint(_ endpoint: Endpoint) async throws
    /// Replaces the stored record of an existing endpoint (its IP and placement never change).
    func updateEndpoint(_ endpoint: Endpoint) async throws
    /// Removes the endpoint and frees its address.
    func deleteEndpoint(id: String) async throws

    func deleteVPC(id: String) async throws
    func deleteSubnet(id: String) async throws
    /// Removes the backend and frees its address.
    func deleteBackend(id: String) async throws

    /// The record of `key` for this owner and region, expired or not.
    func idempotencyRecord(ownerID: String, region: String, key: String) async throws -> IdempotencyRecord?
    /// Stores the record, replacing any (expired) one with the same owner, region and key.
    func saveIdempotencyRecord(_ record: IdempotencyRecord) async throws
    /// Deletes up to `limit` records whose `expiresAt` is at or before `date`; returns how many.
    func deleteIdempotencyRecords(expiredBy date: Date, limit: Int) async throws -> Int

    /// Appends `events`, in order, to the change log as part of this transaction, numbering them with the
    /// log's next sequence numbers, and returns them numbered. The numbers must be gapless and in commit
    /// order across every transaction of every process sharing the database: a transaction that rolls
    /// back leaves no number used, and one that commits later never holds a smaller number than one that
    /// committed before it (docs/DOMAIN.md, "Change log": a counter row updated in the transaction, held
    /// locked until it ends — never a sequence or an auto-increment).
    func appendEvents(_ events: [ChangeEvent]) async throws -> [ChangeEvent]

    /// Removes the oldest events, up to `limit` of them, as long as they were committed before `date`,
    /// and records the highest removed sequence for `logCompacted()`; returns how many. Removes a prefix
    /// of the log only, so that every event after `logCompacted()` is still there.
    func compactEvents(committedBefore date: Date, limit: Int) async throws -> Int
}

/// A failure of the store itself (not of a rule).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: Sendable, Hashable {
            case conflict, unavailable, internalError
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A uniqueness or serialization conflict with concurrent work; retrying may succeed.
        public static let conflict = Code(.conflict)
        /// The database cannot be reached, is busy, closed, full or failing I/O; retrying later may succeed.
        public static let unavailable = Code(.unavailable)
        /// Anything else: corruption, schema mismatch, misuse.
        public static let internalError = Code(.internalError)

        public var description: String {
            switch wrapped {
            case .conflict: "conflict"
            case .unavailable: "unavailable"
            case .internalError: "internal"
            }
        }
    }

    public var code: Code
    /// Store detail for logs (may contain SQL error text, never request data).
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "store error (\(code)): \(message)" }
}
