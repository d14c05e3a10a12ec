import Configuration
import Testing
import VPCEPConfiguration

@Suite("Sourced config reader")
struct SourcedConfigReaderTests {
    private func reader(file: TOMLFileProvider) -> SourcedConfigReader {
        SourcedConfigReader([
            .init(InMemoryProvider(name: "flags", values: [["listen"]: "flag-listen"])) { key, _ in "flag --\(key)" },
            .init(EnvironmentVariablesProvider(environmentVariables: ["VPCEP_LISTEN": "env-listen", "VPCEP_DATA_DIR": "env-data"])
                .prefixKeys(with: ["vpcep"])) { _, name in "env \(name)" },
            .init(file) { _, _ in "file \(file.path)" },
            .init(InMemoryProvider(name: "defaults", values: [["listen"]: "default", ["log_level"]: "info"])) { _, _ in "default" },
        ])
    }

    @Test("the first layer with a value answers, and is named with the key as it spells it")
    func precedence() throws {
        let file = try TOMLFileProvider(parsing: "listen = \"file\"\ndata_dir = \"file\"\ntls_ca = \"ca.crt\"\n", path: "s.toml")
        let reader = reader(file: file)
        let listen = try #require(try reader.string("listen"))
        #expect((listen.value, listen.source) == ("flag-listen", "flag --listen"))
        let data = try #require(try reader.string("data_dir"))
        #expect((data.value, data.source) == ("env-data", "env VPCEP_DATA_DIR"))
        let ca = try #require(try reader.string("tls_ca"))
        #expect((ca.value, ca.source) == ("ca.crt", "file s.toml"))
        let level = try #require(try reader.string("log_level"))
        #expect((level.value, level.source) == ("info", "default"))
        #expect(try reader.string("tls_key") == nil)
    }

    @Test("a value of the wrong type is an error, not a silent fall-through to the next layer")
    func wrongType() throws {
        let file = try TOMLFileProvider(parsing: "log_level = [\"info\"]\n", path: "s.toml")
        #expect(throws: ConfigSourceRecorder.LookupError.self) { try reader(file: file).string("log_level") }
    }
}
