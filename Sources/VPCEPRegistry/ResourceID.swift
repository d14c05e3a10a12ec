import Foundation

/// Makes the ids of new resources: UUIDs of version 7 (RFC 9562), whose first 48 bits are the Unix
/// time in milliseconds and whose other 74 bits (apart from version and variant) are random.
///
/// Why not version 4: every table and log index keyed by a resource id then receives each new id at
/// a random place, so a commit of n creates dirties about n pages per such index, each written to the
/// log and copied back by the checkpoint. Ids that grow with time land on the index's last page. The
/// 74 random bits still make an id unguessable; what one now tells is when its resource was created.
public enum ResourceID {
    /// A new id, in the lowercase 8-4-4-4-12 form.
    public static func make() -> String {
        var random = SystemRandomNumberGenerator()
        return make(milliseconds: UInt64(max(0, (Date().timeIntervalSince1970 * 1000).rounded(.down))), random: &random)
    }

    /// The id made from `milliseconds` since 1970 and bits drawn from `random`.
    static func make(milliseconds: UInt64, random: inout some RandomNumberGenerator) -> String {
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (random.next() & 0x0FFF)
        let low = 0x8000_0000_0000_0000 | (random.next() & 0x3FFF_FFFF_FFFF_FFFF)
        return format(high: high, low: low)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The 32 hex digits of `high` then `low`, with dashes after the 8th, 12th, 16th and 20th.
    private static func format(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            for digit in 0..<32 {
                if digit == 8 || digit == 12 || digit == 16 || digit == 20 {
                    buffer[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = digit < 16 ? high : low
                buffer[position] = hexDigits[Int(truncatingIfNeeded: word >> UInt64(60 - (digit % 16) * 4)) & 0xF]
                position += 1
            }
            return position
        }
    }
}
