import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Access policies over the RPC API (docs/PROTOCOL.md §4.2, "Allow-list terms and CheckAccess").
@Suite("API: access policies and CheckAccess", .timeLimit(.minutes(2)))
struct AccessPolicyAPITests {
    @Test("entry terms round-trip on the wire; unknown enum values and bad times are refused with the field")
    func termsOnTheWire() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let provider = try await Network.make(alice)
            let consumer = try await Network.make(bob, second: 1)
            let service = try await alice.createEndpointService(provider.service())
            let added = try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [
                PermissionEntry(
                    permission: "iam:domain::bob", decision: .autoAccept, connectionLimit: 1,
                    expiresAt: "2999-01-01T01:00:00+01:00", onExpiry: .reject),
                PermissionEntry(permission: "*"),
            ]))
            #expect(added.items[0].decision == .autoAccept && added.items[0].connectionLimit == 1)
            #expect(added.items[0].expiresAt == "2999-01-01T00:00:00.000Z" && added.items[0].onExpiry == .reject)
            #expect(added.items[0].updatedAt == added.items[0].createdAt)
            #expect(added.items[1].decision == .manual && added.items[1].connectionLimit == nil)
            #expect(added.items[1].expiresAt == "" && added.items[1].onExpiry == .keep)

            for (entry, field) in [
                (PermissionEntry(permission: "*", decision: PermissionDecision(rawValue: 9)), "entries[0].decision"),
                (PermissionEntry(permission: "*", onExpiry: ExpiryAction(rawValue: 9)), "entries[0].on_expiry"),
            ] {
                await expectFailure(.invalidArgument, "ENUM_VALUE_UNKNOWN", field: field) { () async throws(VPCEPError) in
                    try await alice.addPermissions(AddPermissionsRequest(serviceId: service.id, entries: [entry]))
                }
            }
            await expectFailure(.invalidArgument, "TIME_INVALID", field: "entries[0].expires_at") { () async throws(VPCEPError) in
                try await alice.addPermissions(AddPermissionsRequest(
                    serviceId: service.id, entries: [PermissionEntry(permission: "*", expiresAt: "soon")]))
            }
            // Entries added by one call share their creation time: the list orders those by id.
            let listed = try await alice.listPermissions(ListPermissionsRequest(serviceId: service.id)).items
            #expect(listed.sorted { $0.id < $1.id } == added.items.sorted { $0.id < $1.id })

            let endpoint = try await bob.createEndpoint(consumer.endpoint(serviceID: service.id))
            #expect(endpoint.status == .accepted)
            await expectFailure(.resourceExhausted, "CONNECTION_LIMIT_EXCEEDED", field: "service_id") { () async throws(VPCEPError) in
                try await bob.createEndpoint(consumer.endpoint(serviceID: service.id))
            }
            let check = try await alice.checkAccess(CheckAccessRequest(serviceId: service.id, tenantId: "bob"))
            #expect(check.tenantId == "bob" && !check.admitted && check.basis == .tenantEntry)
            #expect(check.entry?.id == added.items[0].id && check.decision == .autoAccept)
            #expect(check.approvalEnabled && check.initialStatus == .unspecified)
            #expect(check.held == 1 && check.remaining == 0 && check.expiresAt == "2999-01-01T00:00:00.000Z")
            #expect(check.refusalReason == "CONNECTION_LIMIT_EXCEEDED" && !check.explanation.isEmpty)
            let carol = try await alice.checkAccess(CheckAccessRequest(serviceName: service.serviceName, tenantId: "carol"))
            #expect(carol.admitted && carol.basis == .everyoneEntry && carol.initialStatus == .pendingAcceptance)
            #expect(carol.remaining == nil && carol.refusalReason == "")
            let itself = try await bob.checkAccess(CheckAccessRequest(serviceId: service.id))
            #expect(itself.tenantId == "bob" && itself.entry?.id == "" && itself.entry?.permission == "iam:domain::bob")
            await expectFailure(.permissionDenied, "OWNER_ONLY", field: "tenant_id") { () async throws(VPCEPError) in
                try await bob.checkAccess(CheckAccessRequest(serviceId: service.id, tenantId: "carol"))
            }
        }
    }
}
