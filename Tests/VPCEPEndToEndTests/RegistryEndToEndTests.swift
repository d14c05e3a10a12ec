import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// The walking skeleton's acceptance, against a real server process over real mutual TLS.
@Suite("Registry end to end", .timeLimit(.minutes(2)))
struct RegistryEndToEndTests {
    @Test("alice publishes a service and gets it back by id and by name; bob cannot see it")
    func publishAndIsolate() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")

            let network = try await Network.make(alice)
            #expect(network.vpc.tenantId == "alice")
            #expect(network.loadBalancer.ip == "10.0.1.2")
            let created = try await alice.createEndpointService(network.serviceRequest(ports: [(80, 8080), (443, 8443)]))
            #expect(created.serviceName == "eu-west-1.web.\(created.id)")
            #expect(created.status == .available)
            #expect(created.approvalEnabled)
            #expect(created.ports.map(\.terminalPort) == [80, 443])
            #expect(created.connectionCount == 0)
            #expect(created.warnings.isEmpty)

            let byID = try await alice.getEndpointService(GetEndpointServiceRequest(id: created.id))
            let byName = try await alice.getEndpointService(GetEndpointServiceRequest(serviceName: created.serviceName))
            #expect(byID == created)
            #expect(byName == created)

            await expectFailure(.notFound, "SERVICE_NOT_FOUND") { () async throws(VPCEPError) in
                try await bob.getEndpointService(GetEndpointServiceRequest(id: created.id))
            }
            await expectFailure(.notFound, "SERVICE_NOT_FOUND") { () async throws(VPCEPError) in
                try await bob.getEndpointService(GetEndpointServiceRequest(serviceName: created.serviceName))
            }
            #expect(try await bob.listEndpointServices(ListEndpointServicesRequest()).totalCount == 0)
            #expect(try await bob.listVpcs(ListVpcsRequest()).totalCount == 0)
            // Bob cannot build on alice's VPC either.
            await expectFailure(.notFound, "VPC_NOT_FOUND", field: "vpc_id") { () async throws(VPCEPError) in
                try await bob.createSubnet(CreateSubnetRequest(vpcId: network.vpc.id, name: "x", cidr: "10.0.9.0/24"))
            }
            await alice.close()
            await bob.close()
        }
    }

    @Test("the 21st service in a region fails with QUOTA_EXCEEDED and creates nothing; another region still works")
    func quotaPerRegion() async throws {
        try await withServer { server in
            let carol = try server.client("carol")
            let network = try await Network.make(carol)
            for index in 0..<20 {
                _ = try await carol.createEndpointService(
                    network.serviceRequest(name: "svc\(index)", ports: [(80, UInt32(9000 + index))])
                )
            }
            await expectFailure(.resourceExhausted, "QUOTA_EXCEEDED") { () async throws(VPCEPError) in
                try await carol.createEndpointService(network.serviceRequest(name: "svc20", ports: [(80, 9020)]))
            }
            let listed = try await carol.listEndpointServices(ListEndpointServicesRequest(page: PageRequest(limit: 100)))
            #expect(listed.totalCount == 20)
            #expect(!listed.items.contains { $0.name == "svc20" })
            let quotas = try await carol.listQuotas(ListQuotasRequest())
            #expect(quotas.items.contains { $0.type == .endpointService && $0.used == 20 && $0.quota == 20 })

            let north = try server.client("carol", region: "eu-north-1")
            let northNetwork = try await Network.make(north)
            let elsewhere = try await north.createEndpointService(northNetwork.serviceRequest(name: "svc20"))
            #expect(elsewhere.region == "eu-north-1")
            #expect(elsewhere.serviceName.hasPrefix("eu-north-1.svc20."))
            await carol.close()
            await north.close()
        }
    }

    @Test("a resource in one region is not found from another, and an unserved region is refused")
    func regionIsolation() async throws {
        try await withServer { server in
            let west = try server.client("dave", region: "eu-west-1")
            let north = try server.client("dave", region: "eu-north-1")
            let network = try await Network.make(west)
            let service = try await west.createEndpointService(network.serviceRequest())

            await expectFailure(.notFound, "SERVICE_NOT_FOUND") { () async throws(VPCEPError) in
                try await north.getEndpointService(GetEndpointServiceRequest(id: service.id))
            }
            #expect(try await north.listVpcs(ListVpcsRequest()).totalCount == 0)
            await expectFailure(.notFound, "VPC_NOT_FOUND", field: "vpc_id") { () async throws(VPCEPError) in
                try await north.createSubnet(CreateSubnetRequest(vpcId: network.vpc.id, name: "x", cidr: "10.0.9.0/24"))
            }
            await expectFailure(.invalidArgument, "REGION_NOT_SERVED", field: "region") { () async throws(VPCEPError) in
                try await west.listVpcs(ListVpcsRequest(), options: CallOptions(region: "mars-1"))
            }
            await west.close()
            await north.close()
        }
    }

    @Test("bad port mappings and a backend in another VPC are refused with the field named, and create nothing")
    func badServiceRequests() async throws {
        try await withServer { server in
            let erin = try server.client("erin")
            let network = try await Network.make(erin)

            await expectFailure(.invalidArgument, "PORT_OUT_OF_RANGE", field: "ports[0].terminal_port") { () async throws(VPCEPError) in
                try await erin.createEndpointService(network.serviceRequest(ports: [(0, 8080)]))
            }
            await expectFailure(.invalidArgument, "PORT_OUT_OF_RANGE", field: "ports[1].service_port") { () async throws(VPCEPError) in
                try await erin.createEndpointService(network.serviceRequest(ports: [(80, 8080), (81, 65536)]))
            }
            await expectFailure(.invalidArgument, "PORT_MAPPING_DUPLICATE", field: "ports[1].terminal_port") { () async throws(VPCEPError) in
                try await erin.createEndpointService(network.serviceRequest(ports: [(80, 8080), (80, 8081)]))
            }
            let tooMany = (1...51).map { (UInt32($0), UInt32(10_000 + $0)) }
            await expectFailure(.invalidArgument, "TOO_MANY_PORT_MAPPINGS", field: "ports") { () async throws(VPCEPError) in
                try await erin.createEndpointService(network.serviceRequest(ports: tooMany))
            }
            let fifty = Array(tooMany.prefix(50))
            let wide = try await erin.createEndpointService(network.serviceRequest(name: "wide", ports: fifty))
            #expect(wide.ports.count == 50)

            let other = try await erin.createVpc(CreateVpcRequest(name: "other", cidr: "10.1.0.0/16"))
            var crossVPC = network.serviceRequest(name: "cross")
            crossVPC.vpcId = other.id
            await expectFailure(.invalidArgument, "BACKEND_NOT_IN_VPC", field: "backend_id") { () async throws(VPCEPError) in
                try await erin.createEndpointService(crossVPC)
            }
            let listed = try await erin.listEndpointServices(ListEndpointServicesRequest())
            #expect(listed.items.map(\.name) == ["wide"])
            await erin.close()
        }
    }

    @Test("data survives a restart of the server")
    func survivesRestart() async throws {
        let first = try await ServerProcess.start()
        let (network, service): (Network, EndpointService)
        do {
            let alice = try first.client("alice")
            network = try await Network.make(alice)
            service = try await alice.createEndpointService(network.serviceRequest())
            await alice.close()
        } catch {
            await first.stop()
            throw error
        }
        #expect(await first.stop() == 0)

        try await withServer(dataDirectory: first.dataDirectory) { second in
            let again = try second.client("alice")
            let fetched = try await again.getEndpointService(GetEndpointServiceRequest(serviceName: service.serviceName))
            #expect(fetched == service)
            #expect(try await again.listVpcs(ListVpcsRequest()).items.map(\.id) == [network.vpc.id])
            await again.close()
        }
    }
}
