/// Who is calling, taken only from the verified client certificate's URI subjectAltName:
/// `vpcep://tenant/<id>` or `vpcep://operator/<name>` (docs/PROTOCOL.md §1.4).
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String { case tenant, `operator` }
        private let value: Value
        public static let tenant = Kind(value: .tenant)
        public static let `operator` = Kind(value: .operator)
        public var description: String { value.rawValue }
    }

    public var kind: Kind
    /// Tenant id or operator name: 1-64 of [A-Za-z0-9_-].
    public var id: String

    public init(kind: Kind, id: String) {
        self.kind = kind
        self.id = id
    }

    public var description: String { "\(kind)/\(id)" }

    /// The identity named by the certificate's first `vpcep://` URI SAN (docs/PROTOCOL.md §1.4),
    /// or nil when the certificate names no valid identity: no `vpcep://` URI, a malformed first
    /// one, or a later `vpcep://` URI that does not name the same identity (ambiguous). A
    /// malformed first URI never lets a later one stand in for it.
    public init?(uriSANs: [String]) {
        let named = uriSANs.filter { $0.hasPrefix(Self.scheme) }
        guard let first = named.first, let identity = Self.parse(first),
            named.dropFirst().allSatisfy({ Self.parse($0) == identity })
        else { return nil }
        self = identity
    }

    private static let scheme = "vpcep://"

    static func parse(_ uri: String) -> PeerIdentity? {
        guard uri.hasPrefix(scheme) else { return nil }
        let rest = uri.dropFirst(scheme.count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2 else { return nil }
        let kind: Kind
        switch rest[0] {
        case "tenant": kind = .tenant
        case "operator": kind = .operator
        default: return nil
        }
        let id = String(rest[1])
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy(Self.isIdentifierByte) else { return nil }
        return PeerIdentity(kind: kind, id: id)
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
