import Foundation

/// Certificates minted once per test process with the project's own script: a CA with server,
/// tenant and operator identities, plus a second, unrelated CA for the "wrong CA" cases.
struct TestCertificates: Sendable {
    static let tenants = ["alice", "bob", "carol", "dave", "erin"]

    let directory: URL
    let rogueDirectory: URL

    static let shared: TestCertificates = {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-certs-\(UUID().uuidString)")
        let main = base.appendingPathComponent("main")
        let rogue = base.appendingPathComponent("rogue")
        var arguments = ["--out", main.path, "--operator", "ops"]
        for tenant in tenants { arguments += ["--tenant", tenant] }
        runScript(arguments)
        runScript(["--out", rogue.path, "--tenant", "alice"])
        return TestCertificates(directory: main, rogueDirectory: rogue)
    }()

    var ca: String { directory.appendingPathComponent("ca.crt").path }
    var serverCertificate: String { directory.appendingPathComponent("server.crt").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    func certificate(_ name: String) -> String { directory.appendingPathComponent("\(name).crt").path }
    func key(_ name: String) -> String { directory.appendingPathComponent("\(name).key").path }
    func rogueCertificate(_ name: String) -> String { rogueDirectory.appendingPathComponent("\(name).crt").path }
    func rogueKey(_ name: String) -> String { rogueDirectory.appendingPathComponent("\(name).key").path }

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

enum RepositoryPaths {
    /// The package root, found from this file's path.
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    /// A built executable of this package, next to the test bundle.
    static func executable(_ name: String) -> URL {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        candidates.append(root.appendingPathComponent(".build/debug"))
        for directory in candidates {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        fatalError("\(name) is not built (looked in \(candidates.map(\.path)))")
    }
}
