import Foundation
import Testing
@testable import VPCEPRegistry
import VPCEPTestSupport

/// A service look-up applies the caller's `Visibility` in the store's query. The registry states the
/// rules once; this checks that the store's translation finds exactly the services the registry's
/// in-memory rule admits, and that the rules are the documented ones.
@Suite("Store contract: service look-ups apply the caller's visibility")
struct VisibilityContractTests {
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

    @Test(arguments: StoreKind.underTest)
    func theStoreFindsExactlyWhatTheRegistrysRuleAdmits(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
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
                                try await reader.permissions(serviceID: service.id, serviceVisibleTo: .anyOwner(in: service.region)).map(\.permission)
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
}
