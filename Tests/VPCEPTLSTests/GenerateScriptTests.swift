import Foundation
import Testing
import VPCEPTestSupport

/// `certs/generate.sh`: files, permissions, identities, idempotence, CA reuse.
@Suite struct GenerateScriptTests {
    private static func withTemporaryDirectory(_ body: (URL) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "vpcep-generate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(dir)
    }

    private static func contents(of dir: URL) throws -> [String: Foundation.Data] {
        var result: [String: Foundation.Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            result[name] = try Foundation.Data(contentsOf: dir.appending(path: name))
        }
        return result
    }

    @discardableResult
    private static func openssl(_ arguments: [String]) throws -> String {
        try runChecked("/usr/bin/env", ["openssl"] + arguments)
    }

    @Test func defaultIdentitiesFilesAndModes() throws {
        try Self.withTemporaryDirectory { dir in
            let output = try runChecked(PKI.script, ["--out", dir.path], cwd: FileManager.default.temporaryDirectory)
            #expect(output == "certificates in \(dir.path)\n")
            let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
            #expect(names == ["ca.crt", "ca.key", "server.crt", "server.key", "alice.crt", "alice.key", "bob.crt", "bob.key", "ops.crt", "ops.key"])
            for name in names where name.hasSuffix(".key") {
                let mode = try FileManager.default.attributesOfItem(atPath: dir.appending(path: name).path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(name)")
            }
            let ca = dir.appending(path: "ca.crt").path
            let server = try Self.openssl(["x509", "-in", dir.appending(path: "server.crt").path, "-noout", "-ext", "subjectAltName,extendedKeyUsage"])
            #expect(server.contains("DNS:localhost, IP Address:127.0.0.1"))
            #expect(server.contains("TLS Web Server Authentication"))
            for (name, uri) in [("alice", "vpcep://tenant/alice"), ("bob", "vpcep://tenant/bob"), ("ops", "vpcep://operator/ops")] {
                let path = dir.appending(path: "\(name).crt").path
                let text = try Self.openssl(["x509", "-in", path, "-noout", "-ext", "subjectAltName,extendedKeyUsage"])
                #expect(text.contains("URI:\(uri)"))
                #expect(text.contains("TLS Web Client Authentication"))
                try Self.openssl(["verify", "-CAfile", ca, "-purpose", "sslclient", path])
            }
            let key = try Self.openssl(["pkey", "-in", dir.appending(path: "alice.key").path, "-noout", "-text"])
            #expect(key.contains("prime256v1") || key.contains("P-256"))
        }
    }

    @Test func rerunChangesNothingAndAddingAnIdentityKeepsTheCA() throws {
        try Self.withTemporaryDirectory { dir in
            try runChecked(PKI.script, ["--out", dir.path, "--tenant", "alice", "--operator", "ops"])
            let first = try Self.contents(of: dir)
            #expect(Set(first.keys) == ["ca.crt", "ca.key", "server.crt", "server.key", "alice.crt", "alice.key", "ops.crt", "ops.key"])
            try runChecked(PKI.script, ["--out", dir.path, "--tenant", "alice", "--operator", "ops"])
            #expect(try Self.contents(of: dir) == first)

            try runChecked(PKI.script, ["--out", dir.path, "--tenant", "carol", "--days", "30"])
            let second = try Self.contents(of: dir)
            for (name, data) in first {
                #expect(second[name] == data, "\(name) changed")
            }
            try Self.openssl(["verify", "-CAfile", dir.appending(path: "ca.crt").path, dir.appending(path: "carol.crt").path])

            try runChecked(PKI.script, ["--out", dir.path, "--force", "--tenant", "alice"])
            let third = try Self.contents(of: dir)
            #expect(third["ca.crt"] != first["ca.crt"])
            #expect(third["alice.crt"] != first["alice.crt"])
            try Self.openssl(["verify", "-CAfile", dir.appending(path: "ca.crt").path, dir.appending(path: "alice.crt").path])
        }
    }

    @Test func helpAndBadArguments() throws {
        let help = try run(PKI.script, ["--help"])
        #expect(help.status == 0)
        #expect(help.output.hasPrefix("usage: certs/generate.sh"))
        try Self.withTemporaryDirectory { dir in
            for arguments in [["--bogus"], ["--days", "0"], ["--tenant", "../x"], ["--tenant", "ca"], ["--tenant", "a", "--operator", "a"], ["--out"]] {
                let result = try run(PKI.script, ["--out", dir.path] + arguments)
                #expect(result.status != 0, "\(arguments)")
                #expect(!result.output.isEmpty)
            }
        }
    }
}
