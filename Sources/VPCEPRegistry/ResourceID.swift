import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
        let milliseconds = UInt64(max(0, (Date().timeIntervalSince1970 * 1000).rounded(.down)))
        return pool.withLock { make(milliseconds: milliseconds, random: &$0) }
    }

    /// The system's random bytes, drawn 256 at a time (16 ids): `SystemRandomNumberGenerator` makes a
    /// system call for each word, and two per id were 1.6% of a create's CPU.
    private static let pool = Mutex(RandomPool())

    struct RandomPool: RandomNumberGenerator {
        private var words = [UInt64](repeating: 0, count: 32)
        private var position = 32

        mutating func next() -> UInt64 {
            if position == words.count {
                refill()
                position = 0
            }
            defer { position += 1 }
            return words[position]
        }

        #if canImport(Glibc)
        private typealias GetRandom = @convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int
        /// Looked up at run time: Swift's Glibc module does not export <sys/random.h>.
        private static let getrandom: GetRandom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getrandom").map {
            unsafeBitCast($0, to: GetRandom.self)
        }
        #endif

        private mutating func refill() {
            #if canImport(Glibc)
            // Up to 256 bytes, getrandom(2) returns them all once the kernel's pool is ready and is never
            // interrupted by a signal.
            let count = words.count * 8
            if let getrandom = Self.getrandom, words.withUnsafeMutableBytes({ getrandom($0.baseAddress, count, 0) }) == count {
                return
            }
            #endif
            var system = SystemRandomNumberGenerator()
            for index in words.indices { words[index] = system.next() }
        }
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
