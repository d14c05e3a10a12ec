import Foundation
import Testing
import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// An update of a service or endpoint names only the columns it changes, so SQLite leaves the
/// entries of the indexes over the other columns (and the triggers on them) alone.
@Suite("SQLite store: updates set only what changed")
struct ChangedColumnsTests {
    /// Adds, to the database at `path`, a trigger per column of `table` that records the column's name
    /// whenever an UPDATE names it in its SET list, changed or not.
    private func probeUpdates(of table: String, path: String) async throws -> [String] {
        let connection = try await StoreConnection.open(path: path)
        let columns = try await connection.query("SELECT name FROM pragma_table_info(?)", [.text(table)]).map {
            try #require($0.column("name")?.string)
        }
        try await connection.execute("CREATE TABLE IF NOT EXISTS probe (tbl TEXT, col TEXT)")
        for column in columns where column != "id" {
            try await connection.execute("""
                CREATE TRIGGER probe_\(table)_\(column) AFTER UPDATE OF \(column) ON \(table)
                BEGIN INSERT INTO probe VALUES ('\(table)', '\(column)'); END
                """)
        }
        try await connection.close()
        return columns
    }

    private func probed(_ table: String, path: String) async throws -> Set<String> {
        let connection = try await StoreConnection.open(path: path)
        let rows = try await connection.query("SELECT col FROM probe WHERE tbl = ?", [.text(table)])
        try await connection.close()
        return Set(try rows.map { try #require($0.column("col")?.string) })
    }

    @Test func aDescriptionChangeNamesOnlyWhatChanged() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var store = try await SQLiteRegistryStore.open(directory: directory)
        var registry = Registry(store: store, regions: servedRegions)
        let network = try await makeNetwork(registry, tenantA)
        let service = try await registry.createEndpointService(tenantA, spec(network))
        let consumer = try await makeNetwork(registry, tenantA, cidr: "10.1.0.0/16")
        let endpoint = try await registry.createEndpoint(
            tenantA, EndpointSpec(serviceID: service.id, vpcID: consumer.vpc.id, subnetID: consumer.subnet.id))
        try await store.close()
        let serviceColumns = try await probeUpdates(of: "endpoint_services", path: store.path)
        let endpointColumns = try await probeUpdates(of: "endpoints", path: store.path)
        #expect(serviceColumns.count > 10 && endpointColumns.count > 10)

        store = try await SQLiteRegistryStore.open(directory: directory)
        registry = Registry(store: store, regions: servedRegions)
        let updated = try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(description: "new"))
        let updatedEndpoint = try await registry.updateEndpoint(tenantA, id: endpoint.id, EndpointUpdate(description: "new"))
        try await store.close()

        #expect(try await probed("endpoint_services", path: store.path) == ["description", "updated_at", "revision"])
        #expect(try await probed("endpoints", path: store.path) == ["description", "updated_at", "revision"])
        // And what was stored is the whole new record.
        store = try await SQLiteRegistryStore.open(directory: directory)
        registry = Registry(store: store, regions: servedRegions)
        #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil) == updated)
        #expect(try await registry.getEndpoint(tenantA, id: endpoint.id) == updatedEndpoint)
        try await store.close()
    }
}
