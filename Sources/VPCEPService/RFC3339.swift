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

    /// An RFC 3339 `date-time` (`2026-11-30T15:00:00Z`, `…T15:00:00.5+01:00`; `T`/`Z` in either case),
    /// nil for anything else, including dates that do not exist. Fractions finer than the millisecond
    /// the store keeps are cut.
    static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var value = 0
            for index in range {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[index]) else { return nil }
                value = value * 10 + Int(b[index] - UInt8(ascii: "0"))
            }
            return value
        }
        func at(_ index: Int, _ characters: String) -> Bool { index < b.count && characters.utf8.contains(b[index]) }
        guard let year = digits(0..<4), at(4, "-"), let month = digits(5..<7), at(7, "-"), let day = digits(8..<10),
            at(10, "Tt"), let hour = digits(11..<13), at(13, ":"), let minute = digits(14..<16), at(16, ":"),
            let second = digits(17..<19), (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var millis = 0
        if at(index, ".") {
            var end = index + 1
            while end < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[end]) { end += 1 }
            guard end > index + 1, end - index - 1 <= 9, let fraction = digits(index + 1..<min(end, index + 4)) else { return nil }
            millis = fraction * [100, 10, 1][min(end, index + 4) - index - 2]
            index = end
        }
        var offsetSeconds = 0
        if at(index, "Zz") {
            guard index + 1 == b.count else { return nil }
        } else if at(index, "+-") {
            guard index + 6 == b.count, let offsetHours = digits(index + 1..<index + 3), at(index + 3, ":"),
                let offsetMinutes = digits(index + 4..<index + 6), offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = (offsetHours * 60 + offsetMinutes) * 60 * (b[index] == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        let dayNumber = days(fromCivil: year, month, day)
        // 2026-02-30 names no day: it would come back as another one.
        guard civil(fromDays: dayNumber) == (year, month, day) else { return nil }
        let seconds = dayNumber * 86_400 + Int64(hour * 3600 + minute * 60 + second - offsetSeconds)
        return Date(timeIntervalSince1970: (Double(seconds * 1000) + Double(millis)) / 1000)
    }

    /// The day number, from 1970-01-01, of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    private static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * Int64((month + 9) % 12) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
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
