import Foundation

/// The allow-list of a service: who, besides the owner, may create endpoints to it.
extension Registry {
    /// Adds entries with their terms (decision, connection limit, expiry). An entry already on the list
    /// keeps its id and creation time and takes the given terms and description (an `updated` event when
    /// anything changed; nothing when all is as given), as a declarative tool expects. Owner only.
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
            for (i, (entry, id)) in zip(entries, ids).enumerated() {
                let present = existing.firstIndex { $0.permission == entry.permission }
                // An unchanged expiry may lie in the past (a re-applied configuration); a new one may not.
                if let expiresAt = entry.expiresAt, expiresAt <= now,
                    present.map({ existing[$0].expiresAt != expiresAt }) ?? true
                {
                    throw RegistryError.invalid(
                        .expiryInPast, "expires_at must be later than now", field: "entries[\(i)].expires_at")
                }
                if let present {
                    let before = existing[present]
                    guard before.terms != entry else {
                        result.append(before)
                        continue
                    }
                    var after = before
                    after.description = entry.description
                    after.decision = entry.decision
                    after.connectionLimit = entry.connectionLimit
                    after.onExpiry = entry.onExpiry
                    if after.expiresAt != entry.expiresAt {
                        after.expiresAt = entry.expiresAt
                        after.expiryHandled = false
                    }
                    after.updatedAt = now
                    try await tx.updatePermission(after)
                    existing[present] = after
                    result.append(after)
                    events.append(ChangeEvent(
                        type: .updated, state: .permission(after), previous: .permission(before),
                        providerID: service.ownerID))
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
                    region: service.region, createdAt: now, decision: entry.decision,
                    connectionLimit: entry.connectionLimit, expiresAt: entry.expiresAt, onExpiry: entry.onExpiry)
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
        let now = now()
        // What the removal does, worked out on any snapshot: the entries that go and the endpoints that
        // lose their admission.
        let plan: @Sendable (any RegistryReader) async throws -> (EndpointService, [Permission], [Endpoint]) = { reader in
            let service = try await Self.ownedService(reader, ref, scope: scope)
            let entries = try await reader.permissions(serviceID: service.id, serviceVisibleTo: scope.reading)
            let doomed = entries.filter { names.contains($0.permission) || idSet.contains($0.id) }
            guard !doomed.isEmpty else { return (service, [], []) }
            let remaining = entries.filter { !names.contains($0.permission) && !idSet.contains($0.id) }
            let affected = try await reader.endpoints(serviceID: service.id, serviceVisibleTo: scope.reading)
                .filter { $0.status.isLive && !Self.admitsConsumer($0.ownerID, of: service, entries: remaining, at: now) }
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            return (service, doomed, affected)
        }
        if dryRun {
            let (_, doomed, affected) = try await read(plan)
            return PermissionRemoval(removedCount: doomed.count, affected: affected.map(Connection.init))
        }
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

    /// Whether `consumerID` may keep its connections to `service` under the allow-list `entries` at
    /// `now`: as the expiry sweep judges (docs/DOMAIN.md, "Access policies"), admitted by a live entry
    /// that does not deny it; a reached limit does not take away what is held.
    static func admitsConsumer(_ consumerID: String, of service: EndpointService, entries: [Permission], at now: Date) -> Bool {
        let admission = Admission.evaluate(entries: entries, tenant: consumerID, serviceOwner: service.ownerID, now: now, held: 0)
        return admission.basis != .none && admission.refusal != .accessDenied
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
