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
            trustRootsFile: settings.caFile.value, crlFile: settings.crlFile.value
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

        let signal = await Self.waitForTerminationSignal()
        logger.notice("stopping", metadata: ["signal": "\(signal)"])
        readiness.markNotReady("shutting down")
        try? await server.stop()
        await admin?.stop()
        try? await store.close()
        logger.notice("stopped")
    }

    private static func bootstrapLogging(level: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
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

    /// Suspends until SIGTERM or SIGINT arrives and returns its name.
    private static func waitForTerminationSignal() async -> String {
        let queue = DispatchQueue(label: "vpcep.signals")
        let (stream, continuation) = AsyncStream<String>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            // Dispatch delivers the signal only once the default action is off.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        var received = "unknown"
        for await name in stream {
            received = name
            break
        }
        sources.forEach { $0.cancel() }
        return received
    }
}

/// A start-up failure: printed as one clear line, exit code 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = "vpcep-server: " + description }
}
