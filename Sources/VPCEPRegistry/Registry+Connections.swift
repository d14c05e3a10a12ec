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

    /// Accepts (`pendingAcceptance → accepted`) or rejects (`pendingAcceptance | accepted → rejected`) the named
    /// endpoints of one service, all or none. Deciding what is already decided that way changes nothing;
    /// a rejection is final. Owner only.
    public func decideConnections(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, endpointIDs: [String], accept: Bool
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
        let now = now()
        let method = accept ? "acceptConnections" : "rejectConnections"
        return try await write(ctx, method, request: [serviceID, serviceName, endpointIDs]) { tx in
            let service = try await Self.ownedService(tx, ref, scope: scope)
            var result: [Connection] = []
            var events: [ChangeEvent] = []
            for (i, id) in endpointIDs.enumerated() {
                let field = "endpoint_ids[\(i)]"
                var endpoint = try await Self.connection(tx, id: id, on: service, field: field)
                let target: EndpointStatus = accept ? .accepted : .rejected
                if endpoint.status != target {
                    let allowed: Set<EndpointStatus> =
                        accept ? [.pendingAcceptance, .creating] : [.pendingAcceptance, .creating, .accepted]
                    guard allowed.contains(endpoint.status) else {
                        throw RegistryError.precondition(
                            .connectionStateInvalid,
                            "a connection that is \(endpoint.status.rawValue) cannot be \(accept ? "accepted" : "rejected")",
                            field: field)
                    }
                    let before = endpoint
                    endpoint.status = target
                    if accept { endpoint.everAccepted = true }
                    endpoint.decidedBy = scope.ownerID
                    endpoint.decidedAt = now
                    endpoint.changed(at: now)
                    try await tx.updateEndpoint(endpoint)
                    events.append(ChangeEvent(
                        type: accept ? .connectionAccepted : .connectionRejected, state: .endpoint(endpoint),
                        previous: .endpoint(before), providerID: service.ownerID))
                }
                result.append(Connection(endpoint))
            }
            try await log(tx, ctx, events)
            return result
        }
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
