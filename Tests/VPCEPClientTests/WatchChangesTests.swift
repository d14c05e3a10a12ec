import Synchronization
import Testing
@testable import VPCEPClient

/// The resuming watch (docs/PROTOCOL.md §9, "Resuming a watch") against scripted streams: each
/// stream the watch opens replays the next script, then ends as the script says.
@Suite("Client watch: resuming")
struct WatchChangesTests {
    /// Streams in the order the watch opens them; records the requests and pauses.
    final class FakeServer: Sendable {
        struct Script: Sendable {
            var responses: [WatchResponse]
            /// nil: the stream stays open until cancelled.
            var end: VPCEPError??
        }

        private struct State {
            var scripts: [Script]
            var requests: [WatchRequest] = []
            var pauses: [(attempt: Int, hint: Duration?)] = []
            var terminations: [String] = []
        }

        private let state: Mutex<State>

        init(_ scripts: [Script]) {
            state = Mutex(State(scripts: scripts))
        }

        var requests: [WatchRequest] { state.withLock { $0.requests } }
        var pauseAttempts: [Int] { state.withLock { $0.pauses.map(\.attempt) } }
        var terminations: [String] { state.withLock { $0.terminations } }

        func changes(_ request: WatchRequest, options: WatchOptions = WatchOptions()) -> WatchChanges {
            WatchChanges(
                request, options: options,
                open: { request in self.open(request) },
                backoff: { attempt, hint in
                    self.state.withLock { $0.pauses.append((attempt, hint)) }
                    return .zero
                },
                sleep: { _ in }
            )
        }

        private func open(_ request: WatchRequest) -> ResponseStream<WatchResponse> {
            let script = state.withLock { state -> Script in
                state.requests.append(request)
                guard !state.scripts.isEmpty else {
                    return Script(responses: [], end: .some(VPCEPError(code: .internalError, reason: .internalError,
                                                                      message: "no more scripted streams")))
                }
                return state.scripts.removeFirst()
            }
            let (messages, continuation) = AsyncThrowingStream<WatchResponse, any Error>.makeStream()
            continuation.onTermination = { termination in
                let name = switch termination {
                case .cancelled: "cancelled"
                case .finished: "finished"
                @unknown default: "other"
                }
                self.state.withLock { $0.terminations.append(name) }
            }
            for response in script.responses { continuation.yield(response) }
            switch script.end {
            case .none: break
            case .some(.none): continuation.finish()
            case .some(.some(let error)): continuation.finish(throwing: error)
            }
            return ResponseStream(ResponseStream.Source(messages: messages, onConsume: {}, onAbandon: { continuation.finish() }))
        }
    }

    static func event(_ seq: UInt64, _ id: String = "svc-1") -> WatchResponse {
        WatchResponse(kind: .event, entry: HistoryEntry(seq: seq, kind: .endpointService, resourceId: id, type: .updated))
    }

    static func item(_ id: String) -> WatchResponse {
        WatchResponse(kind: .snapshot, entry: HistoryEntry(kind: .endpointService, resourceId: id))
    }

    static func bookmark(_ seq: UInt64) -> WatchResponse { WatchResponse(kind: .bookmark, seq: seq) }

    static let lost = VPCEPError(code: .unavailable, reason: .connectionClosed, message: "connection closed")
    static let shuttingDown = VPCEPError(code: .unavailable, reason: .serverShuttingDown, message: "bye")
    static let denied = VPCEPError(code: .permissionDenied, reason: .operatorRequired, message: "no")
    static let compacted = VPCEPError(code: .outOfRange, reason: .sequenceCompacted, message: "oldest retained is 40")

    /// The changes as short strings ("e5", "s:id", "b7", "resync") and how the iteration ended.
    static func collect(_ changes: WatchChanges) async -> (seen: [String], error: VPCEPError?) {
        var seen: [String] = []
        do {
            for try await change in changes {
                switch change {
                case .event(let entry): seen.append("e\(entry.seq)")
                case .snapshot(let entry): seen.append("s:\(entry.resourceId)")
                case .bookmark(let seq): seen.append("b\(seq)")
                case .resync: seen.append("resync")
                }
            }
            return (seen, nil)
        } catch {
            return (seen, error)
        }
    }

    @Test("resumes after the last event or bookmark, with the same filters")
    func resumesAfterPosition() async {
        let server = FakeServer([
            .init(responses: [Self.event(1), Self.event(2)], end: Self.lost),
            .init(responses: [Self.event(3), Self.bookmark(9)], end: Self.shuttingDown),
            .init(responses: [Self.event(10)], end: Self.denied),
        ])
        var request = WatchRequest(kinds: [.endpoint], serviceId: "svc-1", types: [.connectionAccepted])
        request.start = .afterSeq
        let result = await Self.collect(server.changes(request))
        #expect(result.seen == ["e1", "e2", "e3", "b9", "e10"])
        #expect(result.error == Self.denied)
        #expect(server.requests.map(\.start) == [.afterSeq, .afterSeq, .afterSeq])
        #expect(server.requests.map(\.afterSeq) == [0, 2, 9])
        #expect(server.requests.allSatisfy { $0.serviceId == "svc-1" && $0.kinds == [.endpoint] && $0.types == [.connectionAccepted] })
    }

    @Test("an event the server sends again after a reconnection reaches the caller once")
    func noDuplicateAfterReconnect() async {
        let server = FakeServer([
            .init(responses: [Self.event(4), Self.event(5)], end: Self.lost),
            .init(responses: [Self.event(5), Self.bookmark(5), Self.bookmark(3), Self.event(6)], end: Self.denied),
        ])
        let result = await Self.collect(server.changes(WatchRequest(start: .afterSeq, afterSeq: 3)))
        #expect(result.seen == ["e4", "e5", "b5", "e6"])
        #expect(server.requests.map(\.afterSeq) == [3, 5])
    }

    @Test("a snapshot broken before its bookmark starts over, announced by resync; after the bookmark it resumes")
    func snapshotRestartsBeforeBookmark() async {
        let server = FakeServer([
            .init(responses: [Self.item("a"), Self.item("b")], end: Self.lost),
            .init(responses: [], end: Self.lost),
            .init(responses: [Self.item("a"), Self.item("c"), Self.bookmark(7), Self.event(8)], end: Self.lost),
            .init(responses: [], end: Self.denied),
        ])
        let result = await Self.collect(server.changes(WatchRequest(resourceId: "a", start: .snapshot)))
        #expect(result.seen == ["s:a", "s:b", "resync", "s:a", "s:c", "b7", "e8"])
        #expect(server.requests.map(\.start) == [.snapshot, .snapshot, .snapshot, .afterSeq])
        #expect(server.requests.last?.afterSeq == 8)
        #expect(server.requests.allSatisfy { $0.resourceId == "a" })
        // A broken snapshot backs off like any failure, before the stream that follows the resync.
        #expect(server.pauseAttempts == [1, 2, 1])
    }

    @Test("a compacted position fails by default")
    func compactedFails() async {
        let server = FakeServer([.init(responses: [], end: Self.compacted)])
        let result = await Self.collect(server.changes(WatchRequest(start: .afterSeq, afterSeq: 12)))
        #expect(result.seen == [])
        #expect(result.error == Self.compacted)
        #expect(server.requests.count == 1)
    }

    @Test("with resyncOnCompaction a lost position becomes resync and a fresh snapshot", arguments: [
        compacted, VPCEPError(code: .outOfRange, reason: .sequenceBeyondHead, message: "head is 3", field: "after_seq"),
    ])
    func compactedResyncs(lostPosition: VPCEPError) async {
        let server = FakeServer([
            .init(responses: [Self.event(41)], end: Self.lost),
            .init(responses: [], end: lostPosition),
            .init(responses: [Self.item("a"), Self.bookmark(50), Self.event(51)], end: Self.denied),
        ])
        let result = await Self.collect(server.changes(
            WatchRequest(start: .afterSeq, afterSeq: 40), options: WatchOptions(resyncOnCompaction: true)))
        #expect(result.seen == ["e41", "resync", "s:a", "b50", "e51"])
        #expect(server.requests.map(\.start) == [.afterSeq, .afterSeq, .snapshot])
        #expect(server.requests.map(\.afterSeq) == [40, 41, 0])
        // The resync itself is not a failure to back off from.
        #expect(server.pauseAttempts == [1])
    }

    @Test("errors that are not resumable end the watch at once", arguments: [
        VPCEPError(code: .invalidArgument, reason: .enumValueUnknown, message: "kinds"),
        VPCEPError(code: .unauthenticated, reason: .clientCertificateRejected, message: "who"),
        VPCEPError(code: .internalError, reason: .internalError, message: "bug"),
    ])
    func notResumable(error: VPCEPError) async {
        let server = FakeServer([.init(responses: [Self.event(1)], end: error)])
        let result = await Self.collect(server.changes(WatchRequest(start: .afterSeq)))
        #expect(result.seen == ["e1"])
        #expect(result.error == error)
        #expect(server.requests.count == 1)
    }

    @Test("a watch started now without a position yet starts now again; a stream that ends OK is resumed")
    func nowWithoutPosition() async {
        let server = FakeServer([
            .init(responses: [], end: Self.lost),
            .init(responses: [Self.bookmark(20)], end: .some(nil)),
            .init(responses: [], end: Self.denied),
        ])
        let result = await Self.collect(server.changes(WatchRequest()))
        #expect(result.seen == ["b20"])
        #expect(server.requests.map(\.start) == [.unspecified, .unspecified, .afterSeq])
        #expect(server.requests.last?.afterSeq == 20)
    }

    @Test("failed reconnections back off with growing attempts, reset by a message, and stop at the limit")
    func backoffAndLimit() async {
        let refused = VPCEPError(code: .unavailable, reason: .connectionFailed, message: "refused")
        let server = FakeServer([
            .init(responses: [], end: refused),
            .init(responses: [Self.event(1)], end: refused),
            .init(responses: [], end: refused),
            .init(responses: [], end: refused),
        ])
        let result = await Self.collect(server.changes(
            WatchRequest(start: .afterSeq), options: WatchOptions(maxConsecutiveFailures: 3)))
        #expect(result.seen == ["e1"])
        #expect(result.error == refused)
        #expect(server.pauseAttempts == [1, 1, 2])
        #expect(server.requests.count == 4)
    }

    @Test("cancelling the consuming task cancels the open stream and ends the watch with CANCELLED")
    func cancellation() async {
        let server = FakeServer([.init(responses: [Self.event(1)], end: nil)])
        let (firstSeen, seenFirst) = AsyncStream<Void>.makeStream()
        let consumer = Task {
            var seen: [String] = []
            do {
                for try await change in server.changes(WatchRequest(start: .afterSeq)) {
                    if case .event(let entry) = change { seen.append("e\(entry.seq)") }
                    seenFirst.yield()
                }
                return (seen, VPCEPError?.none)
            } catch {
                return (seen, error as? VPCEPError)
            }
        }
        for await _ in firstSeen { break }
        consumer.cancel()
        let (seen, error) = await consumer.value
        #expect(seen == ["e1"])
        #expect(error?.code == .cancelled)
        #expect(server.terminations == ["cancelled"])
        #expect(server.requests.count == 1)
    }
}
