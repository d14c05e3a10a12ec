import Foundation
import Testing
import VPCEPClient
import VPCEPProto
import VPCEPTestSupport

/// The server's connections to PostgreSQL over TLS, on a cluster of the test's own that refuses
/// connections without it.
@Suite(
    "the store's connections to PostgreSQL over TLS",
    .enabled(if: OwnPostgresCluster.binaries != nil, "VPCEP_TEST_POSTGRES_BIN is unset: scripts/test.sh sets it"),
    .timeLimit(.minutes(3)))
struct PostgresTLSEndToEndTests {
    @Test("sslmode=require verifies PostgreSQL's certificate against --store-ca; without TLS, or with another CA, the server does not start")
    func requireVerifiesTheServer() async throws {
        let certificates = TestCertificates.shared
        // The test CA's server certificate names 127.0.0.1, where the cluster listens.
        let cluster = try await OwnPostgresCluster.create(
            tls: .init(certificate: certificates.serverCertificate, key: certificates.serverKey))
        do {
            let verified = try Self.store(cluster, sslmode: "require") + ["--store-ca", certificates.ca]
            try await withReplicas(1, store: verified) { servers in
                let client = try servers[0].client("alice")
                defer { Task { await client.close() } }
                let vpc = try await client.createVpc(CreateVpcRequest(name: "over-tls", cidr: "10.9.0.0/16"))
                let listed = try await client.listVpcs(ListVpcsRequest())
                #expect(listed.items.map(\.id) == [vpc.id])
            }

            // PostgreSQL rejects a connection without TLS.
            await Self.expectNoStart(try Self.store(cluster, sslmode: "disable"), saying: "no encryption")

            // A certificate that the given CA did not sign is refused by the server itself.
            let rogue = certificates.rogueDirectory.appendingPathComponent("ca.crt").path
            await Self.expectNoStart(try Self.store(cluster, sslmode: "require") + ["--store-ca", rogue], saying: "certificate")
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    private static func store(_ cluster: OwnPostgresCluster, sslmode: String) throws -> [String] {
        try postgresStoreArguments(url: cluster.url, password: "unused")
            .map { $0.replacingOccurrences(of: "sslmode=disable", with: "sslmode=\(sslmode)") }
    }

    private static func expectNoStart(_ store: [String], saying expected: String) async {
        do {
            let server = try await ServerProcess.start(extraArguments: store)
            await server.stop()
            Issue.record("the server started with \(store)")
        } catch let failure as ServerStartFailure {
            #expect(failure.log.lowercased().contains(expected), "\(failure.log)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
