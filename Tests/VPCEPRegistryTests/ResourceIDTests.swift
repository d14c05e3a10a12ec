import Foundation
import Testing
@testable import VPCEPRegistry

/// New resources' ids: version 7 UUIDs, so that they reach each index in the order they are made.
@Suite("Resource ids")
struct ResourceIDTests {
    /// Hands out fixed words, so an id's every bit is known.
    struct FixedWords: RandomNumberGenerator {
        var words: [UInt64]
        mutating func next() -> UInt64 { words.removeFirst() }
    }

    @Test func theTimeLeadsThenVersionRandomBitsAndVariant() {
        var ones = FixedWords(words: [.max, .max])
        #expect(ResourceID.make(milliseconds: 0x0123_4567_89AB, random: &ones) == "01234567-89ab-7fff-bfff-ffffffffffff")
        var zeros = FixedWords(words: [0, 0])
        #expect(ResourceID.make(milliseconds: 0, random: &zeros) == "00000000-0000-7000-8000-000000000000")
    }

    @Test func anIdIsAVersion7UUIDOfTheCurrentMillisecond() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = ResourceID.make()
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(id == id.lowercased())
        let uuid = try #require(UUID(uuidString: id))
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7)
        #expect(bytes[8] >> 6 == 0b10)
        let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect((before...after).contains(milliseconds))
    }

    /// The pooled random words are refilled (32 at a time) and never handed out twice: ids made in one
    /// burst, mostly within a millisecond, all differ in their random bits.
    @Test func idsOfOneBurstNeverRepeat() {
        let ids = (0..<5_000).map { _ in ResourceID.make() }
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids.map { $0.suffix(17) }).count == ids.count)
    }

    /// What the stores' indexes rely on: a later millisecond gives a greater id as a string, and
    /// ids of one millisecond still differ.
    @Test func laterIdsSortAfterEarlierOnesAndNoneRepeat() {
        var random = SystemRandomNumberGenerator()
        var previous = ""
        for milliseconds in stride(from: UInt64(1_700_000_000_000), to: 1_700_000_000_000 + 5_000, by: 7) {
            let id = ResourceID.make(milliseconds: milliseconds, random: &random)
            #expect(id > previous)
            previous = id
        }
        let sameMillisecond = (0..<1000).map { _ in ResourceID.make(milliseconds: 42, random: &random) }
        #expect(Set(sameMillisecond).count == 1000)
    }
}
