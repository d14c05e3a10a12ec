import Foundation
import Testing
import VPCEPTLS

/// Certificates minted for one test run by `certs/generate.sh`, removed at the end.
///
/// `dir`: CA, server, tenants `alice` and `mallory` (revoked in `crlFile`), operator `ops`.
/// `otherDir`: an unrelated CA with its own server and `alice`.
public struct PKI: Sendable {
    @TaskLocal public static var current: PKI?

    public let root: URL
    public let dir: URL
    public let otherDir: URL
    public let crlFile: String

    public static let repositoryRoot = RepositoryPaths.root
    public static let script = repositoryRoot.appending(path: "certs/generate.sh").path

    public func file(_ name: String) -> String { self.dir.appending(path: name).path }
    public func otherFile(_ name: String) -> String { self.otherDir.appending(path: name).path }

    /// A configuration presenting identity `name` (`server`, `alice`, …) of the main CA.
    public func configuration(_ name: String, crl: Bool = false, alpn: [String] = ["vpcep/1"]) -> TLSConfiguration {
        TLSConfiguration(
            certificateChainFile: self.file("\(name).crt"),
            privateKeyFile: self.file("\(name).key"),
            trustRootsFile: self.file("ca.crt"),
            crlFile: crl ? self.crlFile : nil,
            applicationProtocols: alpn
        )
    }

    /// A configuration presenting identity `name` of the other CA, trusting only the other CA.
    public func otherConfiguration(_ name: String) -> TLSConfiguration {
        TLSConfiguration(
            certificateChainFile: self.otherFile("\(name).crt"),
            privateKeyFile: self.otherFile("\(name).key"),
            trustRootsFile: self.otherFile("ca.crt")
        )
    }

    public static func make() throws -> PKI {
        let root = FileManager.default.temporaryDirectory.appending(path: "vpcep-tls-tests-\(UUID().uuidString)")
        let dir = root.appending(path: "main")
        let otherDir = root.appending(path: "other")
        try runChecked(script, ["--out", dir.path, "--tenant", "alice", "--operator", "ops"])
        // Adding an identity later reuses the CA.
        try runChecked(script, ["--out", dir.path, "--tenant", "mallory"])
        try runChecked(script, ["--out", otherDir.path, "--tenant", "alice", "--operator", "ops"])

        // Revoke mallory with a minimal `openssl ca` setup.
        let caDir = root.appending(path: "ca-db")
        try FileManager.default.createDirectory(at: caDir, withIntermediateDirectories: true)
        try Data().write(to: caDir.appending(path: "index.txt"))
        try Data("01\n".utf8).write(to: caDir.appending(path: "crlnumber"))
        let config = """
            [ca]
            default_ca = dev
            [dev]
            database = \(caDir.path)/index.txt
            crlnumber = \(caDir.path)/crlnumber
            certificate = \(dir.path)/ca.crt
            private_key = \(dir.path)/ca.key
            default_md = sha256
            default_crl_days = 30
            """
        let configFile = caDir.appending(path: "ca.cnf").path
        try Data(config.utf8).write(to: URL(filePath: configFile))
        let crlFile = dir.appending(path: "crl.pem").path
        try runChecked("/usr/bin/env", ["openssl", "ca", "-config", configFile, "-revoke", dir.appending(path: "mallory.crt").path])
        try runChecked("/usr/bin/env", ["openssl", "ca", "-config", configFile, "-gencrl", "-out", crlFile])
        // The same CRL out of date both ways (openssl ca takes YYYYMMDDHHMMSSZ).
        for (name, last, next) in [("crl-expired.pem", "20200101000000Z", "20200201000000Z"),
                                   ("crl-future.pem", "20990101000000Z", "20990201000000Z")] {
            try runChecked("/usr/bin/env", [
                "openssl", "ca", "-config", configFile, "-gencrl", "-crl_lastupdate", last, "-crl_nextupdate", next,
                "-out", dir.appending(path: name).path,
            ])
        }

        // Clients the script would never issue, signed by the main CA.
        try mintClient(in: dir, name: "ca-client", sans: "URI:vpcep://tenant/cathy", caTrue: true)
        try mintClient(in: dir, name: "bad-first", sans: "URI:vpcep://tenant/bad!, URI:vpcep://tenant/alice")
        try mintClient(in: dir, name: "two-identities", sans: "URI:vpcep://tenant/alice, URI:vpcep://tenant/bob")
        try mintClient(in: dir, name: "other-scheme-first", sans: "URI:spiffe://example/alice, URI:vpcep://tenant/alice")
        try mintClient(in: dir, name: "space-first", sans: "URI:vpcep://tenant/a b, URI:vpcep://tenant/alice")
        return PKI(root: root, dir: dir, otherDir: otherDir, crlFile: crlFile)
    }

    /// A client certificate `name.crt` / `name.key` in `dir`, signed by the CA there, with these
    /// subjectAltNames (openssl syntax); `caTrue` makes it a CA certificate (basicConstraints CA:TRUE).
    private static func mintClient(in dir: URL, name: String, sans: String, caTrue: Bool = false) throws {
        let base = dir.appending(path: name).path
        let extensions = dir.appending(path: "\(name).ext").path
        let lines = [
            "basicConstraints = critical, CA:\(caTrue ? "TRUE" : "FALSE")",
            "keyUsage = critical, digitalSignature\(caTrue ? ", keyCertSign" : "")",
            "extendedKeyUsage = clientAuth",
            "subjectAltName = \(sans)",
        ]
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(filePath: extensions))
        try runChecked("/usr/bin/env", ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                                        "-out", "\(base).key"])
        try runChecked("/usr/bin/env", ["openssl", "req", "-new", "-key", "\(base).key", "-subj", "/O=vpcep/CN=\(name)",
                                        "-out", "\(base).csr"])
        try runChecked("/usr/bin/env", [
            "openssl", "x509", "-req", "-in", "\(base).csr", "-CA", dir.appending(path: "ca.crt").path,
            "-CAkey", dir.appending(path: "ca.key").path, "-set_serial", "0x\(String(UInt64.random(in: 1...UInt64.max), radix: 16))",
            "-days", "30", "-sha256", "-extfile", extensions, "-out", "\(base).crt",
        ])
    }

    /// The PKI of the suite's `.pki` trait.
    public static func require() throws -> PKI {
        try #require(current, "the PKI trait did not run")
    }

    public func remove() {
        try? FileManager.default.removeItem(at: self.root)
    }
}

/// Mints the PKI once around every test of the suite it is attached to.
public struct PKIScope: SuiteTrait, TestScoping {
    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let pki = try PKI.make()
        defer { pki.remove() }
        try await PKI.$current.withValue(pki) {
            try await function()
        }
    }
}

extension Trait where Self == PKIScope {
    public static var pki: Self { PKIScope() }
}
