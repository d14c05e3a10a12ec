import Foundation
import Testing
import VPCEPProto
@testable import VPCEPService

/// `changed_fields` compares the two states' fields as the encoder wrote them; the parse-and-rewrite
/// comparison it replaced (`changedFieldsReparsed`) is the oracle.
@Suite("History: changed fields")
struct ChangedFieldsTests {
    private static func json(_ service: VPCEPProto.EndpointService, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : .sortedKeys
        return try encoder.encode(service)
    }

    private static let before = VPCEPProto.EndpointService(
        id: "eps-1", serviceName: "eu-west-1.old.eps-1", name: "old",
        ports: [PortMapping(terminalPort: 80, servicePort: 8080, protocol: .tcp)],
        description: #"a "quoted", {brace} [bracket] \ back, é"#,
        tags: [Tag(key: "team", value: "a,b}"), Tag(key: "é", value: "[x]")],
        warnings: ["W: one, two"])

    @Test("strings holding quotes, commas, braces and brackets split where the fields do")
    func trickyValues() throws {
        var after = Self.before
        after.description = #"a "quoted", {brace} [bracket] \ back, e"#
        after.tags[0].value = "a,b]"
        let (old, new) = (try Self.json(Self.before), try Self.json(after))
        #expect(WireMapping.changedFields(old, new) == ["description", "tags"])
        #expect(WireMapping.changedFields(old, new) == WireMapping.changedFieldsReparsed(old, new))
        #expect(WireMapping.changedFields(old, old).isEmpty)
        let members = try #require(WireMapping.topLevelMembers(old))
        #expect(members["description"].map { String(decoding: $0, as: UTF8.self) }
            == #""a \"quoted\", {brace} [bracket] \\ back, é""#)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(members["ports"].map { Data($0) } == (try encoder.encode(Self.before.ports)))
    }

    @Test("a nested change, a number, an emptied list and a renamed service")
    func nestedAndScalars() throws {
        var after = Self.before
        after.ports[0].servicePort = 8081
        after.warnings = []
        after.name = "new"
        after.serviceName = "eu-west-1.new.eps-1"
        let (old, new) = (try Self.json(Self.before), try Self.json(after))
        #expect(WireMapping.changedFields(old, new) == ["name", "ports", "service_name", "warnings"])
        #expect(WireMapping.changedFields(old, new) == WireMapping.changedFieldsReparsed(old, new))
    }

    @Test("whitespace between tokens, a field on one side only, and input the split refuses")
    func otherInput() throws {
        var after = Self.before
        after.description = "new"
        let (old, new) = (try Self.json(Self.before, pretty: true), try Self.json(after, pretty: true))
        #expect(WireMapping.topLevelMembers(old) != nil)
        #expect(WireMapping.changedFields(old, new) == ["description"])

        let one = Data(#"{"a":1,"b":[1,{"c":"}"}]}"#.utf8)
        let other = Data(#"{"a":1,"d":null}"#.utf8)
        #expect(WireMapping.changedFields(one, other) == ["b", "d"])
        #expect(WireMapping.changedFields(one, other) == WireMapping.changedFieldsReparsed(one, other))

        // Refused, so compared by parsing: an escaped key, a repeated key, trailing bytes, not an object.
        #expect(WireMapping.topLevelMembers(Data(#"{"a\u0062":1}"#.utf8)) == nil)
        #expect(WireMapping.topLevelMembers(Data(#"{"a":1,"a":2}"#.utf8)) == nil)
        #expect(WireMapping.topLevelMembers(Data(#"{"a":1} x"#.utf8)) == nil)
        #expect(WireMapping.topLevelMembers(Data(#"[1]"#.utf8)) == nil)
        #expect(WireMapping.topLevelMembers(Data(#"{"a":"1}"#.utf8)) == nil)
        #expect(WireMapping.changedFields(Data(#"{"ab":1}"#.utf8), Data(#"{"a\u0062":2}"#.utf8)) == ["ab"])
        #expect(WireMapping.topLevelMembers(Data("{}".utf8))?.isEmpty == true)
    }
}
