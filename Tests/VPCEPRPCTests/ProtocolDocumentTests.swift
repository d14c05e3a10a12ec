import Foundation
import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPTLS
import VPCEPWire
import VPCEPTestSupport

/// docs/PROTOCOL.md §11 matches the implementation byte for byte.
@Suite("PROTOCOL.md worked example", .timeLimit(.minutes(1)))
struct ProtocolDocumentTests {
    /// The bytes of the hex block after `<!-- hex:<name> -->` in docs/PROTOCOL.md.
    private func documented(_ name: String) throws -> [UInt8] {
        let url = PKI.repositoryRoot.appending(path: "docs/PROTOCOL.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- hex:\(name) -->"), "no hex:\(name) block")
        let fenceStart = try #require(text.range(of: "```text\n", range: marker.upperBound..<text.endIndex))
        let fenceEnd = try #require(text.range(of: "```", range: fenceStart.upperBound..<text.endIndex))
        var bytes: [UInt8] = []
        for line in text[fenceStart.upperBound..<fenceEnd.lowerBound].split(separator: "\n") {
            for token in line.split(separator: " ").dropFirst() {
                bytes.append(try #require(UInt8(token, radix: 16)))
            }
        }
        return bytes
    }

    @Test("§11 the client encodes the example CALL exactly")
    func callBytes() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            let handshake = channel.eventLoop.makePromise(of: TLSHandshakeCompleted.self)
            handshake.futureResult.whenFailure { _ in }
            try channel.pipeline.syncOperations.addHandler(
                ClientConnectionHandler(maxFrameSize: 1 << 20, handshake: handshake, closeReason: CloseReason()))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let header = try CallHeader(method: "/vpcep.v1.Health/WhoAmI", region: "eu-west-1", timeoutMs: 5000,
                                    requestId: "r1", idempotencyKey: "").serializedBytes()
        let request = try WhoAmIRequest().serializedBytes()
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        try await channel.writeOutbound(ClientConnectionHandler.Command.start(
            OutboundCall(header: header, request: request, deadline: nil, sink: .unary(promise), onStart: { _ in })))
        let written = try #require(try await channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(written.readableBytesView) == (try documented("call")))

        // The documented STATUS ends the call with the documented status.
        try await channel.writeInbound(ByteBuffer(bytes: try documented("status")))
        let error = try #require(await #expect(throws: VPCEPError.self) { try await promise.futureResult.get() })
        #expect(error.code == .unavailable && error.reason.rawValue == "SERVER_SHUTTING_DOWN")
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }

    /// The real Health/WhoAmI's bytes are checked against the same block in VPCEPServiceTests.
    @Test("§11 the server answers the example CALL with exactly the example MESSAGE")
    func messageBytes() async throws {
        var router = RPCRouter()
        router.register(HealthAPI.whoAmI) { _, context in
            WhoAmIResponse(kind: .tenant, id: context.peer.id, region: context.region, regions: ["eu-north-1", "eu-west-1"])
        }
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext { [router] in
            try addServerHandlers(to: channel.pipeline.syncOperations, router: router,
                                  configuration: .defaults { $0.keepaliveInterval = nil }, statistics: ServerStatistics(),
                                  peer: PeerIdentity(kind: .tenant, id: "alice"))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        try await channel.writeInbound(ByteBuffer(bytes: try documented("call")))
        let answer = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        #expect(Array(answer.readableBytesView) == (try documented("message")))
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }

    @Test("§11 the example STATUS is what the server writes for that status")
    func statusBytes() throws {
        let status = VPCEPError(code: .unavailable, reason: .init(rawValue: "SERVER_SHUTTING_DOWN"), message: "").status
        var buffer = ByteBuffer()
        try buffer.writeFrame(type: .status, callID: 1) { $0.writeBytes(try status.serializedBytes()) }
        #expect(Array(buffer.readableBytesView) == (try documented("status")))
    }
}
