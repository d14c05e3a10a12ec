import Logging
import NIOCore

/// What a method handler knows about its call besides the request.
public struct ServerCallContext: Sendable {
    /// The caller, from its verified certificate.
    public var peer: PeerIdentity
    /// The region the call names.
    public var region: String
    public var requestID: String
    /// Empty when the caller sent none.
    public var idempotencyKey: String
    /// When the server stops the call (docs/PROTOCOL.md §4.5): `timeout_ms` after it read the
    /// CALL, on the event loop's clock; the same value ends the call. Nil when the caller named none.
    public var deadline: NIODeadline?
    /// The time left until `deadline` (negative once it passed), for code that keeps time with
    /// another clock.
    public var timeRemaining: Duration? { deadline.map { .nanoseconds(($0 - .now()).nanoseconds) } }
    private var serverLogger: Logger
    private let peerAddress: SocketAddress?

    /// The server's logger with this call's peer, peer address and `request_id`. Made when asked
    /// for: rendering logger metadata costs more than a whole cached read, and most calls log
    /// nothing themselves.
    public var logger: Logger {
        get {
            var logger = serverLogger
            if let peerAddress { logger[metadataKey: "peer_address"] = "\(peerAddress)" }
            logger[metadataKey: "peer"] = "\(peer)"
            logger[metadataKey: "request_id"] = "\(requestID)"
            return logger
        }
        set { serverLogger = newValue }
    }

    public init(
        peer: PeerIdentity, region: String, requestID: String, idempotencyKey: String = "",
        deadline: NIODeadline? = nil, logger: Logger, peerAddress: SocketAddress? = nil
    ) {
        self.peerAddress = peerAddress
        self.peer = peer
        self.region = region
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
        self.deadline = deadline
        self.serverLogger = logger
    }
}
