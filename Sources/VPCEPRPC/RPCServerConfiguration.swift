import NIOCore

/// Limits and timeouts of the RPC server (docs/PROTOCOL.md §8).
public struct RPCServerConfiguration: Sendable {
    /// Largest frame payload accepted; a larger header ends the connection before the payload is read.
    public var maxFrameSize = 4 * 1024 * 1024
    /// Calls in flight on one connection; more are refused with RESOURCE_EXHAUSTED, and the
    /// server stops reading the connection while it is at the limit.
    public var maxConcurrentCallsPerConnection = 1024
    /// A connection that has not finished its TLS handshake by then is closed.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// A connection with no call in flight and no CALL received for this long gets GOAWAY
    /// (`UNAVAILABLE` / `IDLE_TIMEOUT`) and is closed. PINGs do not count: a client that
    /// answers keepalive PINGs but makes no calls is idle.
    public var idleTimeout: TimeAmount = .minutes(5)
    /// After this long without receiving anything the server sends a PING; nil sends none.
    public var keepaliveInterval: TimeAmount? = .seconds(60)
    /// A PING unanswered (nothing at all received) for this long closes the connection.
    public var keepaliveTimeout: TimeAmount = .seconds(20)
    /// Connections open at once; more are closed right after accept, before any TLS.
    public var maxConnections = 10_000
    /// Bytes one connection may hold for sending (encoded frames not yet written to the socket).
    /// Above it the server stops reading that connection and suspends its stream senders until
    /// the client reads.
    public var maxBufferedOutboundBytes = 256 * 1024

    public init() {}

    public static func defaults(_ configure: (inout RPCServerConfiguration) -> Void) -> RPCServerConfiguration {
        var configuration = RPCServerConfiguration()
        configure(&configuration)
        return configuration
    }
}
