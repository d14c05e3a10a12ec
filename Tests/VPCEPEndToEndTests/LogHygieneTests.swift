import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Client-supplied text in the server's log and the CLI's output: never a forged line, never a raw
/// control character.
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

    @Test("the CLI escapes control characters in what the server says before printing it")
    func cliEscapesServerText() async throws {
        try await withServer { server in
            let result = try await server.cli("alice", arguments: ["whoami"], region: "mars\u{1b}]0;pwned\u{7}\nforged")
            #expect(result.status != 0)
            #expect(result.stderr.contains("REGION_NOT_SERVED"))
            #expect(result.stderr.contains("mars\\u{1b}]0;pwned\\u{7}\\nforged"), "\(result.stderr)")
            #expect(!result.stderr.unicodeScalars.contains("\u{1b}") && !result.stderr.unicodeScalars.contains("\u{7}"))
        }
    }

    @Test("--output json escapes control characters as JSON does, DEL, C1 and U+2028 included")
    func jsonEscapesServerText() async throws {
        try await withServer { server in
            let result = try await server.cli(
                "alice", arguments: ["--output", "json", "whoami"], region: "mars\u{1b}\u{7f}\u{9b}31m\u{2028}")
            #expect(result.status != 0)
            let error = try result.errorJSON()
            #expect(error["reason"] as? String == "REGION_NOT_SERVED")
            // Decoded, the message holds the region as sent; on the wire, only escapes.
            #expect((error["message"] as? String)?.contains("mars\u{1b}\u{7f}\u{9b}31m\u{2028}") == true)
            #expect(result.stderr.contains(#"mars\u001b\u007f\u009b31m\u2028"#), "\(result.stderr)")
            #expect(!result.stderr.unicodeScalars.contains { $0.value == 0x1b || (0x7f...0x9f).contains($0.value) || $0 == "\u{2028}" })
        }
    }
}
