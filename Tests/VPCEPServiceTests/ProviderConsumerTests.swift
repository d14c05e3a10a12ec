import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// §3 through the RPC API: a provider and a consumer over real mutual TLS, in process.
@Suite("API: provider and consumer", .timeLimit(.minutes(2)))
struct ProviderConsumerTests {
    @Test("the two-tenant story: allow-list, describe, endpoint, approval, connection count, delete")
    func twoTenantStory() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let carol = try server.client("carol")
            let provider = try await Network.make(alice)
            let consumer = try await Network.make(bob, second: 1)
            let service = try await alice.createEndpointService(provider.service())
            #expect(service.approvalEnabled)
            #expect(service.clientIpNote.contains("198.19.128.0/17"))

            // Not on the allow-list: bob learns nothing.
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "service_name") { () async throws(VPCEPError) in
                try await bob.describeEndpointService(DescribeEndpointServiceRequest(serviceName: service.serviceName))
            }
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "service_name") { () async throws(VPCEPError) in
                try await bob.createEndpoint(consumer.endpoint(serviceName: service.serviceName))
            }
            let added = try await alice.addPermissions(AddPermissionsRequest(
                serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::bob", description: "partner")]))
            #expect(added.items.map(\.permission) == ["iam:domain::bob"])
            #expect(added.items[0].permissionType == "domainId")
            #expect(!added.items[0].createdAt.isEmpty)
            let listed = try await alice.listPermissions(ListPermissionsRequest(serviceName: service.serviceName))
            #expect(listed.items == added.items && listed.totalCount == 1)

            let summary = try await bob.describeEndpointService(DescribeEndpointServiceRequest(serviceName: service.serviceName))
            #expect(summary == EndpointServiceSummary(
                id: service.id, serviceName: service.serviceName, serviceType: .interface, region: "eu-west-1",
                createdAt: service.createdAt, approvalEnabled: true, public: false, owner: "alice"))
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await carol.describeEndpointService(DescribeEndpointServiceRequest(id: service.id))
            }

            // Approval on: pending, no address yet, not counted.
            var request = consumer.endpoint(serviceName: service.serviceName)
            request.whitelist = ["192.168.1.0/24"]
            request.enableWhitelist = true
            request.enableDns = true
            request.tags = [Tag(key: "env", value: "prod")]
            let endpoint = try await bob.createEndpoint(request)
            #expect(endpoint.status == .pendingAcceptance)
            #expect(endpoint.ip.isEmpty)
            #expect(endpoint.serviceId == service.id)
            #expect(endpoint.tenantId == "bob")
            #expect(endpoint.markerId > 0)
            #expect(endpoint.dnsName.hasPrefix(endpoint.id))
            #expect(endpoint.whitelist == ["192.168.1.0/24"])
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 0)
            #expect(try await bob.listQuotas(ListQuotasRequest(type: .endpoint)).items == [Quota(type: .endpoint, used: 1, quota: 50)])

            let pending = try await alice.listConnections(ListConnectionsRequest(serviceId: service.id, status: .pendingAcceptance))
            #expect(pending.items.map(\.id) == [endpoint.id])
            #expect(pending.items[0].tenantId == "bob")
            #expect(pending.items[0].markerId == endpoint.markerId)

            let accepted = try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id]))
            #expect(accepted.items.map(\.status) == [.accepted])
            #expect(accepted.items[0].decidedBy == "alice")
            #expect(!accepted.items[0].decidedAt.isEmpty)
            let seen = try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id))
            #expect(seen.status == .accepted)
            #expect(seen.ip == "10.1.1.3")  // after bob's load balancer at .2
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 1)

            let described = try await alice.updateConnectionDescription(UpdateConnectionDescriptionRequest(
                serviceId: service.id, endpointId: endpoint.id, description: "bob's team"))
            #expect(described.description == "bob's team")

            await expectFailure(.failedPrecondition, "SERVICE_IN_USE", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id))
            }
            let rejected = try await alice.rejectConnections(DecideConnectionsRequest(serviceName: service.serviceName, endpointIds: [endpoint.id]))
            #expect(rejected.items.map(\.status) == [.rejected])
            #expect(try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id)).ip == "10.1.1.3")
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 0)
            await expectFailure(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") { () async throws(VPCEPError) in
                try await alice.acceptConnections(DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id]))
            }

            // Synchronous deletes: gone at once.
            _ = try await bob.deleteEndpoint(DeleteEndpointRequest(id: endpoint.id))
            await expectFailure(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id))
            }
            _ = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id))
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id))
            }
            #expect(try await bob.listQuotas(ListQuotasRequest()).items.map(\.used) == [0, 0])
            await alice.close()
            await bob.close()
            await carol.close()
        }
    }

    @Test("approval off accepts at once; `*` admits everyone; the owner is always admitted")
    func approvalOffAndWildcard() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let carol = try server.client("carol")
            let provider = try await Network.make(alice)
            let service = try await alice.createEndpointService(provider.service(approval: false))
            let own = try await alice.createEndpoint(provider.endpoint(serviceID: service.id))
            #expect(own.status == .accepted)
            #expect(own.ip == "10.0.1.3")
            _ = try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [PermissionEntry(permission: "*")]))
            let consumer = try await Network.make(carol, second: 2)
            let endpoint = try await carol.createEndpoint(consumer.endpoint(serviceID: service.id))
            #expect(endpoint.status == .accepted)
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)).connectionCount == 2)
            let removed = try await alice.removePermissions(RemovePermissionsRequest(serviceId: service.id, permissions: ["*"]))
            #expect(removed.removedCount == 1)
            // Existing endpoints stay; new ones are not admitted.
            #expect(try await carol.getEndpoint(GetEndpointRequest(id: endpoint.id)).status == .accepted)
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "service_id") { () async throws(VPCEPError) in
                try await carol.createEndpoint(consumer.endpoint(serviceID: service.id))
            }
            await alice.close()
            await carol.close()
        }
    }

    @Test("public services: operators only, listed to everyone, connecting follows the allow-list")
    func publicServices() async throws {
        try await withTestServer { server in
            let ops = try server.client("ops")
            let bob = try server.client("bob")
            let network = try await Network.make(ops, second: 9)
            var request = network.service(name: "obs")
            request.public = true
            let bobNetwork = try await Network.make(bob, second: 1)
            var tenantRequest = bobNetwork.service()
            tenantRequest.public = true
            await expectFailure(.permissionDenied, "PUBLIC_REQUIRES_OPERATOR", field: "public") { () async throws(VPCEPError) in
                try await bob.createEndpointService(tenantRequest)
            }
            tenantRequest.public = false
            tenantRequest.serviceType = .gateway
            await expectFailure(.permissionDenied, "GATEWAY_REQUIRES_OPERATOR", field: "service_type") { () async throws(VPCEPError) in
                try await bob.createEndpointService(tenantRequest)
            }
            let service = try await ops.createEndpointService(request)
            #expect(service.public)
            let listed = try await bob.listPublicEndpointServices(ListPublicEndpointServicesRequest())
            #expect(listed.totalCount == 1)
            #expect(listed.items.map(\.id) == [service.id])
            #expect(listed.items[0].owner == "operator:ops")
            #expect(try await bob.listPublicEndpointServices(ListPublicEndpointServicesRequest(name: "zzz")).totalCount == 0)
            #expect(try await bob.describeEndpointService(DescribeEndpointServiceRequest(id: service.id)).public)
            // Visible, but the allow-list does not admit bob: PERMISSION_DENIED, not NOT_FOUND.
            await expectFailure(.permissionDenied, "NOT_ALLOWED_BY_SERVICE", field: "service_id") { () async throws(VPCEPError) in
                try await bob.createEndpoint(bobNetwork.endpoint(serviceID: service.id))
            }
            _ = try await ops.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [PermissionEntry(permission: "*")]))
            #expect(try await bob.createEndpoint(bobNetwork.endpoint(serviceID: service.id)).status == .pendingAcceptance)
            await ops.close()
            await bob.close()
        }
    }
}
