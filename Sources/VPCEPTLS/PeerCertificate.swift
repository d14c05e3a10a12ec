#if canImport(FoundationEssentials)
public import struct FoundationEssentials.Date
#else
public import struct Foundation.Date
#endif

/// What the verified peer certificate says about who the peer is.
public struct PeerCertificate: Sendable, Hashable {
    /// The URI subjectAltNames, in certificate order, e.g. `vpcep://tenant/alice`. Bytes that are
    /// not printable ASCII without spaces, and `%` itself, are written as `%XX`.
    public var uriSANs: [String]
    /// The subject distinguished name as an RFC 2253 string, e.g. `CN=alice,OU=tenant,O=vpcep`.
    public var subject: String
    /// The end of the validity period, when the certificate's time could be read.
    public var notAfter: Date?

    public init(uriSANs: [String], subject: String, notAfter: Date? = nil) {
        self.uriSANs = uriSANs
        self.subject = subject
        self.notAfter = notAfter
    }
}
