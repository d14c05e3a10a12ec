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

/// An in-process `RPCServer` on 127.0.0.1 (kernel-chosen port) serving `VPCEPAPI` over mutual TLS,
/// on a SQLite store in a fresh directory.
final class TestServer: Sendable {
    static let regions = ["eu-west-1", "eu-north-1"]

    let port: Int
    let directory: String
    private let server: RPCServer
    private let store: SQLiteRegistryStore

    private init(port: Int, directory: String, server: RPCServer, store: SQLiteRegistryStore) {
        self.port = port
        self.directory = directory
        self.server = server
        self.store = store
    }

    static func start() async throws -> TestServer {
        let certificates = Certificates.shared
        var logger = Logger(label: "vpcep.service-tests")
        logger.logLevel = .error
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vpcep-service-tests-\(UUID().uuidString)").path
        let store = try await SQLiteRegistryStore.open(directory: directory, logger: logger)
        let registry = Registry(store: store, regions: Set(regions))
        let tls = try TLSContext.server(TLSConfiguration(
            certificateChainFile: certificates.path("server.crt"), privateKeyFile: certificates.path("server.key"),
            trustRootsFile: certificates.path("ca.crt")))
        let server = RPCServer(
            router: VPCEPAPI.makeRouter(registry: registry), tlsContext: tls, group: MultiThreadedEventLoopGroup.singleton,
            logger: logger)
        let address = try await server.start(host: "127.0.0.1", port: 0)
        return TestServer(port: address.port ?? 0, directory: directory, server: server, store: store)
    }

    func stop() async {
        try? await server.stop()
        try? await store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A client (one connection) acting as `identity`: a tenant name or "ops".
    func client(_ identity: String, region: String = TestServer.regions[0]) throws -> VPCEPClient {
        let certificates = Certificates.shared
        return try VPCEPClient(configuration: .init(
            host: "127.0.0.1", port: port, region: region, caFile: certificates.path("ca.crt"),
            certificateFile: certificates.path("\(identity).crt"), keyFile: certificates.path("\(identity).key"),
            serverHostname: "localhost", defaultTimeout: .seconds(60)))
    }
}

/// Runs `body` against a fresh server, always stopping it.
func withTestServer(_ body: (TestServer) async throws -> Void) async throws {
    let server = try await TestServer.start()
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}

/// Certificates minted once per test process by the project's script.
struct Certificates: Sendable {
    static let tenants = ["alice", "bob", "carol"]
    let directory: URL

    static let shared: Certificates = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-service-certs-\(UUID().uuidString)")
        var root = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let process = Process()
        process.executableURL = root.appendingPathComponent("certs/generate.sh")
        process.arguments = ["--out", directory.path, "--operator", "ops"] + tenants.flatMap { ["--tenant", $0] }
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            fatalError("cannot run certs/generate.sh: \(error)")
        }
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "certs/generate.sh failed")
        return Certificates(directory: directory)
    }()

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

