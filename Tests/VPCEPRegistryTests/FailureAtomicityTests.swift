import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Failed mutations change nothing")
struct FailureAtomicityTests {
    @Test func everyRefusedChangeLeavesTheStoreAsItWas() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["iam:domain::tenant-b"])
            let pending = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let accepted = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let rejected = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [accepted.id], accept: true)
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [rejected.id], accept: false)
            // Fill the allow-list to one short of its cap, so a batch of two fails half-way.
            for batch in 0..<4 {
                _ = try await registry.addPermissions(
                    tenantA, serviceID: story.service.id, serviceName: nil,
                    entries: (0..<100).map { PermissionEntry(permission: "iam:domain::t\(batch)-\($0)") })
            }
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: (0..<98).map { PermissionEntry(permission: "iam:domain::u\($0)") })
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 3)
            _ = try await registry.createEndpointService(
                tenantA, spec(story.provider, ports: [PortMapping(terminalPort: 80, servicePort: 9000)]))
            let before = try await snapshot(registry)
            let id = story.service.id

            let failures: [(String, () async throws -> Void)] = [
                // Accepting a pending one and then a rejected one: the first must be undone too.
                ("CONNECTION_STATE_INVALID", {
                    _ = try await registry.decideConnections(
                        tenantA, serviceID: id, serviceName: nil, endpointIDs: [pending.id, rejected.id], accept: true)
                }),
                ("CONNECTION_NOT_FOUND", {
                    _ = try await registry.decideConnections(
                        tenantA, serviceID: id, serviceName: nil, endpointIDs: [pending.id, "missing"], accept: false)
                }),
                ("PERMISSION_LIMIT_EXCEEDED", {
                    _ = try await registry.addPermissions(
                        tenantA, serviceID: id, serviceName: nil,
                        entries: [PermissionEntry(permission: "iam:domain::v1"), PermissionEntry(permission: "iam:domain::v2"),
                                  PermissionEntry(permission: "iam:domain::v3")])
                }),
                ("SERVICE_IN_USE", { try await registry.deleteEndpointService(tenantA, id: id) }),
                ("REVISION_MISMATCH", {
                    _ = try await registry.updateEndpointService(
                        tenantA, id: id, EndpointServiceUpdate(name: "x", expectedRevision: 99))
                }),
                ("SERVICE_PORT_CONFLICT", {
                    _ = try await registry.updateEndpointService(
                        tenantA, id: id, EndpointServiceUpdate(
                            name: "renamed", ports: [PortMapping(terminalPort: 1, servicePort: 1), PortMapping(terminalPort: 2, servicePort: 9000)]))
                }),
                ("QUOTA_EXCEEDED", { _ = try await registry.createEndpoint(tenantB, endpointSpec(story)) }),
                ("IP_IN_USE", {
                    _ = try await registry.createEndpoint(
                        tenantA, EndpointSpec(serviceID: id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id,
                                              ip: story.provider.vm.ip))
                }),
                ("NOT_ALLOWED_BY_SERVICE", {
                    _ = try await registry.createEndpoint(
                        CallContext(caller: .operator("ops"), region: "r1"),
                        EndpointSpec(serviceID: id, vpcID: "x", subnetID: "y"))
                }),
                ("RESOURCE_IN_USE", { try await registry.deleteVPC(tenantB, id: story.consumer.vpc.id) }),
                ("RESOURCE_IN_USE", { try await registry.deleteSubnet(tenantB, id: story.consumer.subnet.id) }),
                ("RESOURCE_IN_USE", { try await registry.deleteBackend(tenantA, kind: .loadBalancer, id: story.provider.loadBalancer.id) }),
                ("ENDPOINT_NOT_FOUND", { try await registry.deleteEndpoint(tenantA, id: pending.id) }),
                ("OWNER_ONLY", { try await registry.deleteEndpoint(operatorR1, id: pending.id) }),
                ("OPERATOR_REQUIRED", { _ = try await registry.setQuota(tenantA, tenantID: "tenant-a", type: .endpoint, limit: 1) }),
                ("CIDR_INVALID", {
                    _ = try await registry.updateEndpoint(
                        tenantB, id: pending.id, EndpointUpdate(whitelist: ["10.0.0.0/8", "x"], description: "y"))
                }),
                ("DESCRIPTION_INVALID", {
                    _ = try await registry.updateConnectionDescription(
                        tenantA, serviceID: id, serviceName: nil, endpointID: pending.id, description: ">")
                }),
            ]
            for (reason, failure) in failures {
                do {
                    try await failure()
                    Issue.record("\(reason): the mutation succeeded")
                } catch let error as RegistryError {
                    #expect(error.reason.rawValue == reason, "\(error.debugDescription)")
                }
                #expect(try await snapshot(registry) == before, "\(reason) changed the store")
            }
        }
    }
}
