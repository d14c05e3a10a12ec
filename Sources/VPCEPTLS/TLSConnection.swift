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

    let context: TLSContext
    private let ssl: OpaquePointer
    /// The `SSL`'s read and write BIO (`vpcep_channel_bio`), owned by `ssl`. It reads from
    /// `pendingInput` only during an OpenSSL call and frees its output buffer once drained, so an
    /// idle connection holds no buffer here.
    private let bio: OpaquePointer
    /// Ciphertext received and not yet consumed by OpenSSL. Nil almost always: OpenSSL reads until
    /// the input is exhausted, except when the handshake completes or the peer closes mid-buffer.
    private var pendingInput: ByteBuffer?
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
        guard let bio = vpcep_channel_bio_new() else {
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not create a BIO")
        }
        SSL_set_bio(ssl, bio, bio)  // one reference, taken by `ssl` for both directions
        self.context = context
        self.ssl = ssl
        self.bio = bio
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
        SSL_free(self.ssl)  // frees the BIO
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

    /// Keeps ciphertext received from the network for the next OpenSSL call (no copy unless
    /// earlier input is still unconsumed).
    func feed(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        if self.pendingInput == nil {
            self.pendingInput = buffer
        } else {
            self.pendingInput!.writeImmutableBuffer(buffer)
        }
    }

    /// Runs one OpenSSL call with the pending input lent to the BIO, then drops what it consumed.
    private func withInput<Result>(_ call: () -> Result) -> Result {
        guard let input = self.pendingInput else { return call() }
        let (result, remaining) = input.withUnsafeReadableBytes { bytes in
            vpcep_channel_bio_set_input(self.bio, bytes.baseAddress, bytes.count)
            defer { vpcep_channel_bio_set_input(self.bio, nil, 0) }
            let result = call()
            return (result, vpcep_channel_bio_input_remaining(self.bio))
        }
        if remaining == 0 {
            self.pendingInput = nil
        } else {
            self.pendingInput!.moveReaderIndex(forwardBy: input.readableBytes - remaining)
        }
        return result
    }

    /// Ciphertext waiting to be sent.
    var pendingOutputBytes: Int {
        var length = 0
        _ = vpcep_channel_bio_output(self.bio, &length)
        return length
    }

    /// Everything written so far as one buffer, or nil when there is nothing; frees the BIO's
    /// output buffer.
    func drainOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        var length = 0
        guard let bytes = vpcep_channel_bio_output(self.bio, &length), length > 0 else { return nil }
        var output = allocator.buffer(capacity: length)
        output.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
        vpcep_channel_bio_clear_output(self.bio)
        return output
    }

    // MARK: TLS operations

    func handshake() -> HandshakeResult {
        OpenSSLErrorQueue.clear()
        let result = self.withInput { SSL_do_handshake(self.ssl) }
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
        // Nothing new received and nothing buffered inside OpenSSL: SSL_read could only say
        // "want read" (after setting up and releasing its record buffer).
        if self.pendingInput == nil, SSL_has_pending(self.ssl) == 0 {
            return .wantRead
        }
        while true {
            if plaintext == nil {
                // Plaintext is never longer than the ciphertext that carries it.
                let bound = (self.pendingInput?.readableBytes ?? 0) + Int(SSL_pending(self.ssl))
                plaintext = allocator.buffer(capacity: max(bound, 1024))
            }
            OpenSSLErrorQueue.clear()
            var result: Int32 = 0
            plaintext!.writeWithUnsafeMutableBytes(minimumWritableBytes: 1024) { space in
                result = self.withInput { SSL_read(self.ssl, space.baseAddress, Int32(clamping: space.count)) }
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
