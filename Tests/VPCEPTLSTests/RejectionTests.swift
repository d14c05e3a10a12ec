import NIOCore
import NIOEmbedded
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    @Suite struct Rejection {
        /// The client's own handshake may complete (TLS 1.3), but the server's refusal must reach
        /// it as `.certificateRejected`, never as a silent close or success.
        private func expectClientSawRejection(_ pair: EmbeddedTLSPair) throws {
            let clientError = try #require(pair.clientRecorder.tlsErrors.first)
            #expect(clientError.code == .certificateRejected)
            #expect(clientError.message.hasPrefix("the server rejected this client's certificate: "))
            #expect(pair.clientRecorder.received.isEmpty)
            #expect(!pair.client.isActive)
        }

        @Test func clientWithoutCertificate() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.clientWithoutCertificate(pki.configuration("alice")),
                server: TLSContext.server(pki.configuration("server"))
            )
            defer { pair.finish() }
            let write = pair.client.writeAndFlush(buffer("request".utf8))
            try pair.handshake()

            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .peerCertificateInvalid)
            #expect(serverError.message == "the client presented no certificate")
            #expect(pair.serverRecorder.handshakes.isEmpty)
            #expect(pair.serverRecorder.received.isEmpty)
            #expect(!pair.server.isActive)
            try expectClientSawRejection(pair)
            #expect(pair.clientRecorder.tlsErrors.first?.message.contains("certificate required") == true, "\(pair.clientRecorder.tlsErrors)")
            _ = try? write.wait()
        }

        @Test func clientCertificateFromAnotherCA() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.client(
                    TLSConfiguration(
                        certificateChainFile: pki.otherFile("alice.crt"),
                        privateKeyFile: pki.otherFile("alice.key"),
                        trustRootsFile: pki.file("ca.crt")
                    )
                ),
                server: TLSContext.server(pki.configuration("server"))
            )
            defer { pair.finish() }
            try pair.handshake()

            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .peerCertificateInvalid)
            #expect(serverError.message.hasPrefix("the client's certificate failed verification: "))
            #expect(!serverError.openSSLErrors.isEmpty)
            #expect(pair.serverRecorder.handshakes.isEmpty)
            try expectClientSawRejection(pair)
        }

        @Test func serverCertificateFromAnotherCA() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(
                client: TLSContext.client(pki.configuration("alice")),
                server: TLSContext.server(
                    TLSConfiguration(
                        certificateChainFile: pki.otherFile("server.crt"),
                        privateKeyFile: pki.otherFile("server.key"),
                        trustRootsFile: pki.file("ca.crt")
                    )
                )
            )
            defer { pair.finish() }
            try pair.handshake()

            let clientError = try #require(pair.clientRecorder.tlsErrors.first)
            #expect(clientError.code == .peerCertificateInvalid)
            #expect(clientError.message.hasPrefix("the server's certificate failed verification: "))
            #expect(pair.clientRecorder.handshakes.isEmpty)
            #expect(!pair.client.isActive)
            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .handshakeFailed)
            #expect(serverError.message.contains("refused the handshake"))
            #expect(!pair.server.isActive)
        }

        @Test(arguments: ["example.com", "localhost.example", "127.0.0.2", "::1"])
        func wrongServerName(hostname: String) throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, hostname: hostname)
            defer { pair.finish() }
            try pair.handshake()
            let clientError = try #require(pair.clientRecorder.tlsErrors.first)
            #expect(clientError.code == .peerCertificateInvalid)
            #expect(clientError.message.contains("mismatch"))
            #expect(pair.clientRecorder.handshakes.isEmpty)
            #expect(pair.serverRecorder.handshakes.isEmpty)
        }

        @Test func revokedClientCertificate() throws {
            let pki = try PKI.require()
            let server = try TLSContext.server(pki.configuration("server", crl: true))

            let revoked = try EmbeddedTLSPair(client: TLSContext.client(pki.configuration("mallory")), server: server)
            defer { revoked.finish() }
            try revoked.handshake()
            let serverError = try #require(revoked.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .peerCertificateInvalid)
            #expect(serverError.message.contains("revoked"))
            try expectClientSawRejection(revoked)
            #expect(revoked.clientRecorder.tlsErrors.first?.message.contains("revoked") == true)

            let good = try EmbeddedTLSPair(client: TLSContext.client(pki.configuration("alice")), server: server)
            defer { good.finish() }
            try good.handshake()
            #expect(good.serverRecorder.errors.isEmpty)
            #expect(good.serverRecorder.handshakes.first?.peer?.uriSANs == ["vpcep://tenant/alice"])
        }

        @Test func revokedCertificateIsAcceptedWithoutCRL() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, client: "mallory")
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.handshakes.first?.peer?.uriSANs == ["vpcep://tenant/mallory"])
        }

        @Test func clientCertificateWithoutClientAuthUsage() throws {
            // The server certificate is serverAuth only: the server must not take it as a client.
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, client: "server")
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.tlsErrors.first?.code == .peerCertificateInvalid)
            try expectClientSawRejection(pair)
        }
    }
}
