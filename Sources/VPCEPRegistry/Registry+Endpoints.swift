import Foundation

/// VPC endpoints: a consumer's way into a service, placed in the consumer's own VPC and subnet.
extension Registry {
    public func createEndpoint(_ ctx: CallContext, _ spec: EndpointSpec) async throws(RegistryError) -> Endpoint {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: spec.serviceID, name: spec.serviceName)
        guard !spec.vpcID.isEmpty else { throw .invalid(.vpcIDRequired, "vpc_id is required", field: "vpc_id") }
        guard !spec.subnetID.isEmpty else {
            throw .invalid(.subnetIDRequired, "subnet_id is required", field: "subnet_id")
        }
        let requested = try Self.requestedIP(spec.ip)
        let whitelist = try Validation.whitelist(spec.whitelist)
        try Validation.description(spec.description)
        try Validation.tags(spec.tags)
        try Validation.message(spec.requestMessage, field: "request_message")
        let id = makeID()
        let stored = try await write(ctx, "createEndpoint", request: [spec]) { tx in
            // The service first: one the caller cannot see is not found, whatever else is wrong.
            guard let (service, permissions) = try await Self.seenService(tx, ref, scope: scope) else {
                throw ref.notFoundForConsumer(scope)
            }
            guard Self.admits(service, permissions, scope: scope) else {
                throw RegistryError(
                    code: .permissionDenied, reason: .notAllowedByService,
                    message: "the service's allow-list does not admit the caller", field: ref.field)
            }
            // The clock is read here, after the store's write lock, so that a create ordered after the
            // expiry sweep also sees the expiry (docs/DOMAIN.md, "Access policies").
            let now = self.now()
            let admission = try await Self.admission(
                tx, service: service, permissions: permissions, tenant: scope.ownerID, now: now)
            if let refusal = admission.refusal {
                throw Self.refusal(refusal, admission, tenant: scope.ownerID, service: service, field: ref.field)
            }
            guard service.status == .available else {
                throw RegistryError.precondition(
                    .serviceNotAvailable, "the service is \(service.status.rawValue), not available", field: ref.field)
            }
            _ = try await Self.ownedVPC(tx, id: spec.vpcID, scope: scope)
            let subnet = try await Self.ownedSubnet(tx, id: spec.subnetID, vpcID: spec.vpcID, scope: scope)
            let used = try await tx.countEndpoints(ownerID: scope.ownerID, region: scope.region)
            try await Self.checkQuota(tx, scope: scope, type: .endpoint, used: used)
            let ip = try await Self.allocateIP(tx, subnet: subnet, requested: requested)
            let markerID = try await tx.nextMarkerID()
            // No data plane: an endpoint the provider need not review (approval off, or an auto_accept
            // entry) is accepted at once, with nothing to provision (docs/DOMAIN.md, "Endpoints").
            let status = admission.initialStatus(approvalEnabled: service.approvalEnabled)
            let endpoint = Endpoint(
                id: id, ownerID: scope.ownerID, region: scope.region, vpcID: spec.vpcID, subnetID: subnet.id,
                serviceID: service.id, serviceName: service.serviceName, serviceType: service.serviceType, ip: ip,
                status: status, markerID: markerID,
                dnsName: spec.enableDNS ? "\(id).\(scope.region).vpcep.internal" : "", whitelist: whitelist,
                enableWhitelist: spec.enableWhitelist, description: spec.description, tags: spec.tags,
                everAccepted: status == .accepted, createdAt: now, updatedAt: now, requestMessage: spec.requestMessage)
            try await tx.insertEndpoint(endpoint)
            try await log(tx, ctx, [ChangeEvent(
                type: status == .pendingAcceptance ? .connectionRequested : .created, state: .endpoint(endpoint),
                providerID: service.ownerID)])
            return endpoint
        }
        return Self.present(stored)
    }

    /// The caller's endpoint (operators: any in the region).
    public func getEndpoint(_ ctx: CallContext, id: String) async throws(RegistryError) -> Endpoint {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        let found = try await read { reader in try await reader.endpoint(id: id, visibleTo: scope.reading) }
        guard let found, scope.canRead(region: found.region, ownerID: found.ownerID) else {
            throw .notFound(.endpointNotFound, "no such endpoint", field: "id")
        }
        return Self.present(found)
    }

    public func listEndpoints(
        _ ctx: CallContext, filter: EndpointFilter, page: PageRequest
    ) async throws(RegistryError) -> ListResult<Endpoint> {
        let scope = try scope(ctx)
        let filter = EndpointFilter(
            id: nonEmpty(filter.id), vpcID: nonEmpty(filter.vpcID), serviceName: nonEmpty(filter.serviceName),
            status: filter.status, markerID: filter.markerID, tags: try Validation.tagFilters(filter.tags),
            tagMatch: filter.tagMatch)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner, list: "endpoints", filter: filter)
        let result = try await read { reader in try await reader.listEndpoints(query, filter: filter) }
        return result.map(Self.present).withPageToken(for: query)
    }

    /// Changes the consumer's whitelist, its switch and the description. Owner only.
    public func updateEndpoint(_ ctx: CallContext, id: String, _ update: EndpointUpdate) async throws(RegistryError) -> Endpoint {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        guard update.whitelist != nil || update.enableWhitelist != nil || update.description != nil else {
            throw .invalid(.updateEmpty, "give at least one field to change", field: nil)
        }
        let whitelist = try update.whitelist.map { list throws(RegistryError) in try Validation.whitelist(list) }
        if let description = update.description { try Validation.description(description) }
        let now = now()
        let updated = try await write(ctx, "updateEndpoint", request: [id, update]) { tx in
            var endpoint = try await Self.ownedEndpoint(tx, id: id, scope: scope)
            let before = endpoint
            if let whitelist { endpoint.whitelist = whitelist }
            if let enable = update.enableWhitelist { endpoint.enableWhitelist = enable }
            if let description = update.description { endpoint.description = description }
            guard endpoint != before else { return endpoint }
            endpoint.changed(at: now)
            try await tx.updateEndpoint(endpoint)
            try await log(tx, ctx, [ChangeEvent(
                type: .updated, state: .endpoint(endpoint), previous: .endpoint(before),
                providerID: try await Self.providerID(of: endpoint, tx))])
            return endpoint
        }
        return Self.present(updated)
    }

    /// Deletes the endpoint at once and frees its address; the service's connection count drops with it.
    public func deleteEndpoint(_ ctx: CallContext, id: String) async throws(RegistryError) {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        try await write(ctx, "deleteEndpoint", request: [id]) { tx in
            let endpoint = try await Self.ownedEndpoint(tx, id: id, scope: scope)
            let providerID = try await Self.providerID(of: endpoint, tx)
            try await tx.deleteEndpoint(id: endpoint.id)
            try await log(tx, ctx, [ChangeEvent(type: .deleted, state: .endpoint(endpoint), providerID: providerID)])
        }
    }

    static func ownedEndpoint(_ reader: any RegistryReader, id: String, scope: Scope) async throws -> Endpoint {
        guard let endpoint = try await reader.endpoint(id: id, visibleTo: scope.reading),
            scope.canRead(region: endpoint.region, ownerID: endpoint.ownerID)
        else {
            throw RegistryError.notFound(.endpointNotFound, "no such endpoint", field: "id")
        }
        try requireOwner(scope, ownerID: endpoint.ownerID)
        return endpoint
    }

    /// Hides the address until the endpoint is accepted (it stays shown after a rejection that followed).
    static func present(_ endpoint: Endpoint) -> Endpoint {
        var endpoint = endpoint
        if !endpoint.ipVisible { endpoint.ip = "" }
        return endpoint
    }
}
