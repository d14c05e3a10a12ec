import Foundation
import Logging
import NIOPosix
import Testing
import VPCEPClient
import VPCEPRPC
import VPCEPRegistry
import VPCEPService
import VPCEPStoreSQLite
import VPCEPTLS
import VPCEPTestSupport

/// An in-process `RPCServer` on 127.0.0.1 (kernel-chosen port) serving `VPCEPAPI` over mutual TLS,
/// on a SQLite store in a fresh directory.
final class TestServer: Sendable {
    static let regions = ["eu-west-1", "eu-north-1"]

    let port: Int
    let directory: String
    let registry: Registry
    private let server: RPCServer
    private let store: SQLiteRegistryStore

    private init(port: Int, directory: String, registry: Registry, server: RPCServer, store: SQLiteRegistryStore) {
        self.registry = registry
        self.port = port
        self.directory = directory
        self.server = server
        self.store = store
    }

    static func start(changeFeed: ChangeFeedConfiguration = .defaults) async throws -> TestServer {
        let certificates = TestCertificates.shared
        var logger = Logger(label: "vpcep.service-tests")
        logger.logLevel = .error
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vpcep-service-tests-\(UUID().uuidString)").path
        let store = try await SQLiteRegistryStore.open(directory: directory, logger: logger)
        let registry = Registry(store: store, regions: Set(regions), changeFeed: changeFeed)
        let tls = try TLSContext.server(TLSConfiguration(
            certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey,
            trustRootsFile: certificates.ca))
        let server = RPCServer(
            router: VPCEPAPI.makeRouter(registry: registry), tlsContext: tls, group: MultiThreadedEventLoopGroup.singleton,
            logger: logger)
        let address = try await server.start(host: "127.0.0.1", port: 0)
        return TestServer(
            port: address.port ?? 0, directory: directory, registry: registry, server: server, store: store)
    }

    func stop() async {
        try? await server.stop()
        try? await store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A client (one connection) acting as `identity`: a tenant name or "ops".
    func client(_ identity: String, region: String = TestServer.regions[0]) throws -> VPCEPClient {
        let certificates = TestCertificates.shared
        return try VPCEPClient(configuration: .init(
            host: "127.0.0.1", port: port, region: region, caFile: certificates.ca,
            certificateFile: certificates.certificate(identity), keyFile: certificates.key(identity),
            serverHostname: "localhost", defaultTimeout: .seconds(60)))
    }
}

/// Runs `body` against a fresh server, always stopping it.
func withTestServer(
    changeFeed: ChangeFeedConfiguration = .defaults, _ body: (TestServer) async throws -> Void
) async throws {
    let server = try await TestServer.start(changeFeed: changeFeed)
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}
