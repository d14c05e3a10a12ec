import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    @Suite struct Transfer {
        @Test func oneMebibyteBothWays() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()

            let up = pseudoRandomBytes(count: 1 << 20, seed: 1)
            let clientWrite = pair.client.writeAndFlush(buffer(up))
            try pair.shuttle()
            try clientWrite.wait()
            #expect(pair.serverRecorder.received == up)
            // One network read carrying the whole payload reaches the next handler as one read.
            #expect(pair.serverRecorder.reads.count == 1)

            let down = pseudoRandomBytes(count: 1 << 20, seed: 2)
            let serverWrite = pair.server.writeAndFlush(buffer(down))
            try pair.shuttle()
            try serverWrite.wait()
            #expect(pair.clientRecorder.received == down)
            #expect(pair.clientRecorder.errors.isEmpty && pair.serverRecorder.errors.isEmpty)
        }

        @Test func manyWritesOneFlushLeaveAsOneBuffer() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()
            _ = try pair.client.readOutbound(as: ByteBuffer.self)

            var futures: [EventLoopFuture<Void>] = []
            for index in 0..<100 {
                futures.append(pair.client.write(buffer("frame \(index);".utf8)))
            }
            #expect(try pair.client.readOutbound(as: ByteBuffer.self) == nil)  // nothing before flush
            pair.client.flush()
            let flight = try #require(try pair.client.readOutbound(as: ByteBuffer.self))
            #expect(try pair.client.readOutbound(as: ByteBuffer.self) == nil)
            for future in futures {
                try future.wait()
            }
            try pair.server.writeInbound(flight)
            let expected = (0..<100).map { "frame \($0);" }.joined()
            #expect(pair.serverRecorder.reads.count == 1)
            #expect(String(decoding: pair.serverRecorder.received, as: UTF8.self) == expected)
        }

        @Test func writesBeforeTheHandshakeAreSentAfterIt() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            let early = pair.client.writeAndFlush(buffer("early".utf8))
            let empty = pair.client.writeAndFlush(ByteBuffer())
            try pair.handshake()
            try early.wait()
            try empty.wait()
            #expect(String(decoding: pair.serverRecorder.received, as: UTF8.self) == "early")
        }

        @Test func closeSendsCloseNotifyAndThePeerCloses() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()
            try pair.client.close().wait()
            try pair.shuttle()
            #expect(!pair.server.isActive)
            #expect(pair.serverRecorder.errors.isEmpty)
            #expect(pair.clientRecorder.errors.isEmpty)
        }

        @Test func writesAfterCloseFail() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()
            try pair.client.close().wait()
            #expect(throws: (any Error).self) {
                try pair.client.writeAndFlush(buffer("late".utf8)).wait()
            }
        }

        @Test func uncleanCloseAfterHandshakeIsReported() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()
            try pair.client.writeAndFlush(buffer("hello".utf8)).wait()
            try pair.shuttle()
            // The client's TCP connection drops without close_notify.
            pair.server.pipeline.fireChannelInactive()
            #expect(pair.serverRecorder.tlsErrors.map(\.code) == [.uncleanShutdown])
        }
    }
}
