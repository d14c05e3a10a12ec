import Foundation
import Synchronization
import VPCEPClient

/// A real `vpcep-server` process on 127.0.0.1 with a port chosen by the kernel and its own data
/// directory, stopped with SIGTERM.
public final class ServerProcess: Sendable {
    public static let regions = ["eu-west-1", "eu-north-1"]

    public let dataDirectory: URL
    public let port: Int
    private let process: ChildProcess
    /// Its standard error, which the log is read from: kept, or the handle closes when it goes.
    private let stderr: FileHandle
    private let log: LogBuffer

    /// Starts a server; `dataDirectory` lets a second server reopen the first one's data.
    /// `tlsFiles` replaces the shared CA, server certificate and key (for reload tests).
    public static func start(
        dataDirectory: URL? = nil, tlsFiles: (ca: String, cert: String, key: String)? = nil, extraArguments: [String] = []
    ) async throws -> ServerProcess {
        let certificates = TestCertificates.shared
        let tls = tlsFiles ?? (certificates.ca, certificates.serverCertificate, certificates.serverKey)
        let directory = dataDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-e2e-data-\(UUID().uuidString)")
        let arguments = [
            "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", directory.path,
            "--tls-ca", tls.ca, "--tls-cert", tls.cert, "--tls-key", tls.key,
        ] + regions.flatMap { ["--region", $0] } + extraArguments
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        let pipe = Pipe()

        let log = LogBuffer()
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                continuation.finish()
                log.end()
                return
            }
            let all = log.append(String(decoding: data, as: UTF8.self))
            if let port = listeningPort(in: all) { continuation.yield(port) }
        }
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(
                RepositoryPaths.executable("vpcep-server").path, arguments, environment: environment,
                stderr: .descriptor(pipe.fileHandleForWriting.fileDescriptor))
        } catch {
            try? pipe.fileHandleForWriting.close()
            throw error
        }
        // The child has its copy: the stream ends when the server exits.
        try? pipe.fileHandleForWriting.close()

        let port = await withTaskGroup(of: Int?.self) { group in
            group.addTask {
                for await port in stream { return port }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let port else {
            process.send(SIGTERM)
            _ = await process.wait()
            throw ServerStartFailure(log: log.text)
        }
        return ServerProcess(process: process, stderr: pipe.fileHandleForReading, port: port, dataDirectory: directory, log: log)
    }

    private init(process: ChildProcess, stderr: FileHandle, port: Int, dataDirectory: URL, log: LogBuffer) {
        self.process = process
        self.stderr = stderr
        self.port = port
        self.dataDirectory = dataDirectory
        self.log = log
    }

    /// Everything the server has logged so far.
    public var logText: String { log.text }

    private static func listeningPort(in log: String) -> Int? {
        port(in: log, lineContaining: "vpcep-server listening")
    }

    private static func port(in log: String, lineContaining marker: String) -> Int? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains(marker) }),
              let range = line.range(of: "address=127.0.0.1:") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// The port of the plain-HTTP admin listener (/metrics, /healthz, /readyz).
    public var adminPort: Int? { Self.port(in: log.text, lineContaining: "admin listener") }

    /// Resident memory now, from /proc (Linux); nil where there is none.
    public var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// Sends a signal (SIGHUP, SIGTERM, …) without waiting.
    public func send(_ signal: Int32) {
        process.send(signal)
    }

    /// Waits for the process to exit by itself; returns the exit status.
    public func waitForExit() async -> Int32 {
        let status = await process.wait()
        await log.drained()
        return status
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 {
        process.send(SIGTERM)
        return await waitForExit()
    }

    public func client(
        _ identity: String, region: String = ServerProcess.regions[0], timeout: Duration = .seconds(20)
    ) throws -> VPCEPClient {
        let certificates = TestCertificates.shared
        return try VPCEPClient(configuration: .init(
            host: "127.0.0.1", port: port, region: region, caFile: certificates.ca,
            certificateFile: certificates.certificate(identity), keyFile: certificates.key(identity),
            serverHostname: "localhost", defaultTimeout: timeout
        ))
    }

    /// Environment for the `vpcep` CLI acting as `identity`.
    public func cliEnvironment(_ identity: String, region: String = ServerProcess.regions[0]) -> [String: String] {
        let certificates = TestCertificates.shared
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["VPCEP_SERVER"] = "localhost:\(port)"
        environment["VPCEP_CA"] = certificates.ca
        environment["VPCEP_CERT"] = certificates.certificate(identity)
        environment["VPCEP_KEY"] = certificates.key(identity)
        environment["VPCEP_REGION"] = region
        return environment
    }
}

/// The server's stderr, collected as it arrives.
final class LogBuffer: Sendable {
    private let storage = Mutex("")
    private let ended = Atomic<Bool>(false)

    /// Appends and returns everything so far.
    func append(_ text: String) -> String {
        storage.withLock { $0 += text; return $0 }
    }

    var text: String { storage.withLock { $0 } }

    /// The server's stream reached its end (the server exited).
    func end() { ended.store(true, ordering: .releasing) }

    /// Waits until everything the server wrote has been read, or a bound passes (a grandchild could
    /// hold the stream open).
    func drained() async {
        let deadline = ContinuousClock.now + .seconds(5)
        while !ended.load(ordering: .acquiring), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

public struct ServerStartFailure: Error, CustomStringConvertible {
    public var log: String
    public var description: String { "vpcep-server did not start:\n\(log)" }
}

/// Runs `body` against a fresh server and always stops the server afterwards.
public func withServer<T>(
    dataDirectory: URL? = nil, extraArguments: [String] = [], _ body: (ServerProcess) async throws -> T
) async throws -> T {
    let server = try await ServerProcess.start(dataDirectory: dataDirectory, extraArguments: extraArguments)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}
