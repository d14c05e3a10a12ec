import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

@Suite("API: updates, lists, quotas, inventory", .timeLimit(.minutes(2)))
struct ServiceUpdateAPITests {
    @Test("update: only present fields change, ports replace the list, revisions guard concurrent edits")
    func updateService() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            let service = try await alice.createEndpointService(network.service(name: "old"))
            let updated = try await alice.updateEndpointService(UpdateEndpointServiceRequest(
                id: service.id, approvalEnabled: false, name: "new",
                ports: PortMappings(items: [PortMapping(terminalPort: 443, servicePort: 8443, protocol: .tcp)]),
                clientIpMode: .toaOpen, expectedRevision: 1))
            #expect(updated.id == service.id)
            #expect(updated.serviceName == "eu-west-1.new.\(service.id)")
            #expect(!updated.approvalEnabled)
            #expect(updated.ports.map(\.terminalPort) == [443])
            #expect(updated.clientIpMode == .toaOpen)
            #expect(updated.description == service.description)
            #expect(updated.revision == 2)
            // A present empty name clears it.
            let cleared = try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, name: ""))
            #expect(cleared.serviceName == "eu-west-1.\(service.id)")
            #expect(cleared.ports == updated.ports)
            await expectFailure(.aborted, "REVISION_MISMATCH", field: "expected_revision") { () async throws(VPCEPError) in
                try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, description: "x", expectedRevision: 2))
            }
            await expectFailure(.invalidArgument, "UPDATE_EMPTY") { () async throws(VPCEPError) in
                try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id))
            }
            await expectFailure(.invalidArgument, "PORT_MAPPINGS_REQUIRED", field: "ports") { () async throws(VPCEPError) in
                try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, ports: PortMappings()))
            }
            await expectFailure(.invalidArgument, "ENUM_VALUE_UNKNOWN", field: "client_ip_mode") { () async throws(VPCEPError) in
                try await alice.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, clientIpMode: ClientIpMode(rawValue: 42)))
            }
            let bob = try server.client("bob")
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await bob.updateEndpointService(UpdateEndpointServiceRequest(id: service.id, description: "mine"))
            }
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)) == cleared)
            await alice.close()
            await bob.close()
        }
    }

    @Test("endpoint update: a present empty whitelist clears it, an absent one stays")
    func updateEndpoint() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            let service = try await alice.createEndpointService(network.service())
            var request = network.endpoint(serviceID: service.id)
            request.whitelist = ["10.0.0.7", "172.16.0.0/12"]
            let endpoint = try await alice.createEndpoint(request)
            #expect(endpoint.whitelist == ["10.0.0.7/32", "172.16.0.0/12"])
            let described = try await alice.updateEndpoint(UpdateEndpointRequest(id: endpoint.id, description: "d"))
            #expect(described.whitelist == endpoint.whitelist)
            #expect(described.description == "d")
            let cleared = try await alice.updateEndpoint(UpdateEndpointRequest(id: endpoint.id, whitelist: StringList(), enableWhitelist: true))
            #expect(cleared.whitelist.isEmpty)
            #expect(cleared.enableWhitelist)
            await expectFailure(.invalidArgument, "TOO_MANY_WHITELIST_ENTRIES", field: "whitelist") { () async throws(VPCEPError) in
                try await alice.updateEndpoint(UpdateEndpointRequest(id: endpoint.id, whitelist: StringList(values: (1...21).map { "10.0.0.\($0)" })))
            }
            await expectFailure(.invalidArgument, "CIDR_INVALID", field: "whitelist[0]") { () async throws(VPCEPError) in
                try await alice.updateEndpoint(UpdateEndpointRequest(id: endpoint.id, whitelist: StringList(values: ["300.0.0.1"])))
            }
            await alice.close()
        }
    }

    @Test("lists filter by tag, status and name, with paging and a total count")
    func listFilters() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            var tagged = network.service(name: "prod", servicePort: 1)
            tagged.tags = [Tag(key: "env", value: "prod")]
            let prod = try await alice.createEndpointService(tagged)
            tagged = network.service(name: "dev", servicePort: 2)
            tagged.tags = [Tag(key: "env", value: "dev")]
            let dev = try await alice.createEndpointService(tagged)
            let byTag = try await alice.listEndpointServices(ListEndpointServicesRequest(tags: [Tag(key: "env", value: "prod")]))
            #expect(byTag.items.map(\.id) == [prod.id])
            let anyValue = try await alice.listEndpointServices(ListEndpointServicesRequest(tags: [Tag(key: "env")]))
            #expect(anyValue.items.map(\.id) == [dev.id, prod.id])
            await expectFailure(.invalidArgument, "TAG_FILTER_INVALID", field: "tags[0].key") { () async throws(VPCEPError) in
                try await alice.listEndpointServices(ListEndpointServicesRequest(tags: [Tag(key: "", value: "x")]))
            }

            var endpointRequest = network.endpoint(serviceID: prod.id)
            endpointRequest.tags = [Tag(key: "team", value: "a")]
            let first = try await alice.createEndpoint(endpointRequest)
            let second = try await alice.createEndpoint(network.endpoint(serviceID: dev.id))
            let page = try await alice.listEndpoints(ListEndpointsRequest(page: PageRequest(limit: 1, offset: 1, sortDir: "asc")))
            #expect(page.items.map(\.id) == [second.id])
            #expect(page.totalCount == 2)
            #expect(try await alice.listEndpoints(ListEndpointsRequest(tags: [Tag(key: "team", value: "a")])).items.map(\.id) == [first.id])
            #expect(try await alice.listEndpoints(ListEndpointsRequest(serviceName: "prod")).items.map(\.id) == [first.id])
            #expect(try await alice.listEndpoints(ListEndpointsRequest(status: .accepted)).totalCount == 0)
            #expect(try await alice.listEndpoints(ListEndpointsRequest(status: .pendingAcceptance)).totalCount == 2)
            await expectFailure(.invalidArgument, "ENUM_VALUE_UNKNOWN", field: "status") { () async throws(VPCEPError) in
                try await alice.listEndpoints(ListEndpointsRequest(status: EndpointStatus(rawValue: 99)))
            }
            let connections = try await alice.listConnections(ListConnectionsRequest(serviceId: prod.id, markerId: first.markerId))
            #expect(connections.items.map(\.id) == [first.id])
            await expectFailure(.invalidArgument, "SORT_KEY_INVALID", field: "page.sort_key") { () async throws(VPCEPError) in
                try await alice.listConnections(ListConnectionsRequest(serviceId: prod.id, page: PageRequest(sortKey: "marker")))
            }
            await alice.close()
        }
    }

    @Test("quotas: operators set them per tenant and region; tenants cannot")
    func setQuota() async throws {
        try await withTestServer { server in
            let ops = try server.client("ops")
            let alice = try server.client("alice")
            let set = try await ops.setQuota(SetQuotaRequest(tenantId: "alice", type: .endpointService, limit: 1))
            #expect(set == Quota(type: .endpointService, used: 0, quota: 1))
            await expectFailure(.permissionDenied, "OPERATOR_REQUIRED") { () async throws(VPCEPError) in
                try await alice.setQuota(SetQuotaRequest(tenantId: "alice", type: .endpointService, limit: 100))
            }
            await expectFailure(.invalidArgument, "QUOTA_TYPE_REQUIRED", field: "type") { () async throws(VPCEPError) in
                try await ops.setQuota(SetQuotaRequest(tenantId: "alice", limit: 1))
            }
            await expectFailure(.invalidArgument, "TENANT_ID_INVALID", field: "tenant_id") { () async throws(VPCEPError) in
                try await ops.setQuota(SetQuotaRequest(tenantId: "", type: .endpoint, limit: 1))
            }
            let network = try await Network.make(alice)
            _ = try await alice.createEndpointService(network.service(servicePort: 1))
            await expectFailure(.resourceExhausted, "QUOTA_EXCEEDED") { () async throws(VPCEPError) in
                try await alice.createEndpointService(network.service(servicePort: 2))
            }
            #expect(try await alice.listQuotas(ListQuotasRequest()).items == [
                Quota(type: .endpointService, used: 1, quota: 1), Quota(type: .endpoint, used: 0, quota: 50),
            ])
            // Another region keeps the default.
            let aliceNorth = try server.client("alice", region: "eu-north-1")
            #expect(try await aliceNorth.listQuotas(ListQuotasRequest(type: .endpointService)).items == [
                Quota(type: .endpointService, used: 0, quota: 20),
            ])
            await ops.close()
            await alice.close()
            await aliceNorth.close()
        }
    }

    @Test("inventory in use cannot be deleted; VMs are backends too")
    func inventoryDeletes() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            let vm = try await alice.createVm(CreateVmRequest(vpcId: network.vpc.id, subnetId: network.subnet.id, name: "vm"))
            let service = try await alice.createEndpointService(CreateEndpointServiceRequest(
                vpcId: network.vpc.id, backendType: .vm, backendId: vm.id,
                ports: [PortMapping(terminalPort: 22, servicePort: 22, protocol: .tcp)]))
            #expect(service.backendType == .vm)
            #expect(service.warnings.count == 1)  // the VM admits nothing
            await expectFailure(.failedPrecondition, "RESOURCE_IN_USE", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteVm(DeleteResourceRequest(id: vm.id))
            }
            await expectFailure(.failedPrecondition, "RESOURCE_IN_USE", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteSubnet(DeleteResourceRequest(id: network.subnet.id))
            }
            await expectFailure(.failedPrecondition, "RESOURCE_IN_USE", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteVpc(DeleteResourceRequest(id: network.vpc.id))
            }
            await expectFailure(.notFound, "BACKEND_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await alice.deleteLoadBalancer(DeleteResourceRequest(id: vm.id))
            }
            _ = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id))
            _ = try await alice.deleteVm(DeleteResourceRequest(id: vm.id))
            _ = try await alice.deleteLoadBalancer(DeleteResourceRequest(id: network.loadBalancer.id))
            _ = try await alice.deleteSubnet(DeleteResourceRequest(id: network.subnet.id))
            _ = try await alice.deleteVpc(DeleteResourceRequest(id: network.vpc.id))
            #expect(try await alice.listVpcs(ListVpcsRequest()).totalCount == 0)
            await alice.close()
        }
    }
}
