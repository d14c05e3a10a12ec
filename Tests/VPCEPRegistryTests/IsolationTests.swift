import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Regions, tenants and operators")
struct IsolationTests {
    @Test func everyCallChecksTheRegion() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            let ctx = CallContext(caller: .tenant("tenant-a"), region: "r9")
            let page = PageRequest()
            let calls: [(String, () async throws -> Void)] = [
                ("createVPC", { _ = try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16") }),
                ("listVPCs", { _ = try await registry.listVPCs(ctx, page: page) }),
                ("createSubnet", { _ = try await registry.createSubnet(ctx, vpcID: network.vpc.id, name: "s", cidr: "10.0.9.0/24") }),
                ("listSubnets", { _ = try await registry.listSubnets(ctx, vpcID: nil, page: page) }),
                ("createBackend", {
                    _ = try await registry.createBackend(
                        ctx, kind: .vm, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "b", ip: nil, ingressCIDRs: [])
                }),
                ("listBackends", { _ = try await registry.listBackends(ctx, kind: .vm, vpcID: nil, page: page) }),
                ("createEndpointService", { _ = try await registry.createEndpointService(ctx, spec(network)) }),
                ("getEndpointService", { _ = try await registry.getEndpointService(ctx, id: service.id, serviceName: nil) }),
                ("listEndpointServices", { _ = try await registry.listEndpointServices(ctx, filter: .init(), page: page) }),
                ("listQuotas", { _ = try await registry.listQuotas(ctx, type: nil) }),
            ]
            for (name, call) in calls {
                await expectError(.invalidArgument, "REGION_NOT_SERVED", field: "region") {
                    try await call()
                    return name
                }
            }
            #expect(registry.regions == servedRegions)
        }
    }

    @Test func unusableCallerIdentitiesAreRefused() async throws {
        try await withRegistry { registry, _ in
            for caller in [Caller.tenant(""), .tenant("operator:ops"), .operator("")] {
                await expectError(.permissionDenied, "CALLER_INVALID", field: nil) {
                    try await registry.listVPCs(CallContext(caller: caller, region: "r1"), page: PageRequest())
                }
            }
        }
    }

    @Test func resourcesAreInvisibleFromOtherRegionsAndTenants() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            let page = PageRequest()
            for ctx in [tenantB, tenantAInR2] {
                #expect(try await registry.listVPCs(ctx, page: page).totalCount == 0)
                #expect(try await registry.listSubnets(ctx, vpcID: nil, page: page).totalCount == 0)
                #expect(try await registry.listSubnets(ctx, vpcID: network.vpc.id, page: page).totalCount == 0)
                #expect(try await registry.listBackends(ctx, kind: .loadBalancer, vpcID: nil, page: page).totalCount == 0)
                #expect(try await registry.listEndpointServices(ctx, filter: .init(), page: page).totalCount == 0)
                #expect(try await registry.listEndpointServices(ctx, filter: .init(id: service.id), page: page).totalCount == 0)
                // Not PERMISSION_DENIED: another tenant's service does not exist for the caller.
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                    try await registry.getEndpointService(ctx, id: service.id, serviceName: nil)
                }
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_name") {
                    try await registry.getEndpointService(ctx, id: nil, serviceName: service.serviceName)
                }
            }
            // The owner still sees everything.
            #expect(try await registry.listVPCs(tenantA, page: page).items == [network.vpc])
            #expect(try await registry.listEndpointServices(tenantA, filter: .init(), page: page).items == [service])
        }
    }

    @Test func operatorsReadAcrossTenantsInTheirRegionOnly() async throws {
        try await withRegistry { registry, _ in
            let a = try await makeNetwork(registry, tenantA)
            let b = try await makeNetwork(registry, tenantB)
            let serviceA = try await registry.createEndpointService(tenantA, spec(a))
            let serviceB = try await registry.createEndpointService(tenantB, spec(b))
            let inR2 = try await makeNetwork(registry, tenantAInR2)
            _ = try await registry.createEndpointService(tenantAInR2, spec(inR2))
            let page = PageRequest()

            #expect(try await registry.getEndpointService(operatorR1, id: serviceA.id, serviceName: nil) == serviceA)
            #expect(try await registry.getEndpointService(operatorR1, id: nil, serviceName: serviceB.serviceName) == serviceB)
            let services = try await registry.listEndpointServices(operatorR1, filter: .init(), page: page)
            #expect(Set(services.items) == [serviceA, serviceB])
            #expect(Set(try await registry.listVPCs(operatorR1, page: page).items) == [a.vpc, b.vpc])
            #expect(try await registry.listSubnets(operatorR1, vpcID: b.vpc.id, page: page).items == [b.subnet])
            #expect(try await registry.listBackends(operatorR1, kind: .vm, vpcID: nil, page: page).totalCount == 2)

            let operatorR2 = CallContext(caller: .operator("ops"), region: "r2")
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.getEndpointService(operatorR2, id: serviceA.id, serviceName: nil)
            }
            #expect(try await registry.listEndpointServices(operatorR2, filter: .init(), page: page).totalCount == 1)
            // Reading is not building: an operator cannot place resources in a tenant's VPC.
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await registry.createSubnet(operatorR1, vpcID: a.vpc.id, name: "s", cidr: "10.0.9.0/24")
            }
        }
    }
}
