import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Quotas")
struct QuotaTests {
    @Test func defaultsAndUsage() async throws {
        try await withRegistry { registry, _ in
            #expect(
                try await registry.listQuotas(tenantA, type: nil) == [
                    Quota(type: .endpointService, used: 0, limit: 20), Quota(type: .endpoint, used: 0, limit: 50),
                ])
            let network = try await makeNetwork(registry, tenantA)
            _ = try await registry.createEndpointService(tenantA, spec(network))
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 1, limit: 20)])
            #expect(try await registry.listQuotas(tenantA, type: .endpoint) == [Quota(type: .endpoint, used: 0, limit: 50)])
            // Per tenant and per region.
            #expect(try await registry.listQuotas(tenantB, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 20)])
            #expect(try await registry.listQuotas(tenantAInR2, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 20)])
            #expect(try await registry.listQuotas(operatorR1, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 20)])
        }
    }

    /// What a quota says is used is what the owner has, however its records came and went (the SQLite
    /// store reads it from the counts its triggers keep, not by counting rows).
    @Test func usageFollowsCreatesAndDeletes() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var services: [EndpointService] = []
            for i in 0..<5 {
                services.append(try await registry.createEndpointService(
                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1000 + i)])))
            }
            let consumer = try await makeNetwork(registry, tenantB, cidr: "10.1.0.0/16")
            var endpoints: [Endpoint] = []
            for service in services.prefix(3) {
                _ = try await registry.addPermissions(tenantA, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
                endpoints.append(try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: service.id, vpcID: consumer.vpc.id, subnetID: consumer.subnet.id)))
            }
            try await registry.deleteEndpoint(tenantB, id: endpoints[0].id)
            try await registry.deleteEndpointService(tenantA, id: services[4].id)
            // Others' records in the region count for them only.
            _ = try await registry.createEndpointService(tenantB, spec(consumer))
            _ = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: services[3].id, vpcID: network.vpc.id, subnetID: network.subnet.id))
            let ownServices = try await registry.listEndpointServices(
                tenantA, filter: EndpointServiceFilter(), page: PageRequest(limit: 1000)).items.filter { $0.ownerID == tenantA.caller.ownerID }
            let ownEndpoints = try await registry.listEndpoints(tenantB, filter: EndpointFilter(), page: PageRequest(limit: 1000)).items
            #expect(ownServices.count == 4 && ownEndpoints.count == 2)
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 4, limit: 20)])
            #expect(try await registry.listQuotas(tenantA, type: .endpoint) == [Quota(type: .endpoint, used: 1, limit: 50)])
            #expect(try await registry.listQuotas(tenantB, type: .endpoint) == [Quota(type: .endpoint, used: 2, limit: 50)])
            #expect(try await registry.listQuotas(tenantB, type: .endpointService) == [Quota(type: .endpointService, used: 1, limit: 20)])
            #expect(try await registry.listQuotas(tenantAInR2, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 20)])
        }
    }

    @Test func defaultLimitIsEnforced() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            for i in 0..<20 {
                _ = try await registry.createEndpointService(
                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1000 + i)]))
            }
            do throws(RegistryError) {
                _ = try await registry.createEndpointService(
                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 2000)]))
                Issue.record("the 21st service was created")
            } catch {
                #expect(error.code == .resourceExhausted)
                #expect(error.reason.rawValue == "QUOTA_EXCEEDED")
                #expect(error.message.contains("20 of 20"))
            }
            // Another tenant and another region have their own quota.
            let other = try await makeNetwork(registry, tenantB)
            _ = try await registry.createEndpointService(tenantB, spec(other))
            let inR2 = try await makeNetwork(registry, tenantAInR2)
            _ = try await registry.createEndpointService(tenantAInR2, spec(inR2))
        }
    }

    @Test func overridesArePerOwnerAndRegion() async throws {
        try await withRegistry { registry, store in
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 2)
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpoint, limit: 7)
                try await tx.setQuotaLimit(ownerID: "tenant-b", region: "r1", type: .endpointService, limit: 30)
            }
            #expect(
                try await registry.listQuotas(tenantA, type: nil) == [
                    Quota(type: .endpointService, used: 0, limit: 2), Quota(type: .endpoint, used: 0, limit: 7),
                ])
            #expect(try await registry.listQuotas(tenantB, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 30)])
            #expect(try await registry.listQuotas(tenantAInR2, type: .endpointService) == [Quota(type: .endpointService, used: 0, limit: 20)])

            let network = try await makeNetwork(registry, tenantA)
            for i in 0..<2 {
                _ = try await registry.createEndpointService(
                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1000 + i)]))
            }
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpointService(
                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 2000)]))
            }
            // Lowering below usage blocks creates without touching existing services; removing restores the default.
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: 1)
            }
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 2, limit: 1)])
            try await store.transaction { tx in
                try await tx.setQuotaLimit(ownerID: "tenant-a", region: "r1", type: .endpointService, limit: nil)
            }
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 2, limit: 20)])
            _ = try await registry.createEndpointService(
                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 2000)]))
        }
    }

    @Test func parallelCreatesNeverExceedTheQuota() async throws {
        try await withRegistry(makeID: { UUID().uuidString.lowercased() }) { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let results = await withTaskGroup(of: Result<EndpointService, RegistryError>.self) { group in
                for i in 0..<100 {
                    group.addTask {
                        do throws(RegistryError) {
                            return .success(
                                try await registry.createEndpointService(
                                    tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1000 + i)])))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var results: [Result<EndpointService, RegistryError>] = []
                for await result in group { results.append(result) }
                return results
            }
            var created = 0
            var failures: [String: Int] = [:]
            for result in results {
                switch result {
                case .success: created += 1
                case .failure(let error): failures[error.reason.rawValue, default: 0] += 1
                }
            }
            #expect(created == 20)
            #expect(failures == ["QUOTA_EXCEEDED": 80])
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 20, limit: 20)])
            #expect(try await registry.listEndpointServices(tenantA, filter: .init(), page: PageRequest(limit: 1000)).totalCount == 20)
        }
    }
}

@Suite("Setting quotas")
struct SetQuotaTests {
    @Test func operatorsSetATenantsQuotaPerRegion() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            _ = try await registry.createEndpointService(tenantA, spec(network))
            let set = try await registry.setQuota(operatorR1, tenantID: "tenant-a", type: .endpointService, limit: 1)
            #expect(set == Quota(type: .endpointService, used: 1, limit: 1))
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpointService(tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1)]))
            }
            #expect(try await registry.listQuotas(tenantA, type: nil) == [
                Quota(type: .endpointService, used: 1, limit: 1), Quota(type: .endpoint, used: 0, limit: 50),
            ])
            // Other regions and tenants keep their own.
            #expect(try await registry.listQuotas(tenantAInR2, type: .endpointService)[0].limit == 20)
            #expect(try await registry.listQuotas(tenantB, type: .endpointService)[0].limit == 20)
            // Raising it again lets creates through; 0 blocks them.
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-a", type: .endpointService, limit: 2)
            _ = try await registry.createEndpointService(tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1)]))
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 0)
            #expect(try await registry.listQuotas(tenantB, type: .endpoint) == [Quota(type: .endpoint, used: 0, limit: 0)])
        }
    }

    @Test func onlyOperatorsSetValidQuotas() async throws {
        try await withRegistry { registry, _ in
            await expectError(.permissionDenied, "OPERATOR_REQUIRED", field: nil) {
                try await registry.setQuota(tenantA, tenantID: "tenant-a", type: .endpointService, limit: 100)
            }
            await expectError(.invalidArgument, "TENANT_ID_INVALID", field: "tenant_id") {
                try await registry.setQuota(operatorR1, tenantID: "", type: .endpointService, limit: 1)
            }
            await expectError(.invalidArgument, "TENANT_ID_INVALID", field: "tenant_id") {
                try await registry.setQuota(operatorR1, tenantID: "operator:ops", type: .endpointService, limit: 1)
            }
            await expectError(.invalidArgument, "QUOTA_TYPE_REQUIRED", field: "type") {
                try await registry.setQuota(operatorR1, tenantID: "tenant-a", type: nil, limit: 1)
            }
            await expectError(.invalidArgument, "QUOTA_LIMIT_OUT_OF_RANGE", field: "limit") {
                try await registry.setQuota(operatorR1, tenantID: "tenant-a", type: .endpoint, limit: 10_001)
            }
            await expectError(.invalidArgument, "REGION_NOT_SERVED", field: "region") {
                try await registry.setQuota(
                    CallContext(caller: .operator("ops"), region: "r9"), tenantID: "tenant-a", type: .endpoint, limit: 1)
            }
            let limits = try await registry.listQuotas(tenantA, type: nil).map(\.limit)
            #expect(limits == [20, 50])
        }
    }

    @Test func parallelEndpointCreatesNeverExceedTheQuota() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: ["*"])
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 7)
            let spec = endpointSpec(story)
            let results = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        do throws(RegistryError) {
                            _ = try await registry.createEndpoint(tenantB, spec)
                            return nil
                        } catch {
                            return error.reason.rawValue
                        }
                    }
                }
                var reasons: [String?] = []
                for await reason in group { reasons.append(reason) }
                return reasons
            }
            #expect(results.filter { $0 == nil }.count == 7)
            #expect(results.compactMap { $0 }.allSatisfy { $0 == "QUOTA_EXCEEDED" })
            #expect(try await registry.listEndpoints(tenantB, filter: .init(), page: .init()).totalCount == 7)
            #expect(try await connectionCount(registry, story.service) == 7)
        }
    }
}
