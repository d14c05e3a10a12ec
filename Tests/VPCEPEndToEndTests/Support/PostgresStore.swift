import Foundation
import VPCEPClient
import VPCEPTestSupport

/// The test PostgreSQL server (scripts/postgres.sh), when there is one.
let testPostgresURL = ProcessInfo.processInfo.environment["VPCEP_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

/// `vpcep-server` arguments for the test PostgreSQL server with a schema of the caller's own, so
/// that tests running in parallel never see each other's rows.
func postgresStoreArguments(url: String, password: String) throws -> [String] {
    let schema = "e2e_" + UUID().uuidString.prefix(8).lowercased()
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-store-password-\(UUID().uuidString)")
    try Data((password + "\n").utf8).write(to: file)
    return ["--store", url + "?sslmode=disable&schema=" + schema, "--store-password-file", file.path]
}

/// Starts `count` servers on one store, runs `body` with them and always stops them all.
func withReplicas<T>(
    _ count: Int, store: [String], extraArguments: [String] = [], _ body: ([ServerProcess]) async throws -> T
) async throws -> T {
    var servers: [ServerProcess] = []
    do {
        for _ in 0..<count { servers.append(try await ServerProcess.start(extraArguments: store + extraArguments)) }
        let result = try await body(servers)
        for server in servers { await server.stop() }
        return result
    } catch {
        for server in servers { await server.stop() }
        throw error
    }
}

/// A client of every replica, starting with `servers[first]`, that moves to the next when one fails.
func replicaClient(_ identity: String, of servers: [ServerProcess], first: Int = 0) throws -> VPCEPClient {
    let certificates = TestCertificates.shared
    let ordered = (0..<servers.count).map { servers[(first + $0) % servers.count] }
    return try VPCEPClient(configuration: .init(
        servers: ordered.map { ServerAddress(host: "127.0.0.1", port: $0.port) }, region: ServerProcess.regions[0],
        caFile: certificates.ca, certificateFile: certificates.certificate(identity), keyFile: certificates.key(identity),
        serverHostname: "localhost", defaultTimeout: .seconds(20)
    ))
}
