import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

private func keyed(_ ctx: CallContext, _ key: String) -> CallContext {
    var ctx = ctx
    ctx.idempotencyKey = key
    return ctx
}

/// A clock the test moves by hand.
private final class ManualClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_700_000_000))
    func now() -> Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
}

@Suite("Idempotency keys")
struct IdempotencyTests {
    @Test func aRetriedCreateReturnsTheFirstResultAndCreatesOnce() async throws {
        try await withRegistry { registry, _ in
            let ctx = keyed(tenantA, "create-vpc-1")
            let first = try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16")
            let second = try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16")
            #expect(second == first)
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).items == [first])
            // Without a key, the same request creates again.
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).totalCount == 2)
        }
    }

    @Test func aRetriedCreateOfADeeperResourceReturnsTheStoredResult() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let subnet = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            let ctx = keyed(tenantA, "lb")
            let first = try await registry.createBackend(
                ctx, kind: .loadBalancer, vpcID: vpc.id, subnetID: subnet.id, name: "lb", ip: nil,
                ingressCIDRs: ["198.19.128.0/17"])
            let second = try await registry.createBackend(
                ctx, kind: .loadBalancer, vpcID: vpc.id, subnetID: subnet.id, name: "lb", ip: nil,
                ingressCIDRs: ["198.19.128.0/17"])
            #expect(second == first)
            let service = try await registry.createEndpointService(
                keyed(tenantA, "svc"),
                EndpointServiceSpec(vpcID: vpc.id, backendKind: .loadBalancer, backendID: first.id,
                                    ports: [PortMapping(terminalPort: 80, servicePort: 8080)], name: "web"))
            let again = try await registry.createEndpointService(
                keyed(tenantA, "svc"),
                EndpointServiceSpec(vpcID: vpc.id, backendKind: .loadBalancer, backendID: first.id,
                                    ports: [PortMapping(terminalPort: 80, servicePort: 8080)], name: "web"))
            #expect(again == service)
            #expect(try await registry.listBackends(tenantA, kind: .loadBalancer, vpcID: nil, page: PageRequest()).totalCount == 1)
            #expect(try await registry.listEndpointServices(
                tenantA, filter: EndpointServiceFilter(), page: PageRequest()).totalCount == 1)
        }
    }

    @Test func aRetriedDeleteSucceedsAgainInsteadOfNotFound() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let ctx = keyed(tenantA, "delete")
            try await registry.deleteVPC(ctx, id: vpc.id)
            try await registry.deleteVPC(ctx, id: vpc.id)
            await expectError(.notFound, "VPC_NOT_FOUND", field: "id") {
                try await registry.deleteVPC(tenantA, id: vpc.id)
            }
        }
    }

    @Test func theKeyWithAnotherRequestIsRefused() async throws {
        try await withRegistry { registry, _ in
            let ctx = keyed(tenantA, "k")
            let vpc = try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16")
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") {
                try await registry.createVPC(ctx, name: "other", cidr: "10.0.0.0/16")
            }
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") {
                try await registry.createSubnet(ctx, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            }
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") {
                try await registry.deleteVPC(ctx, id: vpc.id)
            }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).items == [vpc])
        }
    }

    @Test func ownersAndRegionsUseTheSameKeyIndependently() async throws {
        try await withRegistry { registry, _ in
            var ids: Set<String> = []
            for ctx in [tenantA, tenantB, tenantAInR2, operatorR1] {
                let vpc = try await registry.createVPC(keyed(ctx, "shared"), name: "v", cidr: "10.0.0.0/16")
                #expect(vpc.ownerID == ctx.caller.ownerID)
                #expect(vpc.region == ctx.region)
                ids.insert(vpc.id)
            }
            #expect(ids.count == 4)
        }
    }

    @Test func aFailedCallIsNotRecordedAndItsRetryRunsAgain() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let blocker = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "b", cidr: "10.0.0.0/20")
            let ctx = keyed(tenantA, "subnet")
            await expectError(.failedPrecondition, "SUBNET_CIDR_OVERLAP", field: "cidr") {
                try await registry.createSubnet(ctx, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            }
            try await registry.deleteSubnet(tenantA, id: blocker.id)
            let subnet = try await registry.createSubnet(ctx, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            #expect(try await registry.createSubnet(ctx, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24") == subnet)
            #expect(try await registry.listSubnets(tenantA, vpcID: vpc.id, page: PageRequest()).items == [subnet])
        }
    }

    @Test func twentyConcurrentDuplicatesCreateExactlyOneResource() async throws {
        try await withRegistry { registry, _ in
            let ctx = keyed(tenantA, "burst")
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16").id }
                }
                var ids: [String] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(ids.count == 20)
            #expect(Set(ids).count == 1)
            let listed = try await registry.listVPCs(tenantA, page: PageRequest())
            #expect(listed.totalCount == 1)
            #expect(listed.items.map(\.id) == [ids[0]])
        }
    }

    @Test(arguments: [String(repeating: "k", count: 129), "tab\there", "new\nline", "caf\u{E9}", "\u{7F}"])
    func unusableKeysAreRefused(key: String) async throws {
        try await withRegistry { registry, _ in
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_INVALID", field: "idempotency_key") {
                try await registry.createVPC(keyed(tenantA, key), name: "v", cidr: "10.0.0.0/16")
            }
            let listed = try await registry.listVPCs(tenantA, page: PageRequest())
            #expect(listed.totalCount == 0)
        }
    }

    @Test(arguments: ["k", " ", "~", String(repeating: "x", count: 128), "order-2026-11-26/42 retry:ok"])
    func printableASCIIKeysUpTo128AreAccepted(key: String) async throws {
        try await withRegistry { registry, _ in
            let first = try await registry.createVPC(keyed(tenantA, key), name: "v", cidr: "10.0.0.0/16")
            #expect(try await registry.createVPC(keyed(tenantA, key), name: "v", cidr: "10.0.0.0/16") == first)
        }
    }

    @Test func readsIgnoreTheKey() async throws {
        try await withRegistry { registry, _ in
            let ctx = keyed(tenantA, String(repeating: "k", count: 200))
            let listed = try await registry.listVPCs(ctx, page: PageRequest())
            #expect(listed.totalCount == 0)
        }
    }

    @Test func aKeyIsForgottenAfterADay() async throws {
        let clock = ManualClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let ctx = keyed(tenantA, "daily")
            let first = try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16")
            clock.advance(by: Registry.idempotencyLifetime - 1)
            #expect(try await registry.createVPC(ctx, name: "v", cidr: "10.0.0.0/16") == first)
            clock.advance(by: 1)
            // Expired: the key is free again, even for another request.
            let second = try await registry.createVPC(ctx, name: "w", cidr: "10.1.0.0/16")
            #expect(second.id != first.id)
            #expect(try await registry.createVPC(ctx, name: "w", cidr: "10.1.0.0/16") == second)
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).totalCount == 2)
        }
    }

    @Test func expiredRecordsArePrunedByLaterKeyedWrites() async throws {
        let clock = ManualClock()
        try await withRegistry(clock: { clock.now() }) { registry, store in
            for i in 0..<40 {
                _ = try await registry.createVPC(keyed(tenantA, "old-\(i)"), name: "v\(i)", cidr: "10.0.0.0/16")
            }
            clock.advance(by: Registry.idempotencyLifetime)
            let now = clock.now()
            _ = try await registry.createVPC(keyed(tenantA, "new"), name: "n", cidr: "10.0.0.0/16")
            // One keyed write deleted a bounded batch (32 of 40); the next deletes the rest.
            let left = try await store.transaction { tx in try await tx.deleteIdempotencyRecords(expiredBy: now, limit: 1000) }
            #expect(left == 8)
            let unexpired = try await store.transaction { tx in
                try await tx.idempotencyRecord(ownerID: "tenant-a", region: "r1", key: "new")
            }
            #expect(unexpired?.method == "createVPC")
        }
    }
}
