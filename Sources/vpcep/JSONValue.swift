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

    /// Renders any generated message by reflection: field names become snake_case, enums their
    /// short lowerCamel names ("available", "pendingAcceptance"), absent submessages are left out.
    init(reflecting value: Any) {
        switch value {
        case let string as String: self = .string(string)
        case let bool as Bool: self = .bool(bool)
        case let number as any BinaryInteger: self = .number("\(number)")
        case let number as Double: self = .number("\(number)")
        case let number as Float: self = .number("\(number)")
        case let protoEnum as any ProtoEnum: self = .string(Self.shortName(protoEnum))
        // An exact type check: an empty array of anything would also cast to [UInt8].
        case let bytes as [UInt8] where type(of: value) == [UInt8].self:
            self = .string(Data(bytes).base64EncodedString())
        default:
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .optional:
                self = mirror.children.first.map { JSONValue(reflecting: $0.value) } ?? .null
            case .collection:
                self = .array(mirror.children.map { JSONValue(reflecting: $0.value) })
            default:
                self = .object(mirror.children.compactMap { child in
                    guard let label = child.label else { return nil }
                    let inner = Mirror(reflecting: child.value)
                    if inner.displayStyle == .optional, inner.children.isEmpty { return nil }
                    return (Self.snakeCase(label), JSONValue(reflecting: child.value))
                })
            }
        }
    }

    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name.trimmingCharacters(in: CharacterSet(charactersIn: "`")) {
            if character.isUppercase {
                if !result.isEmpty { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// "SERVICE_STATUS_PENDING_ACCEPTANCE" of `ServiceStatus` → "pendingAcceptance".
    static func shortName<E: ProtoEnum>(_ value: E) -> String {
        guard let protoName = value.protoName else { return "\(value.rawValue)" }
        let prefix = snakeCase(String(describing: E.self)).uppercased() + "_"
        let rest = protoName.hasPrefix(prefix) ? String(protoName.dropFirst(prefix.count)) : protoName
        let words = rest.lowercased().split(separator: "_")
        guard let first = words.first else { return rest.lowercased() }
        return String(first) + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

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
