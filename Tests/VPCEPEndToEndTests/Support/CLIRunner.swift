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
    let status: Int32
    do {
        let child = try ChildProcess.spawn(
            executable.path, arguments, environment: environment,
            stdout: .descriptor(outHandle.fileDescriptor), stderr: .descriptor(errHandle.fileDescriptor))
        status = await child.wait()
    } catch {
        try? outHandle.close()
        try? errHandle.close()
        throw error
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

/// Runs a built executable with its stdout on a pseudo-terminal `columns` wide, as a person at a
/// terminal would see it; stderr goes to a file. The pty is the real thing the CLI probes (isatty,
/// TIOCGWINSZ), so no test hook is needed in the product. Output processing is off so the bytes
/// read are the bytes written (no "\r" before each "\n").
func runCommandAtTerminal(
    _ executable: URL, _ arguments: [String], environment: [String: String], columns: Int
) async throws -> CommandResult {
    let pty = try PseudoTerminalFunctions.shared.get()
    let master = pty.open(O_RDWR | O_NOCTTY)
    // ptsname_r, not ptsname: tests run in parallel and ptsname shares one static buffer.
    var name = [CChar](repeating: 0, count: 128)
    guard master >= 0, pty.grant(master) == 0, pty.unlock(master) == 0, pty.name(master, &name, name.count) == 0 else {
        let error = errno
        if master >= 0 { close(master) }
        throw PseudoTerminalError(step: "posix_openpt", errno: error)
    }
    let path = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    let slave = open(path, O_RDWR | O_NOCTTY)
    guard slave >= 0 else {
        close(master)
        throw PseudoTerminalError(step: "open the pty", errno: errno)
    }
    var size = winsize(ws_row: 24, ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
    var attributes = termios()
    guard ioctl(slave, UInt(TIOCSWINSZ), &size) == 0, tcgetattr(slave, &attributes) == 0 else {
        close(slave)
        close(master)
        throw PseudoTerminalError(step: "size the pty", errno: errno)
    }
    attributes.c_oflag &= ~tcflag_t(OPOST)
    _ = tcsetattr(slave, TCSANOW, &attributes)

    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-cmd-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let errHandle = try FileHandle(forWritingTo: errURL)
    let slaveHandle = FileHandle(fileDescriptor: slave, closeOnDealloc: false)

    // Read the master on a thread of its own while the command runs, so a long table cannot fill
    // the pty's buffer and block the command. Once every copy of the slave is closed (the command
    // has exited and this process closed its own), read fails with EIO: the end of the output.
    let (output, outputContinuation) = AsyncStream<Data>.makeStream()
    Thread.detachNewThread {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(master, &buffer, buffer.count)
            if count > 0 {
                data.append(contentsOf: buffer[..<count])
            } else if count < 0, errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(master)
        outputContinuation.yield(data)
        outputContinuation.finish()
    }

    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = slaveHandle
    process.standardError = errHandle
    let (exited, continuation) = AsyncStream<Int32>.makeStream()
    process.terminationHandler = { process in
        continuation.yield(process.terminationStatus)
        continuation.finish()
    }
    do {
        try process.run()
    } catch {
        close(slave)
        throw error
    }
    close(slave)
    var status: Int32 = -1
    for await code in exited {
        status = code
        break
    }
    var stdout = Data()
    for await data in output {
        stdout = data
        break
    }
    try? errHandle.close()
    let stderr = (try? Data(contentsOf: errURL)) ?? Data()
    return CommandResult(status: status, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

/// posix_openpt and friends, looked up in the C library at run time: Swift's Glibc module leaves
/// them out (they sit behind _XOPEN_SOURCE in stdlib.h).
private struct PseudoTerminalFunctions: Sendable {
    let open: @convention(c) (Int32) -> Int32
    let grant: @convention(c) (Int32) -> Int32
    let unlock: @convention(c) (Int32) -> Int32
    let name: @convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int32

    static let shared = Result { () throws(PseudoTerminalError) -> PseudoTerminalFunctions in
        let libc = dlopen(nil, RTLD_NOW)
        func symbol<F>(_ name: String, as type: F.Type) throws(PseudoTerminalError) -> F {
            guard let address = dlsym(libc, name) else { throw PseudoTerminalError(step: "dlsym \(name)", errno: 0) }
            return unsafeBitCast(address, to: type)
        }
        return PseudoTerminalFunctions(
            open: try symbol("posix_openpt", as: (@convention(c) (Int32) -> Int32).self),
            grant: try symbol("grantpt", as: (@convention(c) (Int32) -> Int32).self),
            unlock: try symbol("unlockpt", as: (@convention(c) (Int32) -> Int32).self),
            name: try symbol("ptsname_r", as: (@convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int32).self)
        )
    }
}

struct PseudoTerminalError: Error, CustomStringConvertible {
    var step: String
    var errno: Int32
    var description: String { "\(step) failed: errno \(errno)" }
}

extension ServerProcess {
    /// Runs the `vpcep` CLI as `identity` with its stdout on a terminal `columns` wide.
    func cliAtTerminal(
        _ identity: String, columns: Int, _ arguments: String..., region: String = ServerProcess.regions[0]
    ) async throws -> CommandResult {
        try await runCommandAtTerminal(RepositoryPaths.executable("vpcep"), arguments,
                                       environment: cliEnvironment(identity, region: region), columns: columns)
    }
}
