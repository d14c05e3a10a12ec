import NIOCore
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    /// The server accepts only cheap key exchange groups: a finite-field group costs it up to
    /// 150 times the CPU of X25519 per handshake (issue 10, defect 4).
    @Suite struct KeyExchangeGroups {
        private func pair(clientGroups: [String]) throws -> EmbeddedTLSPair {
            let pki = try PKI.require()
            var client = pki.configuration("alice")
            client.keyExchangeGroups = clientGroups
            return try EmbeddedTLSPair(client: TLSContext.client(client), server: TLSContext.server(pki.configuration("server")))
        }

        @Test(arguments: ["ffdhe8192", "ffdhe2048", "X448", "P-521"])
        func clientOfferingOnlyAnExpensiveOrUnlistedGroupIsRefused(group: String) throws {
            let pair = try pair(clientGroups: [group])
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.handshakes.isEmpty)
            let serverError = try #require(pair.serverRecorder.tlsErrors.first)
            #expect(serverError.code == .handshakeFailed)
            #expect(!pair.server.isActive)
        }

        @Test(arguments: ["X25519", "P-256", "P-384"])
        func defaultGroupsAreAccepted(group: String) throws {
            let pair = try pair(clientGroups: [group])
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.errors.isEmpty)
            #expect(pair.serverRecorder.handshakes.count == 1)
        }

        /// A client that offers ffdhe8192 first still gets a cheap group when it also has one.
        @Test func expensiveFirstFallsBackToX25519() throws {
            let pair = try pair(clientGroups: ["ffdhe8192", "X25519"])
            defer { pair.finish() }
            try pair.handshake()
            #expect(pair.serverRecorder.errors.isEmpty)
            #expect(pair.serverRecorder.handshakes.count == 1)
        }

        @Test func unknownGroupNameIsAConfigurationError() throws {
            let pki = try PKI.require()
            var configuration = pki.configuration("server")
            configuration.keyExchangeGroups = ["X25519", "no-such-group"]
            #expect {
                _ = try TLSContext.server(configuration)
            } throws: { error in
                (error as? TLSError)?.code == .invalidConfiguration
                    && (error as? TLSError)?.message.contains("no-such-group") == true
            }
        }
    }
}
