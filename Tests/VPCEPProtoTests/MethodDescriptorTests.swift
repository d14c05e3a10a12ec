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
            + QuotasAPI.allMethods
        #expect(InventoryAPI.allMethods.count == 12)
        #expect(EndpointServicesAPI.allMethods.count == 14)
        #expect(EndpointsAPI.allMethods.count == 5)
        #expect(QuotasAPI.allMethods.map(\.path) == ["/vpcep.v1.Quotas/ListQuotas", "/vpcep.v1.Quotas/SetQuota"])
        #expect(HealthAPI.allMethods.map(\.path) == ["/vpcep.v1.Health/Check", "/vpcep.v1.Health/WhoAmI"])
        #expect(Set(all.map(\.path)).count == all.count)
        #expect(all.allSatisfy { $0.kind == .unary })
    }
}
