/// A protobuf encoding that could not be decoded into a ``ProtoMessage``.
public struct ProtoDecodingError: Error, Hashable, CustomStringConvertible {
    /// What went wrong; more codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: Hashable {
            case malformedInput
            case invalidUTF8
            case nulInString
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The bytes are not an encoding of the message: garbage, truncated input, or a field with
        /// the wrong wire type.
        public static let malformedInput = Code(.malformedInput)

        /// A string field is not valid UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)

        /// A string field contains a NUL byte, which protobuf-c would silently cut the string at.
        public static let nulInString = Code(.nulInString)

        public var description: String {
            switch wrapped {
            case .malformedInput: "malformed input"
            case .invalidUTF8: "invalid UTF-8"
            case .nulInString: "NUL in string"
            }
        }
    }

    public var code: Code

    /// The message being decoded, e.g. `"vpcep.v1.EndpointService"`.
    public var messageName: String

    /// Path of the field at fault in proto names, e.g. `"ports[1].name"`; nil when the fault is
    /// not in one field.
    public var field: String?

    /// A human-readable explanation; never contains the decoded data.
    public var message: String

    public init(code: Code, messageName: String, field: String? = nil, message: String) {
        self.code = code
        self.messageName = messageName
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field {
            return "cannot decode \(messageName): \(field): \(message)"
        }
        return "cannot decode \(messageName): \(message)"
    }
}

extension ProtoDecodingError {
    static func malformed(_ messageName: String) -> Self {
        Self(
            code: .malformedInput,
            messageName: messageName,
            message: "not a valid protobuf encoding of the message (garbage, truncated or wrong wire type)"
        )
    }

    static func invalidUTF8(field: String) -> Self {
        Self(code: .invalidUTF8, messageName: "", field: field, message: "string is not valid UTF-8")
    }

    static func nulInString(field: String) -> Self {
        Self(code: .nulInString, messageName: "", field: field, message: "string contains a NUL byte")
    }

    /// The same error seen from the message that holds `field` (at `index` when repeated).
    func nested(in field: String, index: Int? = nil) -> Self {
        var copy = self
        copy.field = ProtoPath.join(field, index, self.field)
        return copy
    }

    func inMessage(_ name: String) -> Self {
        var copy = self
        copy.messageName = name
        return copy
    }
}

enum ProtoPath {
    /// `"ports"`, `2`, `"name"` → `"ports[2].name"`.
    static func join(_ field: String, _ index: Int?, _ rest: String?) -> String {
        var path = field
        if let index {
            path += "[\(index)]"
        }
        if let rest {
            path += "." + rest
        }
        return path
    }
}
