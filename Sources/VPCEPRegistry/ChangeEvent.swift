import Foundation

/// The kind of resource a change is about (docs/DOMAIN.md, "Change log").
public enum ResourceKind: String, Sendable, Hashable, Codable, CaseIterable {
    case vpc
    case subnet
    case loadBalancer = "load_balancer"
    case vm
    case endpointService = "endpoint_service"
    case permission
    /// A consumer's endpoint; its provider sees the same events as changes of a connection.
    case endpoint
    case quota
}

/// What happened to the resource.
public enum ChangeType: String, Sendable, Hashable, Codable, CaseIterable {
    case created
    case updated
    case deleted
    /// An endpoint was created that waits for its provider's acceptance.
    case connectionRequested = "connection_requested"
    case connectionAccepted = "connection_accepted"
    case connectionRejected = "connection_rejected"
    /// The provider suspended an accepted connection, or resumed a suspended one.
    case connectionSuspended = "connection_suspended"
    case connectionResumed = "connection_resumed"
    case permissionAdded = "permission_added"
    case permissionRemoved = "permission_removed"
    case quotaChanged = "quota_changed"
}

/// How much of an event a viewer sees (`ChangeEvent.view(for:)`).
public enum EventView: Sendable, Hashable {
    /// Operators, and the owner of both sides of a connection: everything the reads show.
    case full
    /// The resource's owner; for an endpoint, its consumer.
    case owner
    /// The provider of the service an endpoint connects to.
    case provider
}

/// Who reads the log: the caller of a call, in its region.
public struct EventViewer: Sendable, Hashable {
    public let region: String
    /// The caller's owner key.
    public let ownerID: String
    public let isOperator: Bool
    /// The server itself (the change feed reading for every watcher): every event of every region.
    public let isSystem: Bool

    public init(region: String, ownerID: String, isOperator: Bool) {
        self.region = region
        self.ownerID = ownerID
        self.isOperator = isOperator
        self.isSystem = false
    }

    private init(system: Void) {
        (region, ownerID, isOperator, isSystem) = ("", "", true, true)
    }

    /// Never a caller's: no call makes one.
    public static let system = EventViewer(system: ())
}

/// One committed change in the registry's log (docs/DOMAIN.md, "Change log").
public struct ChangeEvent: Sendable, Hashable {
    /// The position in the log: gapless, in commit order, from 1. Zero until the store appends the event.
    public var seq: UInt64
    public var kind: ResourceKind
    public var resourceID: String
    public var region: String
    public var type: ChangeType
    /// The resource as the change left it; for a delete, its last state. Stored unprojected.
    public var state: ResourceState
    /// The resource before the change, for updates and decisions; nil for creates, deletes, permission
    /// and quota events.
    public var previous: ResourceState?
    /// Services' revisions around the change; nil for resources without revisions.
    public var revisionBefore: UInt64?
    public var revisionAfter: UInt64?
    /// The caller's owner key (tenant id or `operator:<name>`), from its certificate.
    public var actor: String
    public var requestID: String
    public var idempotencyKey: String
    /// When the event was appended in its transaction (the registry's clock, in milliseconds).
    public var committedAt: Date

    // Visibility keys (`view(for:)`; a store filters on the same columns).

    /// Who owns the resource: the tenant for inventory, the provider for services and permissions, the
    /// consumer for endpoints, the tenant whose limit it is for quotas.
    public var ownerID: String
    /// The owner of the service the event concerns (services, permissions, endpoints); nil otherwise, or
    /// when the service is gone.
    public var providerID: String?
    /// The service the event concerns (services, permissions, endpoints).
    public var serviceID: String?
    /// Whether the provider sees this event: for endpoints, whether the connection as the provider
    /// sees it changed (a consumer's own settings are not the provider's business).
    public var providerSees: Bool

    public init(
        seq: UInt64 = 0, type: ChangeType, state: ResourceState, previous: ResourceState? = nil, actor: String = "",
        requestID: String = "", idempotencyKey: String = "", committedAt: Date = Date(timeIntervalSince1970: 0),
        providerID: String? = nil
    ) {
        self.seq = seq
        self.kind = state.kind
        self.resourceID = state.resourceID
        self.type = type
        self.state = state
        self.previous = previous
        switch type {
        case .created: (revisionBefore, revisionAfter) = (nil, state.revision)
        case .deleted: (revisionBefore, revisionAfter) = (state.revision, nil)
        default: (revisionBefore, revisionAfter) = (previous?.revision, state.revision)
        }
        self.actor = actor
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
        self.committedAt = committedAt
        self.providerID = providerID
        switch state {
        case .vpc(let vpc):
            (region, ownerID, serviceID) = (vpc.region, vpc.ownerID, nil)
        case .subnet(let subnet):
            (region, ownerID, serviceID) = (subnet.region, subnet.ownerID, nil)
        case .backend(let backend):
            (region, ownerID, serviceID) = (backend.region, backend.ownerID, nil)
        case .endpointService(let service):
            (region, ownerID, serviceID) = (service.region, service.ownerID, service.id)
            self.providerID = service.ownerID
        case .permission(let permission):
            // Only the service's owner changes its allow-list.
            (region, ownerID, serviceID) = (permission.region, providerID ?? "", permission.serviceID)
        case .endpoint(let endpoint):
            (region, ownerID, serviceID) = (endpoint.region, endpoint.ownerID, endpoint.serviceID)
        case .connection(let connection):
            // Only a projection for a viewer; the log never holds one.
            (region, ownerID, serviceID) = ("", connection.consumerID, nil)
        case .quota(let quota):
            (region, ownerID, serviceID) = (quota.region, quota.tenantID, nil)
        }
        switch (state, previous) {
        case (.endpoint(let after), .endpoint(let before)?):
            providerSees = self.providerID != nil && Connection(before) != Connection(after)
        default:
            providerSees = self.providerID != nil
        }
    }

    /// How much of this event `viewer` may see, or nil for nothing. The read rules, once: operators
    /// see their region; an owner its own resources; a provider its services, their allow-lists and
    /// the connections to them. Region isolation first: nothing crosses regions.
    public func view(for viewer: EventViewer) -> EventView? {
        if viewer.isSystem { return .full }
        guard region.utf8.elementsEqual(viewer.region.utf8) else { return nil }
        if viewer.isOperator { return .full }
        let isProvider = providerSees && providerID.map { $0.utf8.elementsEqual(viewer.ownerID.utf8) } ?? false
        if ownerID.utf8.elementsEqual(viewer.ownerID.utf8) { return isProvider ? .full : .owner }
        return isProvider ? .provider : nil
    }
}
