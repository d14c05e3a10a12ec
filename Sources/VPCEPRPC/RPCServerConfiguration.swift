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
    /// Connections that have not finished their TLS handshake, overall. One past it closes the
    /// oldest such connection instead of being refused (see `HandshakeAdmission`).
    public var maxPendingHandshakes = 1024
    /// Connections from one source address that have not finished their TLS handshake. One past
    /// it closes that address's oldest such connection.
    public var maxPendingHandshakesPerAddress = 64
    /// The handshake timeout while half of either pending limit is taken; pending connections
    /// older than this are then closed.
    public var handshakeTimeoutUnderPressure: TimeAmount = .seconds(2)
    /// Bytes one connection may hold for sending (encoded frames not yet written to the socket).
    /// Above it the server stops reading that connection and suspends its stream senders until
    /// the client reads.
    public var maxBufferedOutboundBytes = 256 * 1024
    /// Calls running at once on one connection. Further accepted calls wait, in arrival order, as
    /// their CALL frames (deadlines and CANCEL apply while they wait), and one starts only while
    /// the connection is within `maxBufferedOutboundBytes` and the server within
    /// `maxBufferedOutboundBytesOverall`: a connection holds at most
    /// `maxBufferedOutboundBytes` plus one answer per running call, however many it pipelines.
    public var maxRunningCallsPerConnection = 32
    /// Bytes all connections together may hold for sending. Above it, calls arriving are refused
    /// at once with `UNAVAILABLE` / `SERVER_OVERLOADED` (never processed, safe to retry), waiting
    /// calls do not start, and connections holding unsent bytes are not read.
    public var maxBufferedOutboundBytesOverall = 64 * 1024 * 1024

    public init() {}

    public static func defaults(_ configure: (inout RPCServerConfiguration) -> Void) -> RPCServerConfiguration {
        var configuration = RPCServerConfiguration()
        configure(&configuration)
        return configuration
    }
}

extension RPCServerConfiguration {
    /// The server's side of connection management; `handshakeTimeout` nil: the handshake is not watched.
    func connectionManagement(handshakeTimeout: TimeAmount?) -> ConnectionManagementHandler.StateMachine.Configuration {
        .init(handshakeTimeout: handshakeTimeout, idleTimeout: idleTimeout, keepaliveInterval: keepaliveInterval,
              keepaliveTimeout: keepaliveTimeout)
    }
}
