import NIOCore
import NIOEmbedded
import Synchronization
import Testing
@testable import VPCEPRPC
import VPCEPTLS
import VPCEPWire

/// Stands for the call handler: records what the connection management handler tells it.
private final class CommandRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let recorded = Mutex<[String]>([])
    var all: [String] { recorded.withLock { $0 } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let command = event as? ConnectionManagementHandler.Command else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let text = switch command {
        case .goAway(let error, let draining): "goAway \(error.reason)\(draining ? " draining" : "")"
        case .graceExpired: "graceExpired"
        case .closing: "closing"
        }
        recorded.withLock { $0.append(text) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        recorded.withLock { $0.append("error \((error as? VPCEPError)?.reason.rawValue ?? "\(error)")") }
    }
}

/// A `ConnectionManagementHandler` on a testing channel whose clock the test moves.
private struct ManagerHarness {
    let channel = NIOAsyncTestingChannel()
    let recorder = CommandRecorder()
    let statistics = ServerStatistics()

    init(_ configuration: ConnectionManagementHandler.StateMachine.Configuration) async throws {
        let (channel, recorder, statistics) = (channel, recorder, statistics)
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(
                ConnectionManagementHandler(configuration: configuration, statistics: statistics))
            try channel.pipeline.syncOperations.addHandler(recorder)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
    }

    var loop: NIOAsyncTestingEventLoop { channel.testingEventLoop }

    func report(_ event: ConnectionManagementHandler.CallEvent) async throws {
        try await channel.triggerUserOutboundEvent(event)
    }

    func written() async throws -> [Frame] {
        var buffers: [ByteBuffer] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
        return try frames(in: buffers)
    }

    var isActive: Bool { get async { (try? await loop.submit { channel.isActive }.get()) ?? false } }

    func finish() async {
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }
}

@Suite("Connection management handler", .timeLimit(.minutes(1)))
struct ConnectionManagementHandlerTests {
    @Test("§8.3 keepalive: a PING after silence; bytes received answer it; silence after one closes")
    func keepalive() async throws {
        let harness = try await ManagerHarness(.init(keepaliveInterval: .seconds(10), keepaliveTimeout: .seconds(5)))
        await harness.loop.advanceTime(by: .seconds(9))
        #expect(try await harness.written().isEmpty)
        await harness.loop.advanceTime(by: .seconds(1))
        let ping = try #require(try await harness.written().first)
        #expect(ping.type == .ping && !ping.flags.contains(.ack) && ping.callID == 0 && ping.payload.readableBytes == 8)
        try await harness.channel.writeInbound(frameBytes(.ping, flags: .ack, callID: 0, Array(ping.payload.readableBytesView)))
        await harness.loop.advanceTime(by: .seconds(9))
        #expect(await harness.isActive)
        #expect(try await harness.written().isEmpty)
        await harness.loop.advanceTime(by: .seconds(1))
        #expect(try await harness.written().map(\.type) == [.ping])
        await harness.loop.advanceTime(by: .seconds(5))
        try await harness.channel.closeFuture.get()
        #expect(harness.recorder.all == ["error KEEPALIVE_TIMEOUT"])
        #expect(harness.statistics.snapshot.keepaliveTimeouts == 1)
        await harness.finish()
    }

    @Test("§8.3 under backpressure the connection is not probed, so silence does not close it")
    func keepaliveUnderBackpressure() async throws {
        let harness = try await ManagerHarness(.init(keepaliveInterval: .seconds(10), keepaliveTimeout: .seconds(5)))
        try await harness.report(.backpressure(true))
        await harness.loop.advanceTime(by: .seconds(120))
        #expect(await harness.isActive)
        #expect(try await harness.written().isEmpty)
        try await harness.report(.backpressure(false))
        await harness.loop.advanceTime(by: .seconds(10))
        #expect(try await harness.written().map(\.type) == [.ping])
        await harness.finish()
    }

    @Test("§8.1 the TLS handshake must finish in time: closed without GOAWAY")
    func handshakeTimeout() async throws {
        let harness = try await ManagerHarness(.init(handshakeTimeout: .seconds(10)))
        await harness.loop.advanceTime(by: .seconds(10))
        try await harness.channel.closeFuture.get()
        #expect(try await harness.written().isEmpty)
        #expect(harness.recorder.all.isEmpty)
        #expect(harness.statistics.snapshot.handshakeTimeouts == 1)
        await harness.finish()

        let completed = try await ManagerHarness(.init(handshakeTimeout: .seconds(10)))
        try await completed.loop.executeInContext { [channel = completed.channel] in
            channel.pipeline.fireUserInboundEventTriggered(TLSHandshakeCompleted(applicationProtocol: "vpcep/1", peer: nil))
        }
        await completed.loop.advanceTime(by: .seconds(60))
        #expect(await completed.isActive)
        #expect(completed.statistics.snapshot.fullHandshakes == 1)
        await completed.finish()
    }

    @Test("§8.1 idle: GOAWAY IDLE_TIMEOUT, then close; an open call keeps the connection, its end restarts the count")
    func idle() async throws {
        let harness = try await ManagerHarness(.init(idleTimeout: .seconds(60)))
        await harness.loop.advanceTime(by: .seconds(30))
        try await harness.report(.callOpened)
        await harness.loop.advanceTime(by: .seconds(100))
        try await harness.report(.callClosed)
        await harness.loop.advanceTime(by: .seconds(59))
        #expect(harness.recorder.all.isEmpty)
        await harness.loop.advanceTime(by: .seconds(1))
        try await harness.channel.closeFuture.get()
        #expect(harness.recorder.all == ["goAway IDLE_TIMEOUT", "closing"])
        #expect(harness.statistics.snapshot.idleTimeouts == 1)
        await harness.finish()
    }

    @Test("§7 drain: GOAWAY at once, close when the last call ends")
    func drain() async throws {
        let harness = try await ManagerHarness(.init())
        try await harness.report(.callOpened)
        try await harness.channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(30)))
        #expect(harness.recorder.all == ["goAway SERVER_SHUTTING_DOWN draining"])
        await harness.loop.advanceTime(by: .seconds(29))
        #expect(await harness.isActive)
        try await harness.report(.callClosed)
        try await harness.channel.closeFuture.get()
        #expect(harness.recorder.all == ["goAway SERVER_SHUTTING_DOWN draining", "closing"])
        await harness.finish()
    }

    @Test("§7 drain with no call open: GOAWAY, then close at once")
    func drainIdle() async throws {
        let harness = try await ManagerHarness(.init(idleTimeout: .seconds(60)))
        try await harness.channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(30)))
        try await harness.channel.closeFuture.get()
        #expect(harness.recorder.all == ["goAway SERVER_SHUTTING_DOWN draining", "closing"])
        #expect(harness.statistics.snapshot.idleTimeouts == 0)
        await harness.finish()
    }

    @Test("§7 the grace period ends the calls still open, then the connection closes")
    func graceExpires() async throws {
        let harness = try await ManagerHarness(.init())
        try await harness.report(.callOpened)
        try await harness.channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(5)))
        await harness.loop.advanceTime(by: .seconds(4))
        #expect(await harness.isActive)
        await harness.loop.advanceTime(by: .seconds(1))
        try await harness.channel.closeFuture.get()
        #expect(harness.recorder.all == ["goAway SERVER_SHUTTING_DOWN draining", "graceExpired", "closing"])
        await harness.finish()
    }
}
