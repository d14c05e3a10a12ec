import Testing
import VPCEPClient
import VPCEPTestSupport

@Suite("API: idempotency keys", .timeLimit(.minutes(3)))
struct IdempotencyAPITests {
    @Test("two CreateVpc calls with one key return the same VPC and create one")
    func retriedCreateReturnsTheFirstOutcome() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let options = CallOptions(idempotencyKey: "vpc-create-1")
            let request = CreateVpcRequest(name: "vpc", cidr: "10.0.0.0/16")
            let first = try await alice.createVpc(request, options: options)
            let second = try await alice.createVpc(request, options: options)
            #expect(second == first)
            let listed = try await alice.listVpcs(ListVpcsRequest())
            #expect(listed.totalCount == 1)
            #expect(listed.items.map(\.id) == [first.id])

            // A retry over another connection is the same caller.
            let again = try server.client("alice")
            #expect(try await again.createVpc(request, options: options).id == first.id)
            // Another tenant's key is its own.
            let bob = try server.client("bob")
            #expect(try await bob.createVpc(request, options: options).id != first.id)
            await again.close()
            await bob.close()
            await alice.close()
        }
    }

    @Test("the key with another request, or an unusable key, is INVALID_ARGUMENT")
    func reusedAndInvalidKeysAreRefused() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let options = CallOptions(idempotencyKey: "k")
            let vpc = try await alice.createVpc(CreateVpcRequest(name: "vpc", cidr: "10.0.0.0/16"), options: options)
            await expectFailure(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") { () async throws(VPCEPError) in
                try await alice.createVpc(CreateVpcRequest(name: "other", cidr: "10.0.0.0/16"), options: options)
            }
            await expectFailure(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") { () async throws(VPCEPError) in
                try await alice.deleteVpc(DeleteResourceRequest(id: vpc.id), options: options)
            }
            await expectFailure(.invalidArgument, "IDEMPOTENCY_KEY_INVALID", field: "idempotency_key") { () async throws(VPCEPError) in
                try await alice.createVpc(
                    CreateVpcRequest(name: "vpc", cidr: "10.0.0.0/16"),
                    options: CallOptions(idempotencyKey: String(repeating: "k", count: 129)))
            }
            #expect(try await alice.listVpcs(ListVpcsRequest()).totalCount == 1)
            await alice.close()
        }
    }

    @Test("a retried delete with its key succeeds again")
    func retriedDeleteSucceeds() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let vpc = try await alice.createVpc(CreateVpcRequest(name: "vpc", cidr: "10.0.0.0/16"))
            let options = CallOptions(idempotencyKey: "delete-\(vpc.id)")
            _ = try await alice.deleteVpc(DeleteResourceRequest(id: vpc.id), options: options)
            _ = try await alice.deleteVpc(DeleteResourceRequest(id: vpc.id), options: options)
            await expectFailure(.notFound, "VPC_NOT_FOUND") { () async throws(VPCEPError) in
                try await alice.deleteVpc(DeleteResourceRequest(id: vpc.id))
            }
            await alice.close()
        }
    }
}
