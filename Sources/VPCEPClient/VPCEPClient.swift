@_exported import VPCEPProto
@_exported import struct VPCEPRPC.CallOptions
@_exported import struct VPCEPRPC.ResponseStream
@_exported import struct VPCEPRPC.StatusCode
@_exported import struct VPCEPRPC.VPCEPError
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import VPCEPRPC
import VPCEPTLS

/// A client of the vpcep API for programs: typed async methods for every RPC (generated from
/// proto/), one mutual-TLS connection reused by concurrent calls and re-established on demand.
///
///     let client = try VPCEPClient(configuration: .init(
///         host: "127.0.0.1", port: 7443, region: "eu-west-1",
///         caFile: "certs/dev/ca.crt", certificateFile: "certs/dev/alice.crt", keyFile: "certs/dev/alice.key"))
///     let vpc = try await client.createVpc(CreateVpcRequest(name: "prod", cidr: "10.0.0.0/16"))
public final class VPCEPClient: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The region calls name unless their options say otherwise.
        public var region: String
        public var caFile: String
        public var certificateFile: String
        public var keyFile: String
        /// The name the server certificate must carry; the host when nil.
        public var serverHostname: String?
        /// Deadline of calls whose options name none.
        public var defaultTimeout: Duration = .seconds(30)
        /// Which failures are retried, how often and how far apart.
        public var retryPolicy = RetryPolicy()

        public init(
            host: String, port: Int, region: String, caFile: String, certificateFile: String, keyFile: String,
            serverHostname: String? = nil, defaultTimeout: Duration = .seconds(30)
        ) {
            self.host = host
            self.port = port
            self.region = region
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverHostname = serverHostname
            self.defaultTimeout = defaultTimeout
        }
    }

    public let configuration: Configuration
    private let tlsContext: TLSContext
    private let connection = Mutex<Task<RPCClientConnection, any Error>?>(nil)

    /// Reads the certificate files; connects on the first call.
    public init(configuration: Configuration) throws(VPCEPError) {
        self.configuration = configuration
        do {
            tlsContext = try TLSContext.client(TLSConfiguration(
                certificateChainFile: configuration.certificateFile,
                privateKeyFile: configuration.keyFile,
                trustRootsFile: configuration.caFile
            ))
        } catch {
            throw VPCEPError(code: .invalidArgument, reason: .tlsConfigurationInvalid, message: error.message)
        }
    }

    /// Closes the connection; the next call opens a new one.
    public func close() async {
        let task = connection.withLock { task in
            defer { task = nil }
            return task
        }
        if let current = try? await task?.value { await current.close() }
    }

    private func metadata(_ options: CallOptions) -> CallMetadata {
        CallMetadata(
            region: options.region ?? configuration.region,
            timeout: options.timeout ?? configuration.defaultTimeout,
            requestID: options.requestID ?? UUID().uuidString.lowercased(),
            idempotencyKey: options.idempotencyKey ?? ""
        )
    }

    /// Runs one unary call; used by the generated methods. Failures that `retryPolicy` deems safe
    /// and transient (see `RetryPolicy`) are retried with backoff, on a new connection when the old
    /// one is gone, within the call's deadline.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) async throws(VPCEPError) -> Response {
        var metadata = metadata(options)
        let policy = configuration.retryPolicy
        let deadline = metadata.timeout.map { ContinuousClock.now + $0 }
        var attempt = 1
        while true {
            do {
                let connection = try await currentConnection()
                return try await connection.unary(method, request, metadata: metadata)
            } catch {
                guard attempt < policy.maxAttempts,
                      policy.shouldRetry(method: method, hasIdempotencyKey: !metadata.idempotencyKey.isEmpty, error: error)
                else { throw error }
                let pause = policy.backoff(attempt: attempt, hint: error.retryAfter)
                if let deadline {
                    let left = deadline - ContinuousClock.now - pause
                    guard left > .milliseconds(1) else { throw error }
                    metadata.timeout = left
                }
                try? await Task.sleep(for: pause)
                if Task.isCancelled { throw error }
                attempt += 1
            }
        }
    }

    /// Runs one server-streaming call; used by the generated methods. The call starts when the
    /// iteration does; the deadline (options or the configuration's default) bounds the whole stream.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) -> ResponseStream<Response> {
        let metadata = metadata(options)
        return ResponseStream { () async throws(VPCEPError) in
            try await self.currentConnection().startServerStreaming(method, request, metadata: metadata)
        }
    }

    /// The open connection, or a new one when there is none or it has closed. Concurrent callers
    /// share one connection attempt.
    func currentConnection() async throws(VPCEPError) -> RPCClientConnection {
        let configuration = configuration
        let tlsContext = tlsContext
        let task = connection.withLock { task -> Task<RPCClientConnection, any Error> in
            if let existing = task { return existing }
            let fresh = Task {
                try await RPCClientConnection.connect(
                    host: configuration.host, port: configuration.port, tlsContext: tlsContext,
                    serverHostname: configuration.serverHostname
                )
            }
            task = fresh
            return fresh
        }
        do {
            let connection = try await task.value
            if connection.isAcceptingCalls { return connection }
            // Closed since it was made: forget it and make another, once.
            self.connection.withLock { if $0 == task { $0 = nil } }
            return try await currentConnectionOnce()
        } catch let error as VPCEPError {
            self.connection.withLock { if $0 == task { $0 = nil } }
            throw error
        } catch {
            self.connection.withLock { if $0 == task { $0 = nil } }
            throw VPCEPError(code: .unavailable, reason: .connectionFailed, message: "\(error)")
        }
    }

    private func currentConnectionOnce() async throws(VPCEPError) -> RPCClientConnection {
        let configuration = configuration
        let connection = try await RPCClientConnection.connect(
            host: configuration.host, port: configuration.port, tlsContext: tlsContext,
            serverHostname: configuration.serverHostname
        )
        self.connection.withLock { $0 = Task { connection } }
        return connection
    }
}
