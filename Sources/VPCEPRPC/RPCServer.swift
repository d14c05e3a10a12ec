import Logging
import NIOCore
import NIOPosix
import Synchronization
import VPCEPTLS

/// Listens on a TCP address and serves the router's methods over mutual TLS.
///
/// Lifecycle: `start(host:port:)`, then either `shutdown(gracePeriod:)` (GOAWAY on every
/// connection, in-flight calls finish within the grace period) or `stop()` (stop accepting only).
/// `reloadTLS(_:)` swaps certificates, CA and CRL for new connections without a restart.
public final class RPCServer: Sendable {
    /// A snapshot of the server's counters, e.g. for metrics.
    public struct Statistics: Sendable, Hashable {
        public var openConnections: Int
        /// Connections closed at accept because `maxConnections` were open.
        public var refusedConnections: Int
        public var callsInFlight: Int
        /// Bytes all connections hold for sending (encoded, not yet written to their sockets).
        public var bufferedOutboundBytes: Int
        /// The highest `bufferedOutboundBytes` seen.
        public var peakBufferedOutboundBytes: Int
        public var fullHandshakes: Int
        public var resumedHandshakes: Int
        /// Times a connection stopped being read because of backpressure.
        public var readPauses: Int
        /// Times a stream's `send` waited for its connection to drain.
        public var parkedStreamSends: Int
        public var handshakeTimeouts: Int
        public var idleTimeouts: Int
        public var keepaliveTimeouts: Int
        /// Calls accepted and waiting to run (see `maxRunningCallsPerConnection`).
        public var callsWaiting: Int
        /// Calls refused with `SERVER_OVERLOADED` (see `maxBufferedOutboundBytesOverall`).
        public var overloadRefusals: Int
        /// Connections still in their TLS handshake closed to make room for newer ones.
        public var handshakeEvictions: Int
    }

    private let router: RPCRouter
    private let tlsContext: Mutex<TLSContext>
    private let configuration: RPCServerConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let statistics = ServerStatistics()
    private let admission: Mutex<HandshakeAdmission<ObjectIdentifier>>

    public init(
        router: RPCRouter, tlsContext: TLSContext, configuration: RPCServerConfiguration = RPCServerConfiguration(),
        group: any EventLoopGroup, logger: Logger
    ) {
        self.router = router
        self.tlsContext = Mutex(tlsContext)
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.admission = Mutex(HandshakeAdmission(limits: .init(
            maxPending: configuration.maxPendingHandshakes,
            maxPendingPerAddress: configuration.maxPendingHandshakesPerAddress,
            timeout: configuration.handshakeTimeout,
            timeoutUnderPressure: configuration.handshakeTimeoutUnderPressure)))
    }

    /// Binds and starts accepting; returns the bound address (useful with port 0).
    public func start(host: String, port: Int) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Accepts up to 64 connections per wakeup instead of NIO's 4: under a flood of
            // connects the listen queue must not fill up, or the kernel drops a client's SYN and
            // the client retries only a second later.
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Keeps 256 bytes per idle connection instead of NIO's default 2 KiB (see the type).
            .childChannelOption(.recvAllocator, value: TLSRecvByteBufferAllocator())
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initialize(channel)
                }
            }
            .bind(host: host, port: port)
            .get()
        self.channel.withLock { $0 = channel }
        guard let address = channel.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    private func initialize(_ channel: any Channel) throws {
        guard statistics.admitConnection(limit: configuration.maxConnections) else {
            logger.warning("connection refused: too many connections",
                           metadata: ["max_connections": "\(configuration.maxConnections)"])
            channel.close(promise: nil)
            return
        }
        let id = ObjectIdentifier(channel)
        connections.withLock { $0[id] = channel }
        RPCMetrics.connectionOpened()
        let statistics = statistics
        channel.closeFuture.whenComplete { _ in
            self.admission.withLock { $0.remove(id) }
            self.connections.withLock { $0[id] = nil }
            statistics.connectionClosed()
            RPCMetrics.connectionClosed()
        }
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let decision = admission.withLock { $0.admit(id, address: address, now: .now()) }
        if !decision.evict.isEmpty {
            let evicted = connections.withLock { open in decision.evict.compactMap { open[$0] } }
            statistics.recordHandshakeEvictions(evicted.count)
            logger.debug("closed connections still in their TLS handshake to make room",
                         metadata: ["count": "\(evicted.count)", "peer_address": "\(address)"])
            for victim in evicted { victim.close(promise: nil) }
        }
        let tlsContext = tlsContext.withLock { $0 }
        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tlsContext))
        try channel.pipeline.syncOperations.addHandler(ConnectionManagementHandler(
            configuration: configuration.connectionManagement(handshakeTimeout: decision.timeout),
            statistics: statistics, onHandshakeCompleted: { self.admission.withLock { $0.remove(id) } }, logger: logger))
        try channel.pipeline.syncOperations.addHandler(
            ServerConnectionHandler(router: router, configuration: configuration, statistics: statistics, logger: logger))
    }

    /// Uses `configuration` (certificate, key, CA bundle, CRL) for every connection accepted from
    /// now on; open connections keep theirs. Throws, and changes nothing, when the files cannot be
    /// used. Sessions resumed from tickets of the old configuration are not honoured: clients
    /// make a full handshake against the new one.
    public func reloadTLS(_ configuration: TLSConfiguration) throws(TLSError) {
        let context = try TLSContext.server(configuration)
        tlsContext.withLock { $0 = context }
        logger.notice("TLS configuration reloaded")
    }

    /// The current counters.
    public var currentStatistics: Statistics { statistics.snapshot }

    /// Stops accepting new connections and waits until the listener is closed. Open connections
    /// are left alone.
    public func stop() async throws {
        let channel = self.channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try await channel?.close()
    }

    /// Graceful shutdown (docs/PROTOCOL.md §7): stops accepting, sends every connection a GOAWAY
    /// naming the last call it accepted, lets in-flight calls finish for up to `gracePeriod`,
    /// then ends what is left with `UNAVAILABLE` / `SHUTDOWN_GRACE_EXPIRED` and closes. Returns
    /// when every connection is closed.
    public func shutdown(gracePeriod: Duration) async {
        try? await stop()
        let open = connections.withLock { Array($0.values) }
        let grace = TimeAmount.nanoseconds(Int64((gracePeriod / .nanoseconds(1)).rounded(.up)))
        for channel in open {
            channel.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: grace), promise: nil)
        }
        for channel in open {
            // The handler closes by itself within the grace period; this is a last resort.
            let backstop = channel.eventLoop.scheduleTask(in: grace + .seconds(2)) { channel.close(promise: nil) }
            try? await channel.closeFuture.get()
            backstop.cancel()
        }
    }
}
