internal import COpenSSL

/// A server's ALPN protocols in wire format (length-prefixed), in order of preference.
final class ALPNProtocols: Sendable {
    let wire: [UInt8]

    init(wire: [UInt8]) {
        self.wire = wire
    }

    static func wireFormat(_ protocols: [String]) throws(TLSError) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError(
                    code: .invalidConfiguration,
                    message: "an ALPN protocol name must be 1 to 255 bytes long, got \(bytes.count)"
                )
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }

    /// The first of our protocols that the client's wire-format list offers, as a range of the
    /// client's list; nil when the lists share none (or the client's list is malformed).
    func select(fromClientList client: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var ours = 0
        while ours < self.wire.count {
            let ourLength = Int(self.wire[ours])
            let ourName = self.wire[(ours + 1)..<(ours + 1 + ourLength)]
            var theirs = 0
            while theirs < client.count {
                let theirLength = Int(client[theirs])
                let end = theirs + 1 + theirLength
                guard theirLength > 0, end <= client.count else { return nil }
                if theirLength == ourLength, client[(theirs + 1)..<end].elementsEqual(ourName) {
                    return (theirs + 1)..<end
                }
                theirs = end
            }
            ours += 1 + ourLength
        }
        return nil
    }
}

/// OpenSSL's ALPN select callback for servers: `arg` is an unretained `ALPNProtocols`.
/// No common protocol refuses the handshake (no_application_protocol alert).
let selectALPN:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, out, outLength, input, inputLength, arg in
        guard let out, let outLength, let input, let arg else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let protocols = Unmanaged<ALPNProtocols>.fromOpaque(arg).takeUnretainedValue()
        let client = UnsafeBufferPointer(start: input, count: Int(inputLength))
        guard let range = protocols.select(fromClientList: client) else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        out.pointee = input + range.lowerBound
        outLength.pointee = UInt8(range.count)
        return SSL_TLSEXT_ERR_OK
    }
