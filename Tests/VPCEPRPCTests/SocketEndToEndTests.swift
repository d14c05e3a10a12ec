import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCEPClient
@testable import VPCEPRPC
import VPCEPProto
import VPCEPTLS
import VPCEPWire
import VPCEPTestSupport

/// An in-process `RPCServer` with the test methods on 127.0.0.1, and clients over real mutual-TLS sockets.
private struct TestServer {
    let server: RPCServer
    let port: Int
    let probe: Probe
    let group: MultiThreadedEventLoopGroup

    func connect(_ identity: String = "alice", context: TLSContext? = nil) async throws(VPCEPError) -> RPCClientConnection {
        let pki = try! PKI.require()
        let tls = try! context ?? TLSContext.client(pki.configuration(identity))
        return try await RPCClientConnection.connect(host: "127.0.0.1", port: port, tlsContext: tls, group: group)
    }

    var statistics: RPCServer.Statistics { server.currentStatistics }
}

private func withServer(
    _ configuration: RPCServerConfiguration = RPCServerConfiguration(), crl: Bool = false, port: Int = 0,
    _ body: (TestServer) async throws -> Void
) async throws {
    let pki = try PKI.require()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let probe = Probe()
    let server = RPCServer(router: TestAPI.router(probe), tlsContext: try TLSContext.server(pki.configuration("server", crl: crl)),
                           configuration: configuration, group: group, logger: testLogger)
    let address = try await server.start(host: "127.0.0.1", port: port)
    let test = TestServer(server: server, port: try #require(address.port), probe: probe, group: group)
    do {
        try await body(test)
    } catch {
        probe.release()
        await server.shutdown(gracePeriod: .seconds(1))
        try? await group.shutdownGracefully()
        throw error
    }
    probe.release()
    await server.shutdown(gracePeriod: .seconds(1))
    try await group.shutdownGracefully()
}

private func metadata(_ timeout: Duration? = .seconds(30)) -> CallMetadata {
    CallMetadata(region: "eu-west-1", timeout: timeout)
}

private func message(_ id: String, _ regions: [String] = []) -> WhoAmIResponse {
    WhoAmIResponse(kind: .tenant, id: id, region: "", regions: regions)
}

@Suite("RPC over TLS sockets", .pki, .serialized, .timeLimit(.minutes(2)))
struct SocketEndToEndTests {
    @Test("§4.7 1,000 concurrent calls on one connection are all answered correctly")
    func thousandConcurrentCalls() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<1000 {
                    group.addTask {
                        let response = try await connection.unary(TestAPI.echo, message("call-\(index)"), metadata: metadata())
                        return response.id == "call-\(index)" && response.regions.first == "tenant/alice"
                    }
                }
                var correct = 0
                for try await ok in group where ok { correct += 1 }
                #expect(correct == 1000)
            }
            #expect(server.statistics.openConnections == 1)
        }
    }

    @Test("§4.5 a deadline that expires mid-call: DEADLINE_EXCEEDED, and the server's work is cancelled")
    func deadlineMidCall() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            let error = await #expect(throws: VPCEPError.self) {
                try await connection.unary(TestAPI.hang, message("x"), metadata: metadata(.milliseconds(200)))
            }
            #expect(error?.code == .deadlineExceeded && error?.reason.rawValue == "DEADLINE_EXCEEDED")
            await server.probe.wait { started, cancelled in started == 1 && cancelled == 1 }
            // The connection is still good.
            #expect(try await connection.unary(TestAPI.echo, message("after"), metadata: metadata()).id == "after")
        }
    }

    @Test("§4.6 cancelling a unary call's task reaches the server")
    func cancelledUnary() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            let task = Task { try await connection.unary(TestAPI.hang, message("x"), metadata: metadata()) }
            await server.probe.wait { started, _ in started == 1 }
            task.cancel()
            let error = await #expect(throws: VPCEPError.self) { try await task.value }
            #expect(error?.code == .cancelled)
            await server.probe.wait { _, cancelled in cancelled == 1 }
        }
    }

    @Test("§4.4 a stream delivers every message in order and ends with OK; a failing one ends with its status")
    func streams() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            var received: [String] = []
            for try await item in connection.serverStreaming(TestAPI.stream, message("200", ["100"]), metadata: metadata()) {
                received.append(item.region)
            }
            #expect(received == (0..<200).map { "\($0)" })

            var failing: [String] = []
            let error = await #expect(throws: VPCEPError.self) {
                for try await item in connection.serverStreaming(TestAPI.failingStream, message("x"), metadata: metadata()) {
                    failing.append(item.id)
                }
            }
            #expect(failing == ["one", "two"])
            #expect(error?.code == .failedPrecondition && error?.reason.rawValue == "TEST_FAILURE")
        }
    }

    @Test("§8.2 a slow stream consumer pushes back to the server, then gets every message in order")
    func slowStreamConsumer() async throws {
        try await withServer(.defaults { $0.maxBufferedOutboundBytes = 64 * 1024 }) { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            // 64 MiB: more than the client's 256 buffered messages, the server's 64 KiB and both
            // sockets' buffers can hold (loopback's receive buffer grows up to `tcp_rmem`'s 32 MiB
            // here; with 6 MiB the whole stream once fitted and the server never had to wait).
            let total = 4096
            var iterator = connection.serverStreaming(TestAPI.stream, message("\(total)", ["16384"]), metadata: metadata())
                .makeAsyncIterator()
            #expect(try await iterator.next()?.region == "0")
            // The consumer pauses: the client stops reading, the socket fills, the server's
            // stream sender waits.
            let pausedAt = ContinuousClock.now
            while server.statistics.parkedStreamSends == 0 {
                if ContinuousClock.now - pausedAt > .seconds(30) {
                    Issue.record("the server's stream sender never waited for the paused consumer")
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            var expected = 1
            while let item = try await iterator.next() {
                #expect(item.region == "\(expected)")
                expected += 1
            }
            #expect(expected == total)
        }
    }

    @Test("§4.6 leaving a stream early cancels it on the server")
    func cancelledStream() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            var count = 0
            // No deadline: only the client's CANCEL can end this stream on the server.
            for try await _ in connection.serverStreaming(TestAPI.stream, message("forever", ["10"]), metadata: metadata(nil)) {
                count += 1
                if count == 5 { break }
            }
            #expect(count == 5)
            await server.probe.wait { _, cancelled in cancelled == 1 }
            #expect(try await connection.unary(TestAPI.echo, message("still"), metadata: metadata()).id == "still")
        }
    }

    @Test("a detached stream sends from its owner's task and ends with the owner's status, OK or an error")
    func detachedStreamEnds() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            var ids: [String] = []
            for try await item in connection.serverStreaming(
                TestAPI.detached, WhoAmIResponse(kind: .tenant, id: "3", region: "ok", regions: []), metadata: metadata()) {
                ids.append(item.id)
            }
            #expect(ids == ["0", "1", "2"])
            ids = []
            let error = await #expect(throws: VPCEPError.self) {
                for try await item in connection.serverStreaming(
                    TestAPI.detached, WhoAmIResponse(kind: .tenant, id: "2", region: "fail", regions: []), metadata: metadata()) {
                    ids.append(item.id)
                }
            }
            #expect(ids == ["0", "1"])
            #expect(error?.code == .failedPrecondition && error?.reason.rawValue == "TEST_FAILURE")
            #expect(server.probe.cancelledCount == 0)
            #expect(server.statistics.callsInFlight == 0)
        }
    }

    @Test("a detached stream with no task left ends by CANCEL, deadline, connection close and shutdown; its owner hears each and is freed")
    func detachedStreamCancelled() async throws {
        try await withServer { server in
            let idle = WhoAmIResponse(kind: .tenant, id: "1", region: "", regions: [])
            let connection = try await server.connect()
            // CANCEL: leaving the stream after its one message.
            for try await _ in connection.serverStreaming(TestAPI.detached, idle, metadata: metadata(nil)) { break }
            await server.probe.wait { _, cancelled in cancelled == 1 }
            // Its deadline.
            let expired = await #expect(throws: VPCEPError.self) {
                for try await _ in connection.serverStreaming(TestAPI.detached, idle, metadata: metadata(.milliseconds(300))) {}
            }
            #expect(expired?.code == .deadlineExceeded)
            await server.probe.wait { _, cancelled in cancelled == 2 }
            #expect(try await connection.unary(TestAPI.echo, message("still"), metadata: metadata()).id == "still")
            // The connection's close.
            let open = Task { for try await _ in connection.serverStreaming(TestAPI.detached, idle, metadata: metadata(nil)) {} }
            await server.probe.wait { started, _ in started == 3 }
            await connection.close()
            _ = await open.result
            await server.probe.wait { _, cancelled in cancelled == 3 }
            // Shutdown: still open when the grace period ends.
            let other = try await server.connect()
            var stream = other.serverStreaming(TestAPI.detached, idle, metadata: metadata(nil)).makeAsyncIterator()
            #expect(try await stream.next()?.id == "0")
            await server.server.shutdown(gracePeriod: .milliseconds(100))
            let shutDown = await #expect(throws: VPCEPError.self) { while try await stream.next() != nil {} }
            #expect(shutDown?.code == .unavailable)
            await server.probe.wait { _, cancelled in cancelled == 4 }
            await other.close()
            #expect(server.probe.releasedOwnerCount == 4)
        }
    }

    @Test("§4.7 a stream whose sends never wait does not starve its connection: a unary call on it is answered")
    func fastStreamDoesNotStarveReads() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            let stream = Task {
                var count = 0
                for try await _ in connection.serverStreaming(TestAPI.stream, message("forever", ["10"]), metadata: metadata(nil)) {
                    count += 1
                }
                return count
            }
            await server.probe.wait { started, _ in started >= 1 }
            // The server's loop must still read this CALL while the stream runs flat out.
            #expect(try await connection.unary(TestAPI.echo, message("beside"), metadata: metadata()).id == "beside")
            stream.cancel()
            await server.probe.wait { _, cancelled in cancelled == 1 }
        }
    }

    @Test("§9 connecting to a server that accepts but never answers fails within connectTimeout, as never processed")
    func silentServerHandshakeTimeout() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        // Accepts connections and never writes a byte.
        let listener = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port)
        let context = try TLSContext.client(try PKI.require().configuration("alice"))
        let error = await #expect(throws: VPCEPError.self) {
            _ = try await RPCClientConnection.connect(host: "127.0.0.1", port: port, tlsContext: context,
                                                      connectTimeout: .milliseconds(300), group: group)
        }
        #expect(error?.reason == .connectionFailed && error?.wasNeverProcessed == true)
    }

    @Test("§4.5 a stream's deadline bounds the whole stream")
    func streamDeadline() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            defer { Task { await connection.close() } }
            let error = await #expect(throws: VPCEPError.self) {
                for try await _ in connection.serverStreaming(TestAPI.stream, message("forever", ["10"]), metadata: metadata(.milliseconds(300))) {}
            }
            #expect(error?.code == .deadlineExceeded)
            await server.probe.wait { _, cancelled in cancelled == 1 }
        }
    }

    @Test("§7 shutdown with calls in flight: they finish, new calls are refused as retryable, then the connection closes")
    func shutdownWithCallsInFlight() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let inFlight = (0..<5).map { index in
                Task { try await connection.unary(TestAPI.gated, message("g\(index)"), metadata: metadata()) }
            }
            await server.probe.wait { started, _ in started == 5 }
            let shutdown = Task { await server.server.shutdown(gracePeriod: .seconds(60)) }
            // Calls keep working until the GOAWAY arrives, then fail retryably.
            var refusal: VPCEPError?
            while refusal == nil {
                do throws(VPCEPError) {
                    _ = try await connection.unary(TestAPI.echo, message("probe"), metadata: metadata())
                    await Task.yield()
                } catch {
                    refusal = error
                }
            }
            #expect(refusal?.code == .unavailable && refusal?.isRetryable == true)
            #expect(!connection.isAcceptingCalls)
            server.probe.release()
            for (index, task) in inFlight.enumerated() {
                #expect(try await task.value.id == "g\(index)")
            }
            await shutdown.value
            #expect(server.statistics.openConnections == 0)
        }
    }

    @Test("§7 calls still running when the grace period ends fail with UNAVAILABLE / SHUTDOWN_GRACE_EXPIRED")
    func shutdownGraceExpires() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let call = Task { try await connection.unary(TestAPI.hang, message("x"), metadata: metadata()) }
            await server.probe.wait { started, _ in started == 1 }
            await server.server.shutdown(gracePeriod: .milliseconds(100))
            let error = await #expect(throws: VPCEPError.self) { try await call.value }
            #expect(error?.code == .unavailable && error?.reason.rawValue == "SHUTDOWN_GRACE_EXPIRED")
            await server.probe.wait { _, cancelled in cancelled == 1 }
        }
    }

    @Test("§1.5 with a CRL configured, a revoked certificate is refused")
    func revokedCertificate() async throws {
        try await withServer(crl: true) { server in
            let alice = try await server.connect("alice")
            #expect(try await alice.unary(TestAPI.echo, message("a"), metadata: metadata()).id == "a")
            await alice.close()
            let error = await #expect(throws: VPCEPError.self) {
                let mallory = try await server.connect("mallory")
                _ = try await mallory.unary(TestAPI.echo, message("m"), metadata: metadata())
            }
            #expect(error?.code == .unauthenticated && error?.reason.rawValue == "CLIENT_CERTIFICATE_REJECTED")
            #expect(server.probe.startedCount == 0)
        }
    }

    @Test("§1.5 a refused client that writes its first call right after its handshake still reads the refusal, every time")
    func refusalSurvivesAnImmediateCall() async throws {
        try await withServer(crl: true) { server in
            let pki = try PKI.require()
            let context = try TLSContext.client(pki.configuration("mallory"))
            var outcomes: [String: Int] = [:]
            let big = String(repeating: "x", count: 256 * 1024)
            for attempt in 0..<50 {
                // The CALL goes in its own write once the client's handshake is done, as a
                // client written with a blocking TLS socket sends it: it reaches the server
                // after the certificate that the server refuses, and is still unread when the
                // server closes. A big one (256 KiB) is still being sent then. Delays from 0 to
                // 1.5 ms move it around the refusal.
                let outcome = server.group.next().makePromise(of: String.self)
                let channel = try await ClientBootstrap(group: server.group)
                    .channelOption(.autoRead, value: false)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverHostname: "127.0.0.1"))
                            try channel.pipeline.syncOperations.addHandler(
                                CallAfterHandshake(call: callFrame(1, TestAPI.echo.path, message(big)),
                                                   delay: .microseconds(Int64(attempt % 4) * 500), outcome: outcome))
                        }
                    }
                    .connect(host: "127.0.0.1", port: server.port).get()
                channel.read()
                outcomes[try await outcome.futureResult.get(), default: 0] += 1
                try? await channel.closeFuture.get()
            }
            #expect(outcomes == ["certificateRejected": 50])
            #expect(server.probe.startedCount == 0)
        }
    }

    @Test("§1.5 reloading TLS applies to new connections; a bad configuration is refused and changes nothing")
    func reload() async throws {
        try await withServer { server in
            let pki = try PKI.require()
            let before = try await server.connect("mallory")
            #expect(try await before.unary(TestAPI.echo, message("m"), metadata: metadata()).id == "m")

            var broken = pki.configuration("server", crl: true)
            broken.privateKeyFile = pki.file("alice.key")
            #expect(throws: TLSError.self) { try server.server.reloadTLS(broken) }
            let stillOld = try await server.connect("mallory")
            #expect(try await stillOld.unary(TestAPI.echo, message("m2"), metadata: metadata()).id == "m2")

            try server.server.reloadTLS(pki.configuration("server", crl: true))
            let error = await #expect(throws: VPCEPError.self) {
                let after = try await server.connect("mallory")
                _ = try await after.unary(TestAPI.echo, message("m3"), metadata: metadata())
            }
            #expect(error?.code == .unauthenticated)
            // Connections made before the reload keep theirs.
            #expect(try await before.unary(TestAPI.echo, message("m4"), metadata: metadata()).id == "m4")
            await before.close()
            await stillOld.close()
        }
    }

    @Test("§1.3 a reconnecting client resumes its TLS session and keeps its identity")
    func resumedSession() async throws {
        try await withServer { server in
            let pki = try PKI.require()
            let context = try TLSContext.client(pki.configuration("alice"))
            let first = try await server.connect(context: context)
            #expect(!first.resumedSession)
            // A call makes the client read the server's tickets.
            _ = try await first.unary(TestAPI.echo, message("1"), metadata: metadata())
            await first.close()
            let second = try await server.connect(context: context)
            defer { Task { await second.close() } }
            #expect(second.resumedSession)
            let response = try await second.unary(TestAPI.echo, message("2"), metadata: metadata())
            #expect(response.regions.first == "tenant/alice")
            #expect(server.statistics.resumedHandshakes == 1 && server.statistics.fullHandshakes == 1)
        }
    }

    @Test("§8 connections past maxConnections are closed before TLS")
    func maxConnections() async throws {
        try await withServer(.defaults { $0.maxConnections = 1 }) { server in
            let first = try await server.connect()
            defer { Task { await first.close() } }
            let error = await #expect(throws: VPCEPError.self) {
                let second = try await server.connect()
                _ = try await second.unary(TestAPI.echo, message("x"), metadata: metadata())
            }
            #expect(error?.code == .unavailable)
            #expect(server.statistics.refusedConnections == 1)
            #expect(try await first.unary(TestAPI.echo, message("ok"), metadata: metadata()).id == "ok")
        }
    }

    @Test("§8.2 a client that never reads its responses does not grow the server's buffers without bound")
    func nonReadingClient() async throws {
        let bound = 128 * 1024
        let configuration = RPCServerConfiguration.defaults {
            $0.maxBufferedOutboundBytes = bound
            $0.maxConcurrentCallsPerConnection = 64
        }
        try await withServer(configuration) { server in
            let pki = try PKI.require()
            let context = try TLSContext.client(pki.configuration("alice"))
            let handshake = server.group.next().makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: server.group)
                .channelOption(.autoRead, value: false)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverHostname: "127.0.0.1"))
                        try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(promise: handshake))
                    }
                }
                .connect(host: "127.0.0.1", port: server.port).get()
            channel.read()
            try await handshake.futureResult.get()

            // An endless stream of 16 KiB messages, and 4,000 calls asking for 4 KiB each: about
            // 16 MB of responses plus the stream, none of which is ever read.
            let payload = String(repeating: "p", count: 4096)
            var batch = ByteBuffer()
            var frame = callFrame(1, TestAPI.stream.path, message("forever", ["16384"]))
            batch.writeBuffer(&frame)
            for id in UInt32(2)...4001 {
                var call = callFrame(id, TestAPI.echo.path, message(payload))
                batch.writeBuffer(&call)
            }
            // The client's own writes stall too once the server stops reading: do not wait for them.
            channel.writeAndFlush(batch, promise: nil)

            // Wait until the server has pushed back on both fronts.
            while server.statistics.readPauses == 0 || server.statistics.parkedStreamSends == 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let settled = server.statistics
            // The structural bound: the outbound bound, plus one response per call slot, plus the
            // refusals and stream message one read burst can produce, plus TLS overhead: well
            // under 1.5 MiB, against more than 16 MB asked for. It stays there.
            let ceiling = 1536 * 1024
            for _ in 0..<20 {
                try await Task.sleep(for: .milliseconds(20))
                #expect(server.statistics.bufferedOutboundBytes <= ceiling)
            }
            let peak = server.statistics.peakBufferedOutboundBytes
            #expect(peak <= ceiling, "peak \(peak) bytes")
            #expect(settled.callsInFlight <= 65)
            try await channel.close()
            // Closing the connection releases everything.
            while server.statistics.openConnections > 0 || server.statistics.bufferedOutboundBytes > 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            await server.probe.wait { _, cancelled in cancelled == 1 }
        }
    }

    @Test("§8.2 pipelined calls past the running limit wait: running calls and buffered bytes stay within their bounds while the client does not read")
    func pipelinedCallsWait() async throws {
        let bound = 64 * 1024
        let running = 8
        let configuration = RPCServerConfiguration.defaults {
            $0.maxBufferedOutboundBytes = bound
            $0.maxRunningCallsPerConnection = running
        }
        try await withServer(configuration) { server in
            let channel = try await openNonReadingChannel(server)
            // 1,000 calls asking for 16 KiB each: 16 MB of answers, none of which is ever read.
            let payload = String(repeating: "p", count: 16 * 1024)
            var batch = ByteBuffer()
            for id in UInt32(1)...1000 {
                var call = callFrame(id, TestAPI.echo.path, message(payload))
                batch.writeBuffer(&call)
            }
            channel.writeAndFlush(batch, promise: nil)

            while server.statistics.readPauses == 0 || server.statistics.callsWaiting == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            // A call starts only within the outbound bound, so the connection holds at most the
            // bound plus one answer (16 KiB and its frame and status fields) per running call.
            let ceiling = bound + running * 17 * 1024
            for _ in 0..<25 {
                let now = server.statistics
                #expect(now.callsInFlight <= running)
                #expect(now.bufferedOutboundBytes <= ceiling)
                try await Task.sleep(for: .milliseconds(10))
            }
            let settled = server.statistics
            #expect(settled.peakBufferedOutboundBytes <= ceiling, "peak \(settled.peakBufferedOutboundBytes) bytes")
            // That calls wait was seen above (the loop ends only then); how many still wait now depends
            // on how much the kernel's socket buffers have absorbed meanwhile, so it is not asserted.
            try await channel.close()
            while server.statistics.openConnections > 0 || server.statistics.bufferedOutboundBytes > 0
                || server.statistics.callsWaiting > 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    @Test("§8.2 past the server-wide budget a new call is refused at once as UNAVAILABLE / SERVER_OVERLOADED, safe to retry")
    func overallBudget() async throws {
        let configuration = RPCServerConfiguration.defaults {
            $0.maxBufferedOutboundBytesOverall = 256 * 1024
            $0.maxBufferedOutboundBytes = 1024 * 1024
            $0.maxRunningCallsPerConnection = 64
        }
        try await withServer(configuration) { server in
            let channel = try await openNonReadingChannel(server)
            let payload = String(repeating: "p", count: 16 * 1024)
            var batch = ByteBuffer()
            // 16 MB asked for: more than the kernel's socket buffers take, so that the server
            // ends up holding its per-connection bound, above the overall budget.
            for id in UInt32(1)...1000 {
                var call = callFrame(id, TestAPI.echo.path, message(payload))
                batch.writeBuffer(&call)
            }
            channel.writeAndFlush(batch, promise: nil)
            // Settled: the kernel's buffers are full and the server holds more than the budget.
            var above = 0
            while above < 10 {
                above = server.statistics.bufferedOutboundBytes > 256 * 1024 ? above + 1 : 0
                try await Task.sleep(for: .milliseconds(20))
            }

            let bob = try await server.connect("mallory")
            let error = await #expect(throws: VPCEPError.self) {
                _ = try await bob.unary(TestAPI.echo, message("b"), metadata: metadata())
            }
            #expect(error?.code == .unavailable && error?.reason.rawValue == "SERVER_OVERLOADED")
            #expect(error?.wasNeverProcessed == true && error?.isRetryable == true)
            #expect(server.statistics.overloadRefusals >= 1)

            try await channel.close()
            while server.statistics.bufferedOutboundBytes > 0 || server.statistics.callsWaiting > 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(try await bob.unary(TestAPI.echo, message("b2"), metadata: metadata()).id == "b2")
            await bob.close()
        }
    }

    @Test("§9 VPCEPClient streams, and reconnects after the server sent GOAWAY")
    func clientLibrary() async throws {
        let pki = try PKI.require()
        var port = 0
        var client: VPCEPClient?
        try await withServer { server in
            port = server.port
            client = try VPCEPClient(configuration: .init(
                host: "127.0.0.1", port: port, region: "eu-west-1", caFile: pki.file("ca.crt"),
                certificateFile: pki.file("alice.crt"), keyFile: pki.file("alice.key")))
            var regions: [String] = []
            for try await item in client!.serverStreaming(TestAPI.stream, message("3"), options: CallOptions()) {
                regions.append(item.region)
            }
            #expect(regions == ["0", "1", "2"])
            _ = try await client!.unary(TestAPI.echo, message("before"), options: CallOptions())
        }
        // The first server drained and closed; a new one on the same port takes the next call.
        try await withServer(port: port) { _ in
            let response = try await client!.unary(TestAPI.echo, message("after"), options: CallOptions())
            #expect(response.id == "after")
        }
        await client?.close()
    }
}

/// A mutual-TLS connection to `server` that, once its handshake is done, never reads again.
private func openNonReadingChannel(_ server: TestServer) async throws -> any Channel {
    let pki = try PKI.require()
    let context = try TLSContext.client(pki.configuration("alice"))
    let handshake = server.group.next().makePromise(of: Void.self)
    let channel = try await ClientBootstrap(group: server.group)
        .channelOption(.autoRead, value: false)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverHostname: "127.0.0.1"))
                try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(promise: handshake))
            }
        }
        .connect(host: "127.0.0.1", port: server.port).get()
    channel.read()
    try await handshake.futureResult.get()
    return channel
}

/// Writes `call` `delay` after the client's TLS handshake completes and reads again only 50 ms
/// after the write has gone, as a client busy sending would; then reports how the connection
/// ended: the code of the first `TLSError`, or "closed" / the error otherwise.
private final class CallAfterHandshake: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let call: ByteBuffer
    let delay: TimeAmount
    let outcome: EventLoopPromise<String>
    init(call: ByteBuffer, delay: TimeAmount, outcome: EventLoopPromise<String>) {
        (self.call, self.delay, self.outcome) = (call, delay, outcome)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is TLSHandshakeCompleted else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let call = call
        context.eventLoop.scheduleTask(in: delay) {
            let eventLoop = bound.value.eventLoop
            let written = eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { _ in
                eventLoop.scheduleTask(in: .milliseconds(50)) { bound.value.read() }
            }
            bound.value.writeAndFlush(NIOAny(call), promise: written)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        outcome.succeed("answered")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outcome.succeed((error as? TLSError).map { "\($0.code)" } ?? "\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        outcome.succeed("closed")
    }
}

/// Completes `promise` when the TLS handshake does; reads nothing.
private final class HandshakeWaiter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Void>
    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { promise.succeed() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}
