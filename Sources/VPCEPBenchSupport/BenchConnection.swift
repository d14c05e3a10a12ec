import VPCEPProto
import VPCEPRPC
import VPCEPTLS

/// The client certificate, key and CA of Benchmarks/' load generator, loaded once and shared by
/// all its connections (which then also share TLS session resumption).
@_spi(Benchmarks)
public struct BenchTLS: Sendable {
    fileprivate let context: TLSContext

    public init(caFile: String, certificateFile: String, keyFile: String) throws {
        context = try TLSContext.client(
            TLSConfiguration(certificateChainFile: certificateFile, privateKeyFile: keyFile, trustRootsFile: caFile))
    }
}

/// One raw vpcep connection for Benchmarks/' load generator. Unlike `VPCEPClient` it never
/// reconnects, sends no keepalive PINGs, and exposes its event loop as a task executor, so that
/// a measurement counts the protocol and nothing else.
@_spi(Benchmarks)
public final class BenchConnection: Sendable {
    private let connection: RPCClientConnection

    private init(_ connection: RPCClientConnection) {
        self.connection = connection
    }

    public static func connect(host: String, port: Int, tls: BenchTLS, serverHostname: String) async throws
        -> BenchConnection
    {
        BenchConnection(try await RPCClientConnection.connect(
            host: host, port: port, tlsContext: tls.context, serverHostname: serverHostname, keepaliveInterval: nil))
    }

    /// Where a loop of calls on this connection runs without waking another thread per call
    /// (`RPCClientConnection.taskExecutor`).
    public var taskExecutor: any TaskExecutor { connection.taskExecutor }

    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, region: String, timeout: Duration
    ) async throws -> Response {
        try await connection.unary(method, request, metadata: CallMetadata(region: region, timeout: timeout, requestID: ""))
    }

    /// A server stream with no deadline (a watch: docs/PROTOCOL.md §4.5), without the client
    /// library's resuming, so that a measured delivery is the protocol's and nothing else.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, region: String
    ) -> ResponseStream<Response> {
        let connection = self.connection
        let metadata = CallMetadata(region: region, timeout: nil, requestID: "")
        return ResponseStream { () async throws(VPCEPError) in
            connection.startServerStreaming(method, request, metadata: metadata)
        }
    }

    public func close() async {
        await connection.close()
    }
}
