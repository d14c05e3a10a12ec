/// A ``ProtoMessage`` that could not be encoded.
public struct ProtoEncodingError: Error, Hashable, CustomStringConvertible {
    /// What went wrong; more codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: Hashable {
            case nulInString
            case internalError
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// A string field contains a NUL byte, which protobuf-c cannot carry.
        public static let nulInString = Code(.nulInString)

        /// protobuf-c packed a different number of bytes than it announced.
        public static let internalError = Code(.internalError)

        public var description: String {
            switch wrapped {
            case .nulInString: "NUL in string"
            case .internalError: "internal error"
            }
        }
    }

    public var code: Code

    /// The message being encoded, e.g. `"vpcep.v1.EndpointService"`.
    public var messageName: String

    /// Path of the field at fault in proto names, e.g. `"tags[0].value"`; nil when the fault is
    /// not in one field.
    public var field: String?

    /// A human-readable explanation; never contains the field's value.
    public var message: String

    public init(code: Code, messageName: String, field: String? = nil, message: String) {
        self.code = code
        self.messageName = messageName
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field {
            return "cannot encode \(messageName): \(field): \(message)"
        }
        return "cannot encode \(messageName): \(message)"
    }
}

extension ProtoEncodingError {
    static func nulInString(field: String, index: Int? = nil) -> Self {
        Self(
            code: .nulInString,
            messageName: "",
            field: ProtoPath.join(field, index, nil),
            message: "string contains a NUL byte"
        )
    }

    static func sizeMismatch(_ messageName: String, expected: Int, packed: Int) -> Self {
        Self(
            code: .internalError,
            messageName: messageName,
            message: "protobuf-c packed \(packed) bytes, expected \(expected)"
        )
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
