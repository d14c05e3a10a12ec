import Foundation
import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    @Suite struct Handshake {
        @Test func completesWithALPNAndTenantIdentity() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki)
            defer { pair.finish() }
            try pair.handshake()

            #expect(pair.clientRecorder.errors.isEmpty)
            #expect(pair.serverRecorder.errors.isEmpty)
            let server = try #require(pair.serverRecorder.handshakes.first)
            let client = try #require(pair.clientRecorder.handshakes.first)
            #expect(pair.serverRecorder.handshakes.count == 1)
            #expect(pair.clientRecorder.handshakes.count == 1)
            #expect(server.applicationProtocol == "vpcep/1")
            #expect(client.applicationProtocol == "vpcep/1")
            #expect(server.peer?.uriSANs == ["vpcep://tenant/alice"])
            #expect(server.peer?.subject == "CN=alice,OU=tenant,O=vpcep")
            let notAfter = try #require(server.peer?.notAfter)
            #expect(notAfter > Date().addingTimeInterval(300 * 86_400))
            #expect(notAfter < Date().addingTimeInterval(400 * 86_400))
            #expect(client.peer?.subject == "CN=localhost,O=vpcep")
            #expect(client.peer?.uriSANs == [])
            #expect(pair.client.isActive && pair.server.isActive)
        }

        @Test func operatorIdentity() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, client: "ops")
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.handshakes.first?.peer?.uriSANs == ["vpcep://operator/ops"])
        }

        @Test(arguments: ["localhost", "127.0.0.1", "LOCALHOST", "[127.0.0.1]"])
        func acceptedServerNames(hostname: String) throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, hostname: hostname)
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.clientRecorder.errors.isEmpty)
            #expect(pair.clientRecorder.handshakes.count == 1)
            #expect(pair.serverRecorder.handshakes.count == 1)
        }

        @Test func clientWithoutALPNIsAccepted() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.client(pki.configuration("alice", alpn: [])),
                server: TLSContext.server(pki.configuration("server"))
            )
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.errors.isEmpty)
            #expect(pair.serverRecorder.handshakes.first?.applicationProtocol == nil)
            #expect(pair.serverRecorder.handshakes.first?.peer?.uriSANs == ["vpcep://tenant/alice"])
        }

        @Test func serverPicksVPCEPAmongOthers() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.client(pki.configuration("alice", alpn: ["h2", "vpcep/1", "http/1.1"])),
                server: TLSContext.server(pki.configuration("server"))
            )
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.clientRecorder.handshakes.first?.applicationProtocol == "vpcep/1")
        }

        @Test func clientOfferingOnlyOtherProtocolsIsRefused() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.client(pki.configuration("alice", alpn: ["h2", "http/1.1"])),
                server: TLSContext.server(pki.configuration("server"))
            )
            defer { pair.finish() }
            try pair.handshake()
            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .handshakeFailed)
            #expect(serverError.message.contains("no supported application protocol"))
            let clientError = try #require(pair.clientRecorder.tlsErrors.first)
            #expect(clientError.code == .handshakeFailed)
            #expect(clientError.message.contains("no application protocol"))
            #expect(pair.serverRecorder.handshakes.isEmpty && pair.clientRecorder.handshakes.isEmpty)
            #expect(!pair.server.isActive && !pair.client.isActive)
        }
    }
}
