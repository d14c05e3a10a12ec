import Foundation
import Testing
import VPCEPProto

/// Every generated message and enum is `Encodable` (README "Output"): keys are the proto field
/// names, absent submessages and wrappers are left out, enums are their snake_case short names.
@Suite("JSON encoding of generated types")
struct JSONEncodingTests {
    private func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("a message encodes its proto field names and snake_case enum names")
    func message() throws {
        #expect(try json(PortMapping(terminalPort: 443, servicePort: 8443, protocol: .tcp))
            == #"{"protocol":"tcp","service_port":8443,"terminal_port":443}"#)
        let list = ListEndpointsResponse(
            items: [Endpoint(id: "ep-1", status: .pendingAcceptance, tags: [Tag(key: "app", value: "shop")])], totalCount: 1
        )
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json(list).utf8)) as? [String: Any])
        #expect(object["total_count"] as? Int == 1)
        let item = try #require((object["items"] as? [[String: Any]])?.first)
        #expect(item["status"] as? String == "pending_acceptance")
        #expect(item["service_type"] as? String == "unspecified")
        #expect(item["tags"] as? [[String: String]] == [["key": "app", "value": "shop"]])
        #expect(item.keys.sorted() == [
            "created_at", "decision_reason", "description", "dns_name", "enable_whitelist", "id", "ip", "marker_id", "region",
            "request_message", "revision", "service_id", "service_name", "service_type", "status", "subnet_id", "tags",
            "tenant_id", "updated_at", "vpc_id", "whitelist",
        ])
        #expect(object["next_page_token"] as? String == "")
    }

    @Test("absent submessages and wrappers are left out; present ones are encoded")
    func optionals() throws {
        #expect(try json(UpdateEndpointServiceRequest(id: "eps-1"))
            == #"{"client_ip_mode":"unspecified","expected_revision":0,"id":"eps-1"}"#)
        #expect(try json(UpdateEndpointServiceRequest(id: "eps-1", approvalEnabled: false, name: "web"))
            == #"{"approval_enabled":false,"client_ip_mode":"unspecified","expected_revision":0,"id":"eps-1","name":"web"}"#)
    }

    @Test("enums: snake_case short names, one spelling; unknown values as their number")
    func enums() throws {
        #expect(BackendType.loadBalancer.jsonName == "load_balancer")
        #expect(EndpointStatus.pendingAcceptance.jsonName == "pending_acceptance")
        #expect(ClientIpMode.toaOpen.jsonName == "toa_open")
        #expect(HealthCheckResponse.ServingStatus.serving.jsonName == "serving")
        #expect(ServiceStatus(rawValue: 77).shortName == nil)
        #expect(try json([ServiceStatus.available, ServiceStatus(rawValue: 77)]) == #"["available","77"]"#)
        try expectSnakeCase(ServiceStatus.self)
        try expectSnakeCase(EndpointStatus.self)
        try expectSnakeCase(BackendType.self)
        try expectSnakeCase(ClientIpMode.self)
        try expectSnakeCase(QuotaType.self)
    }

    private func expectSnakeCase<E: ProtoEnum>(_ type: E.Type) throws {
        for value in E.allKnown {
            let name = try #require(value.shortName)
            #expect(name == name.lowercased() && !name.contains("-"), "\(name) is not snake_case")
            #expect(value.jsonName == name)
        }
    }

    /// The CLI's JSON used to come from `Mirror`; every message now has a generated `encode(to:)`.
    @Test("every generated message has a generated encode(to:), and Sources/ reflects on nothing")
    func everyMessageIsGenerated() throws {
        let sources = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let generated = sources.appendingPathComponent("VPCEPProto/Generated")
        var messages = 0, encoders = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: generated.path) where file.hasSuffix(".pb.swift") {
            let text = try String(contentsOf: generated.appendingPathComponent(file), encoding: .utf8)
            messages += text.components(separatedBy: ": ProtoMessage {").count - 1
            encoders += text.components(separatedBy: "public func encode(to encoder: any Encoder) throws {").count - 1
            // A oneof's enum has its own encoder, in an `extension …: Encodable`.
            encoders -= text.components(separatedBy: ": Encodable {").count - 1
        }
        #expect(messages > 50)
        #expect(encoders == messages)
        let enumerator = try #require(FileManager.default.enumerator(atPath: sources.path))
        for case let path as String in enumerator where path.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            #expect(!text.contains("Mirror("), "\(path) uses Mirror")
        }
    }
}
