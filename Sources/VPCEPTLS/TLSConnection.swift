internal import COpenSSL
internal import COpenSSLShims
import NIOCore

/// One OpenSSL `SSL` driven through two memory BIOs: ciphertext from the network is fed into
/// the read BIO, ciphertext to send is drained from the write BIO. Knows nothing of channels.
final class TLSConnection {
    enum HandshakeResult {
        case complete
        case wantRead
        case failed(TLSError)
    }

    enum ReadResult {
        /// Every complete record was read; more ciphertext is needed.
        case wantRead
        /// The peer sent close_notify.
        case closeNotify
        case failed(TLSError)
    }

    /// Memory BIOs keep their largest size; after moving more than this, a fresh one is swapped in
    /// so that an idle connection does not keep a large buffer.
    private static let bioRecycleThreshold = 32 * 1024

    let context: TLSContext
    private let ssl: OpaquePointer
    /// Owned by `ssl`; replaced by `recycle…`.
    private var readBIO: OpaquePointer
    private var writeBIO: OpaquePointer
    private var bytesFedSinceRecycle = 0
    /// Whether any application data arrived: before it, a client cannot know that the server
    /// accepted its certificate.
    private(set) var receivedApplicationData = false

    /// Client only: the key (`host:port`) under which sessions for this server are cached.
    let sessionKey: String?

    var isServer: Bool { self.context.role == .server }

    init(context: TLSContext, serverHostname: String?, sessionKey: String? = nil) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = context.withUnsafeSSLContext({ SSL_new($0) }) else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not create a TLS connection")
        }
        guard let readBIO = Self.makeMemoryBIO() else {
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not create a memory BIO")
        }
        guard let writeBIO = Self.makeMemoryBIO() else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not create a memory BIO")
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.context = context
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.sessionKey = context.role == .client ? sessionKey : nil
        // Lets OpenSSL callbacks find this connection (app data, index 0); cleared in deinit.
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())

        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverHostname {
                try self.setServerHostname(serverHostname)
            }
            if let sessionKey, let session = context.sessionCache.session(for: sessionKey) {
                // A session the server no longer accepts just means a full handshake.
                _ = SSL_set_session(ssl, session.pointer)
            }
        }
    }

    /// The connection whose `SSL` this is, for OpenSSL callbacks running inside its calls.
    static func from(_ ssl: OpaquePointer) -> TLSConnection? {
        SSL_get_ex_data(ssl, 0).map { Unmanaged<TLSConnection>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Whether the handshake resumed an earlier session rather than authenticating afresh.
    var sessionResumed: Bool { SSL_session_reused(self.ssl) == 1 }

    deinit {
        SSL_set_ex_data(self.ssl, 0, nil)
        SSL_free(self.ssl)  // frees both BIOs
    }

    private static func makeMemoryBIO() -> OpaquePointer? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        // An empty BIO means "retry later", not end of file.
        _ = vpcep_BIO_set_mem_eof_return(bio, -1)
        return bio
    }

    /// Verifies the server certificate against `name` (a DNS name, or an IP literal), and sends
    /// it as SNI when it is a DNS name.
    private func setServerHostname(_ name: String) throws(TLSError) {
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw TLSError(code: .invalidConfiguration, message: "invalid server host name \"\(name)\"")
        }
        var literal = Substring(name)
        if literal.hasPrefix("["), literal.hasSuffix("]") {
            literal = literal.dropFirst().dropLast()
        }
        OpenSSLErrorQueue.clear()
        if X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(self.ssl), String(literal)) == 1 {
            return
        }
        OpenSSLErrorQueue.clear()
        SSL_set_hostflags(self.ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        guard SSL_set1_host(self.ssl, name) == 1, vpcep_SSL_set_tlsext_host_name(self.ssl, name) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "invalid server host name \"\(name)\"")
        }
    }

    // MARK: Ciphertext in and out

    /// Appends ciphertext received from the network to the read BIO.
    func feed(_ buffer: ByteBuffer) -> TLSError? {
        var failed = false
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count, !failed {
                let chunk = min(bytes.count - offset, Int(Int32.max))
                let written = BIO_write(self.readBIO, bytes.baseAddress! + offset, Int32(chunk))
                if written <= 0 {
                    failed = true
                } else {
                    offset += Int(written)
                }
            }
        }
        self.bytesFedSinceRecycle += buffer.readableBytes
        return failed ? OpenSSLErrorQueue.error(.protocolError, "could not buffer received bytes") : nil
    }

    /// Ciphertext waiting to be sent.
    var pendingOutputBytes: Int {
        Int(BIO_ctrl_pending(self.writeBIO))
    }

    /// Everything in the write BIO as one buffer, or nil when it is empty.
    func drainOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = self.pendingOutputBytes
        guard pending > 0 else { return nil }
        var output = allocator.buffer(capacity: pending)
        output.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { space in
            Int(max(BIO_read(self.writeBIO, space.baseAddress, Int32(clamping: pending)), 0))
        }
        if pending > Self.bioRecycleThreshold, let fresh = Self.makeMemoryBIO() {
            SSL_set0_wbio(self.ssl, fresh)  // frees the old one, now empty
            self.writeBIO = fresh
        }
        return output
    }

    private func recycleReadBIOIfLargeAndEmpty() {
        guard self.bytesFedSinceRecycle > Self.bioRecycleThreshold, BIO_ctrl_pending(self.readBIO) == 0,
            let fresh = Self.makeMemoryBIO()
        else { return }
        SSL_set0_rbio(self.ssl, fresh)
        self.readBIO = fresh
        self.bytesFedSinceRecycle = 0
    }

    // MARK: TLS operations

    func handshake() -> HandshakeResult {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(self.ssl)
        if result == 1 {
            return .complete
        }
        let error = SSL_get_error(self.ssl, result)
        if error == SSL_ERROR_WANT_READ {
            return .wantRead
        }
        return .failed(self.handshakeFailure(OpenSSLErrorQueue.drain()))
    }

    /// Reads all the plaintext the fed ciphertext holds, appending it to `plaintext` (allocated
    /// on the first byte).
    func readAll(into plaintext: inout ByteBuffer?, allocator: ByteBufferAllocator) -> ReadResult {
        defer { self.recycleReadBIOIfLargeAndEmpty() }
        while true {
            if plaintext == nil {
                // Plaintext is never longer than the ciphertext that carries it.
                let bound = Int(BIO_ctrl_pending(self.readBIO)) + Int(SSL_pending(self.ssl))
                plaintext = allocator.buffer(capacity: max(bound, 1024))
            }
            OpenSSLErrorQueue.clear()
            var result: Int32 = 0
            plaintext!.writeWithUnsafeMutableBytes(minimumWritableBytes: 1024) { space in
                result = SSL_read(self.ssl, space.baseAddress, Int32(clamping: space.count))
                return Int(max(result, 0))
            }
            if result > 0 {
                self.receivedApplicationData = true
                continue
            }
            switch SSL_get_error(self.ssl, result) {
            case SSL_ERROR_WANT_READ:
                return .wantRead
            case SSL_ERROR_ZERO_RETURN:
                return .closeNotify
            default:
                return .failed(self.readFailure(OpenSSLErrorQueue.drain()))
            }
        }
    }

    /// Encrypts `buffer` into the write BIO (all of it: memory BIOs grow as needed).
    func write(_ buffer: ByteBuffer) -> TLSError? {
        buffer.withUnsafeReadableBytes { bytes -> TLSError? in
            var offset = 0
            while offset < bytes.count {
                let chunk = min(bytes.count - offset, 1 << 30)
                OpenSSLErrorQueue.clear()
                let written = SSL_write(self.ssl, bytes.baseAddress! + offset, Int32(chunk))
                guard written > 0 else {
                    let errors = OpenSSLErrorQueue.drain()
                    let reason = errors.last.map { ": \($0.reasonText)" } ?? ""
                    return TLSError(.protocolError, "could not encrypt data for sending\(reason)", errors: errors)
                }
                offset += Int(written)
            }
            return nil
        }
    }

    /// Queues close_notify in the write BIO.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(self.ssl)
        OpenSSLErrorQueue.clear()
    }

    /// What the completed handshake established.
    func handshakeCompleted() -> TLSHandshakeCompleted {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(self.ssl, &data, &length)
        let applicationProtocol = data.flatMap { data in
            length > 0 ? String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self) : nil
        }
        let peer = SSL_get0_peer_certificate(self.ssl).map { PeerCertificate(borrowing: $0) }
        return TLSHandshakeCompleted(applicationProtocol: applicationProtocol, peer: peer, resumed: self.sessionResumed)
    }

    /// A server's handshake can only complete with a verified client certificate; checked again
    /// here so that a configuration mistake can never let an anonymous client through.
    func verifiedPeerCheck() -> TLSError? {
        guard self.isServer else { return nil }
        guard SSL_get0_peer_certificate(self.ssl) != nil, SSL_get_verify_result(self.ssl) == X509_V_OK else {
            return TLSError(code: .peerCertificateInvalid, message: "the client's certificate was not verified")
        }
        return nil
    }

    // MARK: Failure classification

    private var peerName: String { self.isServer ? "client" : "server" }

    private func handshakeFailure(_ errors: [OpenSSLError]) -> TLSError {
        let verifyResult = SSL_get_verify_result(self.ssl)
        if verifyResult != X509_V_OK, errors.contains(where: { $0.isSSLReason(SSL_R_CERTIFICATE_VERIFY_FAILED) }) {
            let reason = String(cString: X509_verify_cert_error_string(verifyResult))
            return TLSError(.peerCertificateInvalid, "the \(self.peerName)'s certificate failed verification: \(reason)", errors: errors)
        }
        if errors.contains(where: { $0.isSSLReason(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) }) {
            return TLSError(.peerCertificateInvalid, "the client presented no certificate", errors: errors)
        }
        if self.isServer, errors.contains(where: { $0.isSSLReason(SSL_R_NO_APPLICATION_PROTOCOL) }) {
            let supported = self.context.configuration.applicationProtocols.joined(separator: ", ")
            return TLSError(
                .handshakeFailed,
                "the client offered no supported application protocol (supported: \(supported))",
                errors: errors
            )
        }
        if let alert = errors.lazy.compactMap(\.receivedAlert).first {
            return TLSError(
                .handshakeFailed,
                "the \(self.peerName) refused the handshake: \(alertDescription(alert))",
                errors: errors
            )
        }
        let reason = errors.last?.reasonText ?? "the connection failed"
        return TLSError(.handshakeFailed, "TLS handshake with the \(self.peerName) failed: \(reason)", errors: errors)
    }

    private func readFailure(_ errors: [OpenSSLError]) -> TLSError {
        if let alert = errors.lazy.compactMap(\.receivedAlert).first {
            // With TLS 1.3 the server checks the client certificate after the client's handshake
            // completed: an alert before any application data is the server refusing it.
            if !self.isServer, !self.receivedApplicationData || Self.certificateAlerts.contains(alert) {
                return TLSError(
                    .certificateRejected,
                    "the server rejected this client's certificate: \(alertDescription(alert))",
                    errors: errors
                )
            }
            return TLSError(.protocolError, "the \(self.peerName) sent a fatal alert: \(alertDescription(alert))", errors: errors)
        }
        let reason = errors.last?.reasonText ?? "unexpected error"
        return TLSError(.protocolError, "TLS protocol error from the \(self.peerName): \(reason)", errors: errors)
    }

    /// bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
    /// certificate_unknown, unknown_ca, access_denied, decrypt_error, certificate_required.
    private static let certificateAlerts: Set<Int32> = [42, 43, 44, 45, 46, 48, 49, 51, 116]
}
