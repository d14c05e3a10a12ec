import Logging
import ServiceLifecycle
import VPCEPRegistry

/// Retention of the change log (docs/DOMAIN.md, "Watch"): removes events older than `retention`, at
/// start and then every `interval`, until graceful shutdown.
struct ChangeLogCompactionService: Service, CustomStringConvertible {
    let registry: Registry
    let retention: Duration
    var interval: Duration = .seconds(60)
    let logger: Logger

    var description: String { "ChangeLogCompaction" }

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let removed = try await registry.compactChangeLog(retention: retention)
                if removed > 0 { logger.info("change log compacted", metadata: ["events_removed": "\(removed)"]) }
            } catch {
                // The store repairs itself; the next round tries again.
                logger.warning("change log compaction failed", metadata: ["reason": "\(error.reason)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
