/// A reader for the small JSON values the store writes into list columns (tags, addresses, warnings,
/// ports): arrays of strings and arrays of flat objects of strings and integers. Foundation's `JSONDecoder` costs more than
/// the SQL of a list page (a fifth of the server's time on a page of 100 endpoints), so rows are read
/// here, and anything this reader does not expect (another shape, a number where a string was
/// written, invalid escapes) returns `nil`, for the caller to fall back to `JSONDecoder`.
enum StoredJSON {
    /// `["a", "b"]`.
    static func strings(_ text: String) -> [String]? {
        var copy = text
        return copy.withUTF8 { bytes in
            var reader = Reader(bytes: bytes)
            var values: [String] = []
            guard reader.array({ reader in
                guard let value = reader.string() else { return false }
                values.append(value)
                return true
            }), reader.atEnd else { return nil }
            return values
        }
    }

    /// `[{"k1": "v", "k2": "w"}, …]`: each object's string members, in the order written.
    static func objects(_ text: String) -> [[(String, String)]]? {
        flatObjects(text) { $0.string() }
    }

    /// A member of the objects `records(_:)` reads.
    enum Member: Equatable {
        case string(String)
        case integer(Int)
    }

    /// `[{"k": "v", "n": 80}, …]`: each object's string and integer members, in the order written.
    static func records(_ text: String) -> [[(String, Member)]]? {
        flatObjects(text) { reader in
            if let value = reader.string() { return .string(value) }
            return reader.integer().map { .integer($0) }
        }
    }

    /// An array of flat objects whose every member `value` reads.
    private static func flatObjects<Value>(_ text: String, _ value: (inout Reader) -> Value?) -> [[(String, Value)]]? {
        var copy = text
        return copy.withUTF8 { bytes in
            var reader = Reader(bytes: bytes)
            var values: [[(String, Value)]] = []
            guard reader.array({ reader in
                var members: [(String, Value)] = []
                guard reader.object({ key, reader in
                    guard let member = value(&reader) else { return false }
                    members.append((key, member))
                    return true
                }) else { return false }
                values.append(members)
                return true
            }), reader.atEnd else { return nil }
            return values
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        var atEnd: Bool {
            mutating get {
                skipSpace()
                return index == bytes.count
            }
        }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// `[ element, … ]`; `element` reads one and says whether it could.
        mutating func array(_ element: (inout Reader) -> Bool) -> Bool {
            guard take(UInt8(ascii: "[")) else { return false }
            if take(UInt8(ascii: "]")) { return true }
            repeat {
                guard element(&self) else { return false }
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]"))
        }

        /// `{ "key": value, … }`; `member` reads the value after the key.
        mutating func object(_ member: (String, inout Reader) -> Bool) -> Bool {
            guard take(UInt8(ascii: "{")) else { return false }
            if take(UInt8(ascii: "}")) { return true }
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")), member(key, &self) else { return false }
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}"))
        }

        /// An integer as JSON writes it (`-`, then `0` or digits without a leading zero) that fits an
        /// `Int`; `nil`, reading nothing, for anything else (a fraction or an exponent included).
        mutating func integer() -> Int? {
            skipSpace()
            var at = index
            let negative = at < bytes.count && bytes[at] == UInt8(ascii: "-")
            if negative { at += 1 }
            let digits = at
            var value = 0
            while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") {
                let digit = Int(bytes[at] - UInt8(ascii: "0"))
                let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowSum) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
                guard !overflowTimes, !overflowSum else { return nil }
                value = sum
                at += 1
            }
            guard at > digits, !(bytes[digits] == UInt8(ascii: "0") && at - digits > 1) else { return nil }
            if at < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[at]) { return nil }
            index = at
            return value
        }

        /// A string with the escapes JSON allows; `nil` for anything else.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // The common case: no escapes, the bytes are the string.
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                guard bytes[index] >= 0x20 else { return nil }
                index += 1
            }
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "\"") {
                defer { index += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            }
            var scalars = String.UnicodeScalarView()
            var plain = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    plain.unicodeScalars.append(contentsOf: scalars)
                    return plain
                }
                if byte != UInt8(ascii: "\\") {
                    // Raw UTF-8: copy the run up to the next quote or escape.
                    let run = index
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                        guard bytes[index] >= 0x20 else { return nil }
                        index += 1
                    }
                    scalars.append(
                        contentsOf: String(decoding: UnsafeBufferPointer(rebasing: bytes[run..<index]), as: UTF8.self).unicodeScalars)
                    continue
                }
                index += 1
                guard index < bytes.count else { return nil }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(unit) {
                        guard take(UInt8(ascii: "\\")), index < bytes.count, bytes[index] == UInt8(ascii: "u") else { return nil }
                        index += 1
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low),
                            let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        else { return nil }
                        scalars.append(scalar)
                    } else {
                        guard let scalar = Unicode.Scalar(unit) else { return nil }
                        scalars.append(scalar)
                    }
                default: return nil
                }
            }
            return nil
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }
    }
}
