import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPStorePostgres
import VPCEPStoreSQLite
import VPCEPTestSupport

/// `Testing` has a `Tag` too.
typealias Tag = VPCEPRegistry.Tag

/// The PostgreSQL server the contract runs against, when there is one: scripts/test.sh starts a
/// throwaway cluster and sets it (scripts/postgres.sh).
let postgresURL: String? = ProcessInfo.processInfo.environment["VPCEP_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

/// A store implementation the contract holds for.
enum StoreKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    /// SQLite always; PostgreSQL when a server is configured. Its absence is reported by
    /// `PostgresAvailability`, never passed over in silence.
    static var underTest: [StoreKind] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }

    /// Whether two stores may be open on one database at once (replicas).
    var sharesDatabase: Bool { self == .postgres }
}

/// Reports that the PostgreSQL half of the contract did not run, as a skipped test with the reason.
@Suite("Store contract: PostgreSQL availability")
struct PostgresAvailability {
    @Test(
        "the PostgreSQL store is under test",
        // Skipped, and so shown as skipped, when no server is configured: `swift test` alone runs the
        // contract against SQLite only; scripts/test.sh always provides a throwaway server.
        .enabled(if: postgresURL != nil, "VPCEP_TEST_POSTGRES_URL is unset: the contract ran against SQLite only"))
    func postgresIsUnderTest() {
        #expect(StoreKind.underTest.contains(.postgres))
    }
}

/// One isolated database of a store kind (a temporary directory; a fresh PostgreSQL schema), on which
/// stores can be opened, closed and opened again, and for PostgreSQL several at once.
final class TestDatabase: Sendable {
    let kind: StoreKind
    let location: String
    private let opened = Mutex<[any ClosableStore]>([])

    init(_ kind: StoreKind) {
        self.kind = kind
        switch kind {
        case .sqlite: location = temporaryDirectory()
        case .postgres: location = "contract_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        }
    }

    /// Opens a store on this database; `destroy` closes every store still open.
    func open() async throws -> any ClosableStore {
        let store: any ClosableStore
        switch kind {
        case .sqlite:
            store = try await SQLiteRegistryStore.open(directory: location)
        case .postgres:
            store = try await PostgresRegistryStore.open(try Self.postgresConfiguration(schema: location))
        }
        opened.withLock { $0.append(store) }
        return store
    }

    static func postgresConfiguration(schema: String?) throws -> PostgresRegistryStore.Configuration {
        guard let postgresURL else { throw StoreError(code: .internalError, message: "VPCEP_TEST_POSTGRES_URL is unset") }
        var configuration = try PostgresRegistryStore.Configuration(url: postgresURL)
        configuration.tls = .disable
        configuration.schema = schema
        configuration.maximumConnections = 4
        // The whole suite runs in parallel on a shared machine: connections may be slow to come.
        // The tests of failing fast set their own limits.
        configuration.connectTimeout = .seconds(30)
        configuration.acquireTimeout = .seconds(60)
        return configuration
    }

    func destroy() async {
        for store in opened.withLock({ $0 }) { try? await store.closeStore() }
        switch kind {
        case .sqlite:
            try? FileManager.default.removeItem(atPath: location)
        case .postgres:
            try? await Self.dropSchema(location)
        }
    }

    private static func dropSchema(_ schema: String) async throws {
        try await postgresAdmin(["DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"])
    }
}

/// Runs statements on the test server as the configured (super)user, outside any store.
@discardableResult
func postgresAdmin(_ statements: [String]) async throws -> [PostgresRow] {
    let configuration = try TestDatabase.postgresConfiguration(schema: nil)
    let logger = Logger(label: "vpcep.tests.postgres")
    let connection = try await PostgresConnection.connect(
        configuration: .init(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: .disable),
        id: 1, logger: logger)
    var rows: [PostgresRow] = []
    do {
        for statement in statements {
            rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
        }
    } catch {
        try? await connection.close()
        throw error
    }
    try await connection.close()
    return rows
}

/// A store the tests can close, whatever its kind.
protocol ClosableStore: RegistryStore {
    func closeStore() async throws
}

extension SQLiteRegistryStore: ClosableStore {
    func closeStore() async throws { try await close() }
}

extension PostgresRegistryStore: ClosableStore {
    func closeStore() async throws { await close() }
}

/// Runs `body` with a store of `kind` on a fresh database, removed afterwards.
func withStore(_ kind: StoreKind, _ body: (any ClosableStore, TestDatabase) async throws -> Void) async throws {
    let database = TestDatabase(kind)
    do {
        let store = try await database.open()
        try await body(store, database)
    } catch {
        await database.destroy()
        throw error
    }
    await database.destroy()
}

/// Runs `body` against a registry on a store of `kind` (as `withRegistry` does on SQLite).
func withRegistry(
    _ kind: StoreKind, makeID: (@Sendable () -> String)? = nil,
    _ body: (Registry, any ClosableStore) async throws -> Void
) async throws {
    try await withStore(kind) { store, _ in
        let ticking = TickingClock()
        let ids = SequentialIDs()
        let registry = Registry(store: store, regions: servedRegions, clock: { ticking.now() }, makeID: makeID ?? { ids.next() })
        try await body(registry, store)
    }
}

func vpc(_ id: String, owner: String = "tenant-a", region: String = "r1", at seconds: Double = 1) -> VPC {
    VPC(
        id: id, name: "v", cidr: "10.0.0.0/16", region: region, ownerID: owner,
        createdAt: Date(timeIntervalSince1970: seconds), updatedAt: Date(timeIntervalSince1970: seconds))
}

func listQuery(
    region: String = "r1", owner: String? = nil, sortKey: ListQuery.SortKey = .createdAt, ascending: Bool = true,
    limit: Int = 100, offset: Int = 0
) -> ListQuery {
    ListQuery(region: region, ownerID: owner, sortKey: sortKey, ascending: ascending, limit: limit, offset: offset)
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}
