import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

/// Echoes every read back, flushing once per read burst; records the client identities it saw.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let log: EventLog

    init(log: EventLog) {
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted {
            self.log.append("peer \(event.peer?.uriSANs ?? []) alpn \(event.applicationProtocol ?? "-")")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.log.append("error \((error as? TLSError)?.code.description ?? "\(error)")")
        context.close(promise: nil)
    }
}

/// Completes `promise` with the first `expected` bytes received, or fails it with the first error
/// (or with `closedEarly` when the channel closes first).
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    struct ClosedEarly: Error {}

    private let expected: Int
    private let promise: EventLoopPromise<[UInt8]>
    private var received: [UInt8] = []
    private var done = false

    init(expected: Int, promise: EventLoopPromise<[UInt8]>) {
        self.expected = expected
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.received += self.unwrapInboundIn(data).readableBytesView
        if self.received.count >= self.expected { self.complete(.success(self.received)) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.complete(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.complete(.failure(ClosedEarly()))
    }

    private func complete(_ result: Result<[UInt8], any Error>) {
        guard !self.done else { return }
        self.done = true
        self.promise.completeWith(result)
    }
}

final class EventLog: Sendable {
    private let entries = Mutex<[String]>([])

    func append(_ entry: String) {
        self.entries.withLock { $0.append(entry) }
    }

    var all: [String] { self.entries.withLock { $0 } }

    /// The entries once there are at least `count` of them (or after about two seconds).
    func waitFor(count: Int) async throws -> [String] {
        for _ in 0..<200 where self.all.count < count {
            try await Task.sleep(for: .milliseconds(10))
        }
        return self.all
    }
}

extension TLSTests {
    @Suite struct Sockets {
        /// An echo server on 127.0.0.1, `TLSHandler` on both ends over real sockets.
        private func withEchoServer(
            _ pki: PKI,
            _ body: (_ group: MultiThreadedEventLoopGroup, _ port: Int, _ log: EventLog) async throws -> Void
        ) async throws {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            let serverContext = try TLSContext.server(pki.configuration("server"))
            let log = EventLog()
            let server = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            TLSHandler(context: serverContext),
                            EchoHandler(log: log)
                        )
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            do {
                let port = try #require(server.localAddress?.port)
                try await body(group, port, log)
            } catch {
                try? await server.close().get()
                try? await group.shutdownGracefully()
                throw error
            }
            try await server.close().get()
            try await group.shutdownGracefully()
        }

        private func exchange(
            group: MultiThreadedEventLoopGroup,
            port: Int,
            context: TLSContext,
            payload: [UInt8]
        ) async throws -> [UInt8] {
            let promise = group.next().makePromise(of: [UInt8].self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            TLSHandler(context: context, serverHostname: "127.0.0.1"),
                            Collector(expected: payload.count, promise: promise)
                        )
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            channel.writeAndFlush(buffer(payload), promise: nil)
            do {
                let echoed = try await promise.futureResult.get()
                try await channel.close().get()
                return echoed
            } catch {
                try? await channel.close().get()
                throw error
            }
        }

        @Test func echoManyConnectionsSharingOneContext() async throws {
            let pki = try PKI.require()
            let clientContext = try TLSContext.client(pki.configuration("alice"))
            try await withEchoServer(pki) { group, port, log in
                try await withThrowingTaskGroup(of: Bool.self) { tasks in
                    for index in 0..<4 {
                        tasks.addTask {
                            let payload = pseudoRandomBytes(count: 300_000 + index, seed: UInt64(100 + index))
                            let echoed = try await exchange(group: group, port: port, context: clientContext, payload: payload)
                            return echoed == payload
                        }
                    }
                    for try await matched in tasks {
                        #expect(matched)
                    }
                }
                #expect(log.all == Array(repeating: "peer [\"vpcep://tenant/alice\"] alpn vpcep/1", count: 4))
            }
        }

        @Test func rejectedClientCertificateIsAnErrorOnTheClient() async throws {
            let pki = try PKI.require()
            let stranger = try TLSContext.client(
                TLSConfiguration(
                    certificateChainFile: pki.otherFile("alice.crt"),
                    privateKeyFile: pki.otherFile("alice.key"),
                    trustRootsFile: pki.file("ca.crt")
                )
            )
            try await withEchoServer(pki) { group, port, log in
                let error = try await #require(throws: TLSError.self) {
                    try await exchange(group: group, port: port, context: stranger, payload: Array("hello".utf8))
                }
                #expect(error.code == .certificateRejected)
                #expect(error.message == "the server rejected this client's certificate: unknown CA")
                #expect(try await log.waitFor(count: 1) == ["error peerCertificateInvalid"])
            }
        }
    }
}
