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
/// Given several servers (replicas of one registry), it uses one at a time and moves to the next
/// when connecting fails, the server sends GOAWAY or a call fails with UNAVAILABLE
/// (docs/PROTOCOL.md §9).
///
///     let client = try VPCEPClient(configuration: .init(
///         servers: try ServerAddress.list(parsing: "a:7443,b:7443"), region: "eu-west-1",
///         caFile: "certs/dev/ca.crt", certificateFile: "certs/dev/alice.crt", keyFile: "certs/dev/alice.key"))
///     let vpc = try await client.createVpc(CreateVpcRequest(name: "prod", cidr: "10.0.0.0/16"))
public final class VPCEPClient: Sendable {
    public struct Configuration: Sendable {
        /// The servers to call, in order of preference; replicas of one registry.
        public var servers: [ServerAddress]
        /// The region calls name unless their options say otherwise.
        public var region: String
        public var caFile: String
        public var certificateFile: String
        public var keyFile: String
        /// The name every server certificate must carry; each server's host when nil.
        public var serverHostname: String?
        /// Deadline of calls whose options name none.
        public var defaultTimeout: Duration = .seconds(30)
        /// Which failures are retried, how often and how far apart.
        public var retryPolicy = RetryPolicy()
        /// How long one server may take to accept a connection and complete the TLS handshake
        /// (never longer than what is left of the call's deadline).
        public var connectTimeout: Duration = .seconds(10)
        /// How long a server that failed is passed over while another has not failed.
        public var failoverBackoff: Duration = .seconds(5)

        public init(
            servers: [ServerAddress], region: String, caFile: String, certificateFile: String, keyFile: String,
            serverHostname: String? = nil, defaultTimeout: Duration = .seconds(30)
        ) {
            self.servers = servers
            self.region = region
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverHostname = serverHostname
            self.defaultTimeout = defaultTimeout
        }

        /// One server.
        public init(
            host: String, port: Int, region: String, caFile: String, certificateFile: String, keyFile: String,
            serverHostname: String? = nil, defaultTimeout: Duration = .seconds(30)
        ) {
            self.init(servers: [ServerAddress(host: host, port: port)], region: region, caFile: caFile,
                      certificateFile: certificateFile, keyFile: keyFile, serverHostname: serverHostname,
                      defaultTimeout: defaultTimeout)
        }

        /// The first server's host; setting it makes the list that one server.
        public var host: String {
            get { servers.first?.host ?? "" }
            set { servers = [ServerAddress(host: newValue, port: port)] }
        }

        /// The first server's port; setting it makes the list that one server.
        public var port: Int {
            get { servers.first?.port ?? 0 }
            set { servers = [ServerAddress(host: host, port: newValue)] }
        }
    }

    /// A connection and the index in `configuration.servers` of the server at its other end.
    struct Connected: Sendable {
        let connection: RPCClientConnection
        let index: Int
    }

    struct State {
        /// The connection calls use while it accepts them.
        var established: Connected?
        /// The connection being made, shared by the calls that wait for it.
        var connecting: Task<Connected, any Error>?
        /// The server tried first when a connection is needed.
        var preferred = 0
        /// When each server last failed, for `failoverBackoff`.
        var failedAt: [Int: ContinuousClock.Instant] = [:]
        /// Connections left for another server while still open: their calls in flight finish
        /// there, and `close()` closes them.
        var retired: [RPCClientConnection] = []
    }

    public let configuration: Configuration
    let tlsContext: TLSContext
    let state = Mutex(State())

    /// Reads the certificate files; connects on the first call.
    public init(configuration: Configuration) throws(VPCEPError) {
        guard !configuration.servers.isEmpty else {
            throw VPCEPError(code: .invalidArgument, reason: .clientConfiguration, message: "no server address given")
        }
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

    /// The server the open connection goes to, if there is one: where the next call goes.
    public var currentServer: ServerAddress? {
        state.withLock { $0.established.map { configuration.servers[$0.index] } }
    }

    /// Closes the connections; the next call opens a new one.
    public func close() async {
        let (established, connecting, retired) = state.withLock { state in
            defer {
                state.established = nil
                state.connecting = nil
                state.retired = []
            }
            return (state.established, state.connecting, state.retired)
        }
        await established?.connection.close()
        if let current = try? await connecting?.value {
            await current.connection.close()
            state.withLock { if $0.established?.connection === current.connection { $0.established = nil } }
        }
        for connection in retired { await connection.close() }
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
    /// and transient (see `RetryPolicy`) are retried with backoff, on another server or a new
    /// connection when the old one failed. The call has one deadline, fixed when it starts; each
    /// attempt (connecting included) gets what is left of it.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) async throws(VPCEPError) -> Response {
        var metadata = metadata(options)
        let policy = configuration.retryPolicy
        let deadline = metadata.timeout.map { ContinuousClock.now + $0 }
        var attempt = 1
        while true {
            var used: Connected?
            do throws(VPCEPError) {
                let connected = try await currentConnection(before: deadline, requestID: metadata.requestID)
                used = connected
                if let deadline {
                    let left = deadline - ContinuousClock.now
                    guard left > .milliseconds(1) else { throw deadlineExceeded(metadata.requestID) }
                    metadata.timeout = left
                }
                return try await connected.connection.unary(method, request, metadata: metadata)
            } catch var error {
                if let used, error.code == .unavailable {
                    callFailed(on: used, error)
                    // With several servers, say which one failed the call.
                    if configuration.servers.count > 1 {
                        error.message = "\(configuration.servers[used.index]): \(error.message)"
                    }
                }
                guard attempt < policy.maxAttempts,
                      policy.shouldRetry(method: method, hasIdempotencyKey: !metadata.idempotencyKey.isEmpty, error: error)
                else { throw error }
                let pause = policy.backoff(attempt: attempt, hint: error.retryAfter)
                if let deadline {
                    guard deadline - ContinuousClock.now - pause > .milliseconds(1) else { throw error }
                }
                try? await Task.sleep(for: pause)
                if Task.isCancelled { throw error }
                attempt += 1
            }
        }
    }

    /// Runs one server-streaming call; used by the generated methods. The call starts when the
    /// iteration does; the deadline (options or the configuration's default) bounds the whole
    /// stream, connecting included.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) -> ResponseStream<Response> {
        let metadata = metadata(options)
        return ResponseStream { () async throws(VPCEPError) in
            var metadata = metadata
            let deadline = metadata.timeout.map { ContinuousClock.now + $0 }
            let connected = try await self.currentConnection(before: deadline, requestID: metadata.requestID)
            if let deadline {
                let left = deadline - ContinuousClock.now
                guard left > .milliseconds(1) else { throw self.deadlineExceeded(metadata.requestID) }
                metadata.timeout = left
            }
            return connected.connection.startServerStreaming(method, request, metadata: metadata)
        }
    }

    func deadlineExceeded(_ requestID: String) -> VPCEPError {
        VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                   message: "no answer from \(serverList) within the call's deadline", requestID: requestID)
    }

    private var serverList: String { configuration.servers.map(\.description).joined(separator: ", ") }
}
