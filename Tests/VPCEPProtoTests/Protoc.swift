import Foundation

/// Runs Google's `protoc` on the repository's schema, for interop checks.
enum Protoc {
    /// The repository root, found from this file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VPCEPProtoTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let protoDirectory = repositoryRoot.appendingPathComponent("proto")

    static let isAvailable: Bool = (try? run(["protoc", "--version"], input: Data()).status) == 0

    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    /// Runs `arguments` through `/usr/bin/env` with `input` on stdin.
    static func run(_ arguments: [String], input: Data, directory: URL? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory {
            process.currentDirectoryURL = directory
        }
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // protoc reads all of stdin before writing, and our inputs are small.
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    /// `protoc --encode=<message>`: text format in, binary out.
    static func encode(_ text: String, message: String, file: String) throws -> [UInt8] {
        let output = try run(
            ["protoc", "--encode=\(message)", "--proto_path=\(protoDirectory.path)", file],
            input: Data(text.utf8)
        )
        guard output.status == 0 else {
            throw ProtocFailed(message: output.stderr)
        }
        return Array(output.stdout)
    }

    /// `protoc --decode=<message>`: binary in, text format out.
    static func decode(_ bytes: [UInt8], message: String, file: String) throws -> String {
        let output = try run(
            ["protoc", "--decode=\(message)", "--proto_path=\(protoDirectory.path)", file],
            input: Data(bytes)
        )
        guard output.status == 0 else {
            throw ProtocFailed(message: output.stderr)
        }
        return String(decoding: output.stdout, as: UTF8.self)
    }

    struct ProtocFailed: Error, CustomStringConvertible {
        var message: String
        var description: String { "protoc failed: \(message)" }
    }
}
