import NIOCore
import NIOEmbedded
import Synchronization
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// The client side of a connection on a testing channel: calls in, frames out, server frames in.
private struct ClientHarness {
    let channel = NIOAsyncTestingChannel()
    let reads = ClientReadCounter()
    let closeReason = CloseReason()

    init(keepaliveInterval: TimeAmount? = nil) async throws {
        let channel = channel
        let reads = reads
        let closeReason = closeReason
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(reads)
            let handshake = channel.eventLoop.makePromise(of: TLSHandshakeCompleted.self)
            handshake.futureResult.whenFailure { _ in }
            try channel.pipeline.syncOperations.addHandler(ConnectionManagementHandler(configuration: .init(
                keepaliveInterval: keepaliveInterval, keepaliveTimeout: .seconds(5), keepaliveOnlyWithOpenCalls: true)))
            try channel.pipeline.syncOperations.addHandler(
                ClientConnectionHandler(maxFrameSize: 1 << 20, handshake: handshake, closeReason: closeReason))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
    }

    /// Starts a unary call; returns its future outcome once the CALL frame is out.
    func unary(timeout: TimeAmount? = nil) async throws -> EventLoopFuture<ByteBuffer> {
        try await unary(deadline: timeout.map { channel.testingEventLoop.now + $0 })
    }

    func unary(deadline: NIODeadline?) async throws -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        try await channel.writeOutbound(ClientConnectionHandler.Command.start(
            OutboundCall(header: [], request: [], deadline: deadline, sink: .unary(promise), onStart: { _ in })))
        return promise.futureResult
    }

    func stream(_ events: StreamRecorder, flow: StreamFlowControl = StreamFlowControl()) async throws {
        try await channel.writeOutbound(ClientConnectionHandler.Command.start(OutboundCall(
            header: [], request: [], deadline: nil, sink: .stream({ events.append($0) }, flow: flow), onStart: { _ in })))
    }

    /// Reads that got past the handler, after asking for one.
    func readPasses() async throws -> Bool {
        try await channel.testingEventLoop.executeInContext { [channel, reads] in
            let before = reads.count
            channel.pipeline.read()
            return reads.count > before
        }
    }

    func receive(_ buffer: ByteBuffer) async throws {
        try await channel.writeInbound(buffer)
    }

    func sentFrames() async throws -> [Frame] {
        var buffers: [ByteBuffer] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
        return try frames(in: buffers)
    }
}

final class ClientReadCounter: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Any
    private let counter = Mutex(0)
    var count: Int { counter.withLock { $0 } }

    func read(context: ChannelHandlerContext) {
        counter.withLock { $0 += 1 }
        context.read()
    }
}

final class StreamRecorder: Sendable {
    private let events = Mutex<[String]>([])
    func append(_ event: OutboundCall.StreamEvent) {
        let text: String
        switch event {
        case .message(let buffer): text = "message \((try? decodeMessage(buffer).id) ?? "?")"
        case .end(nil): text = "end OK"
        case .end(let error?): text = "end \(error.code.name) \(error.reason)"
        }
        events.withLock { $0.append(text) }
    }
    var all: [String] { events.withLock { $0 } }
}

private func statusBytes(_ code: StatusCode, _ reason: String) -> [UInt8] {
    encoded(Status(code: code.rawValue, reason: reason, message: "m", fieldViolations: [], retryAfterMs: 0, requestId: ""))
}

@Suite("Client connection handler", .timeLimit(.minutes(1)))
struct ClientHandlerTests {
    @Test("§4.1 calls get increasing ids from 1 and carry the CALL payload layout")
    func callIDs() async throws {
        let client = try await ClientHarness()
        _ = try await client.unary()
        _ = try await client.unary()
        let sent = try await client.sentFrames()
        #expect(sent.map(\.callID) == [1, 2])
        #expect(sent.allSatisfy { $0.type == .call && $0.payload.readableBytes == 4 })
    }

    @Test("§4.8 a response for a call never made is a protocol violation")
    func responseForACallNeverMade() async throws {
        let client = try await ClientHarness()
        let call = try await client.unary()
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 5, []))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.reason.rawValue == "PROTOCOL_VIOLATION" && error.message.contains("never made"))
        try await client.channel.closeFuture.get()
    }

    @Test("§4.5 each call without an answer ends DEADLINE_EXCEEDED at its own deadline, and CANCEL is sent")
    func clientDeadlines() async throws {
        let client = try await ClientHarness()
        let loop = client.channel.testingEventLoop
        let late = try await client.unary(timeout: .seconds(5))  // call 1
        let early = try await client.unary(timeout: .seconds(2))  // call 2: earlier than the armed timer
        let answered = try await client.unary(timeout: .seconds(1))  // call 3
        let unbounded = try await client.unary()  // call 4
        _ = try await client.sentFrames()
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 3, encoded(WhoAmIResponse(kind: .tenant, id: "ok", region: "", regions: []))))
        #expect(try decodeMessage(try await answered.get()).id == "ok")

        await loop.advanceTime(by: .milliseconds(1999))
        #expect(try await client.sentFrames().isEmpty)
        await loop.advanceTime(by: .milliseconds(1))
        #expect(try await client.sentFrames().map { [$0.type.rawValue, UInt8($0.callID)] } == [[FrameType.cancel.rawValue, 2]])
        let first = try #require(await #expect(throws: VPCEPError.self) { try await early.get() })
        #expect(first.reason.rawValue == "DEADLINE_EXCEEDED")

        await loop.advanceTime(by: .milliseconds(2999))
        #expect(try await client.sentFrames().isEmpty)
        await loop.advanceTime(by: .milliseconds(1))
        #expect(try await client.sentFrames().map { [$0.type.rawValue, UInt8($0.callID)] } == [[FrameType.cancel.rawValue, 1]])
        let second = try #require(await #expect(throws: VPCEPError.self) { try await late.get() })
        #expect(second.reason.rawValue == "DEADLINE_EXCEEDED")

        await loop.advanceTime(by: .seconds(3600))
        #expect(try await client.sentFrames().isEmpty)
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 4, encoded(WhoAmIResponse(kind: .tenant, id: "late", region: "", regions: []))))
        #expect(try decodeMessage(try await unbounded.get()).id == "late")
    }

    @Test("§4.8 a late answer for a call that already ended here is ignored")
    func lateAnswer() async throws {
        let client = try await ClientHarness()
        let first = try await client.unary()
        try await client.receive(frameBytes(.status, callID: 1, statusBytes(.notFound, "GONE")))
        await #expect(throws: VPCEPError.self) { try await first.get() }
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 1, []))
        let second = try await client.unary()
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 2, encoded(WhoAmIResponse(kind: .tenant, id: "ok", region: "", regions: []))))
        #expect(try decodeMessage(try await second.get()).id == "ok")
    }

    @Test("§6 frames a server may not send, and garbage, end the connection",
          arguments: [
            [0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 1] as [UInt8],  // CALL
            [0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 1],  // CANCEL
            [0, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0],  // unknown type
            [0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 1],  // past the limit
          ])
    func serverViolations(bytes: [UInt8]) async throws {
        let client = try await ClientHarness()
        let call = try await client.unary()
        try await client.receive(ByteBuffer(bytes: bytes))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.reason.rawValue == "PROTOCOL_VIOLATION")
        try await client.channel.closeFuture.get()
    }

    @Test("§7 GOAWAY fails the calls above its last call id as retryable and refuses new ones; older calls finish")
    func goAway() async throws {
        let client = try await ClientHarness()
        let first = try await client.unary()
        let second = try await client.unary()
        var payload: [UInt8] = [0, 0, 0, 1]
        payload += statusBytes(.unavailable, "SERVER_SHUTTING_DOWN")
        try await client.receive(frameBytes(.goAway, callID: 0, payload))
        let refused = try #require(await #expect(throws: VPCEPError.self) { try await second.get() })
        #expect(refused.code == .unavailable && refused.reason.rawValue == "SERVER_GOING_AWAY" && refused.isRetryable)
        let third = try await client.unary()
        let late = try #require(await #expect(throws: VPCEPError.self) { try await third.get() })
        #expect(late.code == .unavailable && late.reason.rawValue == "SERVER_GOING_AWAY" && late.wasNeverProcessed)
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 1, []))
        #expect(try await first.get().readableBytes == 0)
    }

    @Test("§7 a GOAWAY that fails no call still stops the connection taking calls")
    func goAwayCoveringEveryCall() async throws {
        let client = try await ClientHarness()
        let read = try await client.unary()
        #expect(client.closeReason.error == nil)
        try await client.receive(frameBytes(.goAway, callID: 0, [0, 0, 0, 1] + statusBytes(.unavailable, "IDLE_TIMEOUT")))
        #expect(client.closeReason.error?.reason.rawValue == "SERVER_GOING_AWAY")
        let refused = try #require(await #expect(throws: VPCEPError.self) { try await client.unary().get() })
        #expect(refused.reason.rawValue == "SERVER_GOING_AWAY")
        try await client.receive(frameBytes(.message, flags: .endOK, callID: 1, []))
        #expect(try await read.get().readableBytes == 0)
    }

    @Test("§3.7 a call the GOAWAY covers, cut off by the close, fails as maybe processed, not SERVER_GOING_AWAY")
    func goAwayThenClose() async throws {
        let client = try await ClientHarness()
        let read = try await client.unary()
        try await client.receive(frameBytes(.goAway, callID: 0, [0, 0, 0, 1] + statusBytes(.ok, "")))
        try await client.channel.close()
        let error = try #require(await #expect(throws: VPCEPError.self) { try await read.get() })
        #expect(error.reason.rawValue == "CONNECTION_CLOSED" && !error.wasNeverProcessed)
    }

    @Test("§4.5 the deadline is the one the caller computed, not restarted when the handler takes the call")
    func deadlineComputedOnce() async throws {
        let client = try await ClientHarness()
        let loop = client.channel.testingEventLoop
        let deadline = loop.now + .seconds(2)
        await loop.advanceTime(by: .seconds(1))
        let call = try await client.unary(deadline: deadline)
        _ = try await client.sentFrames()
        await loop.advanceTime(by: .milliseconds(999))
        #expect(try await client.sentFrames().isEmpty)
        await loop.advanceTime(by: .milliseconds(1))
        #expect(try await client.sentFrames().map(\.type) == [.cancel])
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.reason.rawValue == "DEADLINE_EXCEEDED")
    }

    @Test("§4.5 the client waits 50 ms longer than the deadline it sends", arguments: [
        (Duration.seconds(1), TimeAmount.milliseconds(1050)), (.milliseconds(1), .milliseconds(51)),
        (.nanoseconds(1500), .nanoseconds(50_001_500)),
    ])
    func clientTimeout(sent: Duration, waited: TimeAmount) {
        #expect(RPCClientConnection.clientTimeout(sent) == waited)
    }

    @Test("§4.4 a stream delivers its messages in order and ends with the STATUS")
    func stream() async throws {
        let client = try await ClientHarness()
        let ok = StreamRecorder()
        let failing = StreamRecorder()
        try await client.stream(ok)
        try await client.stream(failing)
        for (id, name) in [(1, "a"), (2, "x"), (1, "b")] {
            try await client.receive(frameBytes(.message, callID: UInt32(id), encoded(WhoAmIResponse(kind: .tenant, id: name, region: "", regions: []))))
        }
        try await client.receive(frameBytes(.status, callID: 1, statusBytes(.ok, "")))
        try await client.receive(frameBytes(.status, callID: 2, statusBytes(.aborted, "CONFLICT")))
        #expect(ok.all == ["message a", "message b", "end OK"])
        #expect(failing.all == ["message x", "end ABORTED CONFLICT"])
    }

    @Test("§4.4 a unary call ended by STATUS OK without a message is an error, not a default value")
    func unaryWithoutMessage() async throws {
        let client = try await ClientHarness()
        let call = try await client.unary()
        try await client.receive(frameBytes(.status, callID: 1, statusBytes(.ok, "")))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.reason.rawValue == "MISSING_RESPONSE")
    }

    @Test("§3.6 the client answers the server's PING")
    func ping() async throws {
        let client = try await ClientHarness()
        try await client.receive(frameBytes(.ping, callID: 0, [1, 2, 3, 4, 5, 6, 7, 8]))
        let sent = try await client.sentFrames()
        #expect(sent.count == 1 && sent[0].type == .ping && sent[0].flags.contains(.ack))
        #expect(Array(sent[0].payload.readableBytesView) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test("§4.6 cancelling sends CANCEL and fails the call CANCELLED")
    func cancel() async throws {
        let client = try await ClientHarness()
        let call = try await client.unary()
        _ = try await client.sentFrames()
        try await client.channel.writeOutbound(ClientConnectionHandler.Command.cancel(callID: 1))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.code == .cancelled)
        let sent = try await client.sentFrames()
        #expect(sent.map(\.type) == [.cancel] && sent.first?.callID == 1)
    }

    @Test("§8.2 a stream consumer far behind makes the client stop reading until it catches up")
    func streamFlowControl() async throws {
        let client = try await ClientHarness()
        let flow = StreamFlowControl()
        try await client.stream(StreamRecorder(), flow: flow)
        #expect(try await client.readPasses())
        var burst = ByteBuffer()
        for _ in 0..<StreamFlowControl.highWatermark {
            var frame = frameBytes(.message, callID: 1, encoded(WhoAmIResponse(kind: .tenant, id: "m", region: "", regions: [])))
            burst.writeBuffer(&frame)
        }
        try await client.receive(burst)
        #expect(try await !client.readPasses(), "the client read on while its consumer was behind")
        // The consumer takes messages; at the low watermark the held read goes through.
        let before = client.reads.count
        for _ in 0..<(StreamFlowControl.highWatermark - StreamFlowControl.lowWatermark - 1) { flow.consumed() }
        #expect(client.reads.count == before)
        flow.consumed()
        try await client.channel.testingEventLoop.executeInContext {}
        #expect(client.reads.count == before + 1)
        #expect(try await client.readPasses())
    }

    @Test("§8.3 with calls pending, the client PINGs a silent server and gives up when it stays silent")
    func keepalive() async throws {
        let client = try await ClientHarness(keepaliveInterval: .seconds(10))
        let loop = client.channel.testingEventLoop
        // Idle: no probes.
        await loop.advanceTime(by: .seconds(100))
        #expect(try await client.sentFrames().isEmpty)

        let call = try await client.unary()
        #expect(try await client.sentFrames().map(\.type) == [.call])
        await loop.advanceTime(by: .seconds(10))
        let ping = try #require(try await client.sentFrames().first)
        #expect(ping.type == .ping && !ping.flags.contains(.ack) && ping.callID == 0 && ping.payload.readableBytes == 8)
        try await client.receive(frameBytes(.ping, flags: .ack, callID: 0, Array(ping.payload.readableBytesView)))
        await loop.advanceTime(by: .seconds(9))
        #expect(try await client.sentFrames().isEmpty)
        await loop.advanceTime(by: .seconds(1))
        #expect(try await client.sentFrames().map(\.type) == [.ping])
        await loop.advanceTime(by: .seconds(5))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await call.get() })
        #expect(error.code == .unavailable && error.reason.rawValue == "KEEPALIVE_TIMEOUT")
        try await client.channel.closeFuture.get()
    }
}
