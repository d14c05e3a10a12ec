import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals
import VPCEPAdmin
import VPCEPRPC
import VPCEPRegistry
import VPCEPService
import VPCEPStorePostgres
import VPCEPStoreSQLite
import VPCEPTLS

@main
struct VPCEPServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpcep-server",
        abstract: "Serves the vpcep API over mutual TLS, with its registry in SQLite or PostgreSQL.",
        discussion: "Without a subcommand, serves: `vpcep-server [options]` is `vpcep-server serve [options]`.",
        subcommands: [ServeCommand.self, BackupCommand.self, MigrateStoreCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serves the vpcep API (the default subcommand)."
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

        let (store, closeStore, storeName) = try await Self.openStore(settings, logger: logger)

        let readiness = Readiness()
        readiness.addCheck { store.readinessProblem.map { "registry store: \($0)" } }
        let group = MultiThreadedEventLoopGroup.singleton
        let registry = Registry(
            store: store, regions: Set(settings.regions.value),
            changeFeed: .defaults {
                $0.bookmarkInterval = .seconds(settings.watchBookmarkInterval.value)
                $0.slowWatcherTimeout = .seconds(settings.watchSlowTimeout.value)
            },
            serviceCacheBytes: settings.serviceCacheMiB.value << 20)
        let server = RPCServer(router: VPCEPAPI.makeRouter(registry: registry), tlsContext: tlsContext, group: group,
                               logger: logger)

        // The group shuts its services down in reverse order: the RPC server drains first, while
        // the admin listener still reports "not ready"; SIGHUP is served until the very end.
        // Whatever fails, from the admin listener's bind on, the store is closed once, here.
        // Dispatch, under the group's signal sequences, delivers a signal only once its default
        // action is off (UnixSignalsSequence does this itself on Darwin only); otherwise a SIGHUP
        // ends the process, and a SIGINT a shell made ignored never arrives.
        for number in [SIGHUP, SIGTERM, SIGINT] { signal(number, SIG_IGN) }
        var failure: (any Error)?
        do {
            var services: [any Service] = []
            if let adminAddress = settings.adminListen.value {
                services.append(try await AdminServerService.start(
                    AdminServer(registry: metrics, readiness: readiness, group: group), address: adminAddress, logger: logger
                ))
            }
            services.append(TLSReloadService(server: server, configuration: tlsConfiguration,
                                             signals: await UnixSignalsSequence(trapping: .sighup), logger: logger))
            services.append(RPCServerService(
                server: server, address: settings.listen.value, readiness: readiness,
                gracePeriod: .seconds(settings.shutdownGrace.value), logger: logger,
                metadata: [
                    "regions": "\(settings.regions.value.joined(separator: ","))",
                    "store": "\(storeName)",
                ],
                // A Watch never ends by itself: ended before the drain, not cut by the grace timer.
                onDrain: { registry.changeFeed.shutDown() }
            ))
            services.append(ChangeLogCompactionService(
                registry: registry, retention: .seconds(86_400 * settings.historyRetentionDays.value), logger: logger))
            services.append(PermissionExpiryService(
                registry: registry, interval: .milliseconds(settings.permissionSweepInterval.value), logger: logger))
            try await ServiceGroup(configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
            )).run()
        } catch {
            failure = error
        }
        await closeStore()
        if let failure { throw failure }
        logger.notice("stopped")
    }

    /// The SQLite store in the data directory, or the PostgreSQL store of `--store`; how to close it;
    /// and where it is, for logs (never the password).
    private static func openStore(
        _ settings: ServerSettings, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> (any RegistryStore, @Sendable () async -> Void, String) {
        guard let url = settings.store.value else {
            do {
                let store = try await SQLiteRegistryStore.open(directory: settings.dataDirectory.value, logger: logger)
                return (store, { try? await store.close() }, settings.dataDirectory.value)
            } catch {
                throw StartupError("cannot open the data directory \(settings.dataDirectory.value): \(error)")
            }
        }
        var configuration: PostgresRegistryStore.Configuration
        do {
            configuration = try PostgresRegistryStore.Configuration(url: url, password: try storePassword(settings, environment))
        } catch let error as StoreError {
            // The URL itself is not repeated: a mistyped one may hold a password.
            throw StartupError("invalid --store (\(settings.store.source)): \(error.message)")
        }
        configuration.caFile = settings.storeCA.value
        configuration.maximumConnections = settings.storePoolSize.value
        configuration.readLeases = settings.storeReadLeases.value
        do {
            let store = try await PostgresRegistryStore.open(configuration, logger: logger)
            return (store, { await store.close() }, configuration.redacted)
        } catch let error as StoreError {
            throw StartupError("cannot open the PostgreSQL store \(configuration.redacted): \(error.message)")
        }
    }

    /// From `--store-password-file` (its first line), else `VPCEP_STORE_PASSWORD`, else none.
    private static func storePassword(_ settings: ServerSettings, _ environment: [String: String]) throws -> String? {
        try storePassword(file: settings.storePasswordFile.value, source: settings.storePasswordFile.source, environment)
    }

    /// The first line of `file`, else `VPCEP_STORE_PASSWORD`, else none.
    static func storePassword(file: String?, source: String, _ environment: [String: String]) throws -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw StartupError("cannot read the store password file \(file) (\(source))")
            }
            let text = String(decoding: data, as: UTF8.self)
            return String(text.prefix { $0 != "\n" && $0 != "\r" })
        }
        return environment[ServerSettings.storePasswordVariable].flatMap { $0.isEmpty ? nil : $0 }
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
}

/// A start-up failure: printed as one clear line, exit code 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = "vpcep-server: " + description }

    static func describe(_ address: SocketAddress, fallback: (host: String, port: Int)) -> String {
        "\(address.ipAddress ?? fallback.host):\(address.port ?? fallback.port)"
    }

    /// "address already in use" rather than NIO's type dump.
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}
