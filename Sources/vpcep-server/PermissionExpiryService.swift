import Logging
import ServiceLifecycle
import VPCEPRegistry

/// The expiry sweep of allow-list entries (docs/DOMAIN.md, "Access policies"): every `interval`, rejects
/// the live connections of entries with `on_expiry reject` whose time has come, until graceful shutdown.
/// Safe with several servers on one store: each entry is handled in one transaction that marks it handled.
struct PermissionExpiryService: Service, CustomStringConvertible {
    let registry: Registry
    var interval: Duration = .seconds(1)
    let logger: Logger

    var description: String { "PermissionExpiry" }

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let rejected = try await registry.sweepExpiredPermissions()
                if rejected > 0 {
                    logger.info("expired allow-list entries swept", metadata: ["connections_rejected": "\(rejected)"])
                }
            } catch {
                // The store repairs itself; the next round tries again.
                logger.warning("allow-list expiry sweep failed", metadata: ["reason": "\(error.reason)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
