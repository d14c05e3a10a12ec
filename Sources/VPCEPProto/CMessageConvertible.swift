internal import CProtobufC

/// A message with a generated conversion to and from its protobuf-c struct.
///
/// Every generated message conforms; the conformance is internal, so no C type reaches the
/// public API.
protocol CMessageConvertible: ProtoMessage {
    /// The protobuf-c struct, e.g. `Vpcep__V1__EndpointService`.
    associatedtype CMessage

    /// Calls the generated `*__init()`, the function form of the `*__INIT` macro.
    static func cInit(_ c: UnsafeMutablePointer<CMessage>)

    /// Copies an unpacked protobuf-c message into Swift values.
    init(c: UnsafePointer<CMessage>) throws(ProtoDecodingError)

    /// Fills an initialized protobuf-c message; every allocation is made in `arena`.
    func fill(_ c: UnsafeMutablePointer<CMessage>, arena: ProtoArena) throws(ProtoEncodingError)
}
