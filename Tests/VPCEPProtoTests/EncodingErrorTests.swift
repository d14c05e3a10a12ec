import Testing
import VPCEPProto

@Suite("Encoding refuses what protobuf-c would mangle")
struct EncodingErrorTests {
    @Test("a NUL in a string names the field")
    func nul() {
        let request = CreateVpcRequest(name: "a\u{0}b", cidr: "10.0.0.0/16")
        #expect {
            try request.serializedBytes()
        } throws: { error in
            let error = error as? ProtoEncodingError
            return error?.code == .nulInString && error?.field == "name"
                && error?.messageName == "vpcep.v1.CreateVpcRequest"
        }
    }

    @Test("the path reaches into repeated and nested messages")
    func nestedPath() {
        var service = Fixtures.endpointService
        service.tags[1].value = "\u{0}"
        #expect {
            try service.serializedBytes()
        } throws: { error in
            (error as? ProtoEncodingError)?.field == "tags[1].value"
        }
        var warnings = Fixtures.endpointService
        warnings.warnings = ["ok", "ok", "trailing\u{0}"]
        #expect {
            try warnings.serializedBytes()
        } throws: { error in
            (error as? ProtoEncodingError)?.field == "warnings[2]"
        }
        let list = ListEndpointServicesRequest(page: PageRequest(sortKey: "x\u{0}"))
        #expect {
            try list.serializedBytes()
        } throws: { error in
            (error as? ProtoEncodingError)?.field == "page.sort_key"
        }
    }

    @Test("withSerializedBytes throws the same error and never calls body")
    func lent() {
        let request = CreateVpcRequest(name: "ok", cidr: "\u{0}")
        var called = false
        #expect {
            try request.withSerializedBytes { _ in called = true }
        } throws: { error in
            (error as? ProtoEncodingError)?.field == "cidr"
        }
        #expect(!called)
    }

    @Test("withSerializedBytes passes on what body throws")
    func bodyError() {
        struct Marker: Error {}
        #expect(throws: Marker.self) {
            try CreateVpcRequest(name: "a").withSerializedBytes { _ in throw Marker() }
        }
    }

    @Test("the description names the field, not the value")
    func description() {
        do {
            _ = try CreateVpcRequest(name: "secret\u{0}").serializedBytes()
            Issue.record("encoding should have failed")
        } catch {
            #expect(error.description == "cannot encode vpcep.v1.CreateVpcRequest: name: string contains a NUL byte")
            #expect(!error.description.contains("secret"))
        }
    }
}
