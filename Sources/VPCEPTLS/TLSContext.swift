internal import COpenSSL
internal import COpenSSLShims

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// One configured OpenSSL `SSL_CTX` (TLS 1.3 only, mutual authentication), shared by every
/// connection of one side and by all event loops.
///
/// Safety of `@unchecked Sendable`: the `SSL_CTX` is fully configured in `init` and never
/// changed afterwards; OpenSSL allows concurrent `SSL_new` on a shared, no longer mutated
/// `SSL_CTX` (its reference count is atomic). The ALPN list is immutable.
public final class TLSContext: @unchecked Sendable {
    enum Role: Sendable {
        case server
        case client
    }

    let role: Role
    let configuration: TLSConfiguration
    private let sslContext: OpaquePointer
    /// Read by the ALPN select callback through an unretained pointer: kept alive by `self`,
    /// which every `TLSConnection` retains for as long as its `SSL` exists.
    private let serverALPN: ALPNProtocols?
    /// Client contexts: the sessions kept for resumption, by `host:port`.
    let sessionCache = TLSSessionCache()

    /// A context for servers: presents `certificateChainFile`, requires a client certificate
    /// that verifies against `trustRootsFile` (and `crlFile` when set).
    public static func server(_ configuration: TLSConfiguration) throws(TLSError) -> TLSContext {
        try TLSContext(configuration: configuration, role: .server)
    }

    /// A context for clients: presents `certificateChainFile`, verifies the server certificate
    /// against `trustRootsFile` (and the host name given to `TLSHandler`).
    public static func client(_ configuration: TLSConfiguration) throws(TLSError) -> TLSContext {
        try TLSContext(configuration: configuration, role: .client)
    }

    /// A client that presents no certificate, for tests of the server's refusal.
    static func clientWithoutCertificate(_ configuration: TLSConfiguration) throws(TLSError) -> TLSContext {
        try TLSContext(configuration: configuration, role: .client, presentsCertificate: false)
    }

    private init(configuration: TLSConfiguration, role: Role, presentsCertificate: Bool = true) throws(TLSError) {
        let wireALPN = try ALPNProtocols.wireFormat(configuration.applicationProtocols)
        OpenSSLErrorQueue.clear()
        guard let context = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not create an OpenSSL context")
        }
        let serverALPN = role == .server && !wireALPN.isEmpty ? ALPNProtocols(wire: wireALPN) : nil
        do throws(TLSError) {
            try Self.configure(context, configuration, role: role, presentsCertificate: presentsCertificate)
            if role == .client, !wireALPN.isEmpty {
                // SSL_CTX_set_alpn_protos returns 0 on success.
                let failed = wireALPN.withUnsafeBufferPointer {
                    SSL_CTX_set_alpn_protos(context, $0.baseAddress, UInt32($0.count)) != 0
                }
                if failed {
                    throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not set the ALPN protocols")
                }
            }
            if let serverALPN {
                SSL_CTX_set_alpn_select_cb(context, selectALPN, Unmanaged.passUnretained(serverALPN).toOpaque())
            }
            if role == .client {
                // Sessions (TLS 1.3 tickets) go to `sessionCache` through the connection that got them.
                _ = vpcep_SSL_CTX_set_session_cache_mode_client_external(context)
                SSL_CTX_sess_set_new_cb(context, storeNewSession)
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.role = role
        self.configuration = configuration
        self.sslContext = context
        self.serverALPN = serverALPN
    }

    deinit {
        SSL_CTX_free(self.sslContext)
    }

    /// How many servers this client context holds a resumable session for.
    public var cachedSessionCount: Int { self.sessionCache.count }

    /// Runs `body` with the `SSL_CTX`; the pointer must not escape it.
    func withUnsafeSSLContext<Result, Failure: Error>(
        _ body: (OpaquePointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(self.sslContext)
    }

    private static func configure(
        _ context: OpaquePointer,
        _ configuration: TLSConfiguration,
        role: Role,
        presentsCertificate: Bool
    ) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard vpcep_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
            vpcep_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not restrict the context to TLS 1.3")
        }
        let groups = configuration.keyExchangeGroups.joined(separator: ":")
        guard !configuration.keyExchangeGroups.isEmpty, vpcep_SSL_CTX_set1_groups_list(context, groups) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "unknown or unusable TLS key exchange groups \"\(groups)\"")
        }
        // Frees the record buffers of idle connections. Memory BIOs never ask for a retried
        // write, so partial writes are not needed.
        _ = vpcep_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))
        // An encrypted key must fail to load rather than prompt on the terminal.
        SSL_CTX_set_default_passwd_cb(context) { _, _, _, _ in 0 }

        let identityFiles = presentsCertificate ? [configuration.certificateChainFile, configuration.privateKeyFile] : []
        for file in identityFiles + [configuration.trustRootsFile] + (configuration.crlFile.map { [$0] } ?? []) {
            try checkReadable(file)
        }
        if presentsCertificate {
            try useIdentity(context, configuration)
        }

        let rootsFile = configuration.trustRootsFile
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_load_verify_locations(context, rootsFile, nil) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not load trust roots from \(rootsFile)")
        }
        if let crlFile = configuration.crlFile {
            try loadCRLs(from: crlFile, into: context)
        }
        if presentsCertificate, vpcep_SSL_CTX_has_chain(context) == 0 {
            // A certificate file without intermediates leaves the chain unset, and OpenSSL then
            // rebuilds it from the trust store on every handshake (X509_verify_cert of our own
            // certificate, an ECDSA verification) and sends the root along. Build it once here
            // instead: the intermediates found in the trust store, without the root, which the
            // peer must already trust. Should it fail, OpenSSL keeps building it per handshake.
            if vpcep_SSL_CTX_build_chain_without_root(context) <= 0 {
                OpenSSLErrorQueue.clear()
            }
        }

        switch role {
        case .server:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, refuseCAAsClient)
            // Required for resuming sessions of verified clients.
            let sessionContext: [UInt8] = Array("vpcep".utf8)
            guard SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count)) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not set the session id context")
            }
            // One TLS 1.3 ticket per handshake instead of OpenSSL's two: each costs an encoding of
            // the session (with the client certificate), an encryption, a MAC and a session copy,
            // and vpcep's client keeps only the newest ticket anyway. Resumed handshakes still get
            // a fresh ticket.
            guard SSL_CTX_set_num_tickets(context, 1) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not set the number of session tickets")
            }
            // Tell clients which CAs are accepted (certificate_authorities).
            if let names = SSL_load_client_CA_file(rootsFile) {
                SSL_CTX_set_client_CA_list(context, names)
            }
            OpenSSLErrorQueue.clear()
        case .client:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
    }

    /// Loads this side's certificate chain and private key, and checks that they match.
    private static func useIdentity(_ context: OpaquePointer, _ configuration: TLSConfiguration) throws(TLSError) {
        let chainFile = configuration.certificateChainFile
        let keyFile = configuration.privateKeyFile
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate_chain_file(context, chainFile) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not load the certificate chain from \(chainFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, keyFile, SSL_FILETYPE_PEM) == 1 else {
            let errors = OpenSSLErrorQueue.drain()
            let mismatch = errors.contains {
                $0.library == ERR_LIB_X509
                    && ($0.reason == X509_R_KEY_VALUES_MISMATCH || $0.reason == X509_R_KEY_TYPE_MISMATCH)
            }
            let message =
                mismatch
                ? "the private key in \(keyFile) does not match the certificate in \(chainFile)"
                : "could not load the private key from \(keyFile): \(errors.last?.reasonText ?? "unknown error")"
            throw TLSError(.invalidConfiguration, message, errors: errors)
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            let errors = OpenSSLErrorQueue.drain()
            throw TLSError(
                .invalidConfiguration,
                "the private key in \(keyFile) does not match the certificate in \(chainFile)",
                errors: errors
            )
        }
    }

    private static func checkReadable(_ path: String) throws(TLSError) {
        guard let file = fopen(path, "r") else {
            let reason = String(cString: strerror(errno))
            throw TLSError(code: .fileUnreadable, message: "cannot read \(path): \(reason)")
        }
        fclose(file)
    }

    private static func loadCRLs(from path: String, into context: OpaquePointer) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let bio = BIO_new_file(path, "r") else {
            throw OpenSSLErrorQueue.error(.fileUnreadable, "cannot read \(path)")
        }
        defer { BIO_free(bio) }
        guard let store = SSL_CTX_get_cert_store(context) else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "the context has no certificate store")
        }
        var count = 0
        while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) {
            defer { X509_CRL_free(crl) }
            try checkCRLIsCurrent(crl, path: path)
            guard X509_STORE_add_crl(store, crl) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not add a CRL from \(path)")
            }
            count += 1
        }
        // The loop ends on "no start line" at the end of the file: expected once a CRL was read.
        guard count > 0 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "no CRL found in \(path)")
        }
        OpenSSLErrorQueue.clear()
        guard X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context), UInt(X509_V_FLAG_CRL_CHECK)) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "could not turn on CRL checking")
        }
    }
}

extension TLSContext {
    /// An expired CRL (or one not valid yet) makes OpenSSL refuse every client certificate of its
    /// CA, with the cause visible only per connection: refuse the configuration instead, so that
    /// start-up fails and a reload keeps the previous configuration, both saying why.
    fileprivate static func checkCRLIsCurrent(_ crl: OpaquePointer, path: String) throws(TLSError) {
        if let nextUpdate = X509_CRL_get0_nextUpdate(crl), X509_cmp_current_time(nextUpdate) <= 0 {
            throw TLSError(
                code: .invalidConfiguration,
                message: "the CRL in \(path) expired at \(describe(nextUpdate)) (nextUpdate); every client of its CA "
                    + "would be refused: install a current CRL")
        }
        if let lastUpdate = X509_CRL_get0_lastUpdate(crl), X509_cmp_current_time(lastUpdate) >= 0 {
            throw TLSError(
                code: .invalidConfiguration,
                message: "the CRL in \(path) is not valid before \(describe(lastUpdate)) (lastUpdate); every client of "
                    + "its CA would be refused: check the clock or the CRL")
        }
    }

    /// An ASN.1 time as `2026-11-30T12:00:00Z`.
    private static func describe(_ time: UnsafePointer<ASN1_TIME>) -> String {
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return "an unreadable time" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

/// The server's certificate check, after OpenSSL's own: a certificate that may sign others
/// (basicConstraints CA:TRUE, or keyCertSign) is not a client identity, even when its CA issued it.
private func refuseCAAsClient(_ preverified: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverified == 1, let store, X509_STORE_CTX_get_error_depth(store) == 0,
        let certificate = X509_STORE_CTX_get_current_cert(store)
    else { return preverified }
    guard X509_check_ca(certificate) == 0 else {
        X509_STORE_CTX_set_error(store, X509_V_ERR_INVALID_PURPOSE)
        return 0
    }
    return 1
}

/// OpenSSL's new-session callback of client contexts: hands the session to the cache of the
/// connection's context under the connection's session key. Returns 1 to keep the reference.
private func storeNewSession(_ ssl: OpaquePointer?, _ session: OpaquePointer?) -> Int32 {
    guard let ssl, let session, let connection = TLSConnection.from(ssl), let key = connection.sessionKey else {
        return 0
    }
    connection.context.sessionCache.store(TLSSessionCache.Session(owning: session), for: key)
    return 1
}
