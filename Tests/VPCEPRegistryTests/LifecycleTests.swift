import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

/// Everything the registry holds that a call could change: every record through the public API, and
/// the change log's head (idempotency records only change with a key, which these calls do not use).
private func state(_ registry: Registry, _ store: SQLiteRegistryStore) async throws -> (Snapshot, UInt64) {
    (try await snapshot(registry), try await store.read { try await $0.logHead() })
}

private func expectUnchanged(
    _ registry: Registry, _ store: SQLiteRegistryStore, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async throws {
    let before = try await state(registry, store)
    try await body()
    let after = try await state(registry, store)
    #expect(after.0 == before.0, "the call changed stored records", sourceLocation: sourceLocation)
    #expect(after.1 == before.1, "the call wrote to the change log", sourceLocation: sourceLocation)
}

private func events(_ registry: Registry, _ ctx: CallContext = operatorR1) async throws -> [HistoryEntry] {
    try await registry.listHistory(ctx, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 1000, sortDir: "asc")).items
}

private func decide(
    _ registry: Registry, _ story: Story, _ action: ConnectionAction, _ ids: [String], reason: String = "",
    as ctx: CallContext = tenantA
) async throws -> [Connection] {
    try await registry.decideConnections(
        ctx, serviceID: story.service.id, serviceName: nil, endpointIDs: ids, action: action, reason: reason)
}

@Suite("Suspend and resume")
struct SuspendResumeTests {
    @Test func anAcceptedConnectionIsSuspendedKeepingItsAddressAndResumed() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await decide(registry, story, .accept, [endpoint.id])
            let accepted = try await registry.getEndpoint(tenantB, id: endpoint.id)

            let suspended = try await decide(registry, story, .suspend, [endpoint.id], reason: "maintenance until noon")
            #expect(suspended.map(\.status) == [.suspended])
            #expect(suspended.first?.reason == "maintenance until noon")
            let seen = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(seen.status == .suspended)
            #expect(seen.ip == accepted.ip && !seen.ip.isEmpty, "a suspended endpoint keeps and shows its address")
            #expect(seen.decisionReason == "maintenance until noon")
            #expect(seen.decidedBy == "tenant-a")
            // It still holds its connection: counted, and the service cannot be deleted without force.
            #expect(try await connectionCount(registry, story.service) == 1)
            await expectError(.failedPrecondition, "SERVICE_IN_USE", field: "id") {
                try await registry.deleteEndpointService(tenantA, id: story.service.id)
            }
            // Suspending again changes nothing, not even the reason.
            let again = try await decide(registry, story, .suspend, [endpoint.id], reason: "other")
            #expect(again.first?.reason == "maintenance until noon")

            let resumed = try await decide(registry, story, .resume, [endpoint.id], reason: "back")
            #expect(resumed.map(\.status) == [.accepted])
            let back = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(back.status == .accepted && back.ip == accepted.ip && back.decisionReason == "back")
            #expect(try await connectionCount(registry, story.service) == 1)

            let types = try await events(registry).filter { $0.resourceID == endpoint.id }.map(\.type)
            #expect(types == [.connectionRequested, .connectionAccepted, .connectionSuspended, .connectionResumed])
        }
    }

    @Test func onlyAcceptedConnectionsAreSuspendedAndOnlySuspendedOnesResumed() async throws {
        try await withRegistry { registry, store in
            let story = try await makeStory(registry)
            let pending = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let rejected = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let suspended = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await decide(registry, story, .reject, [rejected.id])
            _ = try await decide(registry, story, .accept, [suspended.id])
            _ = try await decide(registry, story, .suspend, [suspended.id])
            try await expectUnchanged(registry, store) {
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                    try await decide(registry, story, .suspend, [pending.id])
                }
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                    try await decide(registry, story, .suspend, [rejected.id])
                }
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                    try await decide(registry, story, .resume, [pending.id])
                }
                // A rejection stays final: neither resume nor accept brings it back.
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                    try await decide(registry, story, .resume, [rejected.id])
                }
                // A suspended one comes back by resume, not accept.
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                    try await decide(registry, story, .accept, [suspended.id])
                }
                // All or none: the good id first does not go through either.
                await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[1]") {
                    try await decide(registry, story, .resume, [suspended.id, pending.id])
                }
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                    try await decide(registry, story, .suspend, [suspended.id], as: tenantB)
                }
                await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                    try await decide(registry, story, .resume, [suspended.id], as: operatorR1)
                }
            }
            // A suspended connection may be rejected, finally.
            let rejectedNow = try await decide(registry, story, .reject, [suspended.id], reason: "contract ended")
            #expect(rejectedNow.map(\.status) == [.rejected])
            let seen = try await registry.getEndpoint(tenantB, id: suspended.id)
            #expect(seen.status == .rejected && !seen.ip.isEmpty && seen.decisionReason == "contract ended")
            #expect(try await connectionCount(registry, story.service) == 0)
        }
    }

    @Test func suspendedEndpointsCountTowardTheConsumersQuota() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 1)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await decide(registry, story, .accept, [endpoint.id])
            _ = try await decide(registry, story, .suspend, [endpoint.id])
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
        }
    }
}

@Suite("Messages both ways")
struct ConnectionMessageTests {
    @Test func theRequestMessageReachesTheProviderAndTheReasonTheConsumer() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            var request = endpointSpec(story)
            request.requestMessage = "team payments, ticket 4711"
            let endpoint = try await registry.createEndpoint(tenantB, request)
            #expect(endpoint.requestMessage == "team payments, ticket 4711")
            let listed = try await registry.listConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, filter: .init(), page: .init()).items
            #expect(listed.map(\.requestMessage) == ["team payments, ticket 4711"])
            #expect(listed.first?.reason == "")

            _ = try await decide(registry, story, .reject, [endpoint.id], reason: "use the eu-west service")
            let seen = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(seen.decisionReason == "use the eu-west service")
            #expect(seen.requestMessage == "team payments, ticket 4711")
            let after = try await registry.listConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, filter: .init(), page: .init()).items
            #expect(after.first?.reason == "use the eu-west service")
            // The consumer's own view of the change carries the reason too.
            let history = try await registry.listHistory(
                tenantB, resourceID: endpoint.id, since: nil, until: nil, page: PageRequest(sortDir: "asc"))
            guard case .endpoint(let state)? = history.items.last?.state else {
                Issue.record("no endpoint state in the consumer's history")
                return
            }
            #expect(state.decisionReason == "use the eu-west service")
        }
    }

    @Test(arguments: [String(repeating: "x", count: 256), "a <b>", "line\nbreak", "esc\u{1B}[31m", "sep\u{2028}"])
    func messagesAreHeldToTheDescriptionsCharactersAndAtMost255(_ text: String) async throws {
        try await withRegistry { registry, store in
            let story = try await makeStory(registry)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            var request = endpointSpec(story)
            request.requestMessage = text
            try await expectUnchanged(registry, store) {
                await expectError(.invalidArgument, "MESSAGE_INVALID", field: "request_message") {
                    try await registry.createEndpoint(tenantB, request)
                }
                for action in ConnectionAction.allCases {
                    await expectError(.invalidArgument, "MESSAGE_INVALID", field: "reason") {
                        try await decide(registry, story, action, [endpoint.id], reason: text)
                    }
                }
            }
            request.requestMessage = String(repeating: "é", count: 255)
            #expect(try await registry.createEndpoint(tenantB, request).requestMessage.count == 255)
        }
    }
}

@Suite("Revocation that reconciles")
struct RevocationTests {
    /// tenant-b's endpoints in every state, and tenant-a's own endpoint to its own service.
    private struct Fleet {
        var story: Story
        var pending: Endpoint
        var accepted: Endpoint
        var suspended: Endpoint
        var rejected: Endpoint
        var own: Endpoint
    }

    private func fleet(_ registry: Registry, allow: [String] = ["iam:domain::tenant-b"]) async throws -> Fleet {
        let story = try await makeStory(registry, allow: allow)
        var made: [Endpoint] = []
        for _ in 0..<4 { made.append(try await registry.createEndpoint(tenantB, endpointSpec(story))) }
        _ = try await decide(registry, story, .accept, [made[1].id, made[2].id])
        _ = try await decide(registry, story, .suspend, [made[2].id])
        _ = try await decide(registry, story, .reject, [made[3].id])
        let own = try await registry.createEndpoint(
            tenantA, EndpointSpec(serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
        return Fleet(story: story, pending: made[0], accepted: made[1], suspended: made[2], rejected: made[3], own: own)
    }

    private func remove(
        _ registry: Registry, _ fleet: Fleet, _ entries: [String], _ onExisting: OnExisting, dryRun: Bool = false,
        as ctx: CallContext = tenantA
    ) async throws -> PermissionRemoval {
        try await registry.removePermissions(
            ctx, serviceID: fleet.story.service.id, serviceName: nil, permissions: entries, ids: [], onExisting: onExisting,
            dryRun: dryRun)
    }

    @Test func keepListsTheLiveEndpointsNoLongerAdmittedAndLeavesThem() async throws {
        try await withRegistry { registry, _ in
            let fleet = try await fleet(registry)
            let removal = try await remove(registry, fleet, ["iam:domain::tenant-b"], .keep)
            #expect(removal.removedCount == 1)
            #expect(removal.affected.map(\.id) == [fleet.pending.id, fleet.accepted.id, fleet.suspended.id])
            #expect(removal.affected.map(\.status) == [.pendingAcceptance, .accepted, .suspended])
            #expect(try await registry.getEndpoint(tenantB, id: fleet.accepted.id).status == .accepted)
            // The default of the older call is keep.
            _ = try await registry.addPermissions(
                tenantA, serviceID: fleet.story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "iam:domain::tenant-b")])
            #expect(try await registry.removePermissions(
                tenantA, serviceID: fleet.story.service.id, serviceName: nil, permissions: ["iam:domain::tenant-b"], ids: []) == 1)
            #expect(try await registry.getEndpoint(tenantB, id: fleet.suspended.id).status == .suspended)
        }
    }

    @Test func rejectRejectsThemInTheSameTransactionWithTheirEvents() async throws {
        try await withRegistry { registry, store in
            let fleet = try await fleet(registry)
            let head = try await store.read { try await $0.logHead() }
            let removal = try await remove(registry, fleet, ["iam:domain::tenant-b"], .reject)
            #expect(removal.affected.map(\.id) == [fleet.pending.id, fleet.accepted.id, fleet.suspended.id])
            #expect(removal.affected.allSatisfy { $0.status == .rejected && $0.decidedBy == "tenant-a" })
            for endpoint in [fleet.pending, fleet.accepted, fleet.suspended] {
                let seen = try await registry.getEndpoint(tenantB, id: endpoint.id)
                #expect(seen.status == .rejected)
                #expect(seen.decisionReason == "the provider removed the consumer from the service's allow-list")
            }
            // The owner is always admitted; a rejected one is not touched again.
            #expect(try await registry.getEndpoint(tenantA, id: fleet.own.id).status == .pendingAcceptance)
            #expect(try await registry.getEndpoint(tenantB, id: fleet.rejected.id).decisionReason == "")
            #expect(try await connectionCount(registry, fleet.story.service) == 0)
            // One transaction: the entry's removal and the three rejections follow each other in the log.
            let logged = try await events(registry).filter { $0.seq > head }
            #expect(logged.map(\.type) == [.permissionRemoved, .connectionRejected, .connectionRejected, .connectionRejected])
        }
    }

    @Test func aConsumerStillAdmittedByAnotherEntryIsNotAffected() async throws {
        try await withRegistry { registry, store in
            let fleet = try await fleet(registry, allow: ["iam:domain::tenant-b", "*"])
            let own = try await remove(registry, fleet, ["iam:domain::tenant-b"], .reject)
            #expect(own.removedCount == 1 && own.affected.isEmpty)
            #expect(try await registry.getEndpoint(tenantB, id: fleet.accepted.id).status == .accepted)
            // Removing `*` as well leaves tenant-b with nothing: now it is affected.
            let dry = try await remove(registry, fleet, ["*"], .reject, dryRun: true)
            #expect(dry.affected.map(\.id) == [fleet.pending.id, fleet.accepted.id, fleet.suspended.id])
            let everyone = try await remove(registry, fleet, ["*"], .reject)
            #expect(everyone.affected.map(\.status) == [.rejected, .rejected, .rejected])
            // Names not on the list remove nothing and affect no one.
            try await expectUnchanged(registry, store) {
                let none = try await remove(registry, fleet, ["iam:domain::tenant-zz"], .reject)
                #expect(none.removedCount == 0 && none.affected.isEmpty)
            }
        }
    }

    @Test func aDryRunAndARefusedRemovalChangeNothing() async throws {
        try await withRegistry { registry, store in
            let fleet = try await fleet(registry)
            try await expectUnchanged(registry, store) {
                let dry = try await remove(registry, fleet, ["iam:domain::tenant-b"], .reject, dryRun: true)
                #expect(dry.removedCount == 1)
                // As they are now: still live.
                #expect(dry.affected.map(\.status) == [.pendingAcceptance, .accepted, .suspended])
                await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                    try await remove(registry, fleet, ["iam:domain::tenant-b"], .reject, as: operatorR1)
                }
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                    try await remove(registry, fleet, ["iam:domain::tenant-b"], .reject, dryRun: true, as: tenantB)
                }
                await expectError(.invalidArgument, "PERMISSIONS_REQUIRED", field: "permissions") {
                    try await remove(registry, fleet, [], .reject, dryRun: true)
                }
            }
        }
    }
}

@Suite("Force delete")
struct ForceDeleteTests {
    @Test func forceRejectsEveryLiveConnectionAndDeletesInOneTransaction() async throws {
        try await withRegistry { registry, store in
            let story = try await makeStory(registry)
            var made: [Endpoint] = []
            for _ in 0..<4 { made.append(try await registry.createEndpoint(tenantB, endpointSpec(story))) }
            _ = try await decide(registry, story, .accept, [made[1].id, made[2].id])
            _ = try await decide(registry, story, .suspend, [made[2].id])
            _ = try await decide(registry, story, .reject, [made[3].id], reason: "no")

            try await expectUnchanged(registry, store) {
                await expectError(.failedPrecondition, "SERVICE_IN_USE", field: "id") {
                    try await registry.deleteEndpointService(tenantA, id: story.service.id, force: false, dryRun: false)
                }
                // A dry run without force is refused the same way.
                await expectError(.failedPrecondition, "SERVICE_IN_USE", field: "id") {
                    try await registry.deleteEndpointService(tenantA, id: story.service.id, force: false, dryRun: true)
                }
                let dry = try await registry.deleteEndpointService(tenantA, id: story.service.id, force: true, dryRun: true)
                #expect(dry.map(\.id) == [made[0].id, made[1].id, made[2].id])
                #expect(dry.map(\.status) == [.pendingAcceptance, .accepted, .suspended])
                await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                    try await registry.deleteEndpointService(operatorR1, id: story.service.id, force: true, dryRun: false)
                }
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                    try await registry.deleteEndpointService(tenantB, id: story.service.id, force: true, dryRun: true)
                }
            }

            let head = try await store.read { try await $0.logHead() }
            let affected = try await registry.deleteEndpointService(tenantA, id: story.service.id, force: true, dryRun: false)
            #expect(affected.map(\.id) == [made[0].id, made[1].id, made[2].id])
            #expect(affected.allSatisfy { $0.status == .rejected && $0.reason == "the service was deleted by its provider" })
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.getEndpointService(tenantA, id: story.service.id, serviceName: nil)
            }
            // The consumer's endpoints stay, rejected (the earlier rejection untouched); none is live.
            let left = try await registry.listEndpoints(tenantB, filter: .init(), page: .init(limit: 100)).items
            #expect(left.count == 4)
            #expect(left.allSatisfy { $0.status == .rejected })
            #expect(left.first { $0.id == made[3].id }?.decisionReason == "no")
            #expect(left.first { $0.id == made[1].id }?.ip.isEmpty == false, "an endpoint once accepted still shows its address")
            let logged = try await events(registry).filter { $0.seq > head }.map(\.type)
            #expect(logged == [.connectionRejected, .connectionRejected, .connectionRejected, .permissionRemoved, .deleted])
            // The consumer deletes its own endpoints.
            for endpoint in left { try await registry.deleteEndpoint(tenantB, id: endpoint.id) }
            #expect(try await registry.listEndpoints(tenantB, filter: .init(), page: .init()).totalCount == 0)
        }
    }

    @Test func withoutForceWaitingEndpointsFailAndAreReported() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let pending = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let dry = try await registry.deleteEndpointService(tenantA, id: story.service.id, force: false, dryRun: true)
            #expect(dry.map(\.status) == [.pendingAcceptance])
            let affected = try await registry.deleteEndpointService(tenantA, id: story.service.id, force: false, dryRun: false)
            #expect(affected.map(\.id) == [pending.id])
            #expect(affected.map(\.status) == [.failed])
        }
    }

    /// Creates racing a forced delete: each create either commits before the delete (and is rejected by
    /// it) or finds no service; no endpoint is left live on the deleted service.
    @Test func aForceDeleteRacingCreatesLeavesNoLiveEndpoint() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 100)
            let created = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        if i == 20 {
                            _ = try await registry.deleteEndpointService(tenantA, id: story.service.id, force: true, dryRun: false)
                            return
                        }
                        do {
                            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
                            created.increment()
                        } catch let error as RegistryError where error.reason.rawValue == "SERVICE_NOT_FOUND" {}
                    }
                }
                try await group.waitForAll()
            }
            let left = try await registry.listEndpoints(tenantB, filter: .init(), page: .init(limit: 100)).items
            #expect(left.count == created.count)
            #expect(left.allSatisfy { $0.serviceID == story.service.id && !$0.status.isLive }, "a live endpoint outlived its service")
        }
    }
}

/// A count shared by concurrent tasks.
private final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}
