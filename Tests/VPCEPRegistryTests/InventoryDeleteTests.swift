import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Inventory deletes")
struct InventoryDeleteTests {
    @Test func inUseInventoryCannotBeDeleted() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: ["*"])
            var vmService = spec(story.provider)
            vmService.backendKind = .vm
            vmService.backendID = story.provider.vm.id
            let onVM = try await registry.createEndpointService(tenantA, vmService)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))

            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteBackend(tenantA, kind: .vm, id: story.provider.vm.id)
            }
            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteBackend(tenantA, kind: .loadBalancer, id: story.provider.loadBalancer.id)
            }
            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteSubnet(tenantA, id: story.provider.subnet.id)
            }
            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteVPC(tenantA, id: story.provider.vpc.id)
            }
            // The consumer's subnet holds the endpoint.
            try await registry.deleteBackend(tenantB, kind: .loadBalancer, id: story.consumer.loadBalancer.id)
            try await registry.deleteBackend(tenantB, kind: .vm, id: story.consumer.vm.id)
            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteSubnet(tenantB, id: story.consumer.subnet.id)
            }
            // Wrong kind, someone else's, another region: not found. Operators see but do not delete.
            await expectError(.notFound, "BACKEND_NOT_FOUND", field: "id") {
                try await registry.deleteBackend(tenantA, kind: .loadBalancer, id: story.provider.vm.id)
            }
            await expectError(.notFound, "BACKEND_NOT_FOUND", field: "id") {
                try await registry.deleteBackend(tenantB, kind: .vm, id: story.provider.vm.id)
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "id") { try await registry.deleteVPC(tenantAInR2, id: story.provider.vpc.id) }
            await expectError(.notFound, "SUBNET_NOT_FOUND", field: "id") { try await registry.deleteSubnet(tenantB, id: story.provider.subnet.id) }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) { try await registry.deleteVPC(operatorR1, id: story.provider.vpc.id) }
            await expectError(.invalidArgument, "ID_REQUIRED", field: "id") { try await registry.deleteVPC(tenantA, id: "") }

            // Tear down in order.
            try await registry.deleteEndpoint(tenantB, id: endpoint.id)
            try await registry.deleteSubnet(tenantB, id: story.consumer.subnet.id)
            try await registry.deleteVPC(tenantB, id: story.consumer.vpc.id)
            try await registry.deleteEndpointService(tenantA, id: onVM.id)
            try await registry.deleteBackend(tenantA, kind: .vm, id: story.provider.vm.id)
            try await registry.deleteEndpointService(tenantA, id: story.service.id)
            try await registry.deleteBackend(tenantA, kind: .loadBalancer, id: story.provider.loadBalancer.id)
            // The addresses are free again.
            let reused = try await registry.createBackend(
                tenantA, kind: .vm, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id, name: "again",
                ip: story.provider.loadBalancer.ip, ingressCIDRs: [])
            #expect(reused.ip == story.provider.loadBalancer.ip)
            try await registry.deleteBackend(tenantA, kind: .vm, id: reused.id)
            try await registry.deleteSubnet(tenantA, id: story.provider.subnet.id)
            try await registry.deleteVPC(tenantA, id: story.provider.vpc.id)
            let everything = try await snapshot(registry)
            #expect(everything.vpcs.isEmpty && everything.subnets.isEmpty && everything.backends.isEmpty)
            #expect(everything.services.isEmpty && everything.endpoints.isEmpty)
        }
    }
}
