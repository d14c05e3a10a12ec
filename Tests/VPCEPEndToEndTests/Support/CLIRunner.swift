import Foundation

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

/// Runs a built executable with arguments and environment, with no standard input.
func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String]) async throws -> CommandResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes to the end before waiting, so a large output cannot block the child.
    async let stdout = Task.detached { out.fileHandleForReading.readDataToEndOfFile() }.value
    async let stderr = Task.detached { err.fileHandleForReading.readDataToEndOfFile() }.value
    let (outData, errData) = await (stdout, stderr)
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

extension ServerProcess {
    /// Runs the `vpcep` CLI as `identity` against this server.
    func cli(_ identity: String, _ arguments: String..., region: String = ServerProcess.regions[0]) async throws -> CommandResult {
        try await runCommand(RepositoryPaths.executable("vpcep"), arguments, environment: cliEnvironment(identity, region: region))
    }
}
