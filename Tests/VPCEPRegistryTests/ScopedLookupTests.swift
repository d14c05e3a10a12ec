import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// Issue 12: a method that names a record by id finds it through a look-up scoped to the caller, so
/// another tenant's or another region's record never reaches the registry. Each call is made twice,
/// naming the foreign record and naming an id that does not exist: the answer and every store call
/// (with whether a look-up returned a row) must be the same: had a store handed the registry the
/// foreign row, its look-up would show `→ row` where the missing id's shows `→ nil`.
@Suite("No method finds another tenant's or another region's record by its id")
struct ScopedLookupTests {
    struct Trace: Equatable, CustomStringConvertible {
        var error: String
        var storeCalls: [String]
        var description: String { "\(error), store calls \(storeCalls)" }
    }

    /// A call naming one record by `id`, and the code its NOT_FOUND must carry.
    struct Case: Sendable {
        var name: String
        var reason: String
        var call: @Sendable (Registry, String) async throws -> Void
    }

    static let missing = "id-9999"

    @Test func aForeignIDIsAnsweredAndLookedUpLikeAMissingOne() async throws {
        try await withRegistry { plain, store in
            let story = try await makeStory(plain)
            let endpoint = try await plain.createEndpoint(tenantB, endpointSpec(story))
            var otherSpec = spec(story.provider, ports: [PortMapping(terminalPort: 80, servicePort: 9090)])
            otherSpec.name = "other"
            let other = try await plain.createEndpointService(tenantA, otherSpec)
            let a = story.provider
            let b = story.consumer
            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            let tenantBInR2 = CallContext(caller: .tenant("tenant-b"), region: "r2")
            let operatorR2 = CallContext(caller: .operator("ops"), region: "r2")

            // Tenant A's r1 inventory, named by callers who may not see it: another tenant (B), the same
            // tenant in another region, an operator of another region.
            var cases: [(CallContext, String, Case)] = []
            let strangers: [(CallContext, Network?)] = [(tenantB, b), (tenantAInR2, nil), (operatorR2, nil)]
            for (ctx, own) in strangers {
                cases += [
                    (ctx, a.vpc.id, Case(name: "deleteVPC", reason: "VPC_NOT_FOUND") { try await $0.deleteVPC(ctx, id: $1) }),
                    (ctx, a.subnet.id, Case(name: "deleteSubnet", reason: "SUBNET_NOT_FOUND") { try await $0.deleteSubnet(ctx, id: $1) }),
                    (ctx, a.loadBalancer.id, Case(name: "deleteBackend lb", reason: "BACKEND_NOT_FOUND") {
                        try await $0.deleteBackend(ctx, kind: .loadBalancer, id: $1)
                    }),
                    (ctx, a.vm.id, Case(name: "deleteBackend vm", reason: "BACKEND_NOT_FOUND") {
                        try await $0.deleteBackend(ctx, kind: .vm, id: $1)
                    }),
                    (ctx, a.vpc.id, Case(name: "createSubnet", reason: "VPC_NOT_FOUND") {
                        _ = try await $0.createSubnet(ctx, vpcID: $1, name: "s", cidr: "10.0.9.0/24")
                    }),
                    (ctx, a.vpc.id, Case(name: "createBackend in a foreign VPC", reason: "VPC_NOT_FOUND") {
                        _ = try await $0.createBackend(
                            ctx, kind: .vm, vpcID: $1, subnetID: a.subnet.id, name: "b", ip: nil, ingressCIDRs: [])
                    }),
                    (ctx, a.vpc.id, Case(name: "createEndpointService in a foreign VPC", reason: "VPC_NOT_FOUND") {
                        var request = spec(a)
                        request.vpcID = $1
                        _ = try await $0.createEndpointService(ctx, request)
                    }),
                ]
                if let own {
                    // The caller's own VPC, with a foreign subnet or backend in it named.
                    cases += [
                        (ctx, a.subnet.id, Case(name: "createBackend in a foreign subnet", reason: "SUBNET_NOT_FOUND") {
                            _ = try await $0.createBackend(
                                ctx, kind: .vm, vpcID: own.vpc.id, subnetID: $1, name: "b", ip: nil, ingressCIDRs: [])
                        }),
                        (ctx, a.loadBalancer.id, Case(name: "createEndpointService on a foreign backend", reason: "BACKEND_NOT_FOUND") {
                            var request = spec(own)
                            request.backendID = $1
                            _ = try await $0.createEndpointService(ctx, request)
                        }),
                        (ctx, a.subnet.id, Case(name: "createEndpoint in a foreign subnet", reason: "SUBNET_NOT_FOUND") {
                            _ = try await $0.createEndpoint(
                                ctx, EndpointSpec(serviceID: story.service.id, vpcID: own.vpc.id, subnetID: $1))
                        }),
                    ]
                }
            }
            // Tenant B's endpoint, named by the provider of its service (a consumer's endpoint is not the
            // provider's to get or change), by a stranger, and by B itself in another region.
            for ctx in [tenantA, tenantC, tenantBInR2] {
                cases += [
                    (ctx, endpoint.id, Case(name: "getEndpoint", reason: "ENDPOINT_NOT_FOUND") { _ = try await $0.getEndpoint(ctx, id: $1) }),
                    (ctx, endpoint.id, Case(name: "updateEndpoint", reason: "ENDPOINT_NOT_FOUND") {
                        _ = try await $0.updateEndpoint(ctx, id: $1, EndpointUpdate(description: "x"))
                    }),
                    (ctx, endpoint.id, Case(name: "deleteEndpoint", reason: "ENDPOINT_NOT_FOUND") { try await $0.deleteEndpoint(ctx, id: $1) }),
                ]
            }
            // The provider deciding on its other service about an endpoint that connects to the first one.
            cases += [
                (tenantA, endpoint.id, Case(name: "acceptConnections", reason: "CONNECTION_NOT_FOUND") {
                    _ = try await $0.decideConnections(tenantA, serviceID: other.id, serviceName: nil, endpointIDs: [$1], accept: true)
                }),
                (tenantA, endpoint.id, Case(name: "rejectConnections", reason: "CONNECTION_NOT_FOUND") {
                    _ = try await $0.decideConnections(tenantA, serviceID: other.id, serviceName: nil, endpointIDs: [$1], accept: false)
                }),
                (tenantA, endpoint.id, Case(name: "updateConnectionDescription", reason: "CONNECTION_NOT_FOUND") {
                    _ = try await $0.updateConnectionDescription(
                        tenantA, serviceID: other.id, serviceName: nil, endpointID: $1, description: "x")
                }),
            ]

            let before = try await snapshot(plain)
            for (ctx, foreignID, test) in cases {
                let foreign = try await trace(test, naming: foreignID, store: store)
                let absent = try await trace(test, naming: Self.missing, store: store)
                let label = "\(test.name) as \(ctx.caller.ownerID) in \(ctx.region)"
                #expect(foreign == absent, "\(label): foreign \(foreign); missing \(absent)")
                #expect(foreign.error.hasPrefix("NOT_FOUND \(test.reason) "), "\(label): \(foreign.error)")
            }
            #expect(try await snapshot(plain) == before)
        }
    }

    /// The same methods still find what the caller may see (the traces above are not all `nil` because
    /// every look-up is).
    @Test func theOwnerAndTheProviderStillFindTheirRecords() async throws {
        try await withRegistry { plain, store in
            let story = try await makeStory(plain)
            let endpoint = try await plain.createEndpoint(tenantB, endpointSpec(story))
            let recording = RecordingStore(store)
            let registry = Registry(store: recording, regions: servedRegions)
            #expect(try await registry.getEndpoint(tenantB, id: endpoint.id).id == endpoint.id)
            #expect(try await registry.getEndpoint(operatorR1, id: endpoint.id).id == endpoint.id)
            let accepted = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            #expect(accepted.map(\.status) == [.accepted])
            #expect(recording.calls.filter { $0.hasPrefix("endpoint(id:visibleTo:)") } == Array(repeating: "endpoint(id:visibleTo:) → row", count: 3))
            _ = try await registry.createSubnet(tenantB, vpcID: story.consumer.vpc.id, name: "s", cidr: "10.1.9.0/24")
            #expect(recording.calls.contains("vpc(id:visibleTo:) → row"))
        }
    }

    private func trace(_ test: Case, naming id: String, store: any RegistryStore) async throws -> Trace {
        let recording = RecordingStore(store)
        let registry = Registry(store: recording, regions: servedRegions)
        do {
            try await test.call(registry, id)
            return Trace(error: "no error", storeCalls: recording.calls)
        } catch let error as RegistryError {
            // Every part a client receives, with the id named replaced so that the two can compare.
            let message = error.message.replacingOccurrences(of: id, with: "<id>")
            return Trace(
                error: "\(error.code.name) \(error.reason) \(error.field ?? "-") \(message)", storeCalls: recording.calls)
        }
    }
}
