import Foundation
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

@Suite("SQLite store")
struct StoreTests {
    @Test func dataSurvivesCloseAndReopen() async throws {
        let directory = temporaryDirectory() + "/nested/data"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Sub-millisecond clock readings are truncated to what the store keeps.
        let clock: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_700_000_000.123_456) }

        let store = try await SQLiteRegistryStore.open(directory: directory)
        #expect(store.path == directory + "/vpcep.sqlite3")
        #expect(FileManager.default.fileExists(atPath: store.path))
        let registry = Registry(store: store, regions: servedRegions, clock: clock)
        let network = try await makeNetwork(registry, tenantA)
        var request = spec(network)
        request.name = "svc"
        request.tags = [Tag(key: "k", value: "v")]
        request.clientIPMode = .toaOpen
        let service = try await registry.createEndpointService(tenantA, request)
        #expect(service.createdAt == Date(timeIntervalSince1970: 1_700_000_000.123))
        try await store.quotaOverride(owner: "tenant-a", limit: 5)
        let before = try await snapshot(registry)
        try await store.close()

        let reopened = try await SQLiteRegistryStore.open(directory: directory)
        let again = Registry(store: reopened, regions: servedRegions, clock: clock)
        #expect(try await snapshot(again) == before)
        // The log's head, known from the start (a Watch starting "now" takes it from memory).
        let storedHead = try await reopened.read { try await $0.logHead() }
        #expect(storedHead > 0 && reopened.recentHead == storedHead)
        #expect(try await again.getEndpointService(tenantA, id: nil, serviceName: service.serviceName) == service)
        #expect(try await again.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 1, limit: 5)])
        // Allocation continues from the stored state.
        let next = try await again.createBackend(
            tenantA, kind: .vm, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "b", ip: nil, ingressCIDRs: [])
        #expect(next.ip == "10.0.1.4")
        try await reopened.close()
    }

    @Test func openNamesTheUnusablePath() async throws {
        let base = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let file = base + "/plain-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))

        for directory in [file, file + "/below"] {
            do {
                let store = try await SQLiteRegistryStore.open(directory: directory)
                try await store.close()
                Issue.record("opened a store in \(directory)")
            } catch let error as SQLiteStoreError {
                #expect(error.path == directory)
                #expect(error.description.contains(directory))
            }
        }

        // The database path itself is unusable.
        let blocked = base + "/blocked"
        try FileManager.default.createDirectory(atPath: blocked + "/vpcep.sqlite3", withIntermediateDirectories: true)
        do {
            let store = try await SQLiteRegistryStore.open(directory: blocked)
            try await store.close()
            Issue.record("opened a store over a directory")
        } catch let error as SQLiteStoreError {
            #expect(error.path == blocked + "/vpcep.sqlite3")
            #expect(error.description.contains(blocked + "/vpcep.sqlite3"))
        }

        // Not a database.
        let garbage = base + "/garbage"
        try FileManager.default.createDirectory(atPath: garbage, withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: garbage + "/vpcep.sqlite3"))
        do {
            let store = try await SQLiteRegistryStore.open(directory: garbage)
            try await store.close()
            Issue.record("opened a file that is not a database")
        } catch let error as SQLiteStoreError {
            #expect(error.path == garbage + "/vpcep.sqlite3")
        }
    }

    @Test func closeWhileTransactionsAreQueued() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        @Sendable func vpc(_ i: Int) -> VPC {
            VPC(
                id: "vpc-\(i)", name: "v", cidr: "10.0.0.0/16", region: "r1", ownerID: "tenant-a",
                createdAt: Date(timeIntervalSince1970: 1), updatedAt: Date(timeIntervalSince1970: 1))
        }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<100 {
                group.addTask {
                    do {
                        try await store.transaction { tx in try await tx.insertVPC(vpc(i)) }
                        return (i, true)
                    } catch let error as StoreError {
                        #expect(error.code == .unavailable)
                        return (i, false)
                    } catch {
                        Issue.record("unexpected \(error)")
                        return (i, false)
                    }
                }
                if i == 50 {
                    group.addTask {
                        try? await store.close()
                        return (-1, true)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for await (i, ok) in group where i >= 0 { outcomes[i] = ok }
            return outcomes
        }
        try await store.close()
        // Whatever reported success is on disk; whatever failed is not.
        let reopened = try await SQLiteRegistryStore.open(directory: directory)
        for i in 0..<100 {
            let stored = try await reopened.read { try await $0.vpc(id: vpc(i).id, visibleTo: .anyOwner(in: "r1")) }
            #expect((stored != nil) == outcomes[i])
        }
        try await reopened.close()
    }

    @Test func errorDescriptionsCarryNoMessage() async throws {
        let error = RegistryError(code: .notFound, reason: .init(rawValue: "VPC_NOT_FOUND"), message: "no VPC vpc-secret", field: "vpc_id")
        #expect(error.description == "NOT_FOUND VPC_NOT_FOUND (field vpc_id)")
        #expect(error.debugDescription.contains("vpc-secret"))
        #expect(RegistryError.Code.invalidArgument.name == "INVALID_ARGUMENT")
        #expect(RegistryError.Code.internalError.name == "INTERNAL")
        #expect(RegistryError.Code.unavailable.canonicalValue == 14)
        #expect(RegistryError.Code.resourceExhausted.canonicalValue == 8)
    }

    @Test func aSecondStoreCannotOpenTheDirectoryWhileTheFirstHoldsIt() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await SQLiteRegistryStore.open(directory: directory)
        do {
            let second = try await SQLiteRegistryStore.open(directory: directory)
            try await second.close()
            Issue.record("two stores opened one data directory")
        } catch let error as SQLiteStoreError {
            #expect(error.path == directory + "/vpcep.lock")
            #expect(error.message.contains("in use"))
        }
        try await first.close()
        let reopened = try await SQLiteRegistryStore.open(directory: directory)
        try await reopened.close()
    }

    /// The log is copied into the database file while the store is open, by the checkpoint connection:
    /// the writer's own checkpoint waits for 10,000 pages of log, which these writes are far from.
    @Test func theLogIsCheckpointedInTheBackground() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        func databaseBytes() throws -> Int {
            try FileManager.default.attributesOfItem(atPath: store.path)[.size] as? Int ?? 0
        }
        let before = try databaseBytes()
        // One commit each: a caller that awaits its write has the batch to itself.
        for owner in 0..<24 {  // three times the commits between two background checkpoints
            try await store.quotaOverride(owner: "tenant-\(owner)", limit: owner + 1)
        }
        var after = try databaseBytes()
        let deadline = ContinuousClock.now + .seconds(10)
        while after <= before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            after = try databaseBytes()
        }
        #expect(after > before, "the database file stayed at \(before) bytes: nothing was checkpointed")
        try await store.close()
        let reopened = try await SQLiteRegistryStore.open(directory: directory)
        let limits = try await reopened.read { reader in
            try await reader.quotaLimit(ownerID: "tenant-5", region: "r1", type: .endpointService)
        }
        #expect(limits == 6)
        try await reopened.close()
    }
}

extension SQLiteRegistryStore {
    func quotaOverride(owner: String, region: String = "r1", limit: Int) async throws {
        try await transaction { tx in
            try await tx.setQuotaLimit(ownerID: owner, region: region, type: .endpointService, limit: limit)
        }
    }
}
