import Foundation

/// Endpoint services after creation: update, delete, and what consumers may learn of them.
extension Registry {
    /// Changes the fields given; `ports` replaces the whole list. Owner only.
    public func updateEndpointService(
        _ ctx: CallContext, id: String, _ update: EndpointServiceUpdate
    ) async throws(RegistryError) -> EndpointService {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        guard update.approvalEnabled != nil || update.name != nil || update.ports != nil || update.clientIPMode != nil
            || update.description != nil
        else {
            throw .invalid(.updateEmpty, "give at least one field to change", field: nil)
        }
        let ports = try update.ports.map { ports throws(RegistryError) in try Validation.ports(ports) }
        if let name = update.name { try Validation.serviceName(name) }
        if let description = update.description { try Validation.description(description) }
        let ref = try ServiceRef(id: id, name: nil, idField: "id")
        let now = now()
        let updated = try await write(ctx, "updateEndpointService", request: [id, update]) { tx in
            var service = try await Self.ownedService(tx, ref, scope: scope)
            if let expected = update.expectedRevision, expected != service.revision {
                throw RegistryError(
                    code: .aborted, reason: .revisionMismatch,
                    message: "the service is at revision \(service.revision), not \(expected); read it again and retry",
                    field: "expected_revision")
            }
            guard service.status == .available else {
                throw RegistryError.precondition(
                    .serviceNotAvailable, "the service cannot change while \(service.status.rawValue)", field: nil)
            }
            let before = service
            if let ports {
                try await Self.checkServicePorts(ports, backendID: service.backendID, excluding: service.id, tx)
                service.ports = ports
            }
            if let name = update.name {
                service.name = name
                service.serviceName = Self.serviceName(region: service.region, name: name, id: service.id)
            }
            if let approval = update.approvalEnabled { service.approvalEnabled = approval }
            if let mode = update.clientIPMode { service.clientIPMode = mode }
            if let description = update.description { service.description = description }
            // The service is the caller's own, and so is its backend.
            if let backend = try await tx.backend(id: service.backendID, visibleTo: scope.owning),
                scope.owns(region: backend.region, ownerID: backend.ownerID)
            {
                service.warnings = Self.warnings(backend: backend)
            }
            // Setting what is already there is not a change: no new revision.
            guard service != before else { return service }
            service.revision += 1
            service.updatedAt = now
            try await tx.updateEndpointService(service)
            try await log(tx, ctx, [ChangeEvent(type: .updated, state: .endpointService(service), previous: .endpointService(before))])
            return service
        }
        return Self.present(updated)
    }

    /// Deletes the service at once, with its allow-list. Refused while an endpoint is accepted or creating;
    /// endpoints still waiting for acceptance become `failed`, rejected ones stay rejected.
    public func deleteEndpointService(_ ctx: CallContext, id: String) async throws(RegistryError) {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        let ref = try ServiceRef(id: id, name: nil, idField: "id")
        let now = now()
        try await write(ctx, "deleteEndpointService", request: [id]) { tx in
            let service = try await Self.ownedService(tx, ref, scope: scope)
            let endpoints = try await tx.endpoints(serviceID: service.id, serviceVisibleTo: scope.reading)
            let connected = endpoints.filter(\.status.isConnected).count
            guard connected == 0 else {
                throw RegistryError.precondition(
                    .serviceInUse,
                    "the service has \(connected) accepted or creating endpoint(s); reject them or have them deleted first",
                    field: "id")
            }
            var events: [ChangeEvent] = []
            for var endpoint in endpoints where endpoint.status == .pendingAcceptance {
                let before = endpoint
                endpoint.status = .failed
                endpoint.changed(at: now)
                try await tx.updateEndpoint(endpoint)
                events.append(ChangeEvent(
                    type: .updated, state: .endpoint(endpoint), previous: .endpoint(before), providerID: service.ownerID))
            }
            // The allow-list goes with the service; each entry's removal is logged like a RemovePermissions.
            for permission in try await tx.permissions(serviceID: service.id, serviceVisibleTo: scope.reading) {
                events.append(ChangeEvent(type: .permissionRemoved, state: .permission(permission), providerID: service.ownerID))
            }
            try await tx.deleteEndpointService(id: service.id)
            events.append(ChangeEvent(type: .deleted, state: .endpointService(service)))
            try await log(tx, ctx, events)
        }
    }

    /// A consumer's lookup. Answered to the owner, operators, and tenants that the allow-list admits, and for
    /// public services to everyone; anyone else learns nothing (`SERVICE_NOT_FOUND`).
    public func describeEndpointService(
        _ ctx: CallContext, id: String?, serviceName: String?
    ) async throws(RegistryError) -> EndpointServiceSummary {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: id, name: serviceName, idField: "id")
        return try await read { reader in
            guard let seen = try await Self.seenService(reader, ref, scope: scope) else { throw ref.notFound }
            return EndpointServiceSummary(seen.service)
        }
    }

    /// Public services of the region (made by operators), for every caller.
    public func listPublicEndpointServices(
        _ ctx: CallContext, name: String?, id: String?, page: PageRequest
    ) async throws(RegistryError) -> ListResult<EndpointServiceSummary> {
        let scope = try scope(ctx)
        let filter = EndpointServiceFilter(name: nonEmpty(name), id: nonEmpty(id), publicOnly: true)
        let query = try Validation.page(
            page, region: scope.region, ownerID: nil, list: "public_endpoint_services", filter: filter)
        let result = try await read { reader in try await reader.listEndpointServices(query, filter: filter) }
        return result.map(EndpointServiceSummary.init).withPageToken(for: query)
    }
}
