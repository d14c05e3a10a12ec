import Logging
import NIOCore
import ServiceLifecycle
import VPCEPAdmin
import VPCEPRPC

/// The RPC server as a service of the group: binds, serves until graceful shutdown, then drains
/// (docs/PROTOCOL.md §7) while `/readyz` says so.
struct RPCServerService: Service, CustomStringConvertible {
    let server: RPCServer
    let address: (host: String, port: Int)
    let readiness: Readiness
    let gracePeriod: Duration
    let logger: Logger
    /// Logged with the "listening" line, which test harnesses and operators wait for.
    let metadata: Logger.Metadata
    /// Called when draining starts, before the listener closes.
    var onDrain: @Sendable () -> Void = {}

    var description: String { "RPCServer" }

    func run() async throws {
        let bound: SocketAddress
        do {
            bound = try await server.start(host: address.host, port: address.port)
        } catch {
            throw StartupError("cannot listen on \(address.host):\(address.port): \(StartupError.describe(error))")
        }
        // The group traps the shutdown signals before it runs any service, so from this line on a
        // SIGTERM drains instead of killing the process.
        readiness.markReady()
        var metadata = metadata
        metadata["address"] = "\(StartupError.describe(bound, fallback: address))"
        logger.notice("vpcep-server listening", metadata: metadata)

        // Cancellation means the group is ending without a drain (another service failed); the
        // listener must still close, and draining an idle server costs nothing.
        try? await gracefulShutdown()
        logger.notice("draining", metadata: ["grace_seconds": "\(gracePeriod.components.seconds)"])
        readiness.markNotReady("shutting down")
        onDrain()
        await server.shutdown(gracePeriod: gracePeriod)
    }
}
