/// Fired as a user inbound event by `TLSHandler` when the handshake completes.
///
/// On a server this means the client's certificate was verified, and `peer` names it. On a
/// client it does *not* mean the server accepted this client's certificate: with TLS 1.3 the
/// server decides after the client's handshake has completed, and a rejection arrives on the
/// next read as a `TLSError` with code `.certificateRejected`.
public struct TLSHandshakeCompleted: Sendable, Hashable {
    /// The ALPN protocol the server selected, or nil when none was negotiated.
    public var applicationProtocol: String?
    /// The peer's verified certificate (the client's on a server, the server's on a client).
    public var peer: PeerCertificate?
    /// Whether the handshake resumed an earlier session (a TLS 1.3 ticket) instead of a full
    /// handshake. The peer certificate of a resumed session is the one verified originally.
    public var resumed: Bool

    public init(applicationProtocol: String?, peer: PeerCertificate?, resumed: Bool = false) {
        self.applicationProtocol = applicationProtocol
        self.peer = peer
        self.resumed = resumed
    }
}
