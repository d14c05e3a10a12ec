import Foundation
import Testing
import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

private let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
private let operatorR2 = CallContext(caller: .operator("ops"), region: "r2")

private func with(_ ctx: CallContext, requestID: String = "", key: String = "") -> CallContext {
    var ctx = ctx
    ctx.requestID = requestID
    ctx.idempotencyKey = key
    return ctx
}

/// Every event of the log in `region`, oldest first, read as an operator straight from the store.
private func logEvents(_ store: SQLiteRegistryStore, region: String = "r1") async throws -> [ChangeEvent] {
    let query = EventQuery(viewer: EventViewer(region: region, ownerID: "operator:test", isOperator: true), limit: 1000)
    return try await store.read { try await $0.listEvents(query) }.items
}

private func head(_ store: SQLiteRegistryStore) async throws -> UInt64 {
    try await store.read { try await $0.logHead() }
}

/// The whole history a caller may see, oldest first.
private func history(_ registry: Registry, _ ctx: CallContext, resourceID: String? = nil) async throws -> [HistoryEntry] {
    try await registry.listHistory(
        ctx, resourceID: resourceID, since: nil, until: nil, page: PageRequest(limit: 1000, sortDir: "asc")
    ).items
}

private struct Summary: Hashable, CustomStringConvertible {
    var kind: ResourceKind
    var type: ChangeType
    var id: String
    init(_ kind: ResourceKind, _ type: ChangeType, _ id: String) {
        (self.kind, self.type, self.id) = (kind, type, id)
    }
    init(_ event: ChangeEvent) { self.init(event.kind, event.type, event.resourceID) }
    init(_ entry: HistoryEntry) { self.init(entry.kind, entry.type, entry.resourceID) }
    var description: String { "\(kind.rawValue) \(type.rawValue) \(id)" }
}

/// The change log (docs/DOMAIN.md, "Change log"): written by every committed mutation in its own
/// transaction, gapless and in commit order, and read back through the read rules.
@Suite("Change log")
struct ChangeLogTests {
    @Test func everyMutationWritesExactlyItsEventsInCommitOrder() async throws {
        try await withRegistry { registry, store in
            var expected: [Summary] = []
            let a = with(tenantA, requestID: "req-a")
            let b = with(tenantB, requestID: "req-b")
            let netA = try await makeNetwork(registry, a)
            expected += [
                Summary(.vpc, .created, netA.vpc.id), Summary(.subnet, .created, netA.subnet.id),
                Summary(.loadBalancer, .created, netA.loadBalancer.id), Summary(.vm, .created, netA.vm.id),
            ]
            let service = try await registry.createEndpointService(a, spec(netA))
            expected.append(Summary(.endpointService, .created, service.id))
            _ = try await registry.updateEndpointService(a, id: service.id, EndpointServiceUpdate(description: "v2"))
            expected.append(Summary(.endpointService, .updated, service.id))
            // Setting what is already set changes nothing, so logs nothing.
            _ = try await registry.updateEndpointService(a, id: service.id, EndpointServiceUpdate(description: "v2"))
            let added = try await registry.addPermissions(
                a, serviceID: service.id, serviceName: nil,
                entries: [PermissionEntry(permission: Permission.domain("tenant-b")), PermissionEntry(permission: "iam:domain::tenant-x")])
            expected += added.map { Summary(.permission, .permissionAdded, $0.id) }
            _ = try await registry.addPermissions(
                a, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: Permission.domain("tenant-b"))])
            _ = try await registry.removePermissions(
                a, serviceID: service.id, serviceName: nil, permissions: ["iam:domain::tenant-x"], ids: [])
            expected.append(Summary(.permission, .permissionRemoved, added[1].id))

            let netB = try await makeNetwork(registry, b, cidr: "10.1.0.0/16")
            expected += [
                Summary(.vpc, .created, netB.vpc.id), Summary(.subnet, .created, netB.subnet.id),
                Summary(.loadBalancer, .created, netB.loadBalancer.id), Summary(.vm, .created, netB.vm.id),
            ]
            let endpoint = try await registry.createEndpoint(
                b, EndpointSpec(serviceID: service.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id))
            expected.append(Summary(.endpoint, .connectionRequested, endpoint.id))
            _ = try await registry.updateEndpoint(b, id: endpoint.id, EndpointUpdate(description: "mine"))
            expected.append(Summary(.endpoint, .updated, endpoint.id))
            for _ in 0..<2 {
                _ = try await registry.decideConnections(
                    a, serviceID: service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            }
            expected.append(Summary(.endpoint, .connectionAccepted, endpoint.id))
            _ = try await registry.updateConnectionDescription(
                a, serviceID: service.id, serviceName: nil, endpointID: endpoint.id, description: "note")
            expected.append(Summary(.endpoint, .updated, endpoint.id))
            _ = try await registry.decideConnections(
                a, serviceID: service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: false)
            expected.append(Summary(.endpoint, .connectionRejected, endpoint.id))
            for _ in 0..<2 {
                _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 10)
            }
            expected.append(Summary(.quota, .quotaChanged, "tenant-b/endpoint"))
            let pending = try await registry.createEndpoint(
                b, EndpointSpec(serviceID: service.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id))
            expected.append(Summary(.endpoint, .connectionRequested, pending.id))
            // One delete, four changes: the waiting endpoint fails, the allow-list goes, the service goes.
            try await registry.deleteEndpointService(a, id: service.id)
            expected += [
                Summary(.endpoint, .updated, pending.id), Summary(.permission, .permissionRemoved, added[0].id),
                Summary(.endpointService, .deleted, service.id),
            ]
            try await registry.deleteEndpoint(b, id: endpoint.id)
            expected.append(Summary(.endpoint, .deleted, endpoint.id))
            try await registry.deleteBackend(a, kind: .vm, id: netA.vm.id)
            try await registry.deleteBackend(a, kind: .loadBalancer, id: netA.loadBalancer.id)
            try await registry.deleteSubnet(a, id: netA.subnet.id)
            try await registry.deleteVPC(a, id: netA.vpc.id)
            expected += [
                Summary(.vm, .deleted, netA.vm.id), Summary(.loadBalancer, .deleted, netA.loadBalancer.id),
                Summary(.subnet, .deleted, netA.subnet.id), Summary(.vpc, .deleted, netA.vpc.id),
            ]
            // Without approval an endpoint is accepted at once: created, not requested.
            var open = spec(netB)
            open.approvalEnabled = false
            let own = try await registry.createEndpointService(b, open)
            let direct = try await registry.createEndpoint(
                b, EndpointSpec(serviceID: own.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id))
            expected += [Summary(.endpointService, .created, own.id), Summary(.endpoint, .created, direct.id)]

            let events = try await logEvents(store)
            #expect(events.map(Summary.init) == expected)
            #expect(events.map(\.seq) == Array(1...UInt64(expected.count)))
            #expect(try await head(store) == UInt64(expected.count))
            #expect(try await logEvents(store, region: "r2").isEmpty)

            // What each event carries.
            let updated = try #require(events.first { $0.kind == .endpointService && $0.type == .updated })
            #expect(updated.revisionBefore == 1 && updated.revisionAfter == 2)
            #expect(updated.actor == "tenant-a" && updated.requestID == "req-a")
            guard case .endpointService(let before)? = updated.previous, case .endpointService(let after) = updated.state else {
                Issue.record("a service update carries the service before and after")
                return
            }
            #expect(before.description == "" && after.description == "v2")
            let deleted = try #require(events.first { $0.kind == .endpointService && $0.type == .deleted })
            #expect(deleted.revisionBefore == 2 && deleted.revisionAfter == nil)
            let accepted = try #require(events.first { $0.type == .connectionAccepted })
            #expect(accepted.actor == "tenant-a" && accepted.ownerID == "tenant-b" && accepted.providerID == "tenant-a")
            #expect(accepted.serviceID == service.id)
            if case .endpoint(let state) = accepted.state, case .endpoint(let previous)? = accepted.previous {
                #expect(previous.status == .pendingAcceptance && state.status == .accepted)
            } else {
                Issue.record("a decision carries the endpoint before and after")
            }
            let quota = try #require(events.first { $0.kind == .quota })
            #expect(quota.actor == "operator:ops" && quota.ownerID == "tenant-b")
            #expect(quota.state == .quota(QuotaSetting(tenantID: "tenant-b", region: "r1", type: .endpoint, limit: 10, used: 1)))
            #expect(events.allSatisfy { $0.committedAt > Date(timeIntervalSince1970: 1_700_000_000) })
        }
    }

    @Test func refusedWritesWriteNothingAndAReplayWritesNoNewEvent() async throws {
        try await withRegistry { registry, store in
            let netA = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(netA))
            let netB = try await makeNetwork(registry, tenantB, cidr: "10.1.0.0/16")
            let start = try await head(store)
            // Refused inside the transaction, after it has read and checked: nothing of it stays.
            await expectError(.failedPrecondition, "RESOURCE_IN_USE", field: "id") {
                try await registry.deleteVPC(tenantA, id: netA.vpc.id)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: service.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id))
            }
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-a", type: .endpointService, limit: 1)
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpointService(tenantA, spec(netA, ports: [PortMapping(terminalPort: 81, servicePort: 81)]))
            }
            #expect(try await head(store) == start + 1)

            // A batch that fails part-way commits nothing, so logs nothing.
            _ = try await registry.addPermissions(
                tenantA, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            let endpoint = try await registry.createEndpoint(
                tenantB, EndpointSpec(serviceID: service.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id))
            let beforeBatch = try await head(store)
            await expectError(.notFound, "CONNECTION_NOT_FOUND", field: "endpoint_ids[1]") {
                try await registry.decideConnections(
                    tenantA, serviceID: service.id, serviceName: nil, endpointIDs: [endpoint.id, "missing"], accept: true)
            }
            #expect(try await head(store) == beforeBatch)

            // A replayed keyed call returns the stored outcome without running again: one event per key.
            let keyed = with(tenantA, key: "vpc-1")
            let vpc = try await registry.createVPC(keyed, name: "v", cidr: "10.9.0.0/16")
            #expect(try await registry.createVPC(keyed, name: "v", cidr: "10.9.0.0/16") == vpc)
            let deleting = with(tenantA, key: "delete-vpc-1")
            try await registry.deleteVPC(deleting, id: vpc.id)
            try await registry.deleteVPC(deleting, id: vpc.id)
            let tail = try await logEvents(store).filter { $0.seq > beforeBatch }
            #expect(tail.map(Summary.init) == [Summary(.vpc, .created, vpc.id), Summary(.vpc, .deleted, vpc.id)])
            #expect(tail.map(\.idempotencyKey) == ["vpc-1", "delete-vpc-1"])
            #expect(tail.map(\.seq) == [beforeBatch + 1, beforeBatch + 2])
        }
    }

    @Test func eachIdentitySeesExactlyWhatItMayRead() async throws {
        try await withRegistry { registry, store in
            let a = with(tenantA, requestID: "req-a")
            let b = with(tenantB, requestID: "req-b")
            let netA = try await makeNetwork(registry, a)
            let service = try await registry.createEndpointService(a, spec(netA))
            _ = try await registry.addPermissions(
                a, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: Permission.domain("tenant-b"))])
            let netB = try await makeNetwork(registry, b, cidr: "10.1.0.0/16")
            let endpoint = try await registry.createEndpoint(
                b, EndpointSpec(serviceID: service.id, vpcID: netB.vpc.id, subnetID: netB.subnet.id, whitelist: ["10.1.0.0/16"]))
            _ = try await registry.decideConnections(
                a, serviceID: service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            _ = try await registry.updateConnectionDescription(
                a, serviceID: service.id, serviceName: nil, endpointID: endpoint.id, description: "provider's note")
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 7)
            _ = try await makeNetwork(registry, tenantAInR2)
            let all = try await logEvents(store)

            // The operator of the region sees all of it, in full; of another region, nothing of it.
            #expect(try await history(registry, operatorR1).map(\.seq) == all.map(\.seq))
            #expect(try await history(registry, operatorR2).count == 4)
            #expect(try await history(registry, operatorR2).allSatisfy { $0.region == "r2" })

            // The provider: its inventory, its service, its allow-list, and the connections to it, as connections.
            let seenByA = try await history(registry, a)
            #expect(Set(seenByA.map(\.resourceID)) == [
                netA.vpc.id, netA.subnet.id, netA.loadBalancer.id, netA.vm.id, service.id,
                try #require(seenByA.first { $0.kind == .permission }).resourceID, endpoint.id,
            ])
            let connectionEvents = seenByA.filter { $0.kind == .endpoint }
            #expect(connectionEvents.map(\.type) == [.connectionRequested, .connectionAccepted, .updated])
            for entry in connectionEvents {
                guard case .connection(let connection) = entry.state else {
                    Issue.record("the provider sees an endpoint as its connection, not \(entry.state)")
                    continue
                }
                #expect(connection.consumerID == "tenant-b")
            }
            // The consumer's request ids are not the provider's to see; its own are.
            #expect(connectionEvents.map(\.requestID) == ["", "req-a", "req-a"])

            // The consumer: its inventory, its endpoint with the decisions on it, its quota; not the
            // provider's note, not the provider's service or allow-list.
            let seenByB = try await history(registry, b)
            #expect(Set(seenByB.map(\.kind)) == [.vpc, .subnet, .loadBalancer, .vm, .endpoint, .quota])
            let endpointEvents = seenByB.filter { $0.kind == .endpoint }
            #expect(endpointEvents.map(\.type) == [.connectionRequested, .connectionAccepted, .updated])
            for entry in endpointEvents {
                guard case .endpoint(let seen) = entry.state, case .endpoint(let previous) = entry.previous ?? entry.state else {
                    Issue.record("the consumer sees its endpoint, not \(entry.state)")
                    continue
                }
                #expect(seen.connectionDescription == "" && previous.connectionDescription == "")
                #expect(seen.whitelist == ["10.1.0.0/16"])
            }
            // The address shows once accepted, as the reads show it.
            if case .endpoint(let requested) = endpointEvents[0].state, case .endpoint(let accepted) = endpointEvents[1].state {
                #expect(requested.ip == "" && accepted.ip != "")
            }
            #expect(try await history(registry, b, resourceID: service.id).isEmpty)
            #expect(try await history(registry, a, resourceID: service.id).map(\.type) == [.created])

            // Another tenant sees nothing; the provider in another region nothing of this one.
            #expect(try await history(registry, tenantC).isEmpty)
            #expect(try await history(registry, tenantAInR2).map(\.region) == ["r2", "r2", "r2", "r2"])

            // The store's query and the in-memory rule agree on every identity.
            for ctx in [a, b, tenantC, operatorR1] {
                let viewer = EventViewer(region: ctx.region, ownerID: ctx.caller.ownerID, isOperator: ctx.caller.isOperator)
                let query = EventQuery(viewer: viewer, limit: 1000)
                #expect(try await history(registry, ctx).map(\.seq) == all.filter(query.matches).map(\.seq))
                let connections = EventQuery(viewer: viewer, types: [.connectionAccepted], serviceID: service.id, limit: 1000)
                let stored = try await store.read { try await $0.listEvents(connections) }.items
                #expect(stored.map(\.seq) == all.filter(connections.matches).map(\.seq))
                #expect(stored.count == (ctx.caller == tenantC.caller ? 0 : 1))
            }
        }
    }

    @Test func historyIsPagedAndBoundedByTime() async throws {
        let clock = TickingClock(start: 1_800_000_000)
        try await withRegistry(clock: { clock.now() }) { registry, store in
            var vpcs: [VPC] = []
            for i in 0..<5 { vpcs.append(try await registry.createVPC(tenantA, name: "v\(i)", cidr: "10.\(i).0.0/16")) }
            let events = try await logEvents(store)
            let newestFirst = try await registry.listHistory(
                tenantA, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 2, offset: 1))
            #expect(newestFirst.items.map(\.seq) == [4, 3])
            #expect(newestFirst.totalCount == 5)
            let range = try await registry.listHistory(
                tenantA, resourceID: nil, since: events[1].committedAt, until: events[3].committedAt,
                page: PageRequest(sortDir: "asc"))
            #expect(range.items.map(\.seq) == [2, 3])
            let one = try await registry.listHistory(
                tenantA, resourceID: vpcs[2].id, since: nil, until: nil, page: PageRequest())
            #expect(one.items.map(\.seq) == [3])
            await expectError(.invalidArgument, "HISTORY_RANGE_INVALID", field: "until") {
                try await registry.listHistory(
                    tenantA, resourceID: nil, since: events[3].committedAt, until: events[1].committedAt, page: PageRequest())
            }
            await expectError(.invalidArgument, "SORT_KEY_INVALID", field: "page.sort_key") {
                try await registry.listHistory(
                    tenantA, resourceID: nil, since: nil, until: nil, page: PageRequest(sortKey: "created_at"))
            }
        }
    }

    /// Several tasks write through one registry while a reader reads the log again and again: every
    /// snapshot the reader gets is a gapless prefix, and the final log holds one event per committed
    /// change, each task's in the order it made them.
    @Test func concurrentWritersLeaveAGaplessLogInCommitOrder() async throws {
        try await withRegistry { registry, store in
            let tasks = 6, perTask = 12
            let reader = Task {
                var snapshots = 0
                while !Task.isCancelled {
                    let seqs: [UInt64]
                    do {
                        seqs = try await logEvents(store).map(\.seq)
                    } catch is CancellationError {
                        break
                    }
                    #expect(seqs == Array(stride(from: 1, through: UInt64(seqs.count), by: 1)))
                    snapshots += 1
                    await Task.yield()
                }
                return snapshots
            }
            let committed = try await withThrowingTaskGroup(of: [String].self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        var ids: [String] = []
                        for i in 0..<perTask {
                            if i % 4 == 3 {
                                // Refused inside its transaction: no event, no hole.
                                do {
                                    try await registry.deleteVPC(tenantA, id: "missing-\(t)-\(i)")
                                    Issue.record("deleting a missing VPC succeeded")
                                } catch {}
                                continue
                            }
                            let vpc = try await registry.createVPC(tenantA, name: "t\(t)-\(i)", cidr: "10.\(t).0.0/16")
                            ids.append(vpc.id)
                        }
                        return ids
                    }
                }
                var all: [[String]] = []
                for try await ids in group { all.append(ids) }
                return all
            }
            reader.cancel()
            #expect(try await reader.value > 0)
            let events = try await logEvents(store)
            let total = committed.map(\.count).reduce(0, +)
            #expect(events.map(\.seq) == Array(1...UInt64(total)))
            #expect(Set(events.map(\.resourceID)) == Set(committed.flatMap { $0 }))
            for ids in committed {
                #expect(events.map(\.resourceID).filter(ids.contains) == ids)
            }
        }
    }
}
