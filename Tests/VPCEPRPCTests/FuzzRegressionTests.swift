import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPTLS

/// Inputs the fuzz target Fuzz/Sources/FuzzServerConnection failed on, replayed the way it runs
/// them: two option bytes (0x00 0x00: a client with an identity, default limits, the stream in one
/// read), then the decrypted stream of one connection, into a `ServerConnectionHandler` on an
/// `EmbeddedChannel` whose calls run on the channel's loop.
@Suite("Fuzz regressions: server connection")
struct FuzzRegressionTests {
    /// CALL 2 (WhoAmI), then CALL 1 (WhoAmI): the lower call id is a protocol violation, so the
    /// connection closes while call 2 is still in flight.
    static let callInFlightAtViolation: [UInt8] = [
        0x00, 0x00,
        0x00, 0x00, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x2B, 0x0A, 0x17,
        0x2F, 0x76, 0x70, 0x63, 0x65, 0x70, 0x2E, 0x76, 0x31, 0x2E, 0x48, 0x65, 0x61, 0x6C, 0x74, 0x68, 0x2F, 0x57,
        0x68, 0x6F, 0x41, 0x6D, 0x49, 0x12, 0x09, 0x65, 0x75, 0x2D, 0x77, 0x65, 0x73, 0x74, 0x2D, 0x31, 0x22, 0x05,
        0x72, 0x65, 0x71, 0x2D, 0x32,
        0x00, 0x00, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2B, 0x0A, 0x17,
        0x2F, 0x76, 0x70, 0x63, 0x65, 0x70, 0x2E, 0x76, 0x31, 0x2E, 0x48, 0x65, 0x61, 0x6C, 0x74, 0x68, 0x2F, 0x57,
        0x68, 0x6F, 0x41, 0x6D, 0x49, 0x12, 0x09, 0x65, 0x75, 0x2D, 0x77, 0x65, 0x73, 0x74, 0x2D, 0x31, 0x22, 0x05,
        0x72, 0x65, 0x71, 0x2D, 0x31,
    ]

    @Test("calls in flight when the connection closes are counted out of callsInFlight")
    func callsInFlightAfterClose() throws {
        let (statistics, written) = try replay(Self.callInFlightAtViolation)
        #expect(statistics.callsInFlight == 0)
        #expect(statistics.bufferedOutboundBytes == 0)
        // The server did answer the violation, and never answered the abandoned call.
        let sent = try frames(in: written)
        #expect(sent.map(\.type) == [.goAway])
    }

    /// Runs `input` as the fuzz target does; returns the server's counters after the connection
    /// closed and what the server wrote.
    private func replay(_ input: [UInt8]) throws -> (RPCServer.Statistics, [ByteBuffer]) {
        #expect(input.prefix(2) == [0x00, 0x00], "only the default options are replayed here")
        var router = RPCRouter()
        router.register(HealthAPI.whoAmI) { _, context in
            WhoAmIResponse(kind: .tenant, id: context.peer.id, region: context.region, regions: [])
        }
        let channel = EmbeddedChannel()
        let loop = channel.embeddedEventLoop
        let statistics = ServerStatistics()
        try addServerHandlers(to: channel.pipeline.syncOperations, router: router,
                              configuration: .defaults { $0.keepaliveInterval = nil }, statistics: statistics,
                              peer: nil, runsCallsOnEventLoop: true)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireUserInboundEventTriggered(TLSHandshakeCompleted(
            applicationProtocol: "vpcep/1", peer: PeerCertificate(uriSANs: ["vpcep://tenant/alice"], subject: "CN=t")))

        _ = try? channel.writeInbound(ByteBuffer(bytes: input.dropFirst(2)))
        loop.run()
        loop.advanceTime(by: .seconds(60))
        if channel.isActive { channel.close(promise: nil) }
        loop.run()
        var written: [ByteBuffer] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(buffer) }
        _ = try channel.finish(acceptAlreadyClosed: true)
        return (statistics.snapshot, written)
    }
}
