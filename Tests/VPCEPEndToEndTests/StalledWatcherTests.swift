import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// A watcher that stops reading its socket while writers go on (docs/DOMAIN.md, "Watch": slow watchers).
// The limit is a safety net for a server that never gives up on the reader; on a loaded machine
// the writers need well over two minutes to fill the window.
@Suite("Watch: a reader that stops reading", .timeLimit(.minutes(5)))
struct StalledWatcherTests {
    static let writers = 4
    /// A bound for a machine on which the server never gives up: the test then fails on its time limit.
    static let maxRoundsPerWriter = 2000

    @Test("the server holds a bounded amount for it, ends it WATCH_TOO_SLOW with where to resume, and nothing is lost")
    func stalledReader() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-\(UUID().uuidString).toml")
        try Data("watch_slow_timeout = 1\nlog_level = \"info\"\n".utf8).write(to: config)
        defer { try? FileManager.default.removeItem(at: config) }
        let server = try await ServerProcess.start(extraArguments: ["--config", config.path])
        var clients: [VPCEPClient] = []
        do {
            let alice = try server.client("alice")
            clients.append(alice)
            let network = try await Network.make(alice)
            var services: [EndpointService] = []
            for writer in 0..<Self.writers {
                services.append(try await alice.createEndpointService(
                    network.serviceRequest(name: "s\(writer)", ports: [(UInt32(80 + writer), UInt32(8080 + writer))])))
            }

            // The raw stream of one connection: not iterating it stops the client reading its socket
            // once its 256-message window is full (docs/PROTOCOL.md §9). Through a proxy with small
            // socket buffers, so that only the server's side of the connection can absorb much; the
            // generated `watch` sends the client's default timeout: one far beyond the test.
            let proxy = try CuttingProxy(upstreamPort: server.port, socketBuffer: 8 * 1024)
            defer { proxy.stop() }
            let stalledClient = try makeClient("alice", port: proxy.port, timeout: .seconds(600))
            clients.append(stalledClient)
            var stream = stalledClient.watch(WatchRequest(start: .afterSeq, afterSeq: 0)).makeAsyncIterator()
            var received: [Trail] = []
            var position: UInt64 = 0
            while let message = try await stream.next() {
                if message.kind == .event, let entry = message.entry { received.append(Trail(entry)) }
                if message.kind == .bookmark {
                    position = message.seq
                    break
                }
            }
            let stalledAt = position
            let baseline = try #require(server.residentBytes)

            // Allow-list entries come and go a hundred per call, one event each: megabytes of events
            // in a few seconds, more than the kernel's socket buffers take. The writers stop when the
            // server has given up on the reader.
            let gaveUp = Flag()
            let writing = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (writer, service) in services.enumerated() {
                        let client = try server.client("alice")
                        group.addTask {
                            // Tenant ids of the longest kind (64 characters): fewer calls for the same bytes.
                            let tenants = (0..<100).map { index in
                                "iam:domain::" + "w\(writer)t\(index)-".padding(toLength: 64, withPad: "x", startingAt: 0)
                            }
                            for _ in 0..<Self.maxRoundsPerWriter where !gaveUp.isSet {
                                _ = try await client.addPermissions(AddPermissionsRequest(
                                    serviceId: service.id, entries: tenants.map { PermissionEntry(permission: $0) }))
                                _ = try await client.removePermissions(RemovePermissionsRequest(
                                    serviceId: service.id, permissions: tenants))
                            }
                            await client.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // The end of the watch is in the server's call log; until then its memory is sampled.
            var peak = baseline
            while !server.logText.contains("WATCH_TOO_SLOW") {
                peak = max(peak, server.residentBytes ?? 0)
                try await Task.sleep(for: .milliseconds(50))
            }
            gaveUp.set()
            try await writing.value
            peak = max(peak, server.residentBytes ?? 0)
            let head = try await alice.logHead()

            // Reading again: what was held in the buffers, then the status.
            var ended: VPCEPError?
            var sizes: [Int] = []
            do {
                while let message = try await stream.next() {
                    sizes.append((try? message.serializedBytes())?.count ?? 0)
                    if message.kind == .event, let entry = message.entry { received.append(Trail(entry)) }
                    if message.kind == .event, let entry = message.entry { position = max(position, entry.seq) }
                    if message.kind == .bookmark { position = max(position, message.seq) }
                }
            } catch {
                ended = error
            }
            let status = try #require(ended, "the watch ended OK")
            #expect(status.code == .unavailable && status.reason == .watchTooSlow, "\(status)")
            let resumeAfter = try #require(Self.resumePoint(status.message), "\(status.message)")
            // Past the client's window, what the server sent after the reader stopped sat in the
            // server's outbound buffer (256 KiB) or in the kernel's socket buffers: the server's send
            // buffer grows up to tcp_wmem's maximum, the proxy's and the client's stay small.
            let beyondWindow = sizes.dropFirst(256).reduce(0, +)
            let kernelBound = Self.socketSendBufferMaximum + 256 * 1024
            print("""
                stalledReader: stalled at \(stalledAt), head \(head); the server sent up to \(resumeAfter), \
                the reader had \(position); \(sizes.count) messages, \(sizes.reduce(0, +) / 1024) KiB, \
                \(beyondWindow / 1024) KiB beyond the window; RSS \(baseline / 1024) KiB before, peak \(peak / 1024) KiB
                """)

            // The server stopped sending when the reader stopped; writes went on, unsent.
            #expect(resumeAfter < head)
            #expect(beyondWindow < 256 * 1024 + kernelBound, "\(beyondWindow) bytes were held for the reader")
            #expect(peak - baseline < 64 * 1024 * 1024, "RSS grew \((peak - baseline) / 1024) KiB")
            // The server's own count: what it held for sending, all connections together, never went
            // past the connection's outbound bound (256 KiB) plus one message and the writers' answers.
            let held = try await Self.peakBufferedOutboundBytes(server)
            print("stalledReader: at most \(held / 1024) KiB held for sending")
            #expect(held <= 256 * 1024 + 64 * 1024, "the server held \(held) bytes for sending")
            // Everything up to the resume point reached the reader; at most the blocked message more.
            #expect(position >= resumeAfter)
            #expect(received.filter { $0.seq > resumeAfter }.count <= 1)

            let log = try await alice.wholeHistory().map(Trail.init)
            #expect(received == Array(log.prefix(received.count)), "the stalled reader's events are not the log's first ones")
            // Resuming from the status's position gives the rest: nothing lost, at most a repeat.
            var resumed = received.filter { $0.seq <= resumeAfter }
            var rest = stalledClient.watch(WatchRequest(start: .afterSeq, afterSeq: resumeAfter)).makeAsyncIterator()
            while let message = try await rest.next() {
                if message.kind == .event, let entry = message.entry { resumed.append(Trail(entry)) }
                if message.kind == .bookmark, message.seq >= head { break }
            }
            expectSameEvents(resumed, log, "the resumed reader")
        } catch {
            for client in clients { await client.close() }
            await server.stop()
            throw error
        }
        for client in clients { await client.close() }
        await server.stop()
    }

    /// `vpcep_buffered_outbound_bytes_peak` from the server's /metrics.
    static func peakBufferedOutboundBytes(_ server: ServerProcess) async throws -> Int {
        let metrics = try await httpGet("/metrics", port: try #require(server.adminPort))
        let line = try #require(
            metrics.body.split(separator: "\n").first { $0.hasPrefix("vpcep_buffered_outbound_bytes_peak ") },
            "\(metrics.body)")
        return try #require(line.split(separator: " ").last.flatMap { Double($0) }.map { Int($0) }, "\(line)")
    }

    /// The most the kernel lets a TCP send buffer grow to (the third field of tcp_wmem).
    static var socketSendBufferMaximum: Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).last.flatMap { Int($0) } ?? 4 * 1024 * 1024
    }

    /// The sequence in "… resume after sequence N".
    static func resumePoint(_ message: String) -> UInt64? {
        guard let range = message.range(of: "resume after sequence ") else { return nil }
        return UInt64(message[range.upperBound...].prefix { $0.isNumber })
    }
}

/// Set once, read from any task.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
