import Testing
import VPCEPConfigFile

@Suite("Configuration file")
struct ConfigFileTests {
    @Test("keys, sections, strings, numbers, booleans, arrays and comments")
    func parses() throws {
        let file = try ConfigFile(parsing: """
            # top-level settings
            listen = "127.0.0.1:7443"   # trailing comment
            regions = ["eu-west-1", "eu-north-1"]
            grace_seconds = 1_000
            verbose = true

            [profile.prod]
            server = "vpcep.example.com:7443"
            note = "has a # inside, a \\"quote\\" and a \\\\ backslash"
            """, path: "test.toml")
        #expect(file.value("listen") == .string("127.0.0.1:7443"))
        #expect(file.value("regions") == .strings(["eu-west-1", "eu-north-1"]))
        #expect(file.value("grace_seconds") == .integer(1000))
        #expect(file.value("verbose") == .bool(true))
        #expect(file.value("server", in: "profile.prod") == .string("vpcep.example.com:7443"))
        #expect(file.value("note", in: "profile.prod") == .string("has a # inside, a \"quote\" and a \\ backslash"))
        #expect(file.sectionOrder == ["", "profile.prod"])
        #expect(file.value("server") == nil)
    }

    @Test("bad lines are refused with the file, the line and the reason", arguments: [
        ("listen", 1, "expected key = value"),
        ("a = \"open", 1, "unterminated string"),
        ("\n[ok]\nb = [\"x\" \"y\"]", 3, "expected , between array items"),
        ("a = 1\na = 2", 2, "a is set twice"),
        ("[bad section!]", 1, "invalid section name"),
        ("a = nope", 1, "expected a \"string\""),
        ("a = [\"x\",", 1, "an array must close on the same line"),
    ])
    func refuses(text: String, line: Int, message: String) {
        do {
            _ = try ConfigFile(parsing: text, path: "bad.toml")
            Issue.record("expected an error for \(text)")
        } catch {
            #expect(error.path == "bad.toml")
            #expect(error.line == line)
            #expect(error.message.contains(message), "\(error)")
        }
    }
}
