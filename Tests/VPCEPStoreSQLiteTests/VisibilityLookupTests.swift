import Foundation
import SQLiteNIO
import Testing
@testable import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// A service look-up applies the caller's `Visibility` in the store's query and stays an index
/// look-up in SQLite. (That it finds exactly what the registry's rule admits is part of the store
/// contract: Tests/VPCEPStoreContractTests.)
@Suite("Service look-ups apply the caller's visibility in the store")
struct VisibilityLookupTests {
    enum Rule: String, CaseIterable {
        case reading, consumerLookup, connecting

        func of(_ scope: Scope) -> Visibility {
            switch self {
            case .reading: scope.reading
            case .consumerLookup: scope.consumerLookup
            case .connecting: scope.connecting
            }
        }
    }

    static func scope(_ ctx: CallContext) -> Scope {
        Scope(region: ctx.region, ownerID: ctx.caller.ownerID, isOperator: ctx.caller.isOperator)
    }

    /// Scoping the look-up must not turn it into a scan: the key's unique index finds the row, and the
    /// allow-list condition probes the permissions' (service_id, permission) index.
    @Test func aScopedLookUpIsAnIndexLookUp() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let connection = try await SQLiteConnection.open(storage: .file(path: directory + "/plan.sqlite"))
        do {
            for statement in SQLiteRegistryStore.migrations.joined() { _ = try await connection.query(statement) }
            let visibilities = Rule.allCases.flatMap { rule in
                [tenantB, operatorR1].map { rule.of(Self.scope($0)) }
            }
            for visibility in visibilities {
                let keys: [(SQLiteAccess.ServiceKey, String, String)] = [
                    (.id, "id", "sqlite_autoindex_endpoint_services_1"),
                    (.serviceName, "service_name", "sqlite_autoindex_endpoint_services_2"),
                ]
                for (key, column, index) in keys {
                    let (sql, binds) = try SQLiteAccess.serviceLookup(key, key: "x", visibleTo: visibility)
                    let plan = try await connection.query("EXPLAIN QUERY PLAN " + sql, binds)
                        .compactMap { $0.column("detail")?.string }
                    #expect(plan.first == "SEARCH endpoint_services USING INDEX \(index) (\(column)=?)", "\(plan)")
                    #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(plan)")
                    if visibility.needsAllowList {
                        #expect(
                            plan.contains { $0.contains("SEARCH permissions USING COVERING INDEX sqlite_autoindex_permissions_2") },
                            "\(plan)")
                    }
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
