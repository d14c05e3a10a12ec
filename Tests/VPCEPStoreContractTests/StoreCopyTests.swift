import Foundation
import Testing
import VPCEPRegistry
import VPCEPStorePostgres
import VPCEPStoreSQLite
import VPCEPTestSupport

/// `importTables`, the copy under `vpcep-server migrate-store`: all or nothing, onto an empty store only.
@Suite(
    "Copying a SQLite registry into PostgreSQL",
    .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"))
struct StoreCopyTests {
    @Test func aCopyThatFailsPartWayLeavesTheTargetEmptyAndACompleteOneIsNeverRepeated() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-copy-\(UUID().uuidString)").path
        let sqlite = try await SQLiteRegistryStore.open(directory: directory)
        try await sqlite.transaction { tx in
            try await tx.insertVPC(vpc("vpc-1"))
            try await tx.insertVPC(vpc("vpc-2"))
        }
        try await sqlite.close()
        let tables = try await SQLiteRegistryStore.exportTables(directory: directory)
        #expect(tables.map(\.name) == StoredTable.registryTables)
        #expect(tables.first { $0.name == "vpcs" }?.rows.count == 2)

        let schema = "copy_" + UUID().uuidString.prefix(8).lowercased()
        let configuration = try TestDatabase.postgresConfiguration(schema: schema)
        func vpcCount() async throws -> Int {
            let rows = try await postgresAdmin(["SELECT count(*) FROM \"\(schema)\".vpcs"])
            return Int(try rows.first?.decode(Int64.self) ?? -1)
        }
        do {
            // A subnet whose VPC is not there fails on its foreign key, after the VPCs went in.
            var broken = tables
            let subnets = try #require(broken.firstIndex { $0.name == "subnets" })
            broken[subnets].rows = [broken[subnets].columns.map { column -> StoredTable.Value in
                switch column {
                case "id": .text("subnet-1")
                case "vpc_id": .text("vpc-missing")
                case "created_at", "updated_at": .integer(1000)
                default: .text("x")
                }
            }]
            await #expect(throws: StoreError.self) { _ = try await PostgresRegistryStore.importTables(broken, into: configuration) }
            #expect(try await vpcCount() == 0, "a failed copy left rows behind")

            let summary = try await PostgresRegistryStore.importTables(tables, into: configuration)
            #expect(summary.rows.first { $0.table == "vpcs" }?.count == 2)
            #expect(try await vpcCount() == 2)

            let error = await #expect(throws: StoreError.self) { _ = try await PostgresRegistryStore.importTables(tables, into: configuration) }
            #expect(error?.code == .conflict)
            #expect(error?.message.contains("already holds a registry") == true)
            #expect(try await vpcCount() == 2)
        } catch {
            _ = try? await postgresAdmin(["DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"])
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        try await postgresAdmin(["DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The connection's messages and a suspended status survive `migrate-store`'s copy.
    @Test func aSuspendedConnectionWithItsMessagesIsCopied() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-copy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sqlite = try await SQLiteRegistryStore.open(directory: directory)
        let ticking = TickingClock()
        let ids = SequentialIDs()
        let source = Registry(store: sqlite, regions: servedRegions, clock: { ticking.now() }, makeID: { ids.next() })
        let story = try await makeStory(source)
        var request = endpointSpec(story)
        request.requestMessage = "please let us in"
        let endpoint = try await source.createEndpoint(tenantB, request)
        for action in [ConnectionAction.accept, .suspend] {
            _ = try await source.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], action: action,
                reason: "paused")
        }
        let original = try await source.getEndpoint(tenantB, id: endpoint.id)
        try await sqlite.close()

        let schema = "copy_" + UUID().uuidString.prefix(8).lowercased()
        do {
            let configuration = try TestDatabase.postgresConfiguration(schema: schema)
            _ = try await PostgresRegistryStore.importTables(
                try await SQLiteRegistryStore.exportTables(directory: directory), into: configuration)
            let postgres = try await PostgresRegistryStore.open(configuration)
            let copy = Registry(store: postgres, regions: servedRegions)
            let copied = try await copy.getEndpoint(tenantB, id: endpoint.id)
            await postgres.close()
            #expect(copied == original)
            #expect(copied.status == .suspended && copied.requestMessage == "please let us in" && copied.decisionReason == "paused")
        } catch {
            _ = try? await postgresAdmin(["DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"])
            throw error
        }
        try await postgresAdmin(["DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"])
    }
}
