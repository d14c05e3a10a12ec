/// A TLS failure: bad configuration, a refused handshake, a rejected certificate or a broken
/// connection.
///
/// `description` holds the code and message; `debugDescription` adds OpenSSL's error queue.
public struct TLSError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case handshakeFailed
            case certificateRejected
            case peerCertificateInvalid
            case invalidConfiguration
            case fileUnreadable
            case protocolError
            case uncleanShutdown
        }

        private var wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The handshake did not complete: the peer refused it (for example no common ALPN
        /// protocol), sent garbage, or the connection closed during it.
        public static let handshakeFailed = Code(.handshakeFailed)
        /// The peer refused this side's certificate (a client learns it from the server's alert).
        public static let certificateRejected = Code(.certificateRejected)
        /// This side refused the peer's certificate: untrusted, expired, revoked, wrong name or
        /// purpose, or missing.
        public static let peerCertificateInvalid = Code(.peerCertificateInvalid)
        /// The configuration cannot be used: unparsable PEM, a key that does not match its
        /// certificate, an invalid ALPN name or host name.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A configured file cannot be opened for reading.
        public static let fileUnreadable = Code(.fileUnreadable)
        /// The peer broke the TLS protocol after the handshake (garbage, a fatal alert).
        public static let protocolError = Code(.protocolError)
        /// The connection closed after the handshake without the peer's close_notify.
        public static let uncleanShutdown = Code(.uncleanShutdown)

        public var description: String {
            switch self.wrapped {
            case .handshakeFailed: "handshakeFailed"
            case .certificateRejected: "certificateRejected"
            case .peerCertificateInvalid: "peerCertificateInvalid"
            case .invalidConfiguration: "invalidConfiguration"
            case .fileUnreadable: "fileUnreadable"
            case .protocolError: "protocolError"
            case .uncleanShutdown: "uncleanShutdown"
            }
        }
    }

    public var code: Code
    /// A sentence saying what failed, naming the file or the alert concerned.
    public var message: String
    /// OpenSSL's error queue at the time of the failure, oldest first.
    public var openSSLErrors: [String]

    public init(code: Code, message: String, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        "TLS error (\(self.code)): \(self.message)"
    }

    public var debugDescription: String {
        guard !self.openSSLErrors.isEmpty else { return self.description }
        return "\(self.description) [OpenSSL: \(self.openSSLErrors.joined(separator: "; "))]"
    }
}
