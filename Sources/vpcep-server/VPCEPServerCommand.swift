import ArgumentParser
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
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
        let logger = makeLogger(level: settings.logLevel)

        let tlsContext: TLSContext
        do {
            tlsContext = try TLSContext.server(TLSConfiguration(
                certificateChainFile: settings.certificateFile, privateKeyFile: settings.keyFile,
                trustRootsFile: settings.caFile, crlFile: settings.crlFile
            ))
        } catch {
            throw StartupError("TLS configuration refused: \(error)")
        }

        let store: SQLiteRegistryStore
        do {
            store = try await SQLiteRegistryStore.open(directory: settings.dataDirectory, logger: logger)
        } catch {
            throw StartupError("cannot open the data directory \(settings.dataDirectory): \(error)")
        }

        let registry = Registry(store: store, regions: Set(settings.regions))
        let router = VPCEPAPI.makeRouter(registry: registry)
        let server = RPCServer(router: router, tlsContext: tlsContext, group: MultiThreadedEventLoopGroup.singleton,
                               logger: logger)
        let address: SocketAddress
        do {
            address = try await server.start(host: settings.host, port: settings.port)
        } catch {
            try? await store.close()
            throw StartupError("cannot listen on \(settings.host):\(settings.port): \(error)")
        }
        logger.notice("vpcep-server listening", metadata: [
            "address": "\(address.ipAddress ?? settings.host):\(address.port ?? settings.port)",
            "regions": "\(settings.regions.joined(separator: ","))",
            "data_dir": "\(settings.dataDirectory)",
        ])

        let signal = await Self.waitForTerminationSignal()
        logger.notice("stopping", metadata: ["signal": "\(signal)"])
        try? await server.stop()
        try? await store.close()
    }

    private func makeLogger(level: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: level) ?? .info
            return handler
        }
        return Logger(label: "vpcep-server")
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
