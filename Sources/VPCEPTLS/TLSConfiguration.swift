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
    /// TLS 1.3 key exchange groups (OpenSSL names), in order of preference: a client offers them,
    /// a server accepts only them. The default leaves out the finite-field groups, whose
    /// ffdhe8192 costs a server about 150 times the CPU of X25519 per handshake, on demand of
    /// anyone who can open a connection.
    public var keyExchangeGroups: [String]

    /// The groups used unless configured otherwise.
    public static let defaultKeyExchangeGroups = ["X25519", "P-256", "P-384"]

    public init(
        certificateChainFile: String,
        privateKeyFile: String,
        trustRootsFile: String,
        crlFile: String? = nil,
        applicationProtocols: [String] = ["vpcep/1"],
        keyExchangeGroups: [String] = TLSConfiguration.defaultKeyExchangeGroups
    ) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustRootsFile = trustRootsFile
        self.crlFile = crlFile
        self.applicationProtocols = applicationProtocols
        self.keyExchangeGroups = keyExchangeGroups
    }
}
