import Foundation
import Testing
@testable import VPCEPTLS
import VPCEPTestSupport

extension TLSTests {
    @Suite struct Context {
        @Test func mismatchedKeyNamesTheFiles() throws {
            let pki = try PKI.require()
            var configuration = pki.configuration("server")
            configuration.privateKeyFile = pki.file("alice.key")
            for isServer in [true, false] {
                let error = try #require(throws: TLSError.self) {
                    isServer ? try TLSContext.server(configuration) : try TLSContext.client(configuration)
                }
                #expect(error.code == .invalidConfiguration)
                #expect(error.message.contains(pki.file("alice.key")))
                #expect(error.message.contains("does not match"))
            }
        }

        @Test func missingFileIsNamed() throws {
            let pki = try PKI.require()
            for keyPath in [\TLSConfiguration.certificateChainFile, \.privateKeyFile, \.trustRootsFile] {
                var configuration = pki.configuration("server")
                configuration[keyPath: keyPath] = pki.file("missing.pem")
                let error = try #require(throws: TLSError.self) { try TLSContext.server(configuration) }
                #expect(error.code == .fileUnreadable)
                #expect(error.message.contains(pki.file("missing.pem")))
            }
            var configuration = pki.configuration("server")
            configuration.crlFile = pki.file("missing.pem")
            let error = try #require(throws: TLSError.self) { try TLSContext.server(configuration) }
            #expect(error.code == .fileUnreadable)
        }

        @Test func unparsableFilesAreInvalid() throws {
            let pki = try PKI.require()
            let junk = pki.root.appending(path: "junk.pem")
            try Foundation.Data("not a PEM file\n".utf8).write(to: junk)
            for keyPath in [\TLSConfiguration.certificateChainFile, \.privateKeyFile, \.trustRootsFile] {
                var configuration = pki.configuration("server")
                configuration[keyPath: keyPath] = junk.path
                let error = try #require(throws: TLSError.self) { try TLSContext.server(configuration) }
                #expect(error.code == .invalidConfiguration)
                #expect(error.message.contains(junk.path))
            }
            var configuration = pki.configuration("server")
            configuration.crlFile = pki.file("ca.crt")  // a certificate, not a CRL
            let error = try #require(throws: TLSError.self) { try TLSContext.server(configuration) }
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains("no CRL"))
        }

        @Test(arguments: [[""], [String(repeating: "x", count: 256)]])
        func invalidALPNNames(protocols: [String]) throws {
            let pki = try PKI.require()
            let error = try #require(throws: TLSError.self) {
                try TLSContext.client(pki.configuration("alice", alpn: protocols))
            }
            #expect(error.code == .invalidConfiguration)
        }

        @Test func errorDescriptions() {
            let error = TLSError(code: .certificateRejected, message: "m", openSSLErrors: ["e1", "e2"])
            #expect(error.description == "TLS error (certificateRejected): m")
            #expect(error.debugDescription == "TLS error (certificateRejected): m [OpenSSL: e1; e2]")
            #expect(TLSError.Code.handshakeFailed != .protocolError)
        }
    }
}
