import Foundation

/// One entry of `listHistory`: a committed change as the caller may see it.
public struct HistoryEntry: Sendable, Hashable {
    public var seq: UInt64
    public var kind: ResourceKind
    public var resourceID: String
    public var region: String
    public var type: ChangeType
    public var actor: String
    /// The request id of the call that made the change; empty unless the caller made it, or is an operator.
    public var requestID: String
    public var committedAt: Date
    public var revisionBefore: UInt64?
    public var revisionAfter: UInt64?
    /// The resource after the change (its last state for a delete), as the caller may see it.
    public var state: ResourceState
    /// The resource before the change, in the same view; nil when the event has none.
    public var previous: ResourceState?

    public init(_ event: ChangeEvent, view: EventView, viewer: EventViewer) {
        seq = event.seq
        kind = event.kind
        resourceID = event.resourceID
        region = event.region
        type = event.type
        actor = event.actor
        // Another party's request ids are its own business (they may carry its own naming).
        requestID = viewer.isOperator || event.actor.utf8.elementsEqual(viewer.ownerID.utf8) ? event.requestID : ""
        committedAt = event.committedAt
        revisionBefore = event.revisionBefore
        revisionAfter = event.revisionAfter
        state = event.state.seen(as: view)
        previous = event.previous?.seen(as: view)
    }
}

extension Registry {
    /// Appends a mutation's events to the change log inside its transaction, stamped with the call's
    /// actor, request id and idempotency key (docs/DOMAIN.md, "Change log").
    func log(_ tx: any RegistryTransaction, _ ctx: CallContext, _ events: [ChangeEvent]) async throws {
        try await log(tx, actor: ctx.caller.ownerID, requestID: ctx.requestID, idempotencyKey: ctx.idempotencyKey, events)
    }

    /// The same for changes no call made (the server's own sweeps): `actor` names the server's job.
    func log(
        _ tx: any RegistryTransaction, actor: String, requestID: String = "", idempotencyKey: String = "",
        _ events: [ChangeEvent]
    ) async throws {
        guard !events.isEmpty else { return }
        let now = now()
        let stamped = events.map { event in
            var event = event
            event.actor = actor
            event.requestID = requestID
            event.idempotencyKey = idempotencyKey
            event.committedAt = now
            return event
        }
        _ = try await tx.appendEvents(stamped)
    }

    /// The owner of the service an endpoint connects to, nil once the service is gone.
    static func providerID(of endpoint: Endpoint, _ reader: any RegistryReader) async throws -> String? {
        // Bookkeeping, not an answer: the provider may be another tenant than the caller, and only its
        // owner key is stamped on the event (which the change log shows each party as its view allows).
        try await reader.endpointService(id: endpoint.serviceID, visibleTo: .anyOwner(in: endpoint.region))?.ownerID
    }

    /// The committed changes the caller may see: of one resource (`resourceID`), or of every resource it
    /// may see, optionally within `[since, until)`. Ordered by sequence, newest first unless
    /// `page.sortDir` is `asc`.
    public func listHistory(
        _ ctx: CallContext, resourceID: String?, since: Date?, until: Date?, page: PageRequest
    ) async throws(RegistryError) -> ListResult<HistoryEntry> {
        let scope = try scope(ctx)
        let list = try Validation.historyPage(page)
        if let since, let until, since >= until {
            throw .invalid(.historyRangeInvalid, "until must be later than since", field: "until")
        }
        let viewer = scope.viewer
        let query = EventQuery(
            viewer: viewer, resourceID: nonEmpty(resourceID), since: since, until: until, ascending: list.ascending,
            limit: list.limit, offset: list.offset)
        let result = try await read { reader in try await reader.listEvents(query) }
        return ListResult(
            items: result.items.compactMap { event in
                // The store applied the same rule; checked again on what came back, as for every read.
                event.view(for: viewer).map { HistoryEntry(event, view: $0, viewer: viewer) }
            },
            totalCount: result.totalCount)
    }
}

extension Scope {
    var viewer: EventViewer { EventViewer(region: region, ownerID: ownerID, isOperator: isOperator) }
}
