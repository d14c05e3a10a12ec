import Foundation
import Testing
import VPCEPProto

@Suite("Service method descriptors")
struct MethodDescriptorTests {
    @Test("paths and kinds")
    func paths() {
        #expect(InventoryAPI.createVpc.path == "/vpcep.v1.Inventory/CreateVpc")
        #expect(InventoryAPI.createVpc.service == "vpcep.v1.Inventory")
        #expect(InventoryAPI.createVpc.method == "CreateVpc")
        #expect(InventoryAPI.createVpc.kind == .unary)
        #expect(EndpointServicesAPI.listEndpointServices.path == "/vpcep.v1.EndpointServices/ListEndpointServices")
        #expect(HealthAPI.whoAmI.path == "/vpcep.v1.Health/WhoAmI")
        #expect(HealthAPI.check.path == "/vpcep.v1.Health/Check")
        #expect(QuotasAPI.listQuotas.path == "/vpcep.v1.Quotas/ListQuotas")
        #expect(MethodKind.unary != MethodKind.serverStreaming)
    }

    @Test("request and response types")
    func types() {
        // Compile-time: the descriptor carries the schema's types.
        let descriptor: MethodDescriptor<CreateEndpointServiceRequest, EndpointService> =
            EndpointServicesAPI.createEndpointService
        let health: MethodDescriptor<HealthCheckRequest, HealthCheckResponse> = HealthAPI.check
        #expect(descriptor.method == "CreateEndpointService")
        #expect(health.kind == .unary)
    }

    @Test("allMethods lists every rpc once")
    func allMethods() {
        let all = InventoryAPI.allMethods + EndpointServicesAPI.allMethods + EndpointsAPI.allMethods + HealthAPI.allMethods
            + QuotasAPI.allMethods + HistoryAPI.allMethods
        #expect(InventoryAPI.allMethods.count == 12)
        #expect(EndpointServicesAPI.allMethods.count == 19)
        #expect(EndpointsAPI.allMethods.count == 7)
        #expect(QuotasAPI.allMethods.map(\.path) == ["/vpcep.v1.Quotas/ListQuotas", "/vpcep.v1.Quotas/SetQuota"])
        #expect(HealthAPI.allMethods.map(\.path) == ["/vpcep.v1.Health/Check", "/vpcep.v1.Health/WhoAmI"])
        #expect(HistoryAPI.allMethods.map(\.path) == ["/vpcep.v1.History/ListHistory", "/vpcep.v1.History/Watch"])
        #expect(Set(all.map(\.path)).count == all.count)
        // Watch is the one stream (docs/PROTOCOL.md §4.4).
        #expect(all.filter { $0.kind == .serverStreaming }.map(\.path) == ["/vpcep.v1.History/Watch"])
        #expect(HistoryAPI.watch.kind == .serverStreaming)
    }

    private static let all: [any MethodDescribing] = InventoryAPI.allMethods + EndpointServicesAPI.allMethods
        + EndpointsAPI.allMethods + HealthAPI.allMethods + QuotasAPI.allMethods + HistoryAPI.allMethods

    /// Each rpc of proto/ as "/package.Service/Method" → its `idempotency_level`, read from the
    /// .proto text itself rather than through the generator, so the two are checked against each other.
    private static func schemaIdempotency() throws -> [String: String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("proto/vpcep/v1")
        var levels: [String: String] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: root.path) where file.hasSuffix(".proto") {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            let package = try #require(text.firstMatch(of: /\npackage ([\w.]+);/)).1
            for service in text.matches(of: /\nservice (\w+) \{([\s\S]*?)\n\}/) {
                for rpc in service.2.matches(of: /rpc (\w+)\([^)]*\) returns \([^)]*\)\s*(;|\{[^}]*\})/) {
                    let level = rpc.2.firstMatch(of: /option idempotency_level = (\w+);/).map { String($0.1) }
                    levels["/\(package).\(service.1)/\(rpc.1)"] = level ?? "IDEMPOTENCY_UNKNOWN"
                }
            }
        }
        return levels
    }

    @Test("every method's idempotency is the schema's idempotency_level")
    func idempotencyFromTheSchema() throws {
        let schema = try Self.schemaIdempotency()
        #expect(schema.count == Self.all.count)
        for method in Self.all {
            #expect(method.idempotency.description == schema[method.path], "\(method.path)")
        }
        // The reads of docs/PROTOCOL.md §9 are all marked, and nothing else is.
        let safe = Set(Self.all.filter(\.idempotency.isSafeToRetry).map(\.path))
        #expect(safe == Set(schema.filter { $0.value == "NO_SIDE_EFFECTS" }.keys))
        #expect(safe.count == 18)
        #expect(!InventoryAPI.createVpc.idempotency.isSafeToRetry && HealthAPI.whoAmI.idempotency == .noSideEffects)
    }
}
