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

    /// The generated comparison of values names what the JSON comparison names, for one change of each
    /// field and for several at once.
    @Test("comparing the values names the fields that comparing their JSON names")
    func valuesAgreeWithJSON() throws {
        let changes: [(inout VPCEPProto.EndpointService) -> Void] = [
            { $0.id = "eps-2" }, { $0.serviceName = "x" }, { $0.name = "n" }, { $0.tenantId = "t" },
            { $0.region = "r" }, { $0.vpcId = "v" }, { $0.serviceType = .gateway }, { $0.backendType = .vm },
            { $0.backendId = "b" }, { $0.ports.append(PortMapping(terminalPort: 1, servicePort: 2, protocol: .tcp)) },
            { $0.ports[0].terminalPort = 81 }, { $0.approvalEnabled = true }, { $0.clientIpMode = .proxyOpen },
            { $0.description = "d" }, { $0.tags = [] }, { $0.tags[1].value = "y" }, { $0.status = .available },
            { $0.connectionCount = 3 }, { $0.createdAt = "c" }, { $0.updatedAt = "u" }, { $0.revision = 9 },
            { $0.warnings = [] }, { $0.clientIpNote = "note" }, { $0.public = true },
        ]
        var everything = Self.before
        for (index, change) in changes.enumerated() {
            var after = Self.before
            change(&after)
            if index % 3 == 0 { change(&everything) }
            let oracle = WireMapping.changedFieldsReparsed(try Self.json(Self.before), try Self.json(after))
            #expect(oracle.count == 1)
            #expect(after.fieldsDiffering(from: Self.before).sorted() == oracle)
        }
        let oracle = WireMapping.changedFieldsReparsed(try Self.json(Self.before), try Self.json(everything))
        #expect(oracle.count == 8)
        #expect(everything.fieldsDiffering(from: Self.before).sorted() == oracle)
        #expect(Self.before.fieldsDiffering(from: Self.before).isEmpty)
    }
}
