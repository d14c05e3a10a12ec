/// Files and protocol choices for one side of a mutually authenticated TLS 1.3 connection.
///
/// Every file is PEM. A server uses `trustRootsFile` to verify client certificates (and requires
/// one); a client uses it to verify the server certificate.
public struct TLSConfiguration: Sendable {
    /// This side's certificate, followed by any intermediates.
    public var certificateChainFile: String
    /// The private key matching the first certificate of `certificateChainFile`.
    public var privateKeyFile: String
    /// The CA bundle the peer's certificate must chain to.
    public var trustRootsFile: String
    /// A CRL of the trusted CA: when set, revoked peers fail the handshake (and a peer whose
    /// issuer has no CRL in this file fails too).
    public var crlFile: String?
    /// ALPN protocols in order of preference: a client offers them; a server selects the first
    /// of them the client offers, refuses clients that offer only others, and accepts clients
    /// that send no ALPN at all. Empty turns ALPN off.
    public var applicationProtocols: [String]

    public init(
        certificateChainFile: String,
        privateKeyFile: String,
        trustRootsFile: String,
        crlFile: String? = nil,
        applicationProtocols: [String] = ["vpcep/1"]
    ) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustRootsFile = trustRootsFile
        self.crlFile = crlFile
        self.applicationProtocols = applicationProtocols
    }
}
