import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    /// Bytes from the network must never crash the process: they become a `TLSError` and a close.
    @Suite struct Garbage {
        static let inputs: [(String, [UInt8])] = [
            ("http request", Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)),
            ("zeros", [UInt8](repeating: 0, count: 4096)),
            ("record header with huge length", [0x16, 0x03, 0x01, 0xFF, 0xFF]),
            ("handshake record with bad body", [0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
            ("random", pseudoRandomBytes(count: 65_536, seed: 7)),
        ]

        @Test(arguments: Self.inputs.indices)
        func toServer(index: Int) throws {
            let pki = try PKI.require()
            let channel = EmbeddedChannel()
            let recorder = Recorder()
            try channel.pipeline.syncOperations.addHandlers(
                TLSHandler(context: TLSContext.server(pki.configuration("server"))),
                recorder
            )
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(buffer(Self.inputs[index].1))
            let error = try #require(recorder.tlsErrors.first, "\(Self.inputs[index].0)")
            #expect(error.code == .handshakeFailed)
            #expect(!channel.isActive)
            #expect(recorder.handshakes.isEmpty && recorder.reads.isEmpty)
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }

        @Test func dripFedGarbageToServer() throws {
            let pki = try PKI.require()
            let channel = EmbeddedChannel()
            let recorder = Recorder()
            try channel.pipeline.syncOperations.addHandlers(
                TLSHandler(context: TLSContext.server(pki.configuration("server"))),
                recorder
            )
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            for byte in pseudoRandomBytes(count: 64, seed: 3) where channel.isActive {
                try channel.writeInbound(buffer([byte]))
            }
            #expect(recorder.tlsErrors.count == 1)
            #expect(!channel.isActive)
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }

        /// A real ClientHello with bytes flipped at many positions: an error or a handshake
        /// flight, never a crash.
        @Test func mutatedClientHellos() throws {
            let pki = try PKI.require()
            let serverContext = try TLSContext.server(pki.configuration("server"))
            let clientContext = try TLSContext.client(pki.configuration("alice"))
            let hello = try {
                let pair = try EmbeddedTLSPair(client: clientContext, server: serverContext)
                defer { pair.finish() }
                return try #require(try pair.client.readOutbound(as: ByteBuffer.self))
            }()
            let bytes = Array(hello.readableBytesView)
            let noise = pseudoRandomBytes(count: 400, seed: 11)
            for round in 0..<200 {
                var mutated = bytes
                let position = (Int(noise[round]) << 8 | Int(noise[round + 200])) % bytes.count
                mutated[position] ^= noise[(round + 1) % noise.count] | 1
                let channel = EmbeddedChannel()
                let recorder = Recorder()
                try channel.pipeline.syncOperations.addHandlers(TLSHandler(context: serverContext), recorder)
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
                try channel.writeInbound(buffer(mutated))
                #expect(recorder.handshakes.isEmpty)
                if !recorder.errors.isEmpty {
                    #expect(!channel.isActive)
                }
                _ = try? channel.finish(acceptAlreadyClosed: true)
            }
        }

        @Test func toClientDuringHandshake() throws {
            let pki = try PKI.require()
            let channel = EmbeddedChannel()
            let recorder = Recorder()
            try channel.pipeline.syncOperations.addHandlers(
                TLSHandler(context: TLSContext.client(pki.configuration("alice")), serverHostname: "localhost"),
                recorder
            )
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            #expect(try channel.readOutbound(as: ByteBuffer.self) != nil)  // the ClientHello
            try channel.writeInbound(buffer("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
            #expect(recorder.tlsErrors.first?.code == .handshakeFailed)
            #expect(!channel.isActive)
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }

        @Test func afterTheHandshake() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()
            try pair.server.writeInbound(buffer(pseudoRandomBytes(count: 1000, seed: 5)))
            #expect(pair.serverRecorder.tlsErrors.first?.code == .protocolError)
            #expect(!pair.server.isActive)
            #expect(pair.serverRecorder.received.isEmpty)
        }
    }
}
