import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// Counts the `read`s that get past the connection handler (towards the socket).
private final class ReadCounter: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Any
    private let counter = Mutex(0)
    var count: Int { counter.withLock { $0 } }

    func read(context: ChannelHandlerContext) {
        counter.withLock { $0 += 1 }
        context.read()
    }
}

/// A `ServerConnectionHandler` above its `ConnectionManagementHandler` on a testing channel, no TLS:
/// frames in, frames out.
private final class Harness: Sendable {
    let channel = NIOAsyncTestingChannel()
    let probe = Probe()
    let statistics = ServerStatistics()
    let reads = ReadCounter()
    private let pending = Mutex<[Frame]>([])
    private let decoder = Mutex(FrameDecoder(maxFrameSize: 1 << 30))

    init(
        configuration: RPCServerConfiguration = .defaults { $0.keepaliveInterval = nil },
        identity: PeerIdentity? = PeerIdentity(kind: .tenant, id: "alice")
    ) async throws {
        let router = TestAPI.router(probe)
        let (statistics, reads) = (statistics, reads)
        try await channel.testingEventLoop.executeInContext { [channel] in
            try channel.pipeline.syncOperations.addHandler(reads)
            try addServerHandlers(to: channel.pipeline.syncOperations, router: router, configuration: configuration,
                                  statistics: statistics, peer: identity)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await channel.writeInbound(buffer)
    }

    /// The next frame the server wrote, waiting for it.
    func next() async throws -> Frame {
        while true {
            let frame = pending.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let frame { return frame }
            let buffer = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            let decoded = try decoder.withLock { decoder in
                decoder.append(buffer)
                var frames: [Frame] = []
                while let frame = try decoder.next() { frames.append(frame) }
                return frames
            }
            pending.withLock { $0 += decoded }
        }
    }

    func nextStatus() async throws -> (callID: UInt32, status: Status) {
        let frame = try await next()
        #expect(frame.type == .status, "expected STATUS, got \(frame.type)")
        return (frame.callID, try decodeStatus(frame.payload))
    }

    func nextGoAway() async throws -> (lastCallID: UInt32, status: Status) {
        let frame = try await next()
        #expect(frame.type == .goAway, "expected GOAWAY, got \(frame.type)")
        let payload = try GoAwayPayload(parsing: frame.payload)
        return (payload.lastCallID, try decodeStatus(payload.status))
    }

    /// A PING round trip: everything the server wrote before it arrives first.
    func roundTrip() async throws -> [Frame] {
        try await send(frameBytes(.ping, callID: 0, [1, 2, 3, 4, 5, 6, 7, 8]))
        var before: [Frame] = []
        while true {
            let frame = try await next()
            if frame.type == .ping, frame.flags.contains(.ack) { return before }
            before.append(frame)
        }
    }

    var isActive: Bool { get async { (try? await channel.testingEventLoop.submit { self.channel.isActive }.get()) ?? false } }

    func waitUntilClosed() async throws {
        try await channel.closeFuture.get()
    }

    func finish() async {
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }
}

@Suite("Server connection handler", .timeLimit(.minutes(1)))
struct ServerHandlerTests {
    let echo = WhoAmIResponse(kind: .tenant, id: "hello", region: "", regions: [])

    @Test("§4.4 a unary call is answered with MESSAGE + END_OK; metadata reaches the handler")
    func unary() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.echo.path, echo, region: "eu-north-1", requestID: "req-1"))
        let frame = try await harness.next()
        #expect(frame.type == .message && frame.flags.contains(.endOK) && frame.callID == 1)
        let response = try decodeMessage(frame.payload)
        #expect(response.id == "hello" && response.region == "eu-north-1")
        #expect(response.regions == ["tenant/alice", "req-1"])
    }

    @Test("§4.7 many calls in flight are answered in any order, each under its own id")
    func multiplexing() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        var batch = ByteBuffer()
        for id in UInt32(1)...50 {
            var frame = callFrame(id, TestAPI.gated.path, WhoAmIResponse(kind: .tenant, id: "\(id)", region: "", regions: []))
            batch.writeBuffer(&frame)
        }
        // One read carrying fifty calls: 32 run (the default running limit), the others wait.
        try await harness.send(batch)
        await harness.probe.wait { started, _ in started == 32 }
        #expect(harness.statistics.snapshot.callsInFlight == 32)
        #expect(harness.statistics.snapshot.callsWaiting == 18)
        harness.probe.release()
        var answered: Set<UInt32> = []
        for _ in 0..<50 {
            let frame = try await harness.next()
            #expect(frame.type == .message)
            #expect(try decodeMessage(frame.payload).id == "\(frame.callID)")
            answered.insert(frame.callID)
        }
        #expect(answered == Set(1...50))
    }

    @Test("§3.1 a truncated header or a drip-fed frame waits for the rest; nothing is answered early")
    func dripFed() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        let bytes = Array(callFrame(1, TestAPI.echo.path, echo).readableBytesView)
        for byte in bytes.dropLast() {
            try await harness.send(ByteBuffer(bytes: [byte]))
        }
        #expect(try await harness.channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(await harness.isActive)
        try await harness.send(ByteBuffer(bytes: [bytes.last!]))
        #expect(try await harness.next().type == .message)
    }

    @Test("§4.2 unknown method: UNIMPLEMENTED / METHOD_NOT_FOUND")
    func unknownMethod() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, "/test.Echo/Nope", echo))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == StatusCode.unimplemented.rawValue && status.reason == "METHOD_NOT_FOUND")
    }

    @Test("§3.2 unreadable CALL payloads: MALFORMED_CALL_HEADER, the connection lives on",
          arguments: [[UInt8](), [0, 0], [0, 0, 0, 50, 1, 2], [0, 0, 0, 3, 0xff, 0xff, 0xff]])
    func malformedCallHeader(payload: [UInt8]) async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(frameBytes(.call, callID: 1, payload))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == StatusCode.invalidArgument.rawValue && status.reason == "MALFORMED_CALL_HEADER")
        try await harness.send(callFrame(2, TestAPI.echo.path, echo))
        #expect(try await harness.next().callID == 2)
    }

    @Test("§5.2 garbage protobuf as the request: MALFORMED_REQUEST")
    func garbageRequest() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        let header = encoded(CallHeader(method: TestAPI.echo.path, region: "r", timeoutMs: 0, requestId: "", idempotencyKey: ""))
        let payload = [0, 0, 0, UInt8(header.count)] + header + [0x0a, 0x7f, 0x01]  // string field longer than the bytes
        try await harness.send(frameBytes(.call, callID: 1, payload))
        let (_, status) = try await harness.nextStatus()
        #expect(status.code == StatusCode.invalidArgument.rawValue && status.reason == "MALFORMED_REQUEST")
    }

    @Test("§6 framing errors end the connection with GOAWAY naming the last call",
          arguments: [
            ("unknown type", [0, 0, 0, 0, 0x7f, 0, 0, 0, 0, 0, 0, 0] as [UInt8]),
            ("reserved bits", [0, 0, 0, 0, 0x04, 0, 0, 1, 0, 0, 0, 1]),
            ("MESSAGE from a client", [0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 1]),
            ("STATUS from a client", [0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 1]),
            ("GOAWAY from a client", [0, 0, 0, 4, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("short PING", [0, 0, 0, 2, 0x05, 0, 0, 0, 0, 0, 0, 0, 1, 2]),
          ])
    func protocolViolations(name: String, bytes: [UInt8]) async throws {
        let harness = try await Harness()
        try await harness.send(callFrame(1, TestAPI.echo.path, echo))
        #expect(try await harness.next().callID == 1)
        try await harness.send(ByteBuffer(bytes: bytes))
        let (lastCallID, status) = try await harness.nextGoAway()
        #expect(lastCallID == 1)
        #expect(status.code == StatusCode.invalidArgument.rawValue && status.reason == "PROTOCOL_VIOLATION", "\(name)")
        try await harness.waitUntilClosed()
        await harness.finish()
    }

    @Test("§4.1 a reused call id ends the connection")
    func callIDReuse() async throws {
        let harness = try await Harness()
        try await harness.send(callFrame(7, TestAPI.echo.path, echo))
        #expect(try await harness.next().callID == 7)
        try await harness.send(callFrame(7, TestAPI.echo.path, echo))
        let (lastCallID, status) = try await harness.nextGoAway()
        #expect(lastCallID == 7 && status.reason == "PROTOCOL_VIOLATION")
        try await harness.waitUntilClosed()
        await harness.finish()
    }

    @Test("§8 a frame longer than the limit is refused on its header, before any payload arrives")
    func oversize() async throws {
        let harness = try await Harness(configuration: .defaults { $0.maxFrameSize = 1024; $0.keepaliveInterval = nil })
        var header = ByteBuffer()
        header.writeFrameHeader(FrameHeader(length: 1025, type: .call, callID: 1))
        try await harness.send(header)
        let (_, status) = try await harness.nextGoAway()
        #expect(status.code == StatusCode.resourceExhausted.rawValue && status.reason == "FRAME_TOO_LARGE")
        #expect(status.message.contains("1025") && status.message.contains("1024"))
        try await harness.waitUntilClosed()
        await harness.finish()
    }

    @Test("§4.8 CANCEL for a call never made or already finished is ignored")
    func cancelUnknown() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(frameBytes(.cancel, callID: 42))
        try await harness.send(callFrame(1, TestAPI.echo.path, echo))
        #expect(try await harness.next().callID == 1)
        try await harness.send(frameBytes(.cancel, callID: 1))
        #expect(try await harness.roundTrip().isEmpty)
        #expect(await harness.isActive)
    }

    @Test("§4.6 CANCEL stops the handler and nothing more is sent for the call")
    func cancel() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.hang.path, echo))
        await harness.probe.wait { started, _ in started == 1 }
        try await harness.send(frameBytes(.cancel, callID: 1))
        await harness.probe.wait { _, cancelled in cancelled == 1 }
        #expect(try await harness.roundTrip().isEmpty)
    }

    @Test("§4.5 past its deadline a call is stopped and answered DEADLINE_EXCEEDED")
    func deadline() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.hang.path, echo, timeoutMs: 1500))
        await harness.probe.wait { started, _ in started == 1 }
        await harness.channel.testingEventLoop.advanceTime(by: .milliseconds(1500))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == StatusCode.deadlineExceeded.rawValue && status.reason == "DEADLINE_EXCEEDED")
        await harness.probe.wait { _, cancelled in cancelled == 1 }
        #expect(harness.statistics.snapshot.callsInFlight == 0)
    }

    @Test("§8.2 a call waiting to run ends at its deadline counted from arrival, or at its CANCEL, and never runs")
    func waitingCallDeadlineAndCancel() async throws {
        let harness = try await Harness(configuration: .defaults {
            $0.keepaliveInterval = nil
            $0.maxRunningCallsPerConnection = 1
        })
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.gated.path, echo))
        try await harness.send(callFrame(2, TestAPI.gated.path, echo, timeoutMs: 100))
        try await harness.send(callFrame(3, TestAPI.gated.path, echo))
        await harness.probe.wait { started, _ in started == 1 }
        #expect(harness.statistics.snapshot.callsWaiting == 2)
        try await harness.send(frameBytes(.cancel, callID: 3))
        #expect(harness.statistics.snapshot.callsWaiting == 1)
        await harness.channel.testingEventLoop.advanceTime(by: .milliseconds(100))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 2 && status.code == StatusCode.deadlineExceeded.rawValue && status.reason == "DEADLINE_EXCEEDED")
        #expect(harness.statistics.snapshot.callsWaiting == 0)
        harness.probe.release()
        let frame = try await harness.next()
        #expect(frame.type == .message && frame.callID == 1)
        #expect(harness.probe.startedCount == 1)
        #expect(harness.statistics.snapshot.callsInFlight == 0)
    }

    @Test("§4.5 a call's handler gets the deadline that ends it: timeout_ms from arrival, also after waiting to run")
    func handlerSeesTheCallsDeadline() async throws {
        let harness = try await Harness(configuration: .defaults {
            $0.keepaliveInterval = nil
            $0.maxRunningCallsPerConnection = 1
        })
        defer { Task { await harness.finish() } }
        let loop = harness.channel.testingEventLoop
        let arrival = try await loop.submit { loop.now }.get()
        try await harness.send(callFrame(1, TestAPI.gated.path, echo))
        try await harness.send(callFrame(2, TestAPI.deadline.path, echo, timeoutMs: 5000))
        try await harness.send(callFrame(3, TestAPI.deadline.path, echo))
        await harness.probe.wait { started, _ in started == 1 }
        // Call 2 waits 1 s to run; its deadline still counts from its arrival.
        await loop.advanceTime(by: .seconds(1))
        harness.probe.release()
        var answers: [UInt32: String] = [:]
        while answers.count < 3 {
            let frame = try await harness.next()
            #expect(frame.type == .message)
            answers[frame.callID] = try decodeMessage(frame.payload).id
        }
        #expect(answers[2] == "\((arrival + .seconds(5)).uptimeNanoseconds)")
        #expect(answers[3] == "none")
    }

    @Test("§4.5 each call ends at its own deadline, including one that started later with an earlier deadline")
    func deadlinesInAnyOrder() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.hang.path, echo, timeoutMs: 5000))
        try await harness.send(callFrame(2, TestAPI.hang.path, echo, timeoutMs: 2000))
        try await harness.send(callFrame(3, TestAPI.hang.path, echo))
        await harness.probe.wait { started, _ in started == 3 }
        let loop = harness.channel.testingEventLoop
        await loop.advanceTime(by: .milliseconds(2000))
        let (first, firstStatus) = try await harness.nextStatus()
        #expect(first == 2 && firstStatus.reason == "DEADLINE_EXCEEDED")
        #expect(harness.statistics.snapshot.callsInFlight == 2)
        await loop.advanceTime(by: .milliseconds(3000))
        let (second, secondStatus) = try await harness.nextStatus()
        #expect(second == 1 && secondStatus.reason == "DEADLINE_EXCEEDED")
        await harness.probe.wait { _, cancelled in cancelled == 2 }
        // The call without a deadline runs on.
        await loop.advanceTime(by: .seconds(3600))
        #expect(harness.statistics.snapshot.callsInFlight == 1)
    }

    @Test("§8 calls beyond the concurrency limit get RESOURCE_EXHAUSTED")
    func concurrencyLimit() async throws {
        let harness = try await Harness(configuration: .defaults {
            $0.maxConcurrentCallsPerConnection = 2; $0.keepaliveInterval = nil
        })
        defer { Task { await harness.finish() } }
        var batch = ByteBuffer()
        for id in UInt32(1)...3 {
            var frame = callFrame(id, TestAPI.gated.path, echo)
            batch.writeBuffer(&frame)
        }
        try await harness.send(batch)
        let (id, status) = try await harness.nextStatus()
        #expect(id == 3 && status.reason == "TOO_MANY_CONCURRENT_CALLS" && status.retryAfterMs > 0)
        harness.probe.release()
        let answered = Set([try await harness.next().callID, try await harness.next().callID])
        #expect(answered == [1, 2])
    }

    @Test("§3.6 PING is answered with ACK echoing the payload")
    func ping() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(frameBytes(.ping, callID: 0, [9, 8, 7, 6, 5, 4, 3, 2]))
        let pong = try await harness.next()
        #expect(pong.type == .ping && pong.flags.contains(.ack) && Array(pong.payload.readableBytesView) == [9, 8, 7, 6, 5, 4, 3, 2])
    }

    @Test("§4.4 a stream is MESSAGE frames without END_OK, then STATUS OK")
    func stream() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.stream.path, WhoAmIResponse(kind: .tenant, id: "3", region: "", regions: ["4"])))
        for index in 0..<3 {
            let frame = try await harness.next()
            #expect(frame.type == .message && frame.flags.isEmpty && frame.callID == 1)
            #expect(try decodeMessage(frame.payload).region == "\(index)")
        }
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == 0 && status.reason.isEmpty)
        #expect(status.message.isEmpty && status.fieldViolations.isEmpty && status.retryAfterMs == 0)
    }

    @Test("§4.4 a failing stream ends with its error STATUS after the messages sent")
    func failingStream() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        try await harness.send(callFrame(1, TestAPI.failingStream.path, echo))
        #expect(try decodeMessage(try await harness.next().payload).id == "one")
        #expect(try decodeMessage(try await harness.next().payload).id == "two")
        let (_, status) = try await harness.nextStatus()
        #expect(status.code == StatusCode.failedPrecondition.rawValue && status.reason == "TEST_FAILURE")
    }

    @Test("§1.4 a certificate without a vpcep identity: every call UNAUTHENTICATED")
    func noIdentity() async throws {
        let harness = try await Harness(identity: nil)
        defer { Task { await harness.finish() } }
        let event = TLSHandshakeCompleted(applicationProtocol: "vpcep/1", peer: PeerCertificate(uriSANs: [], subject: "CN=x"))
        harness.channel.pipeline.fireUserInboundEventTriggered(event)
        try await harness.send(callFrame(1, TestAPI.echo.path, echo))
        let (_, status) = try await harness.nextStatus()
        #expect(status.code == StatusCode.unauthenticated.rawValue && status.reason == "CERTIFICATE_IDENTITY_MISSING")
    }

    @Test("§7 GOAWAY on shutdown: in-flight calls finish, later ones are refused UNAVAILABLE, then close")
    func gracefulShutdown() async throws {
        let harness = try await Harness()
        try await harness.send(callFrame(1, TestAPI.gated.path, echo))
        try await harness.send(callFrame(2, TestAPI.gated.path, echo))
        await harness.probe.wait { started, _ in started == 2 }
        try await harness.channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(30)))
        let (lastCallID, goAway) = try await harness.nextGoAway()
        #expect(lastCallID == 2 && goAway.code == StatusCode.unavailable.rawValue && goAway.reason == "SERVER_SHUTTING_DOWN")
        try await harness.send(callFrame(3, TestAPI.echo.path, echo))
        let (id, refused) = try await harness.nextStatus()
        #expect(id == 3 && refused.code == StatusCode.unavailable.rawValue && refused.reason == "SERVER_GOING_AWAY")
        #expect(await harness.isActive)
        harness.probe.release()
        #expect(Set([try await harness.next().callID, try await harness.next().callID]) == [1, 2])
        try await harness.waitUntilClosed()
        await harness.finish()
    }

    @Test("§7 calls still running when the grace period ends get UNAVAILABLE / SHUTDOWN_GRACE_EXPIRED")
    func graceExpires() async throws {
        let harness = try await Harness()
        try await harness.send(callFrame(1, TestAPI.hang.path, echo))
        await harness.probe.wait { started, _ in started == 1 }
        try await harness.channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(5)))
        _ = try await harness.nextGoAway()
        await harness.channel.testingEventLoop.advanceTime(by: .seconds(5))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == StatusCode.unavailable.rawValue && status.reason == "SHUTDOWN_GRACE_EXPIRED")
        try await harness.waitUntilClosed()
        await harness.probe.wait { _, cancelled in cancelled == 1 }
        await harness.finish()
    }

    @Test("§8.3 the call handler reports a channel that is not writable: no PING meanwhile, one after")
    func keepaliveUnderBackpressure() async throws {
        let harness = try await Harness(configuration: .defaults {
            $0.keepaliveInterval = .seconds(10); $0.keepaliveTimeout = .seconds(5)
        })
        defer { Task { await harness.finish() } }
        let channel = harness.channel
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }
        await channel.testingEventLoop.advanceTime(by: .seconds(120))
        #expect(await harness.isActive)
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        await channel.testingEventLoop.advanceTime(by: .seconds(10))
        #expect(try await harness.next().type == .ping)
    }

    @Test("§8.2 while the channel is not writable the server holds reads and parks stream sends")
    func backpressure() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        let channel = harness.channel
        let reads = harness.reads
        // Writable: a read passes. Not writable: it is held.
        let passed = try await channel.testingEventLoop.executeInContext { () -> Int in
            let before = reads.count
            channel.pipeline.read()
            return reads.count - before
        }
        #expect(passed == 1)
        let held = try await channel.testingEventLoop.executeInContext { () -> Int in
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
            let before = reads.count
            channel.pipeline.read()
            return reads.count - before
        }
        #expect(held == 0, "a read passed while the channel was not writable")

        try await harness.send(callFrame(1, TestAPI.stream.path, WhoAmIResponse(kind: .tenant, id: "forever", region: "", regions: ["100"])))
        await harness.probe.wait { started, _ in started == 1 }
        // The stream's first send is written, then the writer waits.
        #expect(try await harness.next().type == .message)
        while harness.statistics.snapshot.parkedStreamSends == 0 { await Task.yield() }
        #expect(try await harness.channel.readOutbound(as: ByteBuffer.self) == nil)

        let released = try await channel.testingEventLoop.executeInContext { () -> Int in
            let before = reads.count
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            return reads.count - before
        }
        #expect(released == 1, "the held read was not released")
        #expect(try await harness.next().type == .message)
        try await harness.send(frameBytes(.cancel, callID: 1))
        await harness.probe.wait { _, cancelled in cancelled == 1 }
    }
}

extension ServerHandlerTests {
    @Test("§8.2 a stream sender that gives up (its task cancelled) stops waiting for the buffer; the call goes on")
    func abandonedParkedSend() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        let channel = harness.channel
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }
        try await harness.send(callFrame(1, TestAPI.abandonedSend.path, WhoAmIResponse(kind: .tenant, id: "one", region: "", regions: [])))
        await harness.probe.wait { started, _ in started == 1 }
        while harness.statistics.snapshot.parkedStreamSends == 0 { await Task.yield() }
        harness.probe.release()
        // Without a cancellable wait the send would stay parked until the channel became writable.
        await harness.probe.wait { _, cancelled in cancelled == 1 }
        #expect(try await harness.next().type == .message)
        let (id, status) = try await harness.nextStatus()
        #expect(id == 1 && status.code == 0)
    }

    @Test("§4.3 request_id: empty gets srv-<call id>; 1-128 printable ASCII characters are kept as sent")
    func requestIDKept() async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        let longest = String(repeating: "r", count: 128)
        for (callID, sent, used) in [(UInt32(1), "", "srv-1"), (2, longest, longest), (3, "a b ~!", "a b ~!")] {
            try await harness.send(callFrame(callID, TestAPI.echo.path, echo, requestID: sent))
            let frame = try await harness.next()
            #expect(frame.type == .message && frame.callID == callID)
            #expect(try decodeMessage(frame.payload).regions.last == used)
        }
    }

    @Test("§4.3 a request_id over 128 characters or with control or non-ASCII characters is refused, not cut",
          arguments: [String(repeating: "r", count: 129), "r1\nforged line", "r1\u{1b}[31m", "r\u{7f}", "réq", "r\u{2028}"])
    func requestIDRefused(requestID: String) async throws {
        let harness = try await Harness()
        defer { Task { await harness.finish() } }
        // A call that ran would be answered with a MESSAGE: the refusal is a STATUS, never processed.
        try await harness.send(callFrame(7, TestAPI.echo.path, echo, requestID: requestID))
        let (id, status) = try await harness.nextStatus()
        #expect(id == 7)
        #expect(status.code == StatusCode.invalidArgument.rawValue && status.reason == "REQUEST_ID_INVALID")
        #expect(status.fieldViolations.map(\.field) == ["request_id"])
        // The refusal names the id the server made, never the one it refused.
        #expect(status.requestId == "srv-7")
        // A call error, not a connection error.
        try await harness.send(callFrame(8, TestAPI.echo.path, echo))
        #expect(try await harness.next().callID == 8)
    }

    @Test("§8.1 idle means no CALL: answering keepalive PINGs does not keep an idle connection open")
    func idleDespitePings() async throws {
        let harness = try await Harness(configuration: .defaults {
            $0.idleTimeout = .seconds(60); $0.keepaliveInterval = .seconds(10); $0.keepaliveTimeout = .seconds(5)
        })
        let loop = harness.channel.testingEventLoop
        // A call at 25 s restarts the idle clock when it ends.
        var elapsed = 0
        var goAway: Frame?
        while elapsed < 200, goAway == nil {
            await loop.advanceTime(by: .seconds(5))
            elapsed += 5
            if elapsed == 25 {
                try await harness.send(callFrame(1, TestAPI.echo.path, echo))
                // Answered (so ended) at 25 s; the PINGs before it were answered below.
                while try await harness.next().type != .message {}
            }
            while let buffer = try await harness.channel.readOutbound(as: ByteBuffer.self) {
                for frame in try frames(in: [buffer]) {
                    switch frame.type {
                    case .ping where !frame.flags.contains(.ack):
                        try await harness.send(frameBytes(.ping, flags: .ack, callID: 0, Array(frame.payload.readableBytesView)))
                    case .goAway:
                        goAway = frame
                    default:
                        break
                    }
                }
            }
        }
        let frame = try #require(goAway, "no GOAWAY in \(elapsed) s although every PING was answered")
        let payload = try GoAwayPayload(parsing: frame.payload)
        #expect(try decodeStatus(payload.status).reason == "IDLE_TIMEOUT")
        #expect(payload.lastCallID == 1)
        // The call ended at 25 s: idle from then, closed at 85 s (checked in 5 s steps).
        #expect(elapsed == 85)
        #expect(harness.statistics.snapshot.keepaliveTimeouts == 0)
        try await harness.waitUntilClosed()
        await harness.finish()
    }
}
