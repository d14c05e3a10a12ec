import Foundation
import NIOCore
import NIOPosix
import Synchronization
import VPCEPProto
import VPCEPTLS

/// One mutual-TLS connection to a vpcep server, carrying any number of concurrent calls.
public final class RPCClientConnection: Sendable {
    private let channel: any Channel
    private let closeReason: CloseReason

    private init(channel: any Channel, closeReason: CloseReason) {
        self.channel = channel
        self.closeReason = closeReason
    }

    /// Connects and completes the TLS handshake. The server verifies the client certificate after
    /// the client's handshake completes (TLS 1.3), so a refused certificate shows up on the first call.
    public static func connect(
        host: String, port: Int, tlsContext: TLSContext, serverHostname: String? = nil,
        maxFrameSize: Int = 4 * 1024 * 1024, connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(VPCEPError) -> RPCClientConnection {
        let hostname = serverHostname ?? host
        do {
            let eventLoop = group.next()
            let handshake = eventLoop.makePromise(of: Void.self)
            let closeReason = CloseReason()
            let channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            TLSHandler(context: tlsContext, serverHostname: hostname)
                        )
                        try channel.pipeline.syncOperations.addHandler(
                            ClientConnectionHandler(maxFrameSize: maxFrameSize, handshake: handshake, closeReason: closeReason)
                        )
                    }
                }
                .connect(host: host, port: port)
                .get()
            try await handshake.futureResult.get()
            return RPCClientConnection(channel: channel, closeReason: closeReason)
        } catch let error as VPCEPError {
            throw error
        } catch {
            throw VPCEPError(code: .unavailable, reason: "CONNECTION_FAILED",
                             message: "cannot connect to \(host):\(port): \(error)")
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Why the connection stopped taking calls, once it has.
    public var failure: VPCEPError? { closeReason.error }

    private static func closedError(_ reason: CloseReason) -> VPCEPError {
        reason.error
            ?? VPCEPError(code: .unavailable, reason: "CONNECTION_CLOSED", message: "the connection to the server closed")
    }

    /// Sends one unary call and waits for its response message or its error status.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, metadata: CallMetadata
    ) async throws(VPCEPError) -> Response {
        let header = CallHeader(
            method: method.path, region: metadata.region,
            timeoutMs: metadata.timeout.map { UInt64(max(1, ($0 / .milliseconds(1)).rounded(.up))) } ?? 0,
            requestId: metadata.requestID, idempotencyKey: metadata.idempotencyKey
        )
        let headerBytes: [UInt8]
        let requestBytes: [UInt8]
        do {
            headerBytes = try header.serializedBytes()
            requestBytes = try request.serializedBytes()
        } catch {
            throw VPCEPError(code: .invalidArgument, reason: "UNENCODABLE_REQUEST", message: "\(error)",
                             field: error.field, requestID: metadata.requestID)
        }

        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let startedID = Mutex<UInt32?>(nil)
        let call = OutboundCall(
            header: headerBytes, request: requestBytes,
            // A little later than the server's own deadline, so the server's DEADLINE_EXCEEDED
            // (which says the work stopped) normally wins.
            timeout: metadata.timeout.map { .nanoseconds(Int64(($0 / .nanoseconds(1)).rounded())) + .milliseconds(50) },
            promise: promise,
            onStart: { id in startedID.withLock { $0 = id } }
        )
        let channel = self.channel
        let closeReason = self.closeReason
        let response: ByteBuffer
        do {
            response = try await withTaskCancellationHandler {
                // A write that never reaches the handler (the pipeline is gone) must still end the call.
                channel.writeAndFlush(call).whenFailure { _ in promise.fail(Self.closedError(closeReason)) }
                return try await promise.futureResult.get()
            } onCancel: {
                if let id = startedID.withLock({ $0 }) {
                    channel.writeAndFlush(CancelCall(callID: id), promise: nil)
                } else {
                    promise.fail(VPCEPError(code: .cancelled, reason: "CANCELLED", message: "the call was cancelled by the caller"))
                }
            }
        } catch var error as VPCEPError {
            if error.requestID.isEmpty { error.requestID = metadata.requestID }
            throw error
        } catch {
            throw VPCEPError(code: .unknown, reason: "UNKNOWN", message: "\(error)", requestID: metadata.requestID)
        }
        do {
            return try response.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try Response(serializedBytes: bytes)
            }
        } catch {
            throw VPCEPError(code: .internalError, reason: "MALFORMED_RESPONSE",
                             message: "the server's response is not a valid \(Response.protoMessageName)",
                             requestID: metadata.requestID)
        }
    }

    /// Closes the connection; calls still in flight fail with UNAVAILABLE.
    public func close() async {
        try? await channel.close()
    }
}

/// What travels in a call's header besides the method.
public struct CallMetadata: Sendable {
    public var region: String
    public var timeout: Duration?
    public var requestID: String
    public var idempotencyKey: String

    public init(region: String, timeout: Duration?, requestID: String = UUID().uuidString.lowercased(), idempotencyKey: String = "") {
        self.region = region
        self.timeout = timeout
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
    }
}
