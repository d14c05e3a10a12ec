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

    /// Deletes the service at once, with its allow-list. Refused while an endpoint is accepted, suspended or
    /// creating; endpoints still waiting for acceptance become `failed`, rejected ones stay rejected.
    public func deleteEndpointService(_ ctx: CallContext, id: String) async throws(RegistryError) {
        _ = try await deleteEndpointService(ctx, id: id, force: false, dryRun: false)
    }

    /// Deletes the service at once, with its allow-list, and returns the connections whose status the
    /// delete changed, as they are afterwards (docs/DOMAIN.md, "Force delete"). Without `force` it is
    /// refused while an endpoint is connected (accepted, suspended or creating), and endpoints waiting for
    /// acceptance become `failed`. With `force` every live connection is rejected, with a reason saying
    /// the service was deleted, in the same transaction. A dry run answers the same from one snapshot
    /// (the connections as they are now) and changes nothing.
    @discardableResult
    public func deleteEndpointService(
        _ ctx: CallContext, id: String, force: Bool, dryRun: Bool
    ) async throws(RegistryError) -> [Connection] {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        let ref = try ServiceRef(id: id, name: nil, idField: "id")
        let plan: @Sendable (any RegistryReader) async throws -> (EndpointService, [Endpoint]) = { reader in
            let service = try await Self.ownedService(reader, ref, scope: scope)
            let endpoints = try await reader.endpoints(serviceID: service.id, serviceVisibleTo: scope.reading)
            let connected = endpoints.filter(\.status.isConnected).count
            guard force || connected == 0 else {
                throw RegistryError.precondition(
                    .serviceInUse,
                    "the service has \(connected) accepted, suspended or creating endpoint(s); reject them, have them deleted, or delete with force",
                    field: "id")
            }
            let affected = endpoints
                .filter { force ? $0.status.isLive : $0.status == .pendingAcceptance }
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            return (service, affected)
        }
        if dryRun {
            return try await read(plan).1.map(Connection.init)
        }
        return try await applyDelete(ctx, id: id, force: force, plan: plan, scope: scope).affected
    }

    private func applyDelete(
        _ ctx: CallContext, id: String, force: Bool,
        plan: @escaping @Sendable (any RegistryReader) async throws -> (EndpointService, [Endpoint]), scope: Scope
    ) async throws(RegistryError) -> ServiceDeletion {
        let now = now()
        // Without force the request fingerprints as it did before the option existed.
        let request: [any Encodable] = force ? [id, "force"] : [id]
        return try await write(ctx, "deleteEndpointService", request: request) { tx in
            let (service, affected) = try await plan(tx)
            var events: [ChangeEvent] = []
            var result: [Connection] = []
            for var endpoint in affected {
                let before = endpoint
                if force {
                    Self.decide(&endpoint, .rejected, by: scope.ownerID, reason: Self.serviceDeletedReason, at: now)
                } else {
                    endpoint.status = .failed
                    endpoint.changed(at: now)
                }
                try await tx.updateEndpoint(endpoint)
                events.append(ChangeEvent(
                    type: force ? .connectionRejected : .updated, state: .endpoint(endpoint), previous: .endpoint(before),
                    providerID: service.ownerID))
                result.append(Connection(endpoint))
            }
            // The allow-list goes with the service; each entry's removal is logged like a RemovePermissions.
            for permission in try await tx.permissions(serviceID: service.id, serviceVisibleTo: scope.reading) {
                events.append(ChangeEvent(type: .permissionRemoved, state: .permission(permission), providerID: service.ownerID))
            }
            try await tx.deleteEndpointService(id: service.id)
            events.append(ChangeEvent(type: .deleted, state: .endpointService(service)))
            try await log(tx, ctx, events)
            return ServiceDeletion(affected: result)
        }
    }

    /// The reason a forced delete's rejections carry.
    static let serviceDeletedReason = "the service was deleted by its provider"

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

/// A service delete's outcome, as its idempotency record keeps it.
struct ServiceDeletion: Sendable, Codable {
    var affected: [Connection]

    init(affected: [Connection]) { self.affected = affected }

    /// Records stored before deletes reported connections hold an empty object.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        affected = try c.decodeIfPresent([Connection].self, forKey: .affected) ?? []
    }
}
