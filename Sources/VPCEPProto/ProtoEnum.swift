/// A protobuf enum of the vpcep API.
///
/// Generated enums are open structs rather than Swift enums: a value this build does not know
/// (a newer server, an older client) keeps its raw value through a decode and re-encode.
///
/// It encodes as its ``jsonName``: the one spelling the CLI prints, in JSON and in tables.
public protocol ProtoEnum: RawRepresentable<Int32>, Sendable, Hashable, CustomStringConvertible, Encodable {
    init(rawValue: Int32)

    /// Every value the schema names, in schema order.
    static var allKnown: [Self] { get }

    /// The schema name, e.g. `"SERVICE_STATUS_AVAILABLE"`; nil for an unknown value.
    var protoName: String? { get }

    /// The schema name without the type's prefix, in snake_case: `"pending_acceptance"` for
    /// `SERVICE_STATUS_PENDING_ACCEPTANCE`; nil for an unknown value.
    var shortName: String? { get }
}

extension ProtoEnum {
    /// The schema name, or the raw number for a value the schema does not name.
    public var description: String {
        protoName ?? String(rawValue)
    }

    /// ``shortName``, or the raw number (as a string) for a value the schema does not name, so a
    /// field keeps one JSON type whatever the server sends.
    public var jsonName: String {
        shortName ?? String(rawValue)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(jsonName)
    }
}
