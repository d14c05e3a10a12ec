import ArgumentParser
import Dispatch
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import VPCEPAdmin
import VPCEPRPC
import VPCEPRegistry
import VPCEPService
import VPCEPStoreSQLite
import VPCEPTLS

@main
struct VPCEPServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpcep-server",
        abstract: "Serves the vpcep API over mutual TLS, with its registry in SQLite."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let settings = try ServerSettings(options)
        if options.printConfig {
            print(settings.printable)
            return
        }
        let logger = Self.bootstrapLogging(level: settings.logLevel.value)
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))

        let tlsConfiguration = TLSConfiguration(
            certificateChainFile: settings.certificateFile.value, privateKeyFile: settings.keyFile.value,
            trustRootsFile: settings.caFile.value, crlFile: settings.crlFile.value,
            keyExchangeGroups: settings.tlsGroups.value
        )
        let tlsContext: TLSContext
        do {
            tlsContext = try TLSContext.server(tlsConfiguration)
        } catch {
            throw StartupError("TLS configuration refused: \(error.message)")
        }

        let store: SQLiteRegistryStore
        do {
            store = try await SQLiteRegistryStore.open(directory: settings.dataDirectory.value, logger: logger)
        } catch {
            throw StartupError("cannot open the data directory \(settings.dataDirectory.value): \(error)")
        }

        let readiness = Readiness()
        readiness.addCheck { store.readinessProblem.map { "registry store: \($0)" } }
        let group = MultiThreadedEventLoopGroup.singleton
        var admin: AdminServer?
        if let adminAddress = settings.adminListen.value {
            let server = AdminServer(registry: metrics, readiness: readiness, group: group)
            do {
                let bound = try await server.start(host: adminAddress.host, port: adminAddress.port)
                logger.notice("admin listener", metadata: ["address": "\(Self.describe(bound, fallback: adminAddress))"])
            } catch {
                try? await store.close()
                throw StartupError("cannot listen on \(adminAddress.host):\(adminAddress.port) (admin): \(Self.describe(error))")
            }
            admin = server
        }

        let registry = Registry(store: store, regions: Set(settings.regions.value))
        let server = RPCServer(router: VPCEPAPI.makeRouter(registry: registry), tlsContext: tlsContext, group: group,
                               logger: logger)
        let address: SocketAddress
        do {
            address = try await server.start(host: settings.listen.value.host, port: settings.listen.value.port)
        } catch {
            await admin?.stop()
            try? await store.close()
            throw StartupError("cannot listen on \(settings.listen.value.host):\(settings.listen.value.port): \(Self.describe(error))")
        }
        readiness.markReady()
        logger.notice("vpcep-server listening", metadata: [
            "address": "\(Self.describe(address, fallback: settings.listen.value))",
            "regions": "\(settings.regions.value.joined(separator: ","))",
            "data_dir": "\(settings.dataDirectory.value)",
        ])

        // SIGHUP reloads the certificates and CRL; SIGTERM or SIGINT drains and stops.
        let (signals, signalSources) = Self.signals()
        defer { signalSources.forEach { $0.cancel() } }
        for await signal in signals {
            if signal == "SIGHUP" {
                do {
                    try server.reloadTLS(tlsConfiguration)
                    logger.notice("reloaded TLS certificates and CRL", metadata: ["signal": "SIGHUP"])
                } catch {
                    logger.error("TLS reload refused; the previous certificates stay in use",
                                 metadata: ["signal": "SIGHUP", "error": "\(error.message)"])
                }
                continue
            }
            logger.notice("draining", metadata: ["signal": "\(signal)", "grace_seconds": "\(settings.shutdownGrace.value)"])
            readiness.markNotReady("shutting down")
            await server.shutdown(gracePeriod: .seconds(settings.shutdownGrace.value))
            break
        }
        await admin?.stop()
        try? await store.close()
        logger.notice("stopped")
    }

    private static func bootstrapLogging(level: String) -> Logger {
        // Log lines carry client-supplied text: every line is escaped on its way out.
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler(wrapping: StreamLogHandler.standardError(label: label))
            handler.logLevel = Logger.Level(rawValue: level) ?? .info
            return handler
        }
        return Logger(label: "vpcep-server")
    }

    private static func describe(_ address: SocketAddress, fallback: (host: String, port: Int)) -> String {
        "\(address.ipAddress ?? fallback.host):\(address.port ?? fallback.port)"
    }

    /// "address already in use" rather than NIO's type dump.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }

    /// SIGHUP, SIGTERM and SIGINT as they arrive, by name, and the sources to keep alive meanwhile.
    private static func signals() -> (AsyncStream<String>, [any DispatchSourceSignal]) {
        let queue = DispatchQueue(label: "vpcep.signals")
        let (stream, continuation) = AsyncStream<String>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGHUP, "SIGHUP"), (SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            // Dispatch delivers the signal only once the default action is off.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        return (stream, sources)
    }
}

/// A start-up failure: printed as one clear line, exit code 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = "vpcep-server: " + description }
}
