import Foundation
import VPCEPClient

/// JSON as the CLI prints it: keys in schema order, snake_case as in proto/.
indirect enum JSONValue {
    case string(String)
    case number(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    subscript(key: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields.first { $0.0 == key }?.1
    }

    func serialized(indent: String = "", pretty: Bool = true) -> String {
        let newline = pretty ? "\n" : ""
        let inner = pretty ? indent + "  " : ""
        switch self {
        case .string(let string): return Self.quote(string)
        case .number(let number): return number
        case .bool(let bool): return bool ? "true" : "false"
        case .null: return "null"
        case .array(let items):
            if items.isEmpty { return "[]" }
            let body = items.map { inner + $0.serialized(indent: inner, pretty: pretty) }
            return "[" + newline + body.joined(separator: "," + newline) + newline + indent + "]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            let separator = pretty ? ": " : ":"
            let body = fields.map { inner + Self.quote($0.0) + separator + $0.1.serialized(indent: inner, pretty: pretty) }
            return "{" + newline + body.joined(separator: "," + newline) + newline + indent + "}"
        }
    }

    private static func quote(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            // JSON requires only C0 escaped; DEL, C1 and U+2028/2029 too keep the output safe
            // to print at a terminal.
            case _ where TerminalText.isControl(scalar):
                result += String(format: "\\u%04x", scalar.value)
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
