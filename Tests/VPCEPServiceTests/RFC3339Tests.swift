import Foundation
import Testing
@testable import VPCEPService

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    /// Whole seconds are exact in a `Double`, so Foundation's formatter is a sound oracle for them;
    /// the millisecond part is then the stored integer.
    private static let wholeSeconds = Date.ISO8601FormatStyle()

    private func expected(milliseconds: Int64) -> String {
        let seconds = Int64((Double(milliseconds) / 1000).rounded(.down))
        let text = Self.wholeSeconds.format(Date(timeIntervalSince1970: Double(seconds)))
        let fraction = String(milliseconds - seconds * 1000)
        return text.dropLast() + "." + String(repeating: "0", count: 3 - fraction.count) + fraction + "Z"
    }

    @Test func everyMillisecondIsTheStoredOne() {
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 1, 17, 999, 951_782_400_000, 951_868_799_999, 4_107_542_399_999]
        for _ in 0..<20_000 {
            // 1970 to 2200: leap years, century years, 2000.
            samples.append(Int64.random(in: 0...7_258_118_400_000, using: &generator))
        }
        for milliseconds in samples {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            #expect(RFC3339.format(date) == expected(milliseconds: milliseconds), "\(milliseconds)")
        }
    }

    @Test func knownValues() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_700_000_000.017)) == "2023-11-14T22:13:20.017Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
    }

    @Test func parsingReadsBackWhatFormattingWrites() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let milliseconds = Int64.random(in: 0...7_258_118_400_000, using: &generator)
            let text = RFC3339.format(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
            let parsed = RFC3339.parse(text)
            #expect(parsed.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == milliseconds, "\(text)")
        }
    }

    @Test(arguments: [
        ("2026-11-30T15:00:00Z", 1_796_050_800_000),
        ("2026-11-30t15:00:00z", 1_796_050_800_000),
        ("2026-11-30T16:30:00+01:30", 1_796_050_800_000),
        ("2026-11-30T14:00:00-01:00", 1_796_050_800_000),
        ("2026-11-30T15:00:00.5Z", 1_796_050_800_500),
        ("2026-11-30T15:00:00.123456789Z", 1_796_050_800_123),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
    ] as [(String, Int64)])
    func parsingKnownValues(text: String, milliseconds: Int64) {
        #expect(RFC3339.parse(text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == milliseconds)
    }

    @Test(arguments: [
        "", "yesterday", "2026-11-30", "2026-11-30T15:00:00", "2026-11-30 15:00:00Z", "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T15:60:00Z",
        "2026-11-30T15:00:00.Z", "2026-11-30T15:00:00+0100", "2026-11-30T15:00:00Zjunk", "２026-11-30T15:00:00Z",
    ])
    func parsingRefusesWhatIsNotADateTime(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }
}
