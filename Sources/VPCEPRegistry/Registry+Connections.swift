import Foundation

/// Connections: the provider's view of the endpoints on its service, and its decisions on them.
extension Registry {
    /// The service's connections. Owner or operators.
    public func listConnections(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, filter: EndpointFilter, page: PageRequest
    ) async throws(RegistryError) -> ListResult<Connection> {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        let base = EndpointFilter(id: nonEmpty(filter.id), status: filter.status, markerID: filter.markerID)
        let query = try Validation.page(
            page, region: scope.region, ownerID: nil, list: "connections", filter: [String(reflecting: base), serviceID, serviceName])
        return try await read { reader in
            let service = try await Self.readableService(reader, ref, scope: scope)
            var filter = base
            filter.serviceID = service.id
            return try await reader.listEndpoints(query, filter: filter).map(Connection.init)
        }.withPageToken(for: query)
    }

    /// Accepts or rejects the named endpoints of one service (`decideConnections(_:serviceID:serviceName:endpointIDs:action:reason:)`
    /// with `.accept` or `.reject` and no reason).
    public func decideConnections(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, endpointIDs: [String], accept: Bool
    ) async throws(RegistryError) -> [Connection] {
        try await decideConnections(
            ctx, serviceID: serviceID, serviceName: serviceName, endpointIDs: endpointIDs,
            action: accept ? .accept : .reject, reason: "")
    }

    /// Applies `action` to the named endpoints of one service, all or none (docs/DOMAIN.md, "Connections"
    /// and "Suspend and resume"). A connection already in the action's resulting state is left as it is
    /// (its reason too); a rejection is final. `reason` becomes each changed connection's decision reason.
    /// Owner only.
    public func decideConnections(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, endpointIDs: [String],
        action: ConnectionAction, reason: String
    ) async throws(RegistryError) -> [Connection] {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        guard !endpointIDs.isEmpty else {
            throw .invalid(.endpointIDsRequired, "name at least one endpoint", field: "endpoint_ids")
        }
        guard endpointIDs.count <= Validation.maxDecisionsPerRequest else {
            throw .invalid(
                .tooManyEndpointIDs, "at most \(Validation.maxDecisionsPerRequest) endpoints per request",
                field: "endpoint_ids")
        }
        var seen: Set<String> = []
        for (i, id) in endpointIDs.enumerated() {
            guard !id.isEmpty else { throw .invalid(.endpointIDRequired, "an endpoint id is empty", field: "endpoint_ids[\(i)]") }
            guard seen.insert(id).inserted else {
                throw .invalid(.endpointIDDuplicate, "the endpoint is named twice", field: "endpoint_ids[\(i)]")
            }
        }
        try Validation.message(reason, field: "reason")
        let now = now()
        // Without a reason the request fingerprints as it did before reasons existed.
        var request: [any Encodable] = [serviceID, serviceName, endpointIDs]
        if !reason.isEmpty { request.append(reason) }
        return try await write(ctx, action.method, request: request) { tx in
            let service = try await Self.ownedService(tx, ref, scope: scope)
            var result: [Connection] = []
            var events: [ChangeEvent] = []
            for (i, id) in endpointIDs.enumerated() {
                let field = "endpoint_ids[\(i)]"
                var endpoint = try await Self.connection(tx, id: id, on: service, field: field)
                if endpoint.status != action.target {
                    guard action.from.contains(endpoint.status) else {
                        throw RegistryError.precondition(
                            .connectionStateInvalid,
                            "a connection that is \(endpoint.status.rawValue) cannot be \(action.pastTense)", field: field)
                    }
                    let before = endpoint
                    Self.decide(&endpoint, action.target, by: scope.ownerID, reason: reason, at: now)
                    try await tx.updateEndpoint(endpoint)
                    events.append(ChangeEvent(
                        type: action.changeType, state: .endpoint(endpoint), previous: .endpoint(before),
                        providerID: service.ownerID))
                }
                result.append(Connection(endpoint))
            }
            try await log(tx, ctx, events)
            return result
        }
    }

    /// Records a decision on a connection: its new status, who decided, when and why.
    static func decide(_ endpoint: inout Endpoint, _ status: EndpointStatus, by ownerID: String, reason: String, at now: Date) {
        endpoint.status = status
        if status == .accepted { endpoint.everAccepted = true }
        endpoint.decidedBy = ownerID
        endpoint.decidedAt = now
        endpoint.decisionReason = reason
        endpoint.changed(at: now)
    }

    /// Sets the provider's description of one connection. Owner only.
    public func updateConnectionDescription(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, endpointID: String, description: String
    ) async throws(RegistryError) -> Connection {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        guard !endpointID.isEmpty else {
            throw .invalid(.endpointIDRequired, "endpoint_id is required", field: "endpoint_id")
        }
        try Validation.description(description)
        let now = now()
        let request: [any Encodable] = [serviceID, serviceName, endpointID, description]
        return try await write(ctx, "updateConnectionDescription", request: request) { tx in
            let service = try await Self.ownedService(tx, ref, scope: scope)
            var endpoint = try await Self.connection(tx, id: endpointID, on: service, field: "endpoint_id")
            if endpoint.connectionDescription != description {
                let before = endpoint
                endpoint.connectionDescription = description
                endpoint.changed(at: now)
                try await tx.updateEndpoint(endpoint)
                try await log(tx, ctx, [ChangeEvent(
                    type: .updated, state: .endpoint(endpoint), previous: .endpoint(before), providerID: service.ownerID)])
            }
            return Connection(endpoint)
        }
    }

    /// An endpoint connecting to `service` (of any owner: the provider's view), or `CONNECTION_NOT_FOUND`
    /// alike for a missing endpoint and for one on another service.
    static func connection(
        _ reader: any RegistryReader, id: String, on service: EndpointService, field: String
    ) async throws -> Endpoint {
        let visibility = Visibility.provider(of: service)
        // The store applies `visibility`; checking again keeps a store that got it wrong from leaking.
        guard let endpoint = try await reader.endpoint(id: id, visibleTo: visibility),
            visibility.admits(region: endpoint.region, ownerID: endpoint.ownerID, serviceID: endpoint.serviceID)
        else {
            throw RegistryError.notFound(.connectionNotFound, "no such endpoint on this service", field: field)
        }
        return endpoint
    }
}

/// What a provider does to connections of its service.
public enum ConnectionAction: String, Sendable, Hashable, CaseIterable {
    case accept
    case reject
    case suspend
    case resume

    /// The status the action leaves a connection in.
    public var target: EndpointStatus {
        switch self {
        case .accept, .resume: .accepted
        case .reject: .rejected
        case .suspend: .suspended
        }
    }

    /// The statuses the action moves on to `target` (a connection already there is left alone).
    var from: Set<EndpointStatus> {
        switch self {
        case .accept: [.pendingAcceptance, .creating]
        case .reject: [.pendingAcceptance, .creating, .accepted, .suspended]
        case .suspend: [.accepted]
        case .resume: [.suspended]
        }
    }

    var changeType: ChangeType {
        switch self {
        case .accept: .connectionAccepted
        case .reject: .connectionRejected
        case .suspend: .connectionSuspended
        case .resume: .connectionResumed
        }
    }

    /// The idempotency records' operation name; accept and reject keep theirs from before.
    var method: String { "\(rawValue)Connections" }

    var pastTense: String {
        switch self {
        case .accept: "accepted"
        case .reject: "rejected"
        case .suspend: "suspended"
        case .resume: "resumed"
        }
    }
}
