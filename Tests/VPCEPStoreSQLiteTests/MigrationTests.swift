import Foundation
import SQLiteNIO
import Testing
import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

@Suite("Schema migrations")
struct MigrationTests {
    /// A database written by a v1 build (the walking skeleton) opens under the current schema with its data intact.
    @Test func aVersionOneDatabaseMigratesWithItsData() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + SQLiteRegistryStore.fileName
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        for statement in SQLiteRegistryStore.migrations[0] {
            _ = try await connection.query(statement)
        }
        let rows = [
            "INSERT INTO vpcs VALUES ('vpc-1', 'r1', 'tenant-a', 'vpc', '10.0.0.0/16', 1000, 1000)",
            "INSERT INTO subnets VALUES ('subnet-1', 'vpc-1', 'r1', 'tenant-a', 'subnet', '10.0.1.0/24', 1000, 1000)",
            """
            INSERT INTO backends VALUES ('lb-1', 'load_balancer', 'vpc-1', 'subnet-1', 'r1', 'tenant-a', 'lb', '10.0.1.2',
                '["198.19.128.0/17"]', 1000, 1000)
            """,
            "INSERT INTO ip_allocations VALUES ('subnet-1', '10.0.1.2', 'lb-1')",
            """
            INSERT INTO endpoint_services VALUES ('svc-1', 'r1.web.svc-1', 'web', 'r1', 'tenant-a', 'vpc-1', 'interface',
                'load_balancer', 'lb-1', '[{"proto":"TCP","service":8080,"terminal":80}]', 1, 'close', 'old', '[]',
                'available', 0, 2000, 3000, 4, '[]')
            """,
            "PRAGMA user_version = 1",
        ]
        for statement in rows { _ = try await connection.query(statement) }
        try await connection.close()

        let store = try await SQLiteRegistryStore.open(directory: directory)
        let registry = Registry(store: store, regions: ["r1"])
        do {
            let service = try await registry.getEndpointService(tenantA, id: "svc-1", serviceName: nil)
            #expect(service.serviceName == "r1.web.svc-1")
            #expect(service.ports == [PortMapping(terminalPort: 80, servicePort: 8080)])
            #expect(service.revision == 4)
            #expect(service.description == "old")
            #expect(!service.isPublic)
            #expect(service.connectionCount == 0)
            // The new tables work on the migrated data.
            _ = try await registry.addPermissions(
                tenantA, serviceID: "svc-1", serviceName: nil, entries: [PermissionEntry(permission: "*")])
            let endpoint = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: "svc-1", vpcID: "vpc-1", subnetID: "subnet-1"))
            #expect(endpoint.markerID == 1)
            _ = try await registry.decideConnections(
                tenantA, serviceID: "svc-1", serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            #expect(try await registry.getEndpoint(tenantA, id: endpoint.id).ip == "10.0.1.3")
            #expect(try await registry.getEndpointService(tenantA, id: "svc-1", serviceName: nil).connectionCount == 1)
            // The log starts with the first change after the migration: what came before has no events.
            let history = try await registry.listHistory(
                tenantA, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 100, sortDir: "asc"))
            #expect(history.items.map(\.seq) == [1, 2, 3])
            #expect(history.items.map(\.type) == [.permissionAdded, .connectionRequested, .connectionAccepted])
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        #expect(SQLiteRegistryStore.schemaVersion == 10)
    }

    /// An allow-list entry written before access policies (schema 5) reads back as what it meant then:
    /// manual, no limit, never expiring; and the sweep finds nothing due.
    @Test func aVersionFiveEntryKeepsItsMeaning() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + SQLiteRegistryStore.fileName
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        for migration in SQLiteRegistryStore.migrations[0..<5] {
            for statement in migration { _ = try await connection.query(statement) }
        }
        let rows = [
            "INSERT INTO vpcs VALUES ('vpc-1', 'r1', 'tenant-a', 'vpc', '10.0.0.0/16', 1000, 1000)",
            "INSERT INTO subnets VALUES ('subnet-1', 'vpc-1', 'r1', 'tenant-a', 'subnet', '10.0.1.0/24', 1000, 1000)",
            """
            INSERT INTO backends VALUES ('lb-1', 'load_balancer', 'vpc-1', 'subnet-1', 'r1', 'tenant-a', 'lb', '10.0.1.2',
                '["198.19.128.0/17"]', 1000, 1000)
            """,
            """
            INSERT INTO endpoint_services VALUES ('svc-1', 'r1.web.svc-1', 'web', 'r1', 'tenant-a', 'vpc-1', 'interface',
                'load_balancer', 'lb-1', '[{"proto":"TCP","service":8080,"terminal":80}]', 1, 'close', 'old', '[]',
                'available', 2000, 3000, 4, '[]', 0)
            """,
            "INSERT INTO permissions VALUES ('p-1', 'svc-1', 'r1', 'iam:domain::tenant-b', 'domainId', 'b', 5000, 5000)",
            "PRAGMA user_version = 5",
        ]
        for statement in rows { _ = try await connection.query(statement) }
        try await connection.close()

        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
            let entries = try await store.read { reader in
                try await reader.permissions(serviceID: "svc-1", serviceVisibleTo: .anyOwner(in: "r1"))
            }
            #expect(entries == [Permission(
                id: "p-1", serviceID: "svc-1", permission: "iam:domain::tenant-b", description: "b", region: "r1",
                createdAt: Date(timeIntervalSince1970: 5))])
            #expect(entries.first?.decision == .manual && entries.first?.onExpiry == .keep)
            let due = try await store.read { reader in
                try await reader.permissionsDueForExpiry(by: Date(timeIntervalSince1970: 4_000_000_000), limit: 10)
            }
            #expect(due.isEmpty)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// Migration 9 fills the tag tables from the tags already stored, so a tag filter finds a service
    /// written at schema 8, through the tag table's index (region-wide) and through the per-row probe
    /// (one owner's list) alike.
    @Test func migrationNineBackfillsTheTagTables() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + SQLiteRegistryStore.fileName
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        for migration in SQLiteRegistryStore.migrations[0..<8] {
            for statement in migration { _ = try await connection.query(statement) }
        }
        let rows = [
            "INSERT INTO vpcs VALUES ('vpc-1', 'r1', 'tenant-a', 'vpc', '10.0.0.0/16', 1000, 1000)",
            "INSERT INTO subnets VALUES ('subnet-1', 'vpc-1', 'r1', 'tenant-a', 'subnet', '10.0.1.0/24', 1000, 1000)",
            """
            INSERT INTO backends VALUES ('lb-1', 'load_balancer', 'vpc-1', 'subnet-1', 'r1', 'tenant-a', 'lb', '10.0.1.2',
                '["198.19.128.0/17"]', 1000, 1000)
            """,
            """
            INSERT INTO endpoint_services VALUES ('svc-1', 'r1.web.svc-1', 'web', 'r1', 'tenant-a', 'vpc-1', 'interface',
                'load_balancer', 'lb-1', '[{"proto":"TCP","service":8080,"terminal":80}]', 1, 'close', 'old',
                '[{"key":"env","value":"prod"},{"key":"team","value":"blue"}]', 'available', 2000, 3000, 4, '[]', 0)
            """,
            "PRAGMA user_version = 8",
        ]
        for statement in rows { _ = try await connection.query(statement) }
        try await connection.close()

        let store = try await SQLiteRegistryStore.open(directory: directory)
        do {
            for owner in [nil, "tenant-a"] {
                let query = ListQuery(region: "r1", ownerID: owner, sortKey: .createdAt, ascending: false, limit: 10, offset: 0)
                for (tag, expected) in [(Tag(key: "env", value: "prod"), ["svc-1"]), (Tag(key: "env", value: "dev"), [])] {
                    let page = try await store.read { reader in
                        try await reader.listEndpointServices(query, filter: EndpointServiceFilter(tags: [tag]))
                    }
                    #expect(page.items.map(\.id) == expected, "\(owner ?? "region") \(tag)")
                    #expect(page.totalCount == expected.count)
                }
            }
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// Migration 10 rebuilds two change-log indexes without the entries another index finds; events
    /// written at schema 9 are found afterwards exactly as before, by service and in each party's view.
    @Test func migrationTenKeepsEveryEventFindable() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        @Sendable func read(_ store: SQLiteRegistryStore, _ serviceID: String) async throws -> [String: [UInt64]] {
            var found: [String: [UInt64]] = [:]
            for (name, viewer) in [
                ("provider", EventViewer(region: "r1", ownerID: "tenant-a", isOperator: false)),
                ("consumer", EventViewer(region: "r1", ownerID: "tenant-b", isOperator: false)),
            ] {
                for service in [nil, serviceID] {
                    let query = EventQuery(viewer: viewer, serviceID: service, limit: 100)
                    found["\(name) \(service == nil ? "all" : "service")"] =
                        try await store.read { try await $0.listEvents(query) }.items.map(\.seq)
                }
            }
            return found
        }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        let clock = TickingClock()
        let ids = SequentialIDs()
        let registry = Registry(store: store, regions: servedRegions, clock: { clock.now() }, makeID: { ids.next() })
        let story = try await makeStory(registry, approval: true)
        let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
        _ = try await registry.decideConnections(
            tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
        _ = try await registry.createEndpoint(
            tenantA, EndpointSpec(serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
        _ = try await registry.updateEndpointService(tenantA, id: story.service.id, EndpointServiceUpdate(description: "x"))
        let before = try await read(store, story.service.id)
        try await store.close()
        #expect(before["provider service"]?.count ?? 0 >= 6, "\(before)")
        #expect(before["consumer service"]?.count ?? 0 >= 2, "\(before)")

        // Back to schema 9's indexes, which held every event.
        let connection = try await SQLiteConnection.open(storage: .file(path: directory + "/" + SQLiteRegistryStore.fileName))
        for statement in [
            "DROP INDEX change_events_by_provider",
            "CREATE INDEX change_events_by_provider ON change_events (region, provider_id, seq) WHERE provider_sees = 1",
            "DROP INDEX change_events_by_service",
            "CREATE INDEX change_events_by_service ON change_events (service_id, seq)",
            "PRAGMA user_version = 9",
        ] {
            _ = try await connection.query(statement)
        }
        try await connection.close()

        let migrated = try await SQLiteRegistryStore.open(directory: directory)
        do {
            #expect(try await read(migrated, story.service.id) == before)
            let definitions = try await migrated.read { reader in
                try await (reader as! SQLiteAccess).rows(
                    "SELECT name, sql FROM sqlite_master WHERE name IN ('change_events_by_service', 'change_events_by_provider')")
            }
            let partial = Dictionary(uniqueKeysWithValues: try definitions.map { (try $0.text("name"), try $0.text("sql")) })
            #expect(partial["change_events_by_service"]?.hasSuffix("WHERE service_id != resource_id") == true, "\(partial)")
            #expect(partial["change_events_by_provider"]?.hasSuffix("WHERE provider_sees = 1 AND provider_id != owner_id") == true, "\(partial)")
        } catch {
            try? await migrated.close()
            throw error
        }
        try await migrated.close()
    }
}
