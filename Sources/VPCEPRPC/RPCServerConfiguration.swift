import NIOCore

/// Limits and timeouts of the RPC server (docs/PROTOCOL.md §8).
public struct RPCServerConfiguration: Sendable {
    /// Largest frame payload accepted; a larger header ends the connection before the payload is read.
    public var maxFrameSize = 4 * 1024 * 1024
    /// Calls in flight on one connection; more are refused with RESOURCE_EXHAUSTED.
    public var maxConcurrentCallsPerConnection = 1024
    /// A connection that has not finished its TLS handshake by then is closed.
    public var handshakeTimeout: TimeAmount = .seconds(10)

    public init() {}

    public static func defaults(_ configure: (inout RPCServerConfiguration) -> Void) -> RPCServerConfiguration {
        var configuration = RPCServerConfiguration()
        configure(&configuration)
        return configuration
    }
}
