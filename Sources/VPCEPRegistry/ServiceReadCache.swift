import Synchronization

/// Endpoint services as last read from the store, so that `GetEndpointService` (what consumers and
/// tooling poll) is answered from memory. Never stale: every read first learns from the store the commit
/// version now and which services commits since the cache's last such look changed
/// (`RegistryStore.commitChanges(since:)`), and drops those entries before it looks (all of them when
/// the store cannot say), so an entry is only served while nothing acknowledged before the read began
/// has changed its service. Only services shown to a caller who may read them are kept; a miss always
/// goes to the store, and so does a cached service the caller may not read
/// (`readableService(_:scope:)`), with the caller's visibility, so the store finds no row for it.
///
/// Memory is bounded by an approximate byte budget; when it is reached single entries are evicted
/// (CLOCK: an entry read since the hand last passed it gets another round).
final class ServiceReadCache: Sendable {
    /// Enough for some 130,000 services like the scale benchmark's (about 1.5 KB each, see
    /// `approximateBytes`), leaving a server with a million records well under 512 MiB.
    static let defaultByteBudget = 192 << 20
    /// How many invalidated services are remembered, to refuse a read that began before their change.
    static let maxRemembered = 65_536

    fileprivate struct Entry {
        var service: EndpointService
        var slot: Int
        var bytes: Int
        var referenced = false
    }

    fileprivate struct State {
        /// Every commit up to this version has been applied: entries hold what the store held then or later.
        var through: UInt64 = 0
        var byID: [String: Entry] = [:]
        var idByName: [String: String] = [:]
        /// The CLOCK's ring of cached ids; nil where an entry was removed (its slot is in `free`).
        var ring: [String?] = []
        var free: [Int] = []
        var hand = 0
        var bytes = 0
        /// Services dropped since `changedFloor`, with the version at which that happened: a read that
        /// began before it may predate the change and is not kept.
        var changedAt: [String: UInt64] = [:]
        var changedFloor: UInt64 = 0
    }

    let byteBudget: Int
    private let state = Mutex(State())

    init(byteBudget: Int = ServiceReadCache.defaultByteBudget) {
        self.byteBudget = max(byteBudget, 0)
    }

    /// The version up to which commits have been applied; ask the store what changed since.
    var validThrough: UInt64 { state.withLock { $0.through } }

    /// Entries and the bytes they are estimated to take.
    var usage: (entries: Int, bytes: Int) { state.withLock { ($0.byID.count, $0.bytes) } }

    /// Applies what the store said changed after `since` (a `validThrough` read before asking) up to
    /// `changes.version`.
    func advance(from since: UInt64, to changes: CommitChanges) {
        state.withLock { state in
            // Another read got as far meanwhile; what it applied covers this.
            guard state.through < changes.version else { return }
            // Not from this cache's past (a store that went back): nothing can be trusted.
            guard since <= state.through, let services = changes.services else {
                state.dropAll(at: changes.version)
                return
            }
            if state.changedAt.count + services.count > Self.maxRemembered {
                state.changedAt = [:]
                state.changedFloor = changes.version
            }
            for id in services {
                state.remove(id)
                if state.changedFloor < changes.version { state.changedAt[id] = changes.version }
            }
            state.through = changes.version
        }
    }

    /// The cached service, when commits up to `version` have been applied (`advance`).
    func lookup(_ key: ServiceRef.Key, version: UInt64) -> EndpointService? {
        state.withLock { state in
            guard state.through >= version else { return nil }
            let id: String
            switch key {
            case .id(let byID): id = byID
            case .name(let name):
                guard let byName = state.idByName[name] else { return nil }
                id = byName
            }
            guard let entry = state.byID[id] else { return nil }
            if !entry.referenced { state.byID[id]?.referenced = true }
            return entry.service
        }
    }

    /// Keeps `service`, read in a snapshot that began after `version` was learnt, unless a change of
    /// it was applied after `version` (the read may predate it).
    func insert(_ service: EndpointService, readAt version: UInt64) {
        let bytes = Self.approximateBytes(service)
        state.withLock { state in
            guard version >= state.changedFloor, state.changedAt[service.id].map({ $0 <= version }) ?? true else { return }
            state.remove(service.id)
            guard bytes <= byteBudget else { return }
            while state.bytes + bytes > byteBudget, state.evictOne() {}
            let slot: Int
            if let reused = state.free.popLast() {
                slot = reused
                state.ring[slot] = service.id
            } else {
                slot = state.ring.count
                state.ring.append(service.id)
            }
            state.byID[service.id] = Entry(service: service, slot: slot, bytes: bytes)
            state.idByName[service.serviceName] = service.id
            state.bytes += bytes
        }
    }

    /// An estimate of the memory one entry takes: its slots in the two dictionaries and the ring (at
    /// their usual load), and every string or array the service holds on the heap (the keys share the
    /// service's strings; `clientIPNote` is one of a few shared strings). Against RSS with 100,000
    /// services like the scale benchmark's (ServiceReadCacheTests, "the estimate against RSS") the
    /// parts added up to 1,200 B an entry and memory grew 1,527 B (malloc's headers and the tables'
    /// slack), hence the factor of 5/4.
    static func approximateBytes(_ service: EndpointService) -> Int {
        func heap(_ text: String) -> Int {
            let count = text.utf8.count
            return count <= 15 ? 0 : roundedAllocation(32 + count + 1)
        }
        var bytes = (MemoryLayout<String>.stride + MemoryLayout<Entry>.stride) * 2 + MemoryLayout<String>.stride * 4
            + MemoryLayout<String?>.stride * 2
        bytes += heap(service.id) + heap(service.serviceName)
        for text in [service.name, service.ownerID, service.region, service.vpcID, service.backendID, service.description] {
            bytes += heap(text)
        }
        if !service.ports.isEmpty {
            bytes += roundedAllocation(32 + service.ports.count * MemoryLayout<PortMapping>.stride)
            bytes += service.ports.reduce(0) { $0 + heap($1.protocol) }
        }
        if !service.tags.isEmpty {
            bytes += roundedAllocation(32 + service.tags.count * MemoryLayout<Tag>.stride)
            bytes += service.tags.reduce(0) { $0 + heap($1.key) + heap($1.value) }
        }
        if !service.warnings.isEmpty {
            bytes += roundedAllocation(32 + service.warnings.count * MemoryLayout<String>.stride)
            bytes += service.warnings.reduce(0) { $0 + heap($1) }
        }
        return bytes * 5 / 4
    }

    private static func roundedAllocation(_ bytes: Int) -> Int {
        (bytes + 15) & ~15
    }
}

extension ServiceReadCache.State {
    fileprivate mutating func remove(_ id: String) {
        guard let entry = byID.removeValue(forKey: id) else { return }
        ring[entry.slot] = nil
        free.append(entry.slot)
        bytes -= entry.bytes
        if idByName[entry.service.serviceName] == id { idByName[entry.service.serviceName] = nil }
    }

    fileprivate mutating func dropAll(at version: UInt64) {
        self = Self(through: version, changedFloor: version)
    }

    /// Evicts the first entry the hand finds unreferenced, clearing the references it passes; false
    /// when the cache is empty.
    fileprivate mutating func evictOne() -> Bool {
        guard !byID.isEmpty else { return false }
        // Two turns at most: the first clears every reference.
        for _ in 0..<(2 * ring.count + 1) {
            if hand >= ring.count { hand = 0 }
            defer { hand += 1 }
            guard let id = ring[hand], let entry = byID[id] else { continue }
            if entry.referenced {
                byID[id]?.referenced = false
            } else {
                remove(id)
                return true
            }
        }
        return false
    }
}

extension Registry {
    /// The service `ref` names, when the caller may read it, as the store holds it now (or later); from
    /// the cache unless a commit acknowledged before this call may have changed it. Not readable and
    /// missing are one answer and one cost: a cached service the caller may not read is not answered from
    /// memory but looked up in the store under the caller's visibility, which returns no row for it, as
    /// for a missing one; a service is only ever kept after a caller who may read it has read it.
    func readableService(_ ref: ServiceRef, scope: Scope) async throws(RegistryError) -> EndpointService? {
        let visibility = scope.reading
        // The store applies `visibility`; checking again keeps a store that got it wrong from leaking.
        func readable(_ service: EndpointService) -> Bool {
            visibility.admits(region: service.region, ownerID: service.ownerID)
        }
        let since = serviceCache.validThrough
        var changes: CommitChanges?
        // A cache with no room (turned off) need not ask what changed.
        if serviceCache.byteBudget > 0 {
            do {
                changes = try await store.commitChanges(since: since)
            } catch {
                throw RegistryError(wrapping: error)
            }
        }
        guard let changes else {
            return try await read { reader in try await ref.find(reader, visibleTo: visibility) }
                .flatMap { readable($0) ? $0 : nil }
        }
        serviceCache.advance(from: since, to: changes)
        if let cached = serviceCache.lookup(ref.key, version: changes.version), readable(cached) { return cached }
        guard let found = try await read({ reader in try await ref.find(reader, visibleTo: visibility) }), readable(found)
        else { return nil }
        serviceCache.insert(found, readAt: changes.version)
        return found
    }
}
