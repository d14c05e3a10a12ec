import Logging
import ServiceLifecycle
import UnixSignals
import VPCEPRPC
import VPCEPTLS

/// Re-reads the certificate, key, CA bundle and CRL on each SIGHUP; files that cannot be used
/// leave the previous ones in place.
struct TLSReloadService: Service, CustomStringConvertible {
    let server: RPCServer
    let configuration: TLSConfiguration
    /// Created before the group runs, so that a SIGHUP sent as soon as the server says it
    /// listens is caught rather than ending the process.
    let signals: UnixSignalsSequence
    let logger: Logger

    var description: String { "TLSReload" }

    func run() async {
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try server.reloadTLS(configuration)
                logger.notice("reloaded TLS certificates and CRL", metadata: ["signal": "SIGHUP"])
            } catch {
                logger.error("TLS reload refused; the previous certificates stay in use",
                             metadata: ["signal": "SIGHUP", "error": "\(error.message)"])
            }
        }
    }
}
