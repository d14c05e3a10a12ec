import Testing
import VPCEPProto

@Suite("Interop with Google's protoc", .enabled(if: Protoc.isAvailable, "needs protoc (apt-get install protobuf-compiler)"))
struct ProtocInteropTests {
    @Test("protoc --encode output decodes to the expected values")
    func decodeProtocBytes() throws {
        let bytes = try Protoc.encode(
            Fixtures.endpointServiceText,
            message: "vpcep.v1.EndpointService",
            file: "vpcep/v1/endpoint_service.proto"
        )
        let decoded = try EndpointService(serializedBytes: bytes)
        #expect(decoded == Fixtures.endpointService)
    }

    @Test("our bytes decode with protoc --decode to the expected text")
    func encodeForProtoc() throws {
        let bytes = try Fixtures.endpointService.serializedBytes()
        let text = try Protoc.decode(bytes, message: "vpcep.v1.EndpointService", file: "vpcep/v1/endpoint_service.proto")
        #expect(text == Fixtures.endpointServiceText)
    }

    @Test("wrappers and unknown enum values match protoc")
    func wrappersAndUnknownEnums() throws {
        let text = """
            backend_type: 7
            approval_enabled {
            }
            service_type: SERVICE_TYPE_GATEWAY

            """
        let bytes = try Protoc.encode(text, message: "vpcep.v1.CreateEndpointServiceRequest", file: "vpcep/v1/endpoint_service.proto")
        let decoded = try CreateEndpointServiceRequest(serializedBytes: bytes)
        #expect(decoded.backendType == BackendType(rawValue: 7))
        #expect(decoded.approvalEnabled == false, "a present but empty BoolValue is false, not nil")
        #expect(decoded.serviceType == .gateway)
        let back = try Protoc.decode(
            decoded.serializedBytes(),
            message: "vpcep.v1.CreateEndpointServiceRequest",
            file: "vpcep/v1/endpoint_service.proto"
        )
        #expect(back == text)
    }

    @Test("messages of every proto file agree with protoc", arguments: [
        ("vpcep.v1.WhoAmIResponse", "vpcep/v1/rpc.proto", "kind: KIND_OPERATOR\nid: \"ops\"\nregions: \"a\"\nregions: \"b\"\n"),
        ("vpcep.v1.HealthCheckResponse", "vpcep/v1/rpc.proto", "status: SERVING_STATUS_SERVING\n"),
        ("vpcep.v1.ListQuotasResponse", "vpcep/v1/quota.proto", "items {\n  type: QUOTA_TYPE_ENDPOINT\n  used: 4294967295\n}\n"),
        ("vpcep.v1.CallHeader", "vpcep/v1/rpc.proto", "method: \"/vpcep.v1.Health/Check\"\ntimeout_ms: 18446744073709551615\n"),
        ("vpcep.v1.Vm", "vpcep/v1/inventory.proto", "id: \"vm-1\"\ningress_cidrs: \"0.0.0.0/0\"\n"),
    ])
    func perFile(message: String, file: String, text: String) throws {
        let bytes = try Protoc.encode(text, message: message, file: file)
        let reencoded: [UInt8]
        switch message {
        case WhoAmIResponse.protoMessageName:
            let decoded = try WhoAmIResponse(serializedBytes: bytes)
            #expect(decoded == WhoAmIResponse(kind: .operator, id: "ops", regions: ["a", "b"]))
            reencoded = try decoded.serializedBytes()
        case HealthCheckResponse.protoMessageName:
            let decoded = try HealthCheckResponse(serializedBytes: bytes)
            #expect(decoded.status == .serving)
            reencoded = try decoded.serializedBytes()
        case ListQuotasResponse.protoMessageName:
            let decoded = try ListQuotasResponse(serializedBytes: bytes)
            #expect(decoded.items == [Quota(type: .endpoint, used: .max)])
            reencoded = try decoded.serializedBytes()
        case CallHeader.protoMessageName:
            let decoded = try CallHeader(serializedBytes: bytes)
            #expect(decoded == CallHeader(method: "/vpcep.v1.Health/Check", timeoutMs: .max))
            reencoded = try decoded.serializedBytes()
        case Vm.protoMessageName:
            let decoded = try Vm(serializedBytes: bytes)
            #expect(decoded == Vm(id: "vm-1", ingressCidrs: ["0.0.0.0/0"]))
            reencoded = try decoded.serializedBytes()
        default:
            Issue.record("no case for \(message)")
            return
        }
        #expect(reencoded == bytes, "canonical encodings are byte-identical")
        #expect(try Protoc.decode(reencoded, message: message, file: file) == text)
    }
}
