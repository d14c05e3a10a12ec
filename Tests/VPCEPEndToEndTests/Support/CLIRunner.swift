import Foundation
import VPCEPTestSupport

/// What one run of a command printed and how it exited.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stdout parsed as a JSON object.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw JSONShapeError(text: stdout)
        }
        return object
    }

    /// stderr parsed as a JSON object (errors in --output json mode).
    func errorJSON() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stderr.utf8)) as? [String: Any] else {
            throw JSONShapeError(text: stderr)
        }
        return object
    }
}

struct JSONShapeError: Error, CustomStringConvertible {
    var text: String
    var description: String { "not a JSON object: \(text)" }
}

/// Runs a built executable with arguments and environment, with no standard input. Output goes to
/// temporary files and the exit is awaited without blocking a thread, so a command that waits on
/// something the test does meanwhile (an acceptance, say) cannot starve the test's own tasks.
func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String]) async throws -> CommandResult {
    let folder = FileManager.default.temporaryDirectory
    let outURL = folder.appendingPathComponent("vpcep-cmd-\(UUID().uuidString).out")
    let errURL = folder.appendingPathComponent("vpcep-cmd-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = outHandle
    process.standardError = errHandle
    let (exited, continuation) = AsyncStream<Int32>.makeStream()
    process.terminationHandler = { process in
        continuation.yield(process.terminationStatus)
        continuation.finish()
    }
    try process.run()
    var status: Int32 = -1
    for await code in exited {
        status = code
        break
    }
    try? outHandle.close()
    try? errHandle.close()
    let stdout = (try? Data(contentsOf: outURL)) ?? Data()
    let stderr = (try? Data(contentsOf: errURL)) ?? Data()
    return CommandResult(status: status, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

extension ServerProcess {
    /// Runs the `vpcep` CLI as `identity` against this server.
    func cli(_ identity: String, _ arguments: String..., region: String = ServerProcess.regions[0]) async throws -> CommandResult {
        try await runCommand(RepositoryPaths.executable("vpcep"), arguments, environment: cliEnvironment(identity, region: region))
    }
}
