import Foundation

/// How a list's tag filters combine across keys (a key's values are always alternatives).
public enum TagMatch: String, Sendable, Hashable, Codable {
    /// Every key named must be present, with one of its values (the default).
    case all
    /// At least one key named must be present, with one of its values.
    case any
}

/// What a tag removal names: keys to remove whatever their value, and tags to remove only while the
/// resource carries exactly that value.
public struct TagRemoval: Sendable, Hashable, Codable {
    public var keys: [String]
    public var tags: [Tag]

    public init(keys: [String] = [], tags: [Tag] = []) {
        self.keys = keys
        self.tags = tags
    }

    var isEmpty: Bool { keys.isEmpty && tags.isEmpty }
}

/// Tags after create: adding (or re-valuing) and removing tags of services and endpoints, owner only,
/// each one transaction with a revision check, an idempotency key and an `updated` event.
extension Registry {
    /// Adds `tags` to the service; a key it already carries takes the new value. Owner only.
    public func addEndpointServiceTags(
        _ ctx: CallContext, id: String, tags: [Tag], expectedRevision: UInt64? = nil
    ) async throws(RegistryError) -> EndpointService {
        let scope = try scope(ctx)
        try Self.checkTagAdd(id: id, tags: tags)
        let ref = try ServiceRef(id: id, name: nil, idField: "id")
        let now = now()
        let request: [any Encodable] = [id, tags, expectedRevision]
        let updated = try await write(ctx, "addEndpointServiceTags", request: request) { tx in
            var service = try await Self.ownedService(tx, ref, scope: scope)
            try Self.checkRevision(expectedRevision, current: service.revision, of: "service")
            let before = service
            service.tags = try Self.adding(tags, to: service.tags)
            guard service != before else { return service }
            service.revision += 1
            service.updatedAt = now
            try await tx.updateEndpointService(service)
            try await log(tx, ctx, [ChangeEvent(type: .updated, state: .endpointService(service), previous: .endpointService(before))])
            return service
        }
        return Self.present(updated)
    }

    /// Removes the tags named from the service; a key it does not carry (or carries with another value,
    /// for a key named with a value) is no error and changes nothing. Owner only.
    public func removeEndpointServiceTags(
        _ ctx: CallContext, id: String, _ removal: TagRemoval, expectedRevision: UInt64? = nil
    ) async throws(RegistryError) -> EndpointService {
        let scope = try scope(ctx)
        try Self.checkTagRemoval(id: id, removal)
        let ref = try ServiceRef(id: id, name: nil, idField: "id")
        let now = now()
        let request: [any Encodable] = [id, removal, expectedRevision]
        let updated = try await write(ctx, "removeEndpointServiceTags", request: request) { tx in
            var service = try await Self.ownedService(tx, ref, scope: scope)
            try Self.checkRevision(expectedRevision, current: service.revision, of: "service")
            let before = service
            service.tags = Self.removing(removal, from: service.tags)
            guard service != before else { return service }
            service.revision += 1
            service.updatedAt = now
            try await tx.updateEndpointService(service)
            try await log(tx, ctx, [ChangeEvent(type: .updated, state: .endpointService(service), previous: .endpointService(before))])
            return service
        }
        return Self.present(updated)
    }

    /// Adds `tags` to the caller's endpoint; a key it already carries takes the new value.
    public func addEndpointTags(
        _ ctx: CallContext, id: String, tags: [Tag], expectedRevision: UInt64? = nil
    ) async throws(RegistryError) -> Endpoint {
        let scope = try scope(ctx)
        try Self.checkTagAdd(id: id, tags: tags)
        let now = now()
        let request: [any Encodable] = [id, tags, expectedRevision]
        let updated = try await write(ctx, "addEndpointTags", request: request) { tx in
            var endpoint = try await Self.ownedEndpoint(tx, id: id, scope: scope)
            try Self.checkRevision(expectedRevision, current: endpoint.revision, of: "endpoint")
            let before = endpoint
            endpoint.tags = try Self.adding(tags, to: endpoint.tags)
            return try await self.saveTagChange(endpoint, before: before, at: now, tx, ctx)
        }
        return Self.present(updated)
    }

    /// Removes the tags named from the caller's endpoint, as for services.
    public func removeEndpointTags(
        _ ctx: CallContext, id: String, _ removal: TagRemoval, expectedRevision: UInt64? = nil
    ) async throws(RegistryError) -> Endpoint {
        let scope = try scope(ctx)
        try Self.checkTagRemoval(id: id, removal)
        let now = now()
        let request: [any Encodable] = [id, removal, expectedRevision]
        let updated = try await write(ctx, "removeEndpointTags", request: request) { tx in
            var endpoint = try await Self.ownedEndpoint(tx, id: id, scope: scope)
            try Self.checkRevision(expectedRevision, current: endpoint.revision, of: "endpoint")
            let before = endpoint
            endpoint.tags = Self.removing(removal, from: endpoint.tags)
            return try await self.saveTagChange(endpoint, before: before, at: now, tx, ctx)
        }
        return Self.present(updated)
    }

    private func saveTagChange(
        _ endpoint: Endpoint, before: Endpoint, at now: Date, _ tx: any RegistryTransaction, _ ctx: CallContext
    ) async throws -> Endpoint {
        guard endpoint != before else { return endpoint }
        var endpoint = endpoint
        endpoint.changed(at: now)
        try await tx.updateEndpoint(endpoint)
        try await log(tx, ctx, [ChangeEvent(
            type: .updated, state: .endpoint(endpoint), previous: .endpoint(before),
            providerID: try await Self.providerID(of: endpoint, tx))])
        return endpoint
    }

    private static func checkTagAdd(id: String, tags: [Tag]) throws(RegistryError) {
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        guard !tags.isEmpty else { throw .invalid(.tagsRequired, "give at least one tag", field: "tags") }
        // The same rules as at create: count, key and value syntax, no key twice in the request.
        try Validation.tags(tags)
    }

    private static func checkTagRemoval(id: String, _ removal: TagRemoval) throws(RegistryError) {
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        guard !removal.isEmpty else {
            throw .invalid(.tagsRequired, "name at least one tag key to remove", field: "keys")
        }
        guard removal.keys.count + removal.tags.count <= Validation.maxTags else {
            throw .invalid(.tooManyTags, "at most \(Validation.maxTags) tags per removal", field: "keys")
        }
        // Keys are checked for length only: a key that could never have been set is simply absent.
        for (i, key) in removal.keys.enumerated() where !(1...128).contains(key.count) {
            throw .invalid(.tagInvalid, "a tag key is 1-128 characters", field: "keys[\(i)]")
        }
        for (i, tag) in removal.tags.enumerated() where !(1...128).contains(tag.key.count) || tag.value.count > 255 {
            throw .invalid(.tagInvalid, "a tag key is 1-128 characters and a value at most 255", field: "tags[\(i)].key")
        }
    }

    static func checkRevision(_ expected: UInt64?, current: UInt64, of what: String) throws(RegistryError) {
        guard let expected, expected != 0, expected != current else { return }
        throw RegistryError(
            code: .aborted, reason: .revisionMismatch,
            message: "the \(what) is at revision \(current), not \(expected); read it again and retry",
            field: "expected_revision")
    }

    /// `current` with `added` set: existing keys keep their place and take the new value, new keys follow.
    private static func adding(_ added: [Tag], to current: [Tag]) throws(RegistryError) -> [Tag] {
        var result = current
        for tag in added {
            if let i = result.firstIndex(where: { $0.key == tag.key }) {
                result[i].value = tag.value
            } else {
                result.append(tag)
            }
        }
        guard result.count <= Validation.maxTags else {
            throw .invalid(
                .tooManyTags,
                "a resource carries at most \(Validation.maxTags) tags; it has \(current.count) and this adds \(result.count - current.count)",
                field: "tags")
        }
        return result
    }

    private static func removing(_ removal: TagRemoval, from current: [Tag]) -> [Tag] {
        let keys = Set(removal.keys)
        let exact = Set(removal.tags)
        return current.filter { !keys.contains($0.key) && !exact.contains($0) }
    }
}
