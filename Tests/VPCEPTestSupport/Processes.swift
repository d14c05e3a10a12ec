import Foundation

public struct ProcessFailure: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var output: String
    public var description: String { "\(command) exited with \(status): \(output)" }
}

/// Runs a program; stdout and stderr together.
@discardableResult
public func run(_ executable: String, _ arguments: [String], cwd: URL? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(filePath: executable)
    process.arguments = arguments
    if let cwd { process.currentDirectoryURL = cwd }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@discardableResult
public func runChecked(_ executable: String, _ arguments: [String], cwd: URL? = nil) throws -> String {
    let (status, output) = try run(executable, arguments, cwd: cwd)
    guard status == 0 else {
        throw ProcessFailure(command: ([executable] + arguments).joined(separator: " "), status: status, output: output)
    }
    return output
}
