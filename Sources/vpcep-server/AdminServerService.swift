import Logging
import NIOCore
import ServiceLifecycle
import VPCEPAdmin

/// The admin listener as a service of the group. It binds before the group runs, so its address
/// is logged before the RPC server's "listening" line; it comes first in the group, so it stops
/// last and `/readyz` keeps answering 503 while the RPC server drains.
struct AdminServerService: Service, CustomStringConvertible {
    let server: AdminServer

    var description: String { "AdminServer" }

    static func start(_ server: AdminServer, address: (host: String, port: Int), logger: Logger) async throws -> Self {
        let bound: SocketAddress
        do {
            bound = try await server.start(host: address.host, port: address.port)
        } catch {
            throw StartupError("cannot listen on \(address.host):\(address.port) (admin): \(StartupError.describe(error))")
        }
        logger.notice("admin listener", metadata: ["address": "\(StartupError.describe(bound, fallback: address))"])
        return Self(server: server)
    }

    func run() async throws {
        // Cancelled or shut down, the listener closes either way.
        try? await gracefulShutdown()
        await server.stop()
    }
}
