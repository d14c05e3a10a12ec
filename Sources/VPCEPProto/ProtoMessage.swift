/// A message of the vpcep API: a Swift value type generated from `proto/`.
///
/// Encoding and decoding go through protobuf-c; the C structs never leave this module.
///
/// `Encodable` gives the JSON form the CLI prints: keys are the proto field names (snake_case),
/// absent submessages and wrappers are left out, enums are their ``ProtoEnum/jsonName``.
public protocol ProtoMessage: Sendable, Hashable, Encodable {
    /// The full protobuf name, e.g. `"vpcep.v1.EndpointService"`.
    static var protoMessageName: String { get }

    /// A message with every field at its default (zero, empty, absent).
    init()

    /// Decodes the protobuf encoding in `serializedBytes`.
    ///
    /// Throws for input protobuf-c rejects (garbage, truncated, wrong wire types), for string
    /// fields that are not valid UTF-8, and for string fields containing a NUL byte (which
    /// protobuf-c would silently cut short). Unknown fields are skipped.
    init(serializedBytes: UnsafeRawBufferPointer) throws(ProtoDecodingError)

    /// The protobuf encoding of this message.
    ///
    /// Throws when a string field contains a NUL byte, which protobuf-c would silently truncate.
    func serializedBytes() throws(ProtoEncodingError) -> [UInt8]

    /// Packs into a temporary buffer and lends it to `body` without another copy.
    ///
    /// The buffer is only valid inside `body`. Throws a ``ProtoEncodingError`` like
    /// ``serializedBytes()``, or whatever `body` throws.
    func withSerializedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R

    /// The names (as in the JSON form) of the fields whose values differ from `other`'s, in field order.
    func fieldsDiffering(from other: Self) -> [String]
}

extension ProtoMessage {
    /// Decodes the protobuf encoding in `serializedBytes`.
    public init(serializedBytes: [UInt8]) throws(ProtoDecodingError) {
        // `withUnsafeBytes` is not typed-throws; carry the error out by hand.
        let result: Result<Self, ProtoDecodingError> = serializedBytes.withUnsafeBytes { buffer in
            do throws(ProtoDecodingError) {
                return .success(try Self(serializedBytes: buffer))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }
}

/// A JSON key of a generated message: the proto field name.
public struct ProtoFieldKey: CodingKey, ExpressibleByStringLiteral, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }

    public init(stringValue: String) {
        self.stringValue = stringValue
    }

    public init?(intValue: Int) {
        return nil
    }

    public init(stringLiteral value: String) {
        self.stringValue = value
    }
}
