/// A protobuf enum of the vpcep API.
///
/// Generated enums are open structs rather than Swift enums: a value this build does not know
/// (a newer server, an older client) keeps its raw value through a decode and re-encode.
public protocol ProtoEnum: RawRepresentable<Int32>, Sendable, Hashable, CustomStringConvertible {
    init(rawValue: Int32)

    /// Every value the schema names, in schema order.
    static var allKnown: [Self] { get }

    /// The schema name, e.g. `"SERVICE_STATUS_AVAILABLE"`; nil for an unknown value.
    var protoName: String? { get }
}

extension ProtoEnum {
    /// The schema name, or the raw number for a value the schema does not name.
    public var description: String {
        protoName ?? String(rawValue)
    }
}
