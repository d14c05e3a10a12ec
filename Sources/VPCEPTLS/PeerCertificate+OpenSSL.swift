internal import COpenSSL
internal import COpenSSLShims

#if canImport(FoundationEssentials)
internal import struct FoundationEssentials.Date
#else
internal import struct Foundation.Date
#endif

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

extension PeerCertificate {
    /// Reads the identity out of an `X509` borrowed for the duration of the call.
    init(borrowing certificate: OpaquePointer) {
        self.init(
            uriSANs: Self.uriSANs(of: certificate),
            subject: Self.subject(of: certificate),
            notAfter: Self.notAfter(of: certificate)
        )
        OpenSSLErrorQueue.clear()
    }

    private static func uriSANs(of certificate: OpaquePointer) -> [String] {
        guard let names = vpcep_X509_get_subject_alt_names(certificate) else { return [] }
        defer { vpcep_GENERAL_NAMES_free(names) }
        var uris: [String] = []
        for index in 0..<vpcep_GENERAL_NAMES_count(names) {
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            guard vpcep_GENERAL_NAMES_get_uri(names, index, &data, &length) == 1, let data, length > 0 else {
                continue
            }
            let bytes = UnsafeBufferPointer(start: data, count: Int(length))
            // Printable ASCII without spaces only: no NUL tricks, no look-alikes. Other bytes are
            // written as %XX rather than the entry dropped, so that the URI keeps its place: the
            // first vpcep:// URI is the identity, and a later one must not stand in for it.
            var uri = ""
            for byte in bytes {
                if (0x21...0x7E).contains(byte), byte != UInt8(ascii: "%") {
                    uri.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    uri += "%" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
                }
            }
            uris.append(uri)
        }
        return uris
    }

    private static func subject(of certificate: OpaquePointer) -> String {
        guard let name = X509_get_subject_name(certificate), let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard vpcep_X509_NAME_print_rfc2253(bio, name) >= 0 else { return "" }
        let count = Int(BIO_ctrl_pending(bio))
        guard count > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = BIO_read(bio, &bytes, Int32(count))
        return String(decoding: bytes.prefix(Int(max(read, 0))), as: UTF8.self)
    }

    private static func notAfter(of certificate: OpaquePointer) -> Date? {
        guard let time = X509_get0_notAfter(certificate) else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: Double(timegm(&parts)))
    }
}
