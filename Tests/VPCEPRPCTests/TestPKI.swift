import Foundation
import Testing
import VPCEPTLS

/// Certificates minted for one test run by `certs/generate.sh`, removed at the end: a CA, the
/// server (localhost, 127.0.0.1), tenants `alice` and `mallory` (revoked in `crlFile`).
struct TestPKI: Sendable {
    @TaskLocal static var current: TestPKI?

    let root: URL
    let crlFile: String

    static let repositoryRoot = URL(filePath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func file(_ name: String) -> String { root.appending(path: "main/\(name)").path }

    func configuration(_ name: String, crl: Bool = false) -> TLSConfiguration {
        TLSConfiguration(certificateChainFile: file("\(name).crt"), privateKeyFile: file("\(name).key"),
                         trustRootsFile: file("ca.crt"), crlFile: crl ? crlFile : nil)
    }

    static func make() throws -> TestPKI {
        let root = FileManager.default.temporaryDirectory.appending(path: "vpcep-rpc-tests-\(UUID().uuidString)")
        let dir = root.appending(path: "main")
        let script = repositoryRoot.appending(path: "certs/generate.sh").path
        try runChecked(script, ["--out", dir.path, "--tenant", "alice", "--tenant", "mallory"])
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
        return TestPKI(root: root, crlFile: crlFile)
    }

    static func require() throws -> TestPKI {
        try #require(current, "the PKI trait did not run")
    }
}

struct TestPKIScope: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let pki = try TestPKI.make()
        defer { try? FileManager.default.removeItem(at: pki.root) }
        try await TestPKI.$current.withValue(pki) { try await function() }
    }
}

extension Trait where Self == TestPKIScope {
    static var pki: Self { TestPKIScope() }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String
}

@discardableResult
func runChecked(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(filePath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw ProcessFailure(description: "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(output)")
    }
    return output
}
