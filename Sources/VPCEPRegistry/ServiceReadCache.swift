import Synchronization

/// Endpoint services as last read from the store, so that `GetEndpointService` (what consumers and
/// tooling poll) is answered from memory. Never stale: the cache belongs to one store commit
/// version and is dropped at the first commit of any kind (the store moves the version on before
/// the committing call returns), so an entry is only ever served while the store holds exactly what
/// was read. Only services shown to a caller who may read them are kept; a miss always goes to the
/// store, and so does a cached service the caller may not read (`readableService(_:scope:)`), with
/// the caller's visibility, so the store finds no row for it.
final class ServiceReadCache: Sendable {
    /// A bound on memory; reaching it starts the cache over.
    static let maxEntries = 4096

    private struct State {
        var version: UInt64 = 0
        var byID: [String: EndpointService] = [:]
        var idByName: [String: String] = [:]
    }

    private let state = Mutex(State())

    func lookup(_ key: ServiceRef.Key, version: UInt64) -> EndpointService? {
        state.withLock { state in
            guard state.version == version else { return nil }
            switch key {
            case .id(let id): return state.byID[id]
            case .name(let name): return state.idByName[name].flatMap { state.byID[$0] }
            }
        }
    }

    /// Keeps `service`, read in a snapshot that began after `version` was observed.
    func insert(_ service: EndpointService, readAt version: UInt64) {
        state.withLock { state in
            if state.version < version || state.byID.count >= Self.maxEntries {
                state = State(version: max(version, state.version))
            }
            // A newer version has been cached meanwhile: this read may predate its commit.
            guard state.version == version else { return }
            state.byID[service.id] = service
            state.idByName[service.serviceName] = service.id
        }
    }
}

extension Registry {
    /// The service `ref` names, when the caller may read it, as the store holds it now; from the cache
    /// while no commit has happened since it was read. Not readable and missing are one answer and one
    /// cost: a cached service the caller may not read is not answered from memory but looked up in the
    /// store under the caller's visibility, which returns no row for it, as for a missing one; a service
    /// is only ever kept after a caller who may read it has read it.
    func readableService(_ ref: ServiceRef, scope: Scope) async throws(RegistryError) -> EndpointService? {
        let visibility = scope.reading
        // The store applies `visibility`; checking again keeps a store that got it wrong from leaking.
        func readable(_ service: EndpointService) -> Bool {
            visibility.admits(region: service.region, ownerID: service.ownerID)
        }
        let current: UInt64?
        do {
            current = try await store.currentCommitVersion()
        } catch {
            throw RegistryError(wrapping: error)
        }
        guard let version = current else {
            return try await read { reader in try await ref.find(reader, visibleTo: visibility) }
                .flatMap { readable($0) ? $0 : nil }
        }
        if let cached = serviceCache.lookup(ref.key, version: version), readable(cached) { return cached }
        guard let found = try await read({ reader in try await ref.find(reader, visibleTo: visibility) }), readable(found)
        else { return nil }
        serviceCache.insert(found, readAt: version)
        return found
    }
}
