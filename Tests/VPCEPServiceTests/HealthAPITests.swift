import Foundation
import Testing
import VPCEPClient

@Suite("Health", .timeLimit(.minutes(3)))  // a hang guard: a loaded full run took over a minute
struct HealthAPITests {
    @Test("§4.3 Check and WhoAmI in a served region answer; regions come sorted")
    func servedRegion() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice", region: "eu-north-1")
            #expect(try await alice.check(HealthCheckRequest()).status == .serving)
            let answer = try await alice.whoAmI(WhoAmIRequest())
            #expect(answer.id == "alice" && answer.region == "eu-north-1")
            #expect(answer.regions == ["eu-north-1", "eu-west-1"])
            await alice.close()
        }
    }

    @Test("§4.3 Check and WhoAmI refuse an empty, unserved or oversized region with REGION_NOT_SERVED, not echo it",
          arguments: ["", "mars-1", String(repeating: "r", count: 300), "eu-west-1\nforged"])
    func unservedRegion(region: String) async throws {
        try await withTestServer { server in
            let alice = try server.client("alice", region: region)
            let errors = [
                await #expect(throws: VPCEPError.self) { try await alice.check(HealthCheckRequest()) },
                await #expect(throws: VPCEPError.self) { try await alice.whoAmI(WhoAmIRequest()) },
            ]
            for error in errors {
                let error = try #require(error)
                #expect(error.code == .invalidArgument && error.reason.rawValue == "REGION_NOT_SERVED")
                #expect(error.field == "region")
                #expect(error.message.contains("eu-north-1, eu-west-1"))
            }
            await alice.close()
        }
    }
}

extension HealthAPITests {
    @Test("§11 the worked example's MESSAGE payload is what the real WhoAmI sends (regions sorted)")
    func workedExampleMatchesServer() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice", region: "eu-west-1")
            let answer = try await alice.whoAmI(WhoAmIRequest())
            await alice.close()
            // The documented frame minus its 12-byte header.
            #expect(try answer.serializedBytes() == Array(try documentedHex("message").dropFirst(12)))
        }
    }

    /// The bytes of the hex block after `<!-- hex:<name> -->` in docs/PROTOCOL.md.
    private func documentedHex(_ name: String) throws -> [UInt8] {
        let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appending(path: "docs/PROTOCOL.md"), encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- hex:\(name) -->"), "no hex:\(name) block")
        let fenceStart = try #require(text.range(of: "```text\n", range: marker.upperBound..<text.endIndex))
        let fenceEnd = try #require(text.range(of: "```", range: fenceStart.upperBound..<text.endIndex))
        return try text[fenceStart.upperBound..<fenceEnd.lowerBound].split(separator: "\n").flatMap { line in
            try line.split(separator: " ").dropFirst().map { try #require(UInt8($0, radix: 16)) }
        }
    }
}
