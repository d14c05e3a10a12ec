import Foundation
import Testing
import VPCEPRegistry

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
                #expect(error.reason == "QUOTA_EXCEEDED")
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
                case .failure(let error): failures[error.reason, default: 0] += 1
                }
            }
            #expect(created == 20)
            #expect(failures == ["QUOTA_EXCEEDED": 80])
            #expect(try await registry.listQuotas(tenantA, type: .endpointService) == [Quota(type: .endpointService, used: 20, limit: 20)])
            #expect(try await registry.listEndpointServices(tenantA, filter: .init(), page: PageRequest(limit: 1000)).totalCount == 20)
        }
    }
}
