import Logging
import NIOCore
import NIOPosix
import Synchronization
import VPCEPTLS

/// Listens on a TCP address and serves the router's methods over mutual TLS.
public final class RPCServer: Sendable {
    private let router: RPCRouter
    private let tlsContext: TLSContext
    private let configuration: RPCServerConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)

    public init(
        router: RPCRouter, tlsContext: TLSContext, configuration: RPCServerConfiguration = RPCServerConfiguration(),
        group: any EventLoopGroup, logger: Logger
    ) {
        self.router = router
        self.tlsContext = tlsContext
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// Binds and starts accepting; returns the bound address (useful with port 0).
    public func start(host: String, port: Int) async throws -> SocketAddress {
        let router = router
        let tlsContext = tlsContext
        let configuration = configuration
        let logger = logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tlsContext))
                    try channel.pipeline.syncOperations.addHandler(
                        ServerConnectionHandler(router: router, configuration: configuration, logger: logger)
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        self.channel.withLock { $0 = channel }
        guard let address = channel.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    /// Stops accepting new connections and waits until the listener is closed.
    public func stop() async throws {
        let channel = self.channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try await channel?.close()
    }
}
