import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    /// What the server accepts as a client identity, and the CRLs it accepts to check them with.
    @Suite struct IdentityChecks {
        @Test("a CA:TRUE certificate from the trusted CA is not a client identity: refused in the handshake")
        func caCertificateAsClient() throws {
            let pki = try PKI.require()
            let pair = try EmbeddedTLSPair(pki, client: "ca-client")
            defer { pair.finish() }
            try pair.handshake()
            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .peerCertificateInvalid)
            #expect(serverError.message.contains("certificate purpose"), "\(serverError.message)")
            #expect(pair.serverRecorder.handshakes.isEmpty)
            let clientError = try #require(pair.clientRecorder.tlsErrors.first)
            #expect(clientError.code == .certificateRejected)
            #expect(pair.clientRecorder.received.isEmpty)
        }

        @Test("URI SANs reach the server in certificate order; a URI with a space keeps its place, %-escaped")
        func uriSANsInOrder() throws {
            let pki = try PKI.require()
            for (client, expected) in [
                ("bad-first", ["vpcep://tenant/bad!", "vpcep://tenant/alice"]),
                ("space-first", ["vpcep://tenant/a%20b", "vpcep://tenant/alice"]),
                ("other-scheme-first", ["spiffe://example/alice", "vpcep://tenant/alice"]),
            ] {
                let pair = try EmbeddedTLSPair(pki, client: client)
                defer { pair.finish() }
                try pair.handshake()
                #expect(pair.serverRecorder.errors.isEmpty)
                #expect(pair.serverRecorder.handshakes.first?.peer?.uriSANs == expected, "\(client)")
            }
        }

        @Test("an expired CRL or one not valid yet is refused as configuration, naming the file and the date")
        func outOfDateCRL() throws {
            let pki = try PKI.require()
            for (file, words) in [("crl-expired.pem", "expired at 2020-02-01T00:00:00Z"),
                                  ("crl-future.pem", "not valid before 2099-01-01T00:00:00Z")] {
                var configuration = pki.configuration("server")
                configuration.crlFile = pki.file(file)
                let error = try #require(throws: TLSError.self) { try TLSContext.server(configuration) }
                #expect(error.code == .invalidConfiguration)
                #expect(error.message.contains(pki.file(file)) && error.message.contains(words), "\(error.message)")
            }
            // The current CRL still loads.
            _ = try TLSContext.server(pki.configuration("server", crl: true))
        }
    }
}
