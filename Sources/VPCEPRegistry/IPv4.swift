/// An IPv4 address. Parsing is strict: four decimal octets 0-255, no leading zeros, no spaces.
struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    var value: UInt32

    init(value: UInt32) {
        self.value = value
    }

    init?(_ text: some StringProtocol) {
        // On the UTF-8 bytes: Character-wise splitting and digit tests were 2-3% of a create's CPU.
        var value: UInt32 = 0
        var octets = 0
        var digits = Decimal()
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard let octet = digits.value(max: 255), octets < 3 else { return nil }
                value = value << 8 | UInt32(octet)
                octets += 1
                digits = Decimal()
            } else {
                guard digits.append(byte) else { return nil }
            }
        }
        guard let octet = digits.value(max: 255), octets == 3 else { return nil }
        self.value = value << 8 | UInt32(octet)
    }

    /// A canonical decimal number (no sign, no leading zero) not above `max`.
    static func decimal(_ text: some StringProtocol, max: Int) -> Int? {
        var digits = Decimal()
        for byte in text.utf8 {
            guard digits.append(byte) else { return nil }
        }
        return digits.value(max: max)
    }

    /// Up to three ASCII digits read one at a time, refusing a leading zero.
    private struct Decimal {
        private var number = 0
        private var count = 0

        /// Adds `byte`; false if it is not a digit, is a fourth, or follows a leading zero.
        mutating func append(_ byte: UInt8) -> Bool {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), count < 3, !(count == 1 && number == 0) else {
                return false
            }
            number = number * 10 + Int(byte - UInt8(ascii: "0"))
            count += 1
            return true
        }

        /// The number, if there was a digit and it is not above `max`.
        func value(max: Int) -> Int? { count > 0 && number <= max ? number : nil }
    }

    var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 block `a.b.c.d/n`.
struct IPv4CIDR: Sendable, Hashable, CustomStringConvertible {
    var address: IPv4Address
    var prefix: Int

    enum ParseError: Error {
        /// Not `a.b.c.d/n` (or, where addresses are accepted, `a.b.c.d`).
        case syntax
        /// `a.b.c.d` has bits set beyond the prefix.
        case hostBitsSet
    }

    /// Parses `a.b.c.d/n`; with `acceptAddress`, a bare address is a /32.
    static func parse(_ text: String, acceptAddress: Bool = false) throws(ParseError) -> IPv4CIDR {
        let slash = text.utf8.firstIndex(of: UInt8(ascii: "/"))
        let prefix: Int
        if let slash {
            // A second slash is not a digit, so the prefix refuses it.
            guard let number = IPv4Address.decimal(text[text.utf8.index(after: slash)...], max: 32) else { throw .syntax }
            prefix = number
        } else {
            guard acceptAddress else { throw .syntax }
            prefix = 32
        }
        guard let address = IPv4Address(text[..<(slash ?? text.endIndex)]) else { throw .syntax }
        let cidr = IPv4CIDR(address: address, prefix: prefix)
        guard address.value & ~cidr.mask == 0 else { throw .hostBitsSet }
        return cidr
    }

    init(address: IPv4Address, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    var mask: UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }
    var first: UInt32 { address.value & mask }
    var last: UInt32 { first | ~mask }

    func contains(_ other: IPv4CIDR) -> Bool { first <= other.first && other.last <= last }
    func contains(_ address: IPv4Address) -> Bool { first <= address.value && address.value <= last }
    func overlaps(_ other: IPv4CIDR) -> Bool { first <= other.last && other.first <= last }

    var description: String { "\(address)/\(prefix)" }

    /// The source range endpoint traffic arrives from; never usable by subnets.
    static let endpointSourceRange = IPv4CIDR(address: IPv4Address(value: 198 << 24 | 19 << 16 | 128 << 8), prefix: 17)

    /// Whether the union of `blocks` covers every address of `self`.
    func isCovered(by blocks: [IPv4CIDR]) -> Bool {
        let ranges = blocks.filter { overlaps($0) }
            .map { (max($0.first, first), min($0.last, last)) }
            .sorted { $0.0 < $1.0 }
        var next = UInt64(first)  // first address not yet known to be covered
        for (start, end) in ranges {
            guard UInt64(start) <= next else { break }
            next = max(next, UInt64(end) + 1)
        }
        return next > UInt64(last)
    }
}
