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
