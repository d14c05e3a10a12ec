import Foundation
import SQLiteNIO
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@testable import VPCEPStoreSQLite

@Suite("Reading the store's JSON columns without JSONDecoder")
struct StoredJSONTests {
    private struct Pair: Codable, Equatable {
        var key: String
        var value: String
    }

    /// Strings that exercise every escape JSONEncoder writes and raw UTF-8 beside them.
    private static let awkward = [
        "", "env", "a/b", "quote \" and backslash \\", "tab\tnew\nline\r", "\u{01}\u{1F}", "ünïcødé", "😀 emoji",
        "mixed \"ü\" \\ / 😀\u{08}\u{0C}", String(repeating: "x", count: 300),
    ]

    private static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("string arrays read back as JSONDecoder reads them")
    func stringArrays() throws {
        for strings in [[], Self.awkward, ["10.0.0.0/8", "192.168.1.0/24"]] {
            let text = try Self.encoded(strings)
            #expect(StoredJSON.strings(text) == strings, "\(text)")
        }
    }

    @Test("arrays of flat objects keep their members in the order written")
    func objectArrays() throws {
        let pairs = zip(Self.awkward, Self.awkward.reversed()).map { Pair(key: $0, value: $1) }
        let text = try Self.encoded(pairs)
        let read = try #require(StoredJSON.objects(text))
        #expect(read.map { Pair(key: $0[0].1, value: $0[1].1) } == pairs)
        #expect(read.allSatisfy { $0.map(\.0) == ["key", "value"] })
        #expect(StoredJSON.objects("[]")?.isEmpty == true)
    }

    @Test("escapes JSONEncoder does not write, surrogate pairs included, are read too")
    func otherEscapes() {
        #expect(StoredJSON.strings(#"["\u00e9\ud83d\ude00\/", " x "]"#) == ["é😀/", " x "])
        #expect(StoredJSON.strings(" [ \"a\" , \"b\" ] ") == ["a", "b"])
    }

    @Test("anything else is declined, for JSONDecoder to judge", arguments: [
        "", "[", "[\"a\"", "[\"a\",]", "[1]", "{\"a\":\"b\"}", "[\"a\"] x", "[\"\\x\"]", "[\"\\ud800\"]",
        "[\"\\u12\"]", "[\"raw\u{01}control\"]", "[[\"a\"]]", "[null]",
    ])
    func declines(text: String) {
        #expect(StoredJSON.strings(text) == nil)
        #expect(StoredJSON.objects(text) == nil)
    }

    @Test("objects with a non-string member are declined")
    func objectsWithNumbers() {
        #expect(StoredJSON.objects(#"[{"proto":"TCP","service":80}]"#) == nil)
        #expect(StoredJSON.objects(#"[{"a":"b"},{"c":"d"}]"#)?.count == 2)
    }

    private struct Port: Codable, Equatable {
        var terminal: Int
        var service: Int
        var proto: String
    }

    @Test("records with integer members read back as JSONDecoder reads them")
    func integerMembers() throws {
        let ports = [Port(terminal: 8080, service: 80, proto: "TCP"), Port(terminal: 0, service: 65535, proto: "UDP"),
                     Port(terminal: -7, service: Int.max, proto: "ü \" /"), Port(terminal: Int.min, service: 1, proto: "")]
        let text = try Self.encoded(ports)
        let read = try #require(StoredJSON.records(text))
        #expect(read.map { $0.map(\.0) } == Array(repeating: ["proto", "service", "terminal"], count: ports.count))
        let decoded = read.map { members -> Port? in
            guard case .string(let proto) = members[0].1, case .integer(let service) = members[1].1,
                case .integer(let terminal) = members[2].1 else { return nil }
            return Port(terminal: terminal, service: service, proto: proto)
        }
        #expect(decoded == ports.map { $0 })
        #expect(try JSONDecoder().decode([Port].self, from: Data(text.utf8)) == ports)
        #expect(StoredJSON.records(" [ { \"n\" : -0 } ] ")?.first?.first?.1 == .integer(0))
    }

    @Test("numbers that are not integers as JSON writes them are declined", arguments: [
        #"[{"n":1.5}]"#, #"[{"n":1e3}]"#, #"[{"n":2E1}]"#, #"[{"n":01}]"#, #"[{"n":-}]"#, #"[{"n":+1}]"#,
        #"[{"n":99999999999999999999}]"#, #"[{"n":-9223372036854775809}]"#, #"[{"n":true}]"#, #"[{"n":null}]"#,
        #"[{"n":[1]}]"#, #"[{"n":1}"#, #"[1]"#,
    ])
    func declinesOtherNumbers(text: String) {
        #expect(StoredJSON.records(text) == nil)
    }

    /// The columns are written without `JSONEncoder` but must keep its bytes: stored rows hold them, and
    /// an update compares them to leave an unchanged column out of its statement.
    @Test("JSON columns are written in JSONEncoder's bytes")
    func writtenAsJSONEncoderWrites() throws {
        var random = SeededGenerator(seed: 14)
        let alphabet = Array(Self.awkward.joined()) + ["\u{7F}", "\u{00}", "é", "/"]
        for round in 0..<300 {
            let strings = (0..<(round % 6)).map { _ in
                String((0..<Int.random(in: 0...12, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            } + (round < Self.awkward.count ? [Self.awkward[round]] : [])
            #expect(SQLiteData.json(strings: strings) == .text(try Self.encoded(strings)))
            let tags = strings.map { Tag(key: $0, value: String($0.reversed())) }
            #expect(SQLiteData.json(tags: tags) == .text(try Self.encoded(tags.map { Pair(key: $0.key, value: $0.value) })))
            let ports = strings.indices.map {
                PortMapping(terminalPort: Int.random(in: 1...65_535, using: &random),
                            servicePort: $0 == 0 ? 0 : Int.random(in: 1...65_535, using: &random), protocol: strings[$0])
            }
            let records = ports.map { Port(terminal: $0.terminalPort, service: $0.servicePort, proto: $0.protocol) }
            #expect(SQLiteData.json(ports: ports) == .text(try Self.encoded(records)))
        }
    }
}
