import Foundation

/// Certificates minted once per test process with the project's own script: a CA with server,
/// tenant and operator identities, plus a second, unrelated CA for the "wrong CA" cases.
public struct TestCertificates: Sendable {
    public static let tenants = ["alice", "bob", "carol", "dave", "erin"]

    public let directory: URL
    public let rogueDirectory: URL

    public static let shared: TestCertificates = {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-certs-\(UUID().uuidString)")
        let main = base.appendingPathComponent("main")
        let rogue = base.appendingPathComponent("rogue")
        var arguments = ["--out", main.path, "--operator", "ops"]
        for tenant in tenants { arguments += ["--tenant", tenant] }
        runScript(arguments)
        runScript(["--out", rogue.path, "--tenant", "alice"])
        return TestCertificates(directory: main, rogueDirectory: rogue)
    }()

    public var ca: String { directory.appendingPathComponent("ca.crt").path }
    public var serverCertificate: String { directory.appendingPathComponent("server.crt").path }
    public var serverKey: String { directory.appendingPathComponent("server.key").path }
    public func certificate(_ name: String) -> String { directory.appendingPathComponent("\(name).crt").path }
    public func key(_ name: String) -> String { directory.appendingPathComponent("\(name).key").path }
    public func rogueCertificate(_ name: String) -> String { rogueDirectory.appendingPathComponent("\(name).crt").path }
    public func rogueKey(_ name: String) -> String { rogueDirectory.appendingPathComponent("\(name).key").path }

    private static func runScript(_ arguments: [String]) {
        let process = Process()
        process.executableURL = RepositoryPaths.root.appendingPathComponent("certs/generate.sh")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            fatalError("cannot run certs/generate.sh: \(error)")
        }
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "certs/generate.sh \(arguments) failed")
    }
}
