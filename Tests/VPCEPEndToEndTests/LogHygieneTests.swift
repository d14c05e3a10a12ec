import Foundation
import Testing
import VPCEPClient

/// Client-supplied text in the server's log: never a forged line, never a raw control character.
@Suite("Log and terminal hygiene end to end", .timeLimit(.minutes(2)))
struct LogHygieneTests {
    @Test("a newline or ESC in the region is escaped in the server's log; a bad request_id is refused")
    func serverLogEscapesClientText() async throws {
        let server = try await ServerProcess.start()
        let forger = try server.client("alice", region: "eu-west-1\nforged-line region=x \u{1b}[2J")
        await expectFailure(.invalidArgument, "REGION_NOT_SERVED") { () async throws(VPCEPError) in
            try await forger.whoAmI(WhoAmIRequest())
        }
        await forger.close()
        let alice = try server.client("alice")
        await expectFailure(.invalidArgument, "REQUEST_ID_INVALID") { () async throws(VPCEPError) in
            try await alice.whoAmI(WhoAmIRequest(), options: CallOptions(requestID: "r1\nforged-request"))
        }
        await alice.close()
        #expect(await server.stop() == 0)

        let log = server.logText
        #expect(log.contains("eu-west-1\\nforged-line region=x \\u{1b}[2J"), "\(log)")
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("forged") }, "\(log)")
        #expect(!log.unicodeScalars.contains("\u{1b}"))
        #expect(!log.contains("forged-request"))
    }
}
