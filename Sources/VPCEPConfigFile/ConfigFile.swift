/// A small subset of TOML, enough for vpcep's configuration and profile files: `# comments`,
/// `[section]` and `[section.sub]` headers, and `key = value` with value a "string", an integer,
/// true/false, or a one-line array of strings. Anything else is an error naming the line.
public struct ConfigFile: Sendable, Hashable {
    public enum Value: Sendable, Hashable {
        case string(String)
        case integer(Int)
        case bool(Bool)
        case strings([String])
    }

    /// Keys of each section; top-level keys are in the section named "".
    public private(set) var sections: [String: [String: Value]] = [:]
    /// Section names in the order they appear.
    public private(set) var sectionOrder: [String] = [""]

    public init(parsing text: String, path: String) throws(ConfigFileError) {
        var section = ""
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = Self.stripComment(String(rawLine)).trimmingCharacters(in: " \t\r")
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else {
                    throw ConfigFileError(path: path, line: number, message: "a section header is [name]")
                }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: " \t")
                guard !section.isEmpty, section.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                    throw ConfigFileError(path: path, line: number, message: "invalid section name \"\(section)\"")
                }
                if sections[section] == nil, !sectionOrder.contains(section) { sectionOrder.append(section) }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigFileError(path: path, line: number, message: "expected key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: " \t")
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || "_-".contains($0) }) else {
                throw ConfigFileError(path: path, line: number, message: "invalid key \"\(key)\"")
            }
            let valueText = line[line.index(after: equals)...].trimmingCharacters(in: " \t")
            guard sections[section]?[key] == nil else {
                throw ConfigFileError(path: path, line: number, message: "\(key) is set twice")
            }
            do {
                sections[section, default: [:]][key] = try Self.parseValue(valueText)
            } catch {
                throw ConfigFileError(path: path, line: number, message: "\(key): \(error.message)")
            }
        }
    }

    public func value(_ key: String, in section: String = "") -> Value? {
        sections[section]?[key]
    }

    private struct ValueError: Error {
        var message: String
    }

    private static func parseValue(_ text: String) throws(ValueError) -> Value {
        if text.hasPrefix("\"") {
            var rest = Substring(text)
            let string = try parseString(&rest)
            guard rest.trimmingCharacters(in: " \t").isEmpty else { throw ValueError(message: "text after the string") }
            return .string(string)
        }
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if let integer = Int(text.filter { $0 != "_" }) { return .integer(integer) }
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw ValueError(message: "an array must close on the same line") }
            var rest = Substring(text.dropFirst().dropLast())
            var items: [String] = []
            while true {
                rest = rest.drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty { break }
                guard rest.first == "\"" else { throw ValueError(message: "arrays hold \"strings\"") }
                items.append(try parseString(&rest))
                rest = rest.drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty { break }
                guard rest.first == "," else { throw ValueError(message: "expected , between array items") }
                rest = rest.dropFirst()
            }
            return .strings(items)
        }
        throw ValueError(message: "expected a \"string\", a number, true, false or [\"a\", \"b\"]")
    }

    /// Reads a basic string starting at the opening quote and leaves `text` after the closing one.
    private static func parseString(_ text: inout Substring) throws(ValueError) -> String {
        var result = ""
        var iterator = text.dropFirst().makeIterator()
        var consumed = 1
        while let character = iterator.next() {
            consumed += 1
            switch character {
            case "\"":
                text = text.dropFirst(consumed)
                return result
            case "\\":
                guard let escaped = iterator.next() else { break }
                consumed += 1
                switch escaped {
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "\"": result.append("\"")
                case "\\": result.append("\\")
                default: throw ValueError(message: "unsupported escape \\\(escaped)")
                }
            default:
                result.append(character)
            }
        }
        throw ValueError(message: "unterminated string")
    }

    /// Drops a `#` comment that is not inside a string.
    private static func stripComment(_ line: String) -> String {
        var inString = false
        var escaped = false
        for (index, character) in zip(line.indices, line) {
            if escaped { escaped = false; continue }
            if character == "\\" && inString { escaped = true; continue }
            if character == "\"" { inString.toggle() }
            if character == "#" && !inString { return String(line[..<index]) }
        }
        return line
    }
}

/// A configuration file that cannot be used, with the place and the reason.
public struct ConfigFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(self).trimmingCharacters(in: set)
    }
}
