/// A service named in a request by exactly one of its id and its service name.
struct ServiceRef: Sendable {
    enum Key: Sendable {
        case id(String)
        case name(String)
    }

    let key: Key
    /// The request field that named it.
    let field: String

    /// Empty strings count as absent. Neither or both is `ID_OR_NAME_REQUIRED`.
    init(id: String?, name: String?, idField: String = "service_id", nameField: String = "service_name") throws(RegistryError) {
        switch (nonEmpty(id), nonEmpty(name)) {
        case (let id?, nil):
            key = .id(id)
            field = idField
        case (nil, let name?):
            key = .name(name)
            field = nameField
        case (nil, nil):
            throw .invalid(.idOrNameRequired, "give exactly one of \(idField) and \(nameField)", field: idField)
        case (_?, _?):
            throw .invalid(.idOrNameRequired, "give exactly one of \(idField) and \(nameField)", field: nameField)
        }
    }

    /// The service if `visibility` admits it. A service it does not admit is filtered out by the store's
    /// look-up, so it costs what a missing one costs: no row comes back.
    func find(_ reader: any RegistryReader, visibleTo visibility: Visibility) async throws -> EndpointService? {
        switch key {
        case .id(let id): try await reader.endpointService(id: id, visibleTo: visibility)
        case .name(let name): try await reader.endpointService(serviceName: name, visibleTo: visibility)
        }
    }

    var notFound: RegistryError {
        .notFound(.serviceNotFound, "no such endpoint service", field: field)
    }

    /// For a consumer connecting: the same answer whether the service is missing or merely not
    /// open to the caller, with what would admit it if it does exist.
    func notFoundForConsumer(_ scope: Scope) -> RegistryError {
        let entry = scope.isOperator ? "*" : "iam:domain::\(scope.ownerID)"
        return .notFound(
            .serviceNotFound,
            "no endpoint service by that \(field == "service_name" ? "name" : "id") is open to you in region \(scope.region); "
                + "if it exists, its owner must add \(entry) to its allow-list",
            field: field)
    }
}

extension Registry {
    /// A service the caller may read (its own, or any in the region for operators), or `SERVICE_NOT_FOUND`.
    static func readableService(_ reader: any RegistryReader, _ ref: ServiceRef, scope: Scope) async throws -> EndpointService {
        // The store applies `scope.reading`; checking again keeps a store that got it wrong from leaking.
        guard let service = try await ref.find(reader, visibleTo: scope.reading),
            scope.canRead(region: service.region, ownerID: service.ownerID)
        else { throw ref.notFound }
        return service
    }

    /// A service the caller owns. An operator reading someone else's gets `OWNER_ONLY` (it can see the
    /// service, so nothing leaks); anyone else `SERVICE_NOT_FOUND`.
    static func ownedService(_ reader: any RegistryReader, _ ref: ServiceRef, scope: Scope) async throws -> EndpointService {
        let service = try await readableService(reader, ref, scope: scope)
        try Self.requireOwner(scope, ownerID: service.ownerID)
        return service
    }

    static func requireOwner(_ scope: Scope, ownerID: String) throws(RegistryError) {
        guard ownerID == scope.ownerID else {
            throw RegistryError(
                code: .permissionDenied, reason: .ownerOnly, message: "only the owner may change this resource")
        }
    }

    /// Whether the caller may create endpoints to the service: it owns it or the allow-list admits it
    /// (`scope.connecting`).
    static func admits(_ service: EndpointService, _ permissions: [Permission], scope: Scope) -> Bool {
        scope.connecting.admits(
            region: service.region, ownerID: service.ownerID, allowList: permissions.map(\.permission))
    }

    /// The service with its allow-list when the caller may learn that it exists (`scope.consumerLookup`:
    /// it can read it, it is public, or it is admitted). The store applies that rule in its look-up, so
    /// a service the caller may not see, like a missing one, returns no row and no allow-list is read.
    static func seenService(
        _ reader: any RegistryReader, _ ref: ServiceRef, scope: Scope
    ) async throws -> (service: EndpointService, permissions: [Permission])? {
        let visibility = scope.consumerLookup
        guard let service = try await ref.find(reader, visibleTo: visibility) else { return nil }
        let permissions = try await reader.permissions(serviceID: service.id, serviceVisibleTo: visibility)
        // The same rule again, in memory: a store that got it wrong still shows nothing it must not.
        guard
            visibility.admits(
                region: service.region, ownerID: service.ownerID, isPublic: service.isPublic,
                allowList: permissions.map(\.permission))
        else { return nil }
        return (service, permissions)
    }

    /// Refuses a create when `used` has reached the owner's limit of `type` in the region.
    static func checkQuota(_ reader: any RegistryReader, scope: Scope, type: QuotaType, used: Int) async throws {
        let limit = try await reader.quotaLimit(ownerID: scope.ownerID, region: scope.region, type: type)
            ?? type.defaultLimit
        guard used < limit else {
            let what = type == .endpoint ? "endpoint" : "endpoint service"
            throw RegistryError(
                code: .resourceExhausted, reason: .quotaExceeded,
                message: "\(what) quota exceeded: \(used) of \(limit) used in this region")
        }
    }
}
