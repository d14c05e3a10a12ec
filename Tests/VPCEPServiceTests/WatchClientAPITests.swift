import Foundation
import Testing
import VPCEPClient
import VPCEPProto
import VPCEPRegistry
import VPCEPTestSupport

/// `VPCEPClient.watchChanges` against an in-process server whose change feed the test can see
/// (docs/PROTOCOL.md §9, "Resuming a watch").
@Suite("Watch client over TLS", .timeLimit(.minutes(2)))
struct WatchClientAPITests {
    private static let quickFeed = ChangeFeedConfiguration.defaults {
        $0.pollInterval = .milliseconds(20)
        $0.bookmarkInterval = .milliseconds(100)
    }

    @Test("cancelling the task that iterates ends the watch with CANCELLED, frees the server's watcher and keeps the connection")
    func cancellation() async throws {
        try await withTestServer(changeFeed: Self.quickFeed) { server in
            let alice = try server.client("alice")
            let (live, isLive) = AsyncStream<Void>.makeStream()
            let watching = Task { () async -> VPCEPError? in
                do {
                    for try await change in alice.watchChanges(VPCEPProto.WatchRequest(start: .afterSeq)) {
                        if case .bookmark = change { isLive.yield() }
                    }
                    return nil
                } catch {
                    return error as? VPCEPError
                }
            }
            for await _ in live { break }
            #expect(server.registry.changeFeed.watcherCount == 1)
            watching.cancel()
            let ended = await watching.value
            #expect(ended?.code == .cancelled && ended?.reason == .cancelled, "\(String(describing: ended))")
            // The server learns of the CANCEL through the connection; wait for it.
            while server.registry.changeFeed.watcherCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
            // Cancelling the call left the shared connection working.
            #expect(try await alice.whoAmI(WhoAmIRequest()).id == "alice")
            await alice.close()
        }
    }

    @Test("a client whose calls time out fast still watches past that timeout, and sees its own writes once each")
    func noDeadline() async throws {
        try await withTestServer(changeFeed: Self.quickFeed) { server in
            var configuration = try server.client("alice").configuration
            configuration.defaultTimeout = .milliseconds(200)
            let alice = try VPCEPClient(configuration: configuration)
            // Writes go through a client of its own, with the usual timeout, so a loaded machine cannot fail them.
            let writer = try server.client("alice")
            var bookmarks = 0
            var created: [String] = []
            var seen: [String] = []
            for try await change in alice.watchChanges(VPCEPProto.WatchRequest(kinds: [.vpc], start: .snapshot)) {
                switch change {
                case .bookmark:
                    bookmarks += 1
                    // Five idle bookmarks 100 ms apart: well past the 200 ms timeout of a call.
                    if bookmarks == 5 || bookmarks == 6 {
                        created.append(try await writer.createVpc(CreateVpcRequest(
                            name: "v\(bookmarks)", cidr: "10.\(bookmarks).0.0/16")).id)
                    }
                case .event(let entry):
                    seen.append(entry.resourceId)
                case .snapshot, .resync:
                    Issue.record("unexpected \(change)")
                }
                if seen.count == 2 { break }
            }
            #expect(seen == created)
            await writer.close()
            await alice.close()
        }
    }
}
