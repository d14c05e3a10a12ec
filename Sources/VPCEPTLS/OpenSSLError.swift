internal import COpenSSL
internal import COpenSSLShims

/// One entry of OpenSSL's thread-local error queue.
struct OpenSSLError: Sendable {
    var code: UInt
    var library: Int32
    var reason: Int32
    /// OpenSSL's one-line rendering, e.g. `error:0A000086:SSL routines::certificate verify failed`.
    var text: String
    /// The reason alone, e.g. `certificate verify failed`.
    var reasonText: String

    /// The TLS alert description the peer sent, when this entry records a received alert.
    var receivedAlert: Int32? {
        guard self.library == ERR_LIB_SSL, self.reason >= SSL_AD_REASON_OFFSET,
            self.reason < SSL_AD_REASON_OFFSET + 256
        else { return nil }
        return self.reason - SSL_AD_REASON_OFFSET
    }

    func isSSLReason(_ reason: Int32) -> Bool {
        self.library == ERR_LIB_SSL && self.reason == reason
    }
}

/// OpenSSL's error queue is per thread: clear it before a call whose failure we will report,
/// drain it right after the failure.
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    static func drain() -> [OpenSSLError] {
        var errors: [OpenSSLError] = []
        while true {
            let code = ERR_get_error()
            guard code != 0 else { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let reasonText = ERR_reason_error_string(code).map { String(cString: $0) } ?? text
            errors.append(
                OpenSSLError(
                    code: code,
                    library: vpcep_ERR_GET_LIB(code),
                    reason: vpcep_ERR_GET_REASON(code),
                    text: text,
                    reasonText: reasonText
                )
            )
        }
        return errors
    }

    /// Drains the queue into a `TLSError` whose message ends with OpenSSL's last reason.
    static func error(_ code: TLSError.Code, _ message: String) -> TLSError {
        let errors = self.drain()
        let detail = errors.last.map { ": \($0.reasonText)" } ?? ""
        return TLSError(code: code, message: message + detail, openSSLErrors: errors.map(\.text))
    }
}

extension TLSError {
    init(_ code: Code, _ message: String, errors: [OpenSSLError]) {
        self.init(code: code, message: message, openSSLErrors: errors.map(\.text))
    }
}

/// The English name of a TLS alert description (RFC 8446 §6), e.g. "certificate required".
/// OpenSSL 3.0's own table lacks the TLS 1.3 additions.
func alertDescription(_ alert: Int32) -> String {
    switch alert {
    case 0: "close notify"
    case 10: "unexpected message"
    case 20: "bad record MAC"
    case 22: "record overflow"
    case 40: "handshake failure"
    case 42: "bad certificate"
    case 43: "unsupported certificate"
    case 44: "certificate revoked"
    case 45: "certificate expired"
    case 46: "certificate unknown"
    case 47: "illegal parameter"
    case 48: "unknown CA"
    case 49: "access denied"
    case 50: "decode error"
    case 51: "decrypt error"
    case 70: "protocol version"
    case 71: "insufficient security"
    case 80: "internal error"
    case 86: "inappropriate fallback"
    case 90: "user canceled"
    case 109: "missing extension"
    case 110: "unsupported extension"
    case 112: "unrecognized name"
    case 113: "bad certificate status response"
    case 115: "unknown PSK identity"
    case 116: "certificate required"
    case 120: "no application protocol"
    default: "alert \(alert)"
    }
}
