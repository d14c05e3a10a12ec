import Foundation
import Testing
import VPCEPTestSupport

/// Configuration files written for the release before swift-configuration must keep working: the
/// examples below are frozen copies of README.md's "Configuration" and "CLI configuration" as they
/// were then, so a change to the README cannot quietly change what is checked here.
@Suite("Configuration compatibility")
struct ConfigCompatibilityTests {
    private static let serverExample = """
        # /etc/vpcep/server.toml
        listen = "0.0.0.0:7443"
        data_dir = "/var/lib/vpcep"
        tls_ca = "pki/clients-ca.crt"
        tls_cert = "pki/server.crt"
        tls_key = "pki/server.key"
        regions = ["eu-west-1", "eu-north-1"]

        """

    private static let profileExample = """
        default_profile = "alice"

        [profile.alice]
        server = "localhost:7443"
        region = "eu-west-1"
        ca = "/path/to/vpcep/certs/dev/ca.crt"      # relative paths are relative to this file
        cert = "/path/to/vpcep/certs/dev/alice.crt"
        key = "/path/to/vpcep/certs/dev/alice.key"

        [profile.bob]
        server = "localhost:7443"
        region = "eu-north-1"
        ca = "/path/to/vpcep/certs/dev/ca.crt"
        cert = "/path/to/vpcep/certs/dev/bob.crt"
        key = "/path/to/vpcep/certs/dev/bob.key"
        output = "json"

        """

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-compat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.standardizedFileURL
    }

    private func environment(home: URL) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["HOME"] = home.path
        environment.removeValue(forKey: "XDG_CONFIG_HOME")
        return environment
    }

    @Test("the README's server.toml: every key read from the file, relative paths against its folder")
    func serverFile() async throws {
        let folder = try temporaryDirectory()
        let config = folder.appendingPathComponent("server.toml")
        try Self.serverExample.write(to: config, atomically: true, encoding: .utf8)
        let result = try await runCommand(RepositoryPaths.executable("vpcep-server"), ["--config", config.path, "--print-config"],
                                          environment: environment(home: folder))
        #expect(result.status == 0, "\(result.stderr)")
        let fromFile = "# file \(config.path)"
        let expected = [
            "listen = \"0.0.0.0:7443\"", "data_dir = \"/var/lib/vpcep\"",
            "tls_ca = \"\(folder.path)/pki/clients-ca.crt\"", "tls_cert = \"\(folder.path)/pki/server.crt\"",
            "tls_key = \"\(folder.path)/pki/server.key\"", "regions = [\"eu-north-1\", \"eu-west-1\"]",
        ]
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for setting in expected {
            #expect(lines.contains { $0.hasPrefix(setting + " ") && $0.hasSuffix(fromFile) }, "\(setting) in \(result.stdout)")
        }
        #expect(lines.contains { $0.hasPrefix("log_level = \"info\"") && $0.hasSuffix("# default") }, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("shutdown_grace = 10 ") && $0.hasSuffix("# default") }, "\(result.stdout)")
    }

    @Test("the README's profile file: default_profile, --profile, every key with its source")
    func profileFile() async throws {
        let home = try temporaryDirectory()
        let folder = home.appendingPathComponent(".config/vpcep")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = folder.appendingPathComponent("config.toml")
        try Self.profileExample.write(to: config, atomically: true, encoding: .utf8)
        let vpcep = RepositoryPaths.executable("vpcep")

        let alice = try await runCommand(vpcep, ["config", "show", "--output", "json"], environment: environment(home: home))
        #expect(alice.status == 0, "\(alice.stderr)")
        let aliceJSON = try alice.json()
        #expect(aliceJSON["profile"] as? String == "alice")
        #expect(aliceJSON["config_file"] as? String == config.path)
        #expect(aliceJSON["config_file_exists"] as? Bool == true)
        let aliceSettings = try #require(aliceJSON["settings"] as? [String: [String: Any]])
        let fromAlice = "profile alice (\(config.path))"
        for (key, value) in [
            ("server", "localhost:7443"), ("region", "eu-west-1"), ("ca", "/path/to/vpcep/certs/dev/ca.crt"),
            ("cert", "/path/to/vpcep/certs/dev/alice.crt"), ("key", "/path/to/vpcep/certs/dev/alice.key"),
        ] {
            #expect(aliceSettings[key]?["value"] as? String == value, "\(key)")
            #expect(aliceSettings[key]?["source"] as? String == fromAlice, "\(key)")
        }
        #expect(aliceSettings["output"]?["source"] as? String == "flag --output")
        #expect(aliceSettings["timeout"]?["value"] as? String == "30")
        #expect(aliceSettings["timeout"]?["source"] as? String == "default")

        // bob's own `output = "json"` makes the output JSON without the flag.
        let bob = try await runCommand(vpcep, ["--profile", "bob", "config", "show"], environment: environment(home: home))
        #expect(bob.status == 0, "\(bob.stderr)")
        let bobJSON = try bob.json()
        #expect(bobJSON["profile"] as? String == "bob")
        let bobSettings = try #require(bobJSON["settings"] as? [String: [String: Any]])
        #expect(bobSettings["region"]?["value"] as? String == "eu-north-1")
        #expect(bobSettings["cert"]?["value"] as? String == "/path/to/vpcep/certs/dev/bob.crt")
        #expect(bobSettings["output"]?["value"] as? String == "json")
        #expect(bobSettings["output"]?["source"] as? String == "profile bob (\(config.path))")
    }

    @Test("a relative ca/cert/key in a profile is taken relative to the profile file")
    func relativeProfilePaths() async throws {
        let folder = try temporaryDirectory()
        let config = folder.appendingPathComponent("profiles.toml")
        try """
            [profile.default]
            ca = "certs/ca.crt"
            cert = "../elsewhere/alice.crt"
            key = "/abs/alice.key"
            timeout = 5
            """.write(to: config, atomically: true, encoding: .utf8)
        var variables = environment(home: folder)
        variables["VPCEP_CONFIG"] = config.path
        let result = try await runCommand(RepositoryPaths.executable("vpcep"), ["config", "show", "--output", "json"],
                                          environment: variables)
        #expect(result.status == 0, "\(result.stderr)")
        let json = try result.json()
        #expect(json["profile"] as? String == "default")
        let settings = try #require(json["settings"] as? [String: [String: Any]])
        #expect(settings["ca"]?["value"] as? String == folder.appendingPathComponent("certs/ca.crt").path)
        #expect(settings["cert"]?["value"] as? String == folder.deletingLastPathComponent().appendingPathComponent("elsewhere/alice.crt").path)
        #expect(settings["key"]?["value"] as? String == "/abs/alice.key")
        #expect(settings["timeout"]?["value"] as? String == "5")
        #expect(settings["timeout"]?["source"] as? String == "profile default (\(config.path))")
    }

    @Test("TOML that earlier releases refused now reads: multi-line arrays, inline tables, literal strings")
    func fullTOML() async throws {
        let folder = try temporaryDirectory()
        let server = folder.appendingPathComponent("server.toml")
        try """
            regions = [
                "eu-west-1",
                "eu-north-1",  # one per line
            ]
            tls_ca = 'pki/ca.crt'
            tls_cert = "/pki/server.crt"
            tls_key = "/pki/server.key"
            """.write(to: server, atomically: true, encoding: .utf8)
        let printed = try await runCommand(RepositoryPaths.executable("vpcep-server"), ["--config", server.path, "--print-config"],
                                           environment: environment(home: folder))
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("regions = [\"eu-north-1\", \"eu-west-1\"]"), "\(printed.stdout)")
        #expect(printed.stdout.contains("tls_ca = \"\(folder.path)/pki/ca.crt\""), "\(printed.stdout)")

        let profiles = folder.appendingPathComponent("profiles.toml")
        try """
            profile.carol = { server = "carol.example:7443", region = "eu-west-1", timeout = 7 }
            """.write(to: profiles, atomically: true, encoding: .utf8)
        let shown = try await runCommand(RepositoryPaths.executable("vpcep"),
                                         ["--config", profiles.path, "--profile", "carol", "config", "show", "--output", "json"],
                                         environment: environment(home: folder))
        #expect(shown.status == 0, "\(shown.stderr)")
        let settings = try #require(try shown.json()["settings"] as? [String: [String: Any]])
        #expect(settings["server"]?["value"] as? String == "carol.example:7443")
        #expect(settings["timeout"]?["value"] as? String == "7")
        #expect(settings["timeout"]?["source"] as? String == "profile carol (\(profiles.path))")
    }
}
