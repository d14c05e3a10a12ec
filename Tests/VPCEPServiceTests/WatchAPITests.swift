import Foundation
import Testing
import VPCEPClient
import VPCEPProto
import VPCEPRegistry
import VPCEPTestSupport

private typealias HistoryEntry = VPCEPProto.HistoryEntry
private typealias ResourceKind = VPCEPProto.ResourceKind
private typealias ChangeType = VPCEPProto.ChangeType
private typealias WatchStart = VPCEPProto.WatchStart

private let quickFeed = ChangeFeedConfiguration.defaults {
    $0.pollInterval = .milliseconds(20)
    $0.bookmarkInterval = .milliseconds(100)
}

/// Every committed change `client` may see, oldest first, by ListHistory.
private func fullHistory(_ client: VPCEPClient) async throws -> [HistoryEntry] {
    var items: [HistoryEntry] = []
    while true {
        let page = try await client.listHistory(
            ListHistoryRequest(page: PageRequest(limit: 1000, offset: UInt32(items.count), sortDir: "asc")))
        items += page.items
        if page.items.count < 1000 { return items }
    }
}

extension ResponseStream<WatchResponse>.AsyncIterator {
    /// The events up to the first bookmark at or past `seq`.
    fileprivate mutating func events(untilBookmark seq: UInt64) async throws -> [HistoryEntry] {
        var events: [HistoryEntry] = []
        while let message = try await next() {
            switch message.kind {
            case .event: events.append(try #require(message.entry))
            case .bookmark where message.seq >= seq: return events
            default: continue
            }
        }
        Issue.record("the watch ended before a bookmark at \(seq)")
        return events
    }
}

/// History/Watch over the API (docs/DOMAIN.md, "Watch"; docs/PROTOCOL.md §4.4).
@Suite("API: watch", .timeLimit(.minutes(2)))
struct WatchAPITests {
    @Test("concurrent writers, several identities watching: each sees exactly its ListHistory, in order")
    func watchersSeeTheirHistory() async throws {
        try await withTestServer(changeFeed: quickFeed) { server in
            let alice = try server.client("alice")
            let consumers = [try server.client("bob"), try server.client("carol")]
            let ops = try server.client("ops")
            let watchers = [alice, consumers[0], consumers[1], ops]
            var streams = watchers.map {
                $0.watch(WatchRequest(start: .afterSeq, afterSeq: 0)).makeAsyncIterator()
            }
            // Every watch runs before the writes start: its first bookmark says so.
            for index in streams.indices { _ = try await streams[index].events(untilBookmark: 0) }

            let provider = try await Network.make(alice)
            let service = try await alice.createEndpointService(provider.service(approval: true))
            _ = try await alice.addPermissions(AddPermissionsRequest(
                serviceId: service.id,
                entries: [PermissionEntry(permission: "iam:domain::bob"), PermissionEntry(permission: "iam:domain::carol")]))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, consumer) in consumers.enumerated() {
                    group.addTask {
                        let network = try await Network.make(consumer, second: index + 1)
                        for round in 0..<4 {
                            let endpoint = try await consumer.createEndpoint(network.endpoint(serviceID: service.id))
                            let decision = DecideConnectionsRequest(serviceId: service.id, endpointIds: [endpoint.id])
                            if round % 2 == 0 {
                                _ = try await alice.acceptConnections(decision)
                            } else {
                                _ = try await alice.rejectConnections(decision)
                            }
                            if round == 3 { _ = try await consumer.deleteEndpoint(DeleteEndpointRequest(id: endpoint.id)) }
                            // Refused: nothing logged.
                            _ = try? await consumer.createVpc(CreateVpcRequest(name: "bad", cidr: "not-a-cidr"))
                            _ = try? await consumer.deleteVpc(DeleteResourceRequest(id: provider.vpc.id))
                        }
                    }
                }
                group.addTask {
                    for round in 0..<4 {
                        _ = try await alice.updateEndpointService(
                            UpdateEndpointServiceRequest(id: service.id, description: "round \(round)"))
                    }
                }
                try await group.waitForAll()
            }

            for (index, watcher) in watchers.enumerated() {
                let history = try await fullHistory(watcher)
                let events = try await streams[index].events(untilBookmark: history.last?.seq ?? 0)
                #expect(!events.isEmpty)
                #expect(events == history, "watcher \(index)")
            }
            // Nothing of another consumer: bob's watch names no resource of carol's.
            let carolIDs = Set(try await fullHistory(consumers[1]).filter { $0.actor == "carol" }.map(\.resourceId))
            let bobSees = try await fullHistory(consumers[0]).map(\.resourceId)
            #expect(!carolIDs.isEmpty && carolIDs.isDisjoint(with: bobSees))
        }
    }

    @Test("a snapshot start over the wire: states, a bookmark, then the changes after it")
    func snapshotStart() async throws {
        try await withTestServer(changeFeed: quickFeed) { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            var stream = alice.watch(WatchRequest(kinds: [.vpc, .subnet], start: .snapshot)).makeAsyncIterator()
            var snapshot: [HistoryEntry] = []
            var bookmark: UInt64 = 0
            while let message = try await stream.next() {
                if message.kind == .snapshot { snapshot.append(try #require(message.entry)) }
                if message.kind == .bookmark {
                    bookmark = message.seq
                    break
                }
            }
            #expect(Set(snapshot.map(\.resourceId)) == [network.vpc.id, network.subnet.id])
            #expect(snapshot.allSatisfy { $0.seq == 0 && $0.type == .unspecified && $0.time.isEmpty })
            #expect(snapshot.first { $0.kind == .vpc }?.vpc?.name == "vpc")
            let vpc = try await alice.createVpc(CreateVpcRequest(name: "later", cidr: "10.7.0.0/16"))
            let events = try await stream.events(untilBookmark: bookmark + 1)
            #expect(events.map(\.resourceId) == [vpc.id])
            #expect(events.first?.seq == bookmark + 1)
        }
    }

    @Test("bad requests: unknown enum values, after_seq without its start, a sequence beyond the head")
    func validation() async throws {
        try await withTestServer(changeFeed: quickFeed) { server in
            let alice = try server.client("alice")
            let cases: [(WatchRequest, StatusCode, Reason, String)] = [
                (WatchRequest(kinds: [ResourceKind(rawValue: 99)]), .invalidArgument, .enumValueUnknown, "kinds[0]"),
                (WatchRequest(types: [.created, ChangeType(rawValue: 0)]), .invalidArgument, .enumValueUnknown, "types[1]"),
                (WatchRequest(start: WatchStart(rawValue: 7)), .invalidArgument, .enumValueUnknown, "start"),
                (WatchRequest(afterSeq: 3), .invalidArgument, .watchStartInvalid, "after_seq"),
                (WatchRequest(start: .afterSeq, afterSeq: 5), .outOfRange, .sequenceBeyondHead, "after_seq"),
            ]
            for (request, code, reason, field) in cases {
                do {
                    for try await _ in alice.watch(request) {}
                    Issue.record("\(request) was accepted")
                } catch let error as VPCEPError {
                    #expect(error.code == code && error.reason == reason && error.field == field, "\(error)")
                }
            }
        }
    }

    @Test("a lost connection ends the watch: no watcher left on the server")
    func connectionLossFreesTheWatcher() async throws {
        try await withTestServer(changeFeed: quickFeed) { server in
            let alice = try server.client("alice")
            var stream = alice.watch(WatchRequest(start: .afterSeq)).makeAsyncIterator()
            _ = try await stream.events(untilBookmark: 0)
            #expect(server.registry.changeFeed.watcherCount == 1)
            await alice.close()
            while server.registry.changeFeed.watcherCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.registry.changeFeed.watcherCount == 0)
        }
    }

    @Test("a client that stops iterating cancels its watch: no watcher left on the server")
    func cancelFreesTheWatcher() async throws {
        try await withTestServer(changeFeed: quickFeed) { server in
            let alice = try server.client("alice")
            let task = Task {
                for try await message in alice.watch(WatchRequest(start: .afterSeq)) where message.kind == .bookmark {
                    break
                }
            }
            try await task.value
            // The server learns of the cancellation through the connection; wait for it.
            while server.registry.changeFeed.watcherCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.registry.changeFeed.watcherCount == 0)
        }
    }
}
