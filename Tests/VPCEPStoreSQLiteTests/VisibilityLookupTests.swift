import Foundation
import SQLiteNIO
import Testing
@testable import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// A service look-up applies the caller's `Visibility` in the store's query. The registry states the
/// rules once; these check that the store's translation finds exactly the services the registry's
/// in-memory rule admits, that the rules are the documented ones, and that the look-up stays an index
/// look-up.
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

    @Test func theStoreFindsExactlyWhatTheRegistrysRuleAdmits() async throws {
        try await withRegistry { registry, store in
            let network = try await makeNetwork(registry, tenantA)
            var services: [String: EndpointService] = [:]
            let allowLists: [(String, [String])] = [
                ("private", []), ("everyone", ["*"]), ("tenantB", ["iam:domain::tenant-b"]),
                ("tenantC", ["iam:domain::tenant-c"]),
            ]
            for (label, allow) in allowLists {
                var request = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8000 + services.count)])
                request.name = label
                let service = try await registry.createEndpointService(tenantA, request)
                if !allow.isEmpty {
                    _ = try await registry.addPermissions(
                        tenantA, serviceID: service.id, serviceName: nil, entries: allow.map { PermissionEntry(permission: $0) })
                }
                services[label] = service
            }
            let operatorNetwork = try await makeNetwork(registry, operatorR1, cidr: "10.2.0.0/16")
            var publicSpec = spec(operatorNetwork)
            publicSpec.isPublic = true
            publicSpec.name = "public"
            services["public"] = try await registry.createEndpointService(operatorR1, publicSpec)
            let r2Network = try await makeNetwork(registry, tenantAInR2)
            var r2Spec = spec(r2Network)
            r2Spec.name = "r2"
            r2Spec.approvalEnabled = false
            services["r2"] = try await registry.createEndpointService(tenantAInR2, r2Spec)

            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            let tenantBInR2 = CallContext(caller: .tenant("tenant-b"), region: "r2")
            let callers: [(String, CallContext)] = [
                ("tenantA", tenantA), ("tenantB", tenantB), ("tenantC", tenantC), ("operator", operatorR1),
                ("tenantBInR2", tenantBInR2),
            ]
            // The rules as documented (DOMAIN.md), independent of how `Visibility` states them.
            let expected: [String: Set<String>] = [
                "tenantA reading": ["private", "everyone", "tenantB", "tenantC"],
                "tenantA consumerLookup": ["private", "everyone", "tenantB", "tenantC", "public"],
                "tenantA connecting": ["private", "everyone", "tenantB", "tenantC"],
                "tenantB reading": [],
                "tenantB consumerLookup": ["everyone", "tenantB", "public"],
                "tenantB connecting": ["everyone", "tenantB"],
                "tenantC reading": [],
                "tenantC consumerLookup": ["everyone", "tenantC", "public"],
                "tenantC connecting": ["everyone", "tenantC"],
                "operator reading": ["private", "everyone", "tenantB", "tenantC", "public"],
                "operator consumerLookup": ["private", "everyone", "tenantB", "tenantC", "public"],
                "operator connecting": ["everyone", "public"],
                "tenantBInR2 reading": [],
                "tenantBInR2 consumerLookup": [],
                "tenantBInR2 connecting": [],
            ]
            for (callerName, ctx) in callers {
                for rule in Rule.allCases {
                    let visibility = rule.of(Self.scope(ctx))
                    var byID: Set<String> = []
                    var byName: Set<String> = []
                    var inMemory: Set<String> = []
                    for (label, service) in services {
                        let (foundByID, foundByName, entries) = try await store.read { reader in
                            (
                                try await reader.endpointService(id: service.id, visibleTo: visibility),
                                try await reader.endpointService(serviceName: service.serviceName, visibleTo: visibility),
                                try await reader.permissions(serviceID: service.id).map(\.permission)
                            )
                        }
                        if let foundByID {
                            #expect(foundByID.id == service.id)
                            byID.insert(label)
                        }
                        if let foundByName {
                            #expect(foundByName.id == service.id)
                            byName.insert(label)
                        }
                        if visibility.admits(
                            region: service.region, ownerID: service.ownerID, isPublic: service.isPublic,
                            allowList: entries)
                        {
                            inMemory.insert(label)
                        }
                    }
                    let key = "\(callerName) \(rule)"
                    #expect(byID == inMemory, "\(key): store by id \(byID.sorted()), in memory \(inMemory.sorted())")
                    #expect(byName == inMemory, "\(key): store by name \(byName.sorted()), in memory \(inMemory.sorted())")
                    #expect(inMemory == expected[key], "\(key): \(inMemory.sorted())")
                }
            }
        }
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
