import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// The commit version gates the registry's read cache: a cached record is served only while the
/// version read for a call equals the one it was cached under. So the version a call reads must cover
/// every commit acknowledged before the call, by this store or by another sharing its database.
@Suite("Store contract: commit version")
struct CommitVersionContractTests {
    private static func event(_ name: String) -> ChangeEvent {
        let vpc = vpc(name, at: 1_700_000_000)
        return ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
    }

    @Test(arguments: StoreKind.underTest)
    func theVersionCoversEveryAcknowledgedCommitOfEveryReplica(_ kind: StoreKind) async throws {
        try await withStore(kind) { reader, database in
            let writer = kind.sharesDatabase ? try await database.open() : reader
            var before = try #require(try await reader.currentCommitVersion())
            for round in 0..<100 {
                _ = try await writer.transaction { tx in try await tx.appendEvents([Self.event("vpc-\(round)")]) }
                // Several readers at once, as concurrent calls share one look-up of the version.
                let seen = try await withThrowingTaskGroup(of: UInt64?.self) { group in
                    for _ in 0..<8 { group.addTask { try await reader.currentCommitVersion() } }
                    return try await group.reduce(into: [UInt64?]()) { $0.append($1) }
                }
                for version in seen {
                    let version = try #require(version)
                    #expect(version > before, "round \(round): version \(version) does not cover the commit after \(before)")
                }
                before = try #require(seen.compactMap { $0 }.max())
            }
        }
    }

    private static func serviceEvent(_ id: String) -> ChangeEvent {
        let at = Date(timeIntervalSince1970: 1_700_000_000)
        let service = EndpointService(
            id: id, serviceName: "r1.\(id)", name: "", ownerID: "tenant-a", region: "r1", vpcID: "vpc-1",
            serviceType: .interface, backendKind: .loadBalancer, backendID: "lb-1",
            ports: [PortMapping(terminalPort: 80, servicePort: 8080)], approvalEnabled: true, clientIPMode: .close,
            description: "", tags: [], status: .available, connectionCount: 0, createdAt: at, updatedAt: at,
            revision: 1, warnings: [], clientIPNote: "")
        return ChangeEvent(type: .created, state: .endpointService(service), actor: "tenant-a", committedAt: at)
    }

    /// What lets the read cache keep the services a commit did not touch: the services named by the
    /// events of every commit since, by this store or another replica, and nothing else.
    @Test(arguments: StoreKind.underTest)
    func theChangesNameTheServicesOfEveryReplicasCommits(_ kind: StoreKind) async throws {
        try await withStore(kind) { reader, database in
            let writer = kind.sharesDatabase ? try await database.open() : reader
            let base = try #require(try await reader.commitChanges(since: 0)).version
            _ = try await writer.transaction { tx in try await tx.appendEvents([Self.serviceEvent("svc-1")]) }
            _ = try await writer.transaction { tx in try await tx.appendEvents([Self.event("vpc-1")]) }
            let changes = try #require(try await reader.commitChanges(since: base))
            #expect(changes.version > base)
            #expect(changes.services == ["svc-1"])
            let none = try #require(try await reader.commitChanges(since: changes.version))
            #expect(none.services == [])
            _ = try await writer.transaction { tx in try await tx.appendEvents([Self.serviceEvent("svc-2")]) }
            // From the older version still: both.
            #expect(try await reader.commitChanges(since: base)?.services == ["svc-1", "svc-2"])
        }
    }

    /// The log no longer holds what happened after the version asked about: the store cannot say,
    /// unless it learnt it before retention removed it (a replica holding a read lease has to, before
    /// the writer answers); it never leaves the service out.
    @Test(arguments: StoreKind.underTest.filter(\.sharesDatabase))
    func changesRetentionRemovedAreUnknown(_ kind: StoreKind) async throws {
        try await withStore(kind) { reader, database in
            let writer = try await database.open()
            let base = try #require(try await reader.commitChanges(since: 0)).version
            _ = try await writer.transaction { tx in try await tx.appendEvents([Self.serviceEvent("svc-1")]) }
            _ = try await writer.transaction { tx in
                try await tx.compactEvents(committedBefore: Date(timeIntervalSince1970: 2_000_000_000), limit: 1000)
            }
            let changes = try #require(try await reader.commitChanges(since: base))
            #expect(changes.version > base)
            #expect(changes.services == nil || changes.services == ["svc-1"])
        }
    }

    @Test(arguments: StoreKind.underTest)
    func aReadOnlyStoreUseLeavesTheVersion(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            _ = try await store.transaction { tx in try await tx.appendEvents([Self.event("vpc-a")]) }
            let version = try await store.currentCommitVersion()
            _ = try await store.read { try await $0.logHead() }
            #expect(try await store.currentCommitVersion() == version)
        }
    }
}
