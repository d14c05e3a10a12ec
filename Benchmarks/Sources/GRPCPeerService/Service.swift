// The gRPC peer's definition of `vpcep.v1.EndpointServices/GetEndpointService`, written by hand
// from proto/vpcep/v1/endpoint_service.proto (see BENCHMARKS.md, "Deviations"): GRPCCore method
// descriptors plus a serializer pair over vpcep's own protobuf-c backed messages, so neither
// swift-protobuf nor its protoc plugin is needed. The bytes on the wire are the same protobuf.
import GRPCCore
import VPCEPClient

/// Serializes any vpcep message with its own protobuf-c encoder.
public struct ProtoSerializer<Message: ProtoMessage>: MessageSerializer {
    public init() {}

    public func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        try message.withSerializedBytes { Bytes($0) }
    }
}

/// Deserializes any vpcep message with its own protobuf-c decoder.
public struct ProtoDeserializer<Message: ProtoMessage>: MessageDeserializer {
    public init() {}

    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        try serializedMessageBytes.withUnsafeBytes { buffer in try Message(serializedBytes: buffer) }
    }
}

/// `service EndpointServices` in proto/vpcep/v1/endpoint_service.proto: the one method measured.
public enum PeerEndpointServices {
    public static let getEndpointService = GRPCCore.MethodDescriptor(
        fullyQualifiedService: "vpcep.v1.EndpointServices", method: "GetEndpointService", type: .unary)

    /// Client stub: one unary GetEndpointService call.
    public static func getEndpointService<Transport: ClientTransport>(
        _ client: GRPCClient<Transport>, _ request: GetEndpointServiceRequest
    ) async throws -> EndpointService {
        try await client.unary(
            request: ClientRequest(message: request), descriptor: getEndpointService,
            serializer: ProtoSerializer<GetEndpointServiceRequest>(),
            deserializer: ProtoDeserializer<EndpointService>(), options: .defaults
        ) { response in try response.message }
    }
}
