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
            throw .invalid("ID_OR_NAME_REQUIRED", "give exactly one of \(idField) and \(nameField)", field: idField)
        case (_?, _?):
            throw .invalid("ID_OR_NAME_REQUIRED", "give exactly one of \(idField) and \(nameField)", field: nameField)
        }
    }

    func find(_ reader: any RegistryReader) async throws -> EndpointService? {
        switch key {
        case .id(let id): try await reader.endpointService(id: id)
        case .name(let name): try await reader.endpointService(serviceName: name)
        }
    }

    /// A key no service has: ids and service names are never empty.
    static let absentKey = ""

    /// The look-up `find` makes, for a service that does not exist. A caller who may not see a service
    /// must cost what one naming a missing service costs, or the answer's time tells them apart.
    func findNothing(_ reader: any RegistryReader) async throws {
        switch key {
        case .id: _ = try await reader.endpointService(id: Self.absentKey)
        case .name: _ = try await reader.endpointService(serviceName: Self.absentKey)
        }
    }

    var notFound: RegistryError {
        .notFound("SERVICE_NOT_FOUND", "no such endpoint service", field: field)
    }

    /// For a consumer connecting: the same answer whether the service is missing or merely not
    /// open to the caller, with what would admit it if it does exist.
    func notFoundForConsumer(_ scope: Scope) -> RegistryError {
        let entry = scope.isOperator ? "*" : "iam:domain::\(scope.ownerID)"
        return .notFound(
            "SERVICE_NOT_FOUND",
            "no endpoint service by that \(field == "service_name" ? "name" : "id") is open to you in region \(scope.region); "
                + "if it exists, its owner must add \(entry) to its allow-list",
            field: field)
    }
}

extension Registry {
    /// A service the caller may read (its own, or any in the region for operators), or `SERVICE_NOT_FOUND`.
    static func readableService(_ reader: any RegistryReader, _ ref: ServiceRef, scope: Scope) async throws -> EndpointService {
        guard let service = try await ref.find(reader), scope.canRead(region: service.region, ownerID: service.ownerID)
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
                code: .permissionDenied, reason: "OWNER_ONLY", message: "only the owner may change this resource")
        }
    }

    /// Whether the allow-list (or ownership) lets `ownerID` create endpoints to the service.
    static func admits(_ service: EndpointService, _ permissions: [Permission], ownerID: String) -> Bool {
        service.ownerID == ownerID
            || permissions.contains { $0.permission == Permission.everyone || $0.permission == Permission.domain(ownerID) }
    }

    /// The service with its allow-list when the caller may learn that it exists (`canSee`). The allow-list
    /// is read whether or not the service was found, so that a service the caller may not see and one
    /// that does not exist cost the same look-ups.
    static func seenService(
        _ reader: any RegistryReader, _ ref: ServiceRef, scope: Scope
    ) async throws -> (service: EndpointService, permissions: [Permission])? {
        let service = try await ref.find(reader)
        let permissions = try await reader.permissions(serviceID: service?.id ?? ServiceRef.absentKey)
        guard let service, canSee(service, permissions, scope: scope) else { return nil }
        return (service, permissions)
    }

    /// Whether the caller may learn that the service exists: it can read it, it is public, or it is admitted.
    static func canSee(_ service: EndpointService, _ permissions: [Permission], scope: Scope) -> Bool {
        guard service.region == scope.region else { return false }
        return scope.canRead(region: service.region, ownerID: service.ownerID) || service.isPublic
            || admits(service, permissions, ownerID: scope.ownerID)
    }

    /// Refuses a create when `used` has reached the owner's limit of `type` in the region.
    static func checkQuota(_ reader: any RegistryReader, scope: Scope, type: QuotaType, used: Int) async throws {
        let limit = try await reader.quotaLimit(ownerID: scope.ownerID, region: scope.region, type: type)
            ?? type.defaultLimit
        guard used < limit else {
            let what = type == .endpoint ? "endpoint" : "endpoint service"
            throw RegistryError(
                code: .resourceExhausted, reason: "QUOTA_EXCEEDED",
                message: "\(what) quota exceeded: \(used) of \(limit) used in this region")
        }
    }
}
