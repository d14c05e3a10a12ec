import NIOCore
import NIOEmbedded
@testable import VPCEPTLS
import VPCEPTestSupport

/// Records what reaches the end of a pipeline: plaintext reads, user events, errors, closure.
final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var reads: [ByteBuffer] = []
    var handshakes: [TLSHandshakeCompleted] = []
    var errors: [any Error] = []
    var inactive = false

    var received: [UInt8] { self.reads.flatMap { Array($0.readableBytesView) } }
    var tlsErrors: [TLSError] { self.errors.compactMap { $0 as? TLSError } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.reads.append(self.unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted {
            self.handshakes.append(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inactive = true
    }
}

/// A TLS client and server on two `EmbeddedChannel`s; bytes move only when `shuttle` is called.
final class EmbeddedTLSPair {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientRecorder = Recorder()
    let serverRecorder = Recorder()
    /// How many buffers each side wrote to the network, in order.
    var clientFlights: [Int] = []
    var serverFlights: [Int] = []

    init(
        client clientContext: TLSContext, server serverContext: TLSContext, hostname: String? = "localhost",
        sessionKey: String? = nil
    ) throws {
        try self.server.pipeline.syncOperations.addHandlers(TLSHandler(context: serverContext), self.serverRecorder)
        try self.server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try self.client.pipeline.syncOperations.addHandlers(
            TLSHandler(context: clientContext, serverHostname: hostname, sessionKey: sessionKey),
            self.clientRecorder
        )
        try self.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    }

    convenience init(_ pki: PKI, client: String = "alice", server: String = "server", hostname: String? = "localhost") throws {
        try self.init(
            client: TLSContext.client(pki.configuration(client)),
            server: TLSContext.server(pki.configuration(server)),
            hostname: hostname
        )
    }

    /// Moves bytes both ways until neither side has anything to send.
    func shuttle() throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try self.client.readOutbound(as: ByteBuffer.self) {
                moved = true
                self.clientFlights.append(bytes.readableBytes)
                if self.server.isActive { try self.server.writeInbound(bytes) }
            }
            while let bytes = try self.server.readOutbound(as: ByteBuffer.self) {
                moved = true
                self.serverFlights.append(bytes.readableBytes)
                if self.client.isActive { try self.client.writeInbound(bytes) }
            }
        }
    }

    func handshake() throws {
        try self.shuttle()
    }

    func finish() {
        _ = try? self.client.finish(acceptAlreadyClosed: true)
        _ = try? self.server.finish(acceptAlreadyClosed: true)
    }
}

func buffer(_ bytes: some Sequence<UInt8>) -> ByteBuffer {
    ByteBuffer(bytes: Array(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    for _ in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes.append(UInt8(truncatingIfNeeded: state))
    }
    return bytes
}
