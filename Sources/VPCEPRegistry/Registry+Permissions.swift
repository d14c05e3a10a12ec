import Foundation

/// The allow-list of a service: who, besides the owner, may create endpoints to it.
extension Registry {
    /// Adds entries; an entry already on the list is kept as it was and returned. Owner only.
    public func addPermissions(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, entries: [PermissionEntry]
    ) async throws(RegistryError) -> [Permission] {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        try Validation.permissionEntries(entries)
        let now = now()
        let ids = entries.map { _ in makeID() }
        return try await write(ctx, "addPermissions", request: [serviceID, serviceName, entries]) { tx in
            let service = try await Self.ownedService(tx, ref, scope: scope)
            var existing = try await tx.permissions(serviceID: service.id, serviceVisibleTo: scope.reading)
            var result: [Permission] = []
            var events: [ChangeEvent] = []
            for (entry, id) in zip(entries, ids) {
                if let present = existing.first(where: { $0.permission == entry.permission }) {
                    result.append(present)
                    continue
                }
                guard existing.count < Validation.maxPermissions else {
                    throw RegistryError(
                        code: .resourceExhausted, reason: .permissionLimitExceeded,
                        message: "a service's allow-list holds at most \(Validation.maxPermissions) entries",
                        field: "entries")
                }
                let permission = Permission(
                    id: id, serviceID: service.id, permission: entry.permission, description: entry.description,
                    region: service.region, createdAt: now)
                try await tx.insertPermission(permission)
                existing.append(permission)
                result.append(permission)
                events.append(ChangeEvent(type: .permissionAdded, state: .permission(permission), providerID: service.ownerID))
            }
            try await log(tx, ctx, events)
            return result
        }
    }

    /// Removes the entries named by permission string or by id; names not on the list are ignored.
    /// Existing endpoints stay connected. Owner only. Returns how many entries were removed.
    public func removePermissions(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, permissions: [String], ids: [String]
    ) async throws(RegistryError) -> Int {
        try await removePermissions(
            ctx, serviceID: serviceID, serviceName: serviceName, permissions: permissions, ids: ids,
            onExisting: .keep, dryRun: false
        ).removedCount
    }

    /// Removes the entries named by permission string or by id (names not on the list are ignored) and
    /// reports the live endpoints of consumers that the remaining entries no longer admit; with
    /// `onExisting` `.reject` those are rejected in the same transaction. A dry run answers the same
    /// from one snapshot and changes nothing. Owner only.
    public func removePermissions(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, permissions: [String], ids: [String],
        onExisting: OnExisting, dryRun: Bool
    ) async throws(RegistryError) -> PermissionRemoval {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        guard !permissions.isEmpty || !ids.isEmpty else {
            throw .invalid(.permissionsRequired, "name at least one entry to remove", field: "permissions")
        }
        guard permissions.count + ids.count <= Validation.maxPermissionsPerRequest else {
            throw .invalid(
                .tooManyPermissions, "at most \(Validation.maxPermissionsPerRequest) entries per request",
                field: "permissions")
        }
        let names = Set(permissions)
        let idSet = Set(ids)
        // What the removal does, worked out on any snapshot: the entries that go and the endpoints that
        // lose their admission.
        let plan: @Sendable (any RegistryReader) async throws -> (EndpointService, [Permission], [Endpoint]) = { reader in
            let service = try await Self.ownedService(reader, ref, scope: scope)
            let entries = try await reader.permissions(serviceID: service.id, serviceVisibleTo: scope.reading)
            let doomed = entries.filter { names.contains($0.permission) || idSet.contains($0.id) }
            guard !doomed.isEmpty else { return (service, [], []) }
            let remaining = entries.filter { !names.contains($0.permission) && !idSet.contains($0.id) }
            let affected = try await reader.endpoints(serviceID: service.id, serviceVisibleTo: scope.reading)
                .filter { $0.status.isLive && !Self.admitsConsumer($0.ownerID, of: service, entries: remaining) }
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            return (service, doomed, affected)
        }
        if dryRun {
            let (_, doomed, affected) = try await read(plan)
            return PermissionRemoval(removedCount: doomed.count, affected: affected.map(Connection.init))
        }
        let now = now()
        var request: [any Encodable] = [serviceID, serviceName, permissions, ids]
        // Keep, the default, fingerprints as the request did before the option existed.
        if onExisting != .keep { request.append(onExisting.rawValue) }
        return try await write(ctx, "removePermissions", request: request) { tx in
            let (service, doomed, affected) = try await plan(tx)
            if !doomed.isEmpty { try await tx.deletePermissions(ids: doomed.map(\.id)) }
            var events = doomed.map {
                ChangeEvent(type: .permissionRemoved, state: .permission($0), providerID: service.ownerID)
            }
            var result: [Connection] = []
            for var endpoint in affected {
                if onExisting == .reject {
                    let before = endpoint
                    Self.decide(&endpoint, .rejected, by: scope.ownerID, reason: Self.revokedReason, at: now)
                    try await tx.updateEndpoint(endpoint)
                    events.append(ChangeEvent(
                        type: .connectionRejected, state: .endpoint(endpoint), previous: .endpoint(before),
                        providerID: service.ownerID))
                }
                result.append(Connection(endpoint))
            }
            try await log(tx, ctx, events)
            return PermissionRemoval(removedCount: doomed.count, affected: result)
        }
    }

    /// The reason a revocation's rejection carries.
    static let revokedReason = "the provider removed the consumer from the service's allow-list"

    /// Whether `consumerID` may hold connections to `service` under the allow-list `entries`: its owner
    /// always, anyone else through its own entry or `*`. The one place a revocation asks this, so that
    /// richer entries (per-entry decisions, expiry) change it here.
    static func admitsConsumer(_ consumerID: String, of service: EndpointService, entries: [Permission]) -> Bool {
        if consumerID.utf8.elementsEqual(service.ownerID.utf8) { return true }
        let own = Permission.domain(consumerID)
        return entries.contains { $0.permission == Permission.everyone || $0.permission.utf8.elementsEqual(own.utf8) }
    }

    /// The service's entries (the owner's implicit one is not listed). Owner or operators.
    public func listPermissions(
        _ ctx: CallContext, serviceID: String?, serviceName: String?, permission: String?, page: PageRequest
    ) async throws(RegistryError) -> ListResult<Permission> {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: serviceID, name: serviceName)
        let substring = nonEmpty(permission)
        let query = try Validation.page(
            page, region: scope.region, ownerID: nil, list: "permissions", filter: [serviceID, serviceName, substring])
        return try await read { reader in
            let service = try await Self.readableService(reader, ref, scope: scope)
            return try await reader.listPermissions(
                query, serviceID: service.id, serviceVisibleTo: scope.reading, permission: substring)
        }.withPageToken(for: query)
    }
}
