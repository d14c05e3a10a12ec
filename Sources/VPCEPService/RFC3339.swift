import Foundation

/// Timestamps on the wire: RFC 3339 in UTC with milliseconds, e.g. "2026-11-26T20:30:00.123Z".
///
/// Written by hand because every read maps two of them: `Date.ISO8601FormatStyle` costs several
/// microseconds a call (calendar arithmetic, string searches), and it truncates the binary
/// fraction, so a stored …017 ms came out as …016 for about half of all millisecond values.
enum RFC3339 {
    /// The date to the nearest millisecond (the store keeps milliseconds, so that is exact).
    static func format(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (dayNumber, msOfDay) = floorDivision(millis, 86_400_000)
        let (year, month, day) = civil(fromDays: dayNumber)
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int, width: Int, at index: Int) {
                var rest = value
                for position in stride(from: index + width - 1, through: index, by: -1) {
                    out[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            let ms = Int(msOfDay)
            put(year, width: 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(month, width: 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(day, width: 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(ms / 3_600_000, width: 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put(ms / 60_000 % 60, width: 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(ms / 1000 % 60, width: 2, at: 17)
            out[19] = UInt8(ascii: ".")
            put(ms % 1000, width: 3, at: 20)
            out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    /// Proleptic Gregorian year, month and day of a day number counted from 1970-01-01
    /// (H. Hinnant's `civil_from_days`). Years outside 0...9999 do not fit the format; the store
    /// never holds them.
    private static func civil(fromDays dayNumber: Int64) -> (year: Int, month: Int, day: Int) {
        let shifted = dayNumber + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        return (Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0), month, day)
    }
}
