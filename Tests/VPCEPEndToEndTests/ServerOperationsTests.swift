import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Running the server: configuration, start-up refusals, the admin listener.
@Suite("Server operations", .timeLimit(.minutes(2)))
struct ServerOperationsTests {
    private var serverBinary: URL { RepositoryPaths.executable("vpcep-server") }

    private func cleanEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("--print-config shows each setting and where it came from: flag over environment over file")
    func printConfig() async throws {
        let folder = try temporaryDirectory()
        let config = folder.appendingPathComponent("server.toml")
        try """
            # a config file with relative paths, resolved against its folder
            listen = "127.0.0.1:9000"
            data_dir = "state"
            tls_ca = "pki/ca.crt"
            tls_cert = "pki/server.crt"
            tls_key = "pki/server.key"
            regions = ["eu-west-1", "ap-south-1"]
            log_level = "debug"
            """.write(to: config, atomically: true, encoding: .utf8)
        var environment = cleanEnvironment()
        environment["VPCEP_LOG_LEVEL"] = "warning"
        let result = try await runCommand(serverBinary, ["--config", config.path, "--listen", "127.0.0.1:9100", "--print-config"],
                                          environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("listen = \"127.0.0.1:9100\"") && $0.hasSuffix("# flag --listen") })
        #expect(lines.contains { $0.hasPrefix("log_level = \"warning\"") && $0.hasSuffix("# env VPCEP_LOG_LEVEL") })
        let folderPath = folder.standardizedFileURL.path
        #expect(lines.contains { $0.hasPrefix("data_dir = \"\(folderPath)/state\"") && $0.contains("# file ") })
        #expect(lines.contains { $0.hasPrefix("regions = [\"ap-south-1\", \"eu-west-1\"]") })
        #expect(lines.contains { $0.hasPrefix("admin_listen = \"127.0.0.1:7444\"") && $0.hasSuffix("# default") })
        #expect(lines.contains { $0.hasPrefix("tls_groups = \"X25519,P-256,P-384\"") && $0.hasSuffix("# default") })
        #expect(!result.stdout.contains("BEGIN"), "never prints key material")
    }

    @Test("a config file with an unknown key or a bad line is refused, naming the file and the line")
    func badConfigFile() async throws {
        let folder = try temporaryDirectory()
        let config = folder.appendingPathComponent("server.toml")
        try "listen = \"127.0.0.1:9000\"\nlisten_port = 9\n".write(to: config, atomically: true, encoding: .utf8)
        let unknown = try await runCommand(serverBinary, ["--config", config.path, "--print-config"], environment: cleanEnvironment())
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("unknown key \"listen_port\""))
        try "listen = 127.0.0.1\n".write(to: config, atomically: true, encoding: .utf8)
        let malformed = try await runCommand(serverBinary, ["--config", config.path, "--print-config"], environment: cleanEnvironment())
        #expect(malformed.status != 0)
        #expect(malformed.stderr.contains("server.toml:1"))
    }

    @Test("start-up refuses clearly: a key that does not match the certificate, a missing file, a port in use, an unusable data directory")
    func startupRefusals() async throws {
        let certificates = TestCertificates.shared
        let folder = try temporaryDirectory()
        func start(_ extra: [String], cert: String = certificates.serverCertificate, key: String = certificates.serverKey,
                   dataDirectory: String? = nil) async throws -> CommandResult {
            try await runCommand(serverBinary, [
                "--listen", "127.0.0.1:0", "--admin-listen", "off", "--data-dir", dataDirectory ?? folder.appendingPathComponent("data").path,
                "--tls-ca", certificates.ca, "--tls-cert", cert, "--tls-key", key,
            ] + extra, environment: cleanEnvironment())
        }

        let mismatched = try await start([], key: certificates.key("alice"))
        #expect(mismatched.status != 0)
        #expect(mismatched.stderr.contains("TLS configuration refused"), "\(mismatched.stderr)")
        #expect(mismatched.stderr.contains(certificates.key("alice")), "names the key file: \(mismatched.stderr)")

        let missing = try await start([], cert: folder.appendingPathComponent("nope.crt").path)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.crt"), "\(missing.stderr)")

        let badGroup = try await start(["--tls-groups", "X25519,no-such-group"])
        #expect(badGroup.status != 0)
        #expect(badGroup.stderr.contains("TLS configuration refused") && badGroup.stderr.contains("no-such-group"),
                "\(badGroup.stderr)")

        let blocker = folder.appendingPathComponent("a-file")
        try "not a directory".write(to: blocker, atomically: true, encoding: .utf8)
        let badData = try await start([], dataDirectory: blocker.appendingPathComponent("data").path)
        #expect(badData.status != 0)
        #expect(badData.stderr.contains("data directory"), "\(badData.stderr)")

        try await withServer { server in
            let inUse = try await runCommand(serverBinary, [
                "--listen", "127.0.0.1:\(server.port)", "--admin-listen", "off", "--data-dir", folder.appendingPathComponent("d2").path,
                "--tls-ca", certificates.ca, "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey,
            ], environment: cleanEnvironment())
            #expect(inUse.status != 0)
            #expect(inUse.stderr.contains("cannot listen on 127.0.0.1:\(server.port)"), "\(inUse.stderr)")
        }
    }

    @Test("the admin listener answers /healthz and /readyz, and /metrics counts calls by method and status")
    func adminListener() async throws {
        try await withServer { server in
            let port = try #require(server.adminPort)
            #expect(try await httpGet("/healthz", port: port).status == 200)
            #expect(try await httpGet("/readyz", port: port).status == 200)

            let alice = try server.client("alice")
            _ = try await alice.createVpc(CreateVpcRequest(name: "m", cidr: "10.0.0.0/16"))
            _ = try? await alice.createVpc(CreateVpcRequest(name: "m", cidr: "bad"))
            _ = try await alice.listVpcs(ListVpcsRequest())
            await alice.close()

            let metrics = try await httpGet("/metrics", port: port)
            #expect(metrics.status == 200)
            #expect(metrics.body.contains(#"vpcep_rpc_calls_total{method="/vpcep.v1.Inventory/CreateVpc",status="OK"} 1"#),
                    "\(metrics.body)")
            #expect(metrics.body.contains(#"vpcep_rpc_calls_total{method="/vpcep.v1.Inventory/CreateVpc",status="INVALID_ARGUMENT"} 1"#))
            #expect(metrics.body.contains(#"vpcep_rpc_calls_total{method="/vpcep.v1.Inventory/ListVpcs",status="OK"} 1"#))
            #expect(metrics.body.contains("vpcep_rpc_call_duration_seconds_bucket"))
            #expect(metrics.body.contains("vpcep_tls_handshakes_total"))
            // Raised by the answers already sent.
            #expect(metrics.body.contains("vpcep_buffered_outbound_bytes_peak "))
            #expect(metrics.body.contains("vpcep_store_transaction_duration_seconds"))
        }
    }
}

/// One plain-HTTP GET to 127.0.0.1.
func httpGet(_ path: String, port: Int) async throws -> (status: Int, body: String) {
    let result = try await runCommand(
        URL(fileURLWithPath: "/usr/bin/env"),
        ["python3", "-c", """
            import sys, urllib.request, urllib.error
            try:
                r = urllib.request.urlopen("http://127.0.0.1:\(port)\(path)", timeout=10)
                print(r.status); sys.stdout.write(r.read().decode())
            except urllib.error.HTTPError as e:
                print(e.code); sys.stdout.write(e.read().decode())
            """],
        environment: ProcessInfo.processInfo.environment
    )
    let lines = result.stdout.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    return (Int(lines.first ?? "") ?? 0, lines.count > 1 ? String(lines[1]) : "")
}
