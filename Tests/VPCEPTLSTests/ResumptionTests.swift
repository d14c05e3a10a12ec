import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    /// Session resumption with TLS 1.3 tickets (docs/PROTOCOL.md §1.3).
    @Suite struct Resumption {
        private func connect(_ client: TLSContext, _ server: TLSContext, key: String?) throws -> EmbeddedTLSPair {
            let pair = try EmbeddedTLSPair(client: client, server: server, sessionKey: key)
            try pair.handshake()
            return pair
        }

        @Test func secondConnectionResumesAndKeepsTheIdentity() throws {
            let pki = try PKI.require()
            let client = try TLSContext.client(pki.configuration("alice"))
            let server = try TLSContext.server(pki.configuration("server"))

            let first = try connect(client, server, key: "localhost:443")
            defer { first.finish() }
            #expect(first.clientRecorder.handshakes.first?.resumed == false)
            #expect(first.serverRecorder.handshakes.first?.resumed == false)
            // The server's tickets follow its handshake; the client caches them as it reads.
            #expect(client.cachedSessionCount == 1)

            let second = try connect(client, server, key: "localhost:443")
            defer { second.finish() }
            #expect(second.clientRecorder.errors.isEmpty && second.serverRecorder.errors.isEmpty)
            #expect(second.clientRecorder.handshakes.first?.resumed == true)
            let serverSide = try #require(second.serverRecorder.handshakes.first)
            #expect(serverSide.resumed)
            #expect(serverSide.peer?.uriSANs == ["vpcep://tenant/alice"])
            // A resumed handshake sends no certificates: the server's first flight (ServerHello to
            // Finished) is far smaller. (Its session ticket, which carries the client's
            // certificate, is the same size after either handshake.)
            #expect(try #require(second.serverFlights.first) < #require(first.serverFlights.first) / 2)

            // Data still flows both ways.
            second.client.writeAndFlush(buffer("ping".utf8), promise: nil)
            try second.shuttle()
            #expect(second.serverRecorder.received == Array("ping".utf8))
        }

        @Test func noKeyMeansNoResumption() throws {
            let pki = try PKI.require()
            let client = try TLSContext.client(pki.configuration("alice"))
            let server = try TLSContext.server(pki.configuration("server"))
            let first = try connect(client, server, key: nil)
            defer { first.finish() }
            #expect(client.cachedSessionCount == 0)
            let second = try connect(client, server, key: nil)
            defer { second.finish() }
            #expect(second.serverRecorder.handshakes.first?.resumed == false)
        }

        @Test func sessionsAreKeptPerServer() throws {
            let pki = try PKI.require()
            let client = try TLSContext.client(pki.configuration("alice"))
            let server = try TLSContext.server(pki.configuration("server"))
            let first = try connect(client, server, key: "a:1")
            defer { first.finish() }
            let other = try connect(client, server, key: "b:2")
            defer { other.finish() }
            #expect(other.serverRecorder.handshakes.first?.resumed == false)
            #expect(client.cachedSessionCount == 2)
        }

        @Test func aNewServerContextFallsBackToAFullHandshake() throws {
            // What a certificate reload does: new connections use a new context, whose ticket key
            // cannot open the old tickets.
            let pki = try PKI.require()
            let client = try TLSContext.client(pki.configuration("alice"))
            let first = try connect(client, try TLSContext.server(pki.configuration("server")), key: "k")
            defer { first.finish() }
            let second = try connect(client, try TLSContext.server(pki.configuration("server")), key: "k")
            defer { second.finish() }
            #expect(second.clientRecorder.errors.isEmpty && second.serverRecorder.errors.isEmpty)
            #expect(second.clientRecorder.handshakes.first?.resumed == false)
            #expect(second.serverRecorder.handshakes.first?.peer?.uriSANs == ["vpcep://tenant/alice"])
        }
    }
}
