import Foundation
import PostgresNIO
import Testing
import VPCEPRegistry
import VPCEPStorePostgres
import VPCEPTestSupport

/// What only the PostgreSQL store has: replicas starting together, a server that refuses and comes
/// back, its URL. Against the real test server, never a stand-in.
@Suite(
    "PostgreSQL store",
    .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: scripts/test.sh starts a throwaway server"))
struct PostgresStoreTests {
    /// Replicas starting at once on an empty schema: each migration is applied once (the advisory
    /// lock), every replica opens, and the schema is current.
    @Test func replicasStartingTogetherMigrateOnce() async throws {
        let database = TestDatabase(.postgres)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask { _ = try await database.open() }
                }
                try await group.waitForAll()
            }
            let store = try await database.open()
            try await store.transaction { tx in try await tx.insertVPC(vpc("vpc-1")) }
            #expect(try await store.read { try await $0.vpc(id: "vpc-1", visibleTo: .anyOwner(in: "r1")) } != nil)
        } catch {
            await database.destroy()
            throw error
        }
        await database.destroy()
    }

    /// PostgreSQL refusing the store's connections (its role may not connect, its sessions are
    /// ended): calls fail as unavailable, the store is not ready; once connections are allowed again
    /// the store reconnects by itself and is ready.
    @Test func aServerThatRefusesMakesTheStoreUnavailableUntilItReconnects() async throws {
        let role = "contract_role_" + UUID().uuidString.prefix(8).lowercased()
        let schema = role + "_schema"
        try await postgresAdmin([
            "CREATE ROLE \(role) LOGIN", "CREATE SCHEMA \(schema) AUTHORIZATION \(role)",
        ])
        var configuration = try TestDatabase.postgresConfiguration(schema: schema)
        configuration.username = role
        // Long enough for a loaded machine to connect at all; short enough for the outage's calls.
        configuration.connectTimeout = .seconds(5)
        configuration.acquireTimeout = .seconds(10)
        let store = try await PostgresRegistryStore.open(configuration)
        let registry = Registry(store: store, regions: servedRegions)
        do {
            _ = try await registry.createVPC(tenantA, name: "before", cidr: "10.0.0.0/16")
            #expect(store.readinessProblem == nil)
            // The head round's statement is prepared on the head reader's connection, which the outage ends.
            let versionBefore = try #require(try await store.currentCommitVersion())

            try await postgresAdmin([
                "ALTER ROLE \(role) CONNECTION LIMIT 0",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '\(role)'",
            ])
            await expectError(.unavailable, "STORE_UNAVAILABLE", field: nil) {
                try await registry.createVPC(tenantA, name: "during", cidr: "10.1.0.0/16")
            }
            await expectError(.unavailable, "STORE_UNAVAILABLE", field: nil) {
                try await registry.listVPCs(tenantA, page: PageRequest())
            }
            #expect(store.readinessProblem != nil)

            try await postgresAdmin(["ALTER ROLE \(role) CONNECTION LIMIT -1"])
            // The store repairs itself: no call is needed for readiness to come back.
            while store.readinessProblem != nil { try await Task.sleep(for: .milliseconds(100)) }
            _ = try await registry.createVPC(tenantA, name: "after", cidr: "10.2.0.0/16")
            let names = try await registry.listVPCs(tenantA, page: PageRequest()).items.map(\.name).sorted()
            #expect(names == ["after", "before"])
            // A new head connection prepares it again, and the head covers the write made since.
            #expect(try #require(try await store.currentCommitVersion()) > versionBefore)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        try await postgresAdmin(["DROP SCHEMA \(schema) CASCADE", "DROP ROLE \(role)"])
    }

    @Test func nothingListeningFailsAsUnavailable() async throws {
        var configuration = try TestDatabase.postgresConfiguration(schema: nil)
        configuration.port = 1  // privileged and unused: the connection is refused
        configuration.connectTimeout = .seconds(1)
        configuration.acquireTimeout = .seconds(1)
        do {
            let store = try await PostgresRegistryStore.open(configuration)
            await store.close()
            Issue.record("opened a store with no server")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
        }
    }

    @Test func theURLNamesServerUserAndDatabaseButNoPassword() throws {
        let configuration = try PostgresRegistryStore.Configuration(
            url: "postgres://vpcep@db.example:6543/registry?sslmode=require&schema=r1", password: "s3cret")
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "vpcep")
        #expect(configuration.database == "registry")
        #expect(configuration.schema == "r1")
        #expect(configuration.tls == .require)
        #expect(configuration.password == "s3cret")
        #expect(!configuration.redacted.contains("s3cret"))
        #expect(try PostgresRegistryStore.Configuration(url: "postgresql://u@h/d").port == 5432)
        for bad in [
            "postgres://u:pw@h/d", "postgres://h/d", "postgres://u@h", "mysql://u@h/d", "postgres://u@h/d?sslmode=maybe",
            "postgres://u@h/d?color=red",
        ] {
            #expect(throws: StoreError.self, "\(bad)") { try PostgresRegistryStore.Configuration(url: bad) }
        }
    }
}
