import Configuration
import ConfigurationTesting
import Testing
import VPCEPConfiguration

@Suite("TOML file provider")
struct TOMLFileProviderTests {
    @Test("tables flatten to dotted keys; strings, numbers, booleans, arrays and comments read through a ConfigReader")
    func parses() throws {
        let file = try TOMLFileProvider(parsing: """
            # top-level settings
            listen = "127.0.0.1:7443"   # trailing comment
            regions = ["eu-west-1", "eu-north-1"]
            grace_seconds = 1_000
            verbose = true

            [profile.prod]
            server = "vpcep.example.com:7443"
            note = "has a # inside, a \\"quote\\" and a \\\\ backslash"
            """, path: "test.toml")
        let reader = ConfigReader(provider: file)
        #expect(reader.string(forKey: "listen") == "127.0.0.1:7443")
        #expect(reader.stringArray(forKey: "regions") == ["eu-west-1", "eu-north-1"])
        #expect(reader.int(forKey: "grace_seconds") == 1000)
        #expect(reader.bool(forKey: "verbose") == true)
        #expect(reader.string(forKey: "profile.prod.server") == "vpcep.example.com:7443")
        #expect(reader.scoped(to: "profile.prod").string(forKey: "note") == "has a # inside, a \"quote\" and a \\ backslash")
        #expect(reader.string(forKey: "server") == nil)
        #expect(file.keys == ["grace_seconds", "listen", "profile.prod.note", "profile.prod.server", "regions", "verbose"])
        #expect(file.tables == ["profile", "profile.prod"])
    }

    @Test("what the old TOML subset refused now reads: inline tables, multi-line arrays, literal strings, floats")
    func fullTOML() throws {
        let file = try TOMLFileProvider(parsing: """
            regions = [
                "eu-west-1",
                "eu-north-1",   # a comment inside
            ]
            profile = { alice = { server = 'localhost:7443' } }
            timeout = 2.5
            """, path: "full.toml")
        let reader = ConfigReader(provider: file)
        #expect(reader.stringArray(forKey: "regions") == ["eu-west-1", "eu-north-1"])
        #expect(reader.string(forKey: "profile.alice.server") == "localhost:7443")
        #expect(reader.double(forKey: "timeout") == 2.5)
    }

    @Test("a number or a boolean asked for as text is its text; a value of another type is refused, naming the file and the key")
    func types() throws {
        let file = try TOMLFileProvider(
            parsing: "shutdown_grace = 10\nregions = \"eu-west-1\"\nstore_read_leases = false\n", path: "types.toml")
        #expect(try file.value(forKey: ["shutdown_grace"], type: .string).value == "10")
        #expect(try file.value(forKey: ["shutdown_grace"], type: .int).value == 10)
        #expect(try file.value(forKey: ["store_read_leases"], type: .string).value == "false")
        #expect(try file.value(forKey: ["store_read_leases"], type: .bool).value == false)
        do {
            _ = try file.value(forKey: ["regions"], type: .stringArray)
            Issue.record("a string was accepted as an array")
        } catch let error as TOMLFileError {
            #expect(error.description == "types.toml: regions must be an array of strings")
        }
    }

    @Test("bad documents are refused with the file, the line and the reason", arguments: [
        ("listen", 1),
        ("a = \"open", 1),
        ("\n[ok]\nb = [\"x\" \"y\"]", 3),
        ("a = 1\na = 2", 2),
        ("[bad section!]", 1),
        ("ok = 1\na = nope", 2),
    ])
    func refuses(text: String, line: Int) {
        do {
            _ = try TOMLFileProvider(parsing: text, path: "bad.toml")
            Issue.record("expected an error for \(text)")
        } catch {
            #expect(error.path == "bad.toml")
            #expect(error.line == line, "\(error)")
            #expect(error.description.hasPrefix("bad.toml:\(line): "), "\(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test("an unreadable file is refused, naming it")
    func missingFile() {
        #expect(throws: TOMLFileError(path: "/nonexistent/vpcep.toml", message: "cannot read the file")) {
            try TOMLFileProvider(path: "/nonexistent/vpcep.toml")
        }
    }
}

@Suite("TOML file provider: swift-configuration's provider contract")
struct TOMLFileProviderCompatTests {
    @Test("get, fetch, watch, snapshot and watchSnapshot answer as swift-configuration's own providers do")
    func compat() async throws {
        // The values ProviderCompatTest expects; bytes are base64 ("magic", "magic2").
        let file = try TOMLFileProvider(parsing: """
            string = "Hello"
            int = 42
            double = 3.14
            bool = true
            bytes = "bWFnaWM="
            stringy.array = ["Hello", "World"]
            inty.array = [42, 24]
            doubly.array = [3.14, 2.72]
            booly.array = [true, false]
            byteChunky.array = ["bWFnaWM=", "bWFnaWMy"]

            [other]
            string = "Other Hello"
            int = 24
            double = 2.72
            bool = false
            bytes = "bWFnaWMy"
            stringy.array = ["Hello", "Swift"]
            inty.array = [16, 32]
            doubly.array = [0.9, 1.8]
            booly.array = [false, true, true]
            byteChunky.array = ["bWFnaWM=", "bWFnaWMy", "bWFnaWM="]
            """, path: "compat.toml")
        try await ProviderCompatTest(provider: file).runTest()
    }
}
