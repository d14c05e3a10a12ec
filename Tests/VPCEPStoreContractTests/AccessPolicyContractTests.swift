import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// Access policies on allow-list entries (docs/DOMAIN.md, "Access policies"), on every store.
@Suite("Store contract: access policies")
struct AccessPolicyContractTests {
    @Test(arguments: StoreKind.underTest)
    func entriesKeepTheirTermsAndTheSweepFindsWhatIsDue(_ kind: StoreKind) async throws {
        let clock = SettableClock()
        try await withStore(kind) { store, _ in
            let registry = Registry(store: store, regions: servedRegions, clock: { clock.now() })
            let story = try await makeStory(registry, allow: [])
            let expires = clock.now() + 60
            let added = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [
                    PermissionEntry(
                        permission: "iam:domain::tenant-b", description: "b", decision: .autoAccept, connectionLimit: 7,
                        expiresAt: expires, onExpiry: .reject),
                    PermissionEntry(permission: "iam:domain::keep", decision: .deny, expiresAt: expires),
                    PermissionEntry(permission: "*"),
                ])
            let stored = try await store.read { reader in
                try await reader.permissions(serviceID: story.service.id, serviceVisibleTo: .anyOwner(in: "r1"))
            }
            #expect(Set(stored) == Set(added))
            #expect(stored.first { $0.permission == "*" }?.connectionLimit == nil)
            @Sendable func due(by date: Date) async throws -> [Permission] {
                try await store.read { reader in try await reader.permissionsDueForExpiry(by: date, limit: 10) }
            }
            let early = try await due(by: expires - 1)
            #expect(early.isEmpty)
            // Only `reject` entries not yet handled are due.
            let dueNow = try await due(by: expires)
            #expect(dueNow.map(\.permission) == ["iam:domain::tenant-b"])
            let handled = { var entry = dueNow[0]; entry.expiryHandled = true; return entry }()
            try await store.transaction { try await $0.updatePermission(handled) }
            let afterwards = try await store.read { reader in try await reader.permissionsDueForExpiry(by: expires, limit: 10) }
            #expect(afterwards.isEmpty)
            let reread = try await store.read { reader in
                try await reader.permissions(serviceID: story.service.id, serviceVisibleTo: .anyOwner(in: "r1"))
            }
            #expect(reread.first { $0.id == handled.id } == handled)
        }
    }

    @Test(arguments: StoreKind.underTest)
    func heldEndpointsAreCountedPerConsumerAndService(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, allow: ["*"])
            let first = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id], accept: false)
            let counts = try await store.read { reader in
                [
                    try await reader.countEndpoints(serviceID: story.service.id, ownerID: "tenant-b", excludingStatuses: [.rejected]),
                    try await reader.countEndpoints(serviceID: story.service.id, ownerID: "tenant-b", excludingStatuses: []),
                    try await reader.countEndpoints(serviceID: story.service.id, ownerID: "tenant-a", excludingStatuses: []),
                    try await reader.countEndpoints(serviceID: "other", ownerID: "tenant-b", excludingStatuses: []),
                ]
            }
            #expect(counts == [1, 2, 0, 0])
        }
    }

    @Test(arguments: StoreKind.underTest)
    func fiftyParallelCreatesUnderALimitOfFiveLeaveExactlyFive(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: [])
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, connectionLimit: 5)])
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        do {
                            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
                            return "created"
                        } catch let error as RegistryError {
                            return "\(error.code.name) \(error.reason)"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(outcomes == ["created": 5, "RESOURCE_EXHAUSTED CONNECTION_LIMIT_EXCEEDED": 45])
            #expect(try await registry.listEndpoints(tenantB, filter: .init(), page: .init()).totalCount == 5)
        }
    }

    /// Two servers on one database sweep at once: each expired entry's connections are rejected once.
    @Test(arguments: StoreKind.underTest)
    func sweepsOfSeveralServersActOnce(_ kind: StoreKind) async throws {
        let clock = SettableClock()
        try await withStore(kind) { store, database in
            let registry = Registry(store: store, regions: servedRegions, clock: { clock.now() })
            let story = try await makeStory(registry, allow: [])
            let expires = clock.now() + 60
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [PermissionEntry(
                    permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: expires, onExpiry: .reject)])
            for _ in 0..<3 { _ = try await registry.createEndpoint(tenantB, endpointSpec(story)) }
            let other = kind.sharesDatabase
                ? Registry(store: try await database.open(), regions: servedRegions, clock: { clock.now() }) : registry
            clock.set(expires)
            async let first = registry.sweepExpiredPermissions()
            async let second = other.sweepExpiredPermissions()
            #expect(try await first + second == 3)
            let history = try await registry.listHistory(
                tenantB, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 100))
            #expect(history.items.filter { $0.type == .connectionRejected }.count == 3)
            #expect(try await registry.listEndpoints(tenantB, filter: .init(status: .rejected), page: .init()).totalCount == 3)
        }
    }

    /// Creates racing an entry's expiry: none is admitted at or after its time, on every store.
    @Test(arguments: StoreKind.underTest)
    func anEntryExpiringWhileCreatesRaceAdmitsNoneAfterItsTime(_ kind: StoreKind) async throws {
        // Every reading of the clock moves it on 10 ms, so the entry's time passes in the middle of the race.
        let clock = SteppingClock(step: 0.01)
        try await withStore(kind) { store, _ in
            let registry = Registry(store: store, regions: servedRegions, clock: { clock.now() })
            let story = try await makeStory(registry, approval: false, allow: [])
            let expires = clock.now() + 0.4
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: expires)])
            let refusals = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        do {
                            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
                            return nil
                        } catch let error as RegistryError {
                            return error.reason.rawValue
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { if let reason = $1 { $0.append(reason) } }
            }
            let endpoints = try await registry.listEndpoints(tenantB, filter: .init(), page: PageRequest(limit: 100)).items
            #expect(!endpoints.isEmpty && !refusals.isEmpty, "the expiry fell inside the race")
            #expect(Set(refusals) == ["ACCESS_EXPIRED"])
            #expect(endpoints.allSatisfy { $0.createdAt < expires })
        }
    }
}
