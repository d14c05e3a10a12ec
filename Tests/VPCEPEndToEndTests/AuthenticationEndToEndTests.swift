import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Mutual TLS at the front door: who gets in, and that refusals leave the server serving others.
@Suite("Authentication end to end", .timeLimit(.minutes(2)))
struct AuthenticationEndToEndTests {
    /// What these refusals may take: they come at once, but a full parallel run on 2 cores has made a
    /// handshake wait past 10 s, and the assertion is the refusal's status, not its speed (a refusal
    /// taken for a retryable failure would still end in DEADLINE_EXCEEDED and fail the test).
    static let patience: Duration = .seconds(60)

    static func patientClient(_ configuration: VPCEPClient.Configuration) throws -> VPCEPClient {
        var configuration = configuration
        configuration.connectTimeout = patience
        return try VPCEPClient(configuration: configuration)
    }

    @Test("a client certificate from another CA is refused, and the server keeps serving")
    func foreignCertificateRefused() async throws {
        try await withServer { server in
            let certificates = TestCertificates.shared
            let impostor = try Self.patientClient(.init(
                host: "127.0.0.1", port: server.port, region: "eu-west-1", caFile: certificates.ca,
                certificateFile: certificates.rogueCertificate("alice"), keyFile: certificates.rogueKey("alice"),
                serverHostname: "localhost", defaultTimeout: Self.patience
            ))
            await expectFailure(.unauthenticated, "CLIENT_CERTIFICATE_REJECTED") { () async throws(VPCEPError) in
                try await impostor.listVpcs(ListVpcsRequest())
            }
            await impostor.close()

            let alice = try server.client("alice")
            #expect(try await alice.whoAmI(WhoAmIRequest()).id == "alice")
            await alice.close()
        }
    }

    @Test("a client with no certificate is refused during the handshake")
    func missingCertificateRefused() async throws {
        try await withServer { server in
            // openssl s_client is a TLS client nobody here wrote; without -cert it sends no certificate.
            let result = try await runCommand(
                URL(fileURLWithPath: "/usr/bin/openssl"),
                ["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", TestCertificates.shared.ca,
                 "-tls1_3", "-alpn", "vpcep/1", "-verify_return_error", "-ign_eof"],
                environment: ProcessInfo.processInfo.environment
            )
            #expect(result.stderr.contains("certificate required") || result.stdout.contains("certificate required"),
                    "stdout: \(result.stdout)\nstderr: \(result.stderr)")

            let bob = try server.client("bob")
            #expect(try await bob.whoAmI(WhoAmIRequest()).id == "bob")
            await bob.close()
        }
    }

    @Test("the server's identity check: an operator and a tenant are told apart by their certificates")
    func whoAmI() async throws {
        try await withServer { server in
            let ops = try server.client("ops", region: "eu-north-1")
            let answer = try await ops.whoAmI(WhoAmIRequest())
            #expect(answer.kind == .operator)
            #expect(answer.id == "ops")
            #expect(answer.region == "eu-north-1")
            #expect(answer.regions == ["eu-north-1", "eu-west-1"])
            await ops.close()
        }
    }

    @Test("a client refuses a server whose certificate does not carry the name it dialled")
    func serverNameChecked() async throws {
        try await withServer { server in
            let certificates = TestCertificates.shared
            let client = try Self.patientClient(.init(
                host: "127.0.0.1", port: server.port, region: "eu-west-1", caFile: certificates.ca,
                certificateFile: certificates.certificate("alice"), keyFile: certificates.key("alice"),
                serverHostname: "vpcep.example.com", defaultTimeout: Self.patience
            ))
            await expectFailure(.unavailable, "SERVER_CERTIFICATE_INVALID") { () async throws(VPCEPError) in
                try await client.listVpcs(ListVpcsRequest())
            }
            await client.close()
        }
    }
}
