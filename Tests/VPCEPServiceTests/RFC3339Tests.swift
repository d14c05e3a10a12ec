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
}
