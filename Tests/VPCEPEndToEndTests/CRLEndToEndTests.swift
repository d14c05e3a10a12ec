import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// An out-of-date CRL would make the server refuse every client: it is refused instead, at
/// start-up and on SIGHUP (docs/PROTOCOL.md §1.5).
@Suite("CRL end to end", .timeLimit(.minutes(2)))
struct CRLEndToEndTests {
    /// A current and an expired CRL of the shared test CA, in a fresh directory.
    private func makeCRLs() throws -> (directory: URL, current: URL, expired: URL) {
        let certificates = TestCertificates.shared
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-crl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data().write(to: directory.appendingPathComponent("index.txt"))
        try Data("01\n".utf8).write(to: directory.appendingPathComponent("crlnumber"))
        let config = [
            "[ca]", "default_ca = dev", "[dev]",
            "database = \(directory.path)/index.txt", "crlnumber = \(directory.path)/crlnumber",
            "certificate = \(certificates.ca)", "private_key = \(certificates.directory.appendingPathComponent("ca.key").path)",
            "default_md = sha256", "default_crl_days = 30",
        ].joined(separator: "\n") + "\n"
        let configFile = directory.appendingPathComponent("ca.cnf")
        try Data(config.utf8).write(to: configFile)
        let current = directory.appendingPathComponent("current.pem")
        let expired = directory.appendingPathComponent("expired.pem")
        try openssl(["ca", "-config", configFile.path, "-gencrl", "-out", current.path])
        try openssl(["ca", "-config", configFile.path, "-gencrl", "-crl_lastupdate", "20200101000000Z",
                     "-crl_nextupdate", "20200201000000Z", "-out", expired.path])
        return (directory, current, expired)
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")) failed")
    }

    @Test("the server refuses to start with an expired CRL, naming the file and the date")
    func expiredAtStartUp() async throws {
        let crls = try makeCRLs()
        defer { try? FileManager.default.removeItem(at: crls.directory) }
        let failure = try await #require(throws: ServerStartFailure.self) {
            // Should it start after all, it must not outlive the test.
            let server = try await ServerProcess.start(extraArguments: ["--tls-crl", crls.expired.path])
            _ = await server.stop()
        }
        #expect(failure.log.contains("TLS configuration refused"))
        #expect(failure.log.contains("\(crls.expired.path) expired at 2020-02-01T00:00:00Z"), "\(failure.log)")
    }

    @Test("SIGHUP with an expired CRL keeps the current one, logs an error, and clients are still served")
    func expiredOnReload() async throws {
        let crls = try makeCRLs()
        defer { try? FileManager.default.removeItem(at: crls.directory) }
        let installed = crls.directory.appendingPathComponent("installed.pem")
        try FileManager.default.copyItem(at: crls.current, to: installed)
        let server = try await ServerProcess.start(extraArguments: ["--tls-crl", installed.path])
        do {
            let before = try server.client("alice")
            #expect(try await before.whoAmI(WhoAmIRequest()).id == "alice")
            await before.close()

            try FileManager.default.removeItem(at: installed)
            try FileManager.default.copyItem(at: crls.expired, to: installed)
            server.send(SIGHUP)
            // Waits for the outcome of the reload: either line ends the wait.
            while !server.logText.contains("TLS reload refused"), !server.logText.contains("reloaded TLS") {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.logText.contains("TLS reload refused"))
            #expect(!server.logText.contains("reloaded TLS"))
            #expect(server.logText.contains("expired at 2020-02-01T00:00:00Z"))

            let after = try server.client("alice")
            #expect(try await after.whoAmI(WhoAmIRequest()).id == "alice")
            await after.close()
        } catch {
            _ = await server.stop()
            throw error
        }
        #expect(await server.stop() == 0)
    }
}
