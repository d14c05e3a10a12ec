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
    /// Whether the TLS handshake resumed a cached session instead of a full handshake.
    public let resumedSession: Bool
    private let executor: EventLoopTaskExecutor

    private init(channel: any Channel, closeReason: CloseReason, resumedSession: Bool) {
        self.channel = channel
        self.closeReason = closeReason
        self.resumedSession = resumedSession
        self.executor = EventLoopTaskExecutor(eventLoop: channel.eventLoop)
    }

    /// The connection's event loop as a task executor. Code that makes many calls on this
    /// connection may run on it (`withTaskExecutorPreference(connection.taskExecutor) { … }`): its
    /// calls are then written, and its awaits resumed, on the thread that does the connection's
    /// I/O, without waking another thread for each call. Such code must not block.
    public var taskExecutor: any TaskExecutor { executor }

    /// Connects and completes the TLS handshake. The server verifies the client certificate after
    /// the client's handshake completes (TLS 1.3), so a refused certificate shows up on the first call.
    ///
    /// With `resumeSessions` (the default) the connection offers the session `tlsContext` cached
    /// for `host:port`, and caches the server's new tickets, so that the next connection to the
    /// same server skips the full handshake.
    ///
    /// While calls are pending and nothing has arrived for `keepaliveInterval`, the connection
    /// PINGs the server; when nothing arrives within `keepaliveTimeout` after that, its calls fail
    /// with `UNAVAILABLE` / `KEEPALIVE_TIMEOUT` and it closes. Nil turns this off.
    public static func connect(
        host: String, port: Int, tlsContext: TLSContext, serverHostname: String? = nil,
        maxFrameSize: Int = 4 * 1024 * 1024, connectTimeout: TimeAmount = .seconds(10),
        resumeSessions: Bool = true,
        keepaliveInterval: TimeAmount? = .seconds(60), keepaliveTimeout: TimeAmount = .seconds(20),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(VPCEPError) -> RPCClientConnection {
        let hostname = serverHostname ?? host
        let sessionKey = resumeSessions ? "\(hostname)@\(host):\(port)" : nil
        do {
            let eventLoop = group.next()
            let handshake = eventLoop.makePromise(of: TLSHandshakeCompleted.self)
            let closeReason = CloseReason()
            // A connection that never got going must still complete the promise.
            defer { handshake.fail(ChannelError.ioOnClosedChannel) }
            let channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            TLSHandler(context: tlsContext, serverHostname: hostname, sessionKey: sessionKey)
                        )
                        try channel.pipeline.syncOperations.addHandler(ConnectionManagementHandler(configuration: .init(
                            keepaliveInterval: keepaliveInterval, keepaliveTimeout: keepaliveTimeout,
                            keepaliveOnlyWithOpenCalls: true)))
                        try channel.pipeline.syncOperations.addHandler(
                            ClientConnectionHandler(maxFrameSize: maxFrameSize, handshake: handshake, closeReason: closeReason)
                        )
                    }
                }
                .connect(host: host, port: port)
                .get()
            let completed = try await handshake.futureResult.get()
            return RPCClientConnection(channel: channel, closeReason: closeReason, resumedSession: completed.resumed)
        } catch let error as VPCEPError {
            throw error
        } catch {
            throw VPCEPError(code: .unavailable, reason: .connectionFailed,
                             message: "cannot connect to \(host):\(port): \(error)")
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Whether new calls can start here: open, and no GOAWAY or failure seen. A client should open
    /// a new connection once this is false.
    public var isAcceptingCalls: Bool { channel.isActive && closeReason.error == nil }

    /// Why the connection stopped taking calls, once it has.
    public var failure: VPCEPError? { closeReason.error }

    private static func closedError(_ reason: CloseReason) -> VPCEPError {
        reason.error
            ?? VPCEPError(code: .unavailable, reason: .connectionClosed, message: "the connection to the server closed")
    }

    /// A call's header and request as the bytes of their two frames. A request the codec refuses
    /// (e.g. a string that is not UTF-8) fails here with INVALID_ARGUMENT naming the field, before
    /// anything is sent.
    private static func encode<Request: ProtoMessage>(
        _ path: String, _ request: Request, _ metadata: CallMetadata
    ) throws(VPCEPError) -> (header: [UInt8], request: [UInt8]) {
        let header = CallHeader(
            method: path, region: metadata.region,
            timeoutMs: metadata.timeout.map { UInt64(max(1, ($0 / .milliseconds(1)).rounded(.up))) } ?? 0,
            requestId: metadata.requestID, idempotencyKey: metadata.idempotencyKey
        )
        do {
            return (try header.serializedBytes(), try request.serializedBytes())
        } catch {
            throw VPCEPError(code: .invalidArgument, reason: .unencodableRequest, message: "\(error)",
                             field: error.field, requestID: metadata.requestID)
        }
    }

    /// A little later than the server's own deadline, so the server's DEADLINE_EXCEEDED (which
    /// says the work stopped) normally wins (docs/PROTOCOL.md §4.5).
    static func clientTimeout(_ timeout: Duration) -> TimeAmount {
        .nanoseconds(Int64((timeout / .nanoseconds(1)).rounded())) + .milliseconds(50)
    }

    /// The call's one deadline, counted from when the call is made, in the clock of the event loop
    /// whose timer enforces it.
    private func deadline(_ metadata: CallMetadata) -> NIODeadline? {
        metadata.timeout.map { channel.eventLoop.now + Self.clientTimeout($0) }
    }

    /// Starts one server-streaming call. The stream yields each response message and ends when
    /// the server's final status arrives: normally for OK, with the status as a `VPCEPError`
    /// otherwise. Leaving the iteration early (or cancelling the iterating task) sends CANCEL.
    /// `metadata.timeout` bounds the whole stream.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, metadata: CallMetadata
    ) -> ResponseStream<Response> {
        ResponseStream(startServerStreaming(method, request, metadata: metadata))
    }

    /// Starts a server-streaming call now; the messages arrive in the returned source.
    package func startServerStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, metadata: CallMetadata
    ) -> ResponseStream<Response>.Source {
        let (stream, continuation) = AsyncThrowingStream<Response, any Error>.makeStream()
        let flow = StreamFlowControl()
        let source = ResponseStream<Response>.Source(messages: stream, onConsume: { flow.consumed() })
        let encoded: (header: [UInt8], request: [UInt8])
        do {
            encoded = try Self.encode(method.path, request, metadata)
        } catch {
            continuation.finish(throwing: error)
            return source
        }
        let requestID = metadata.requestID
        let startedID = Mutex<UInt32?>(nil)
        let call = OutboundCall(
            header: encoded.header, request: encoded.request, deadline: deadline(metadata),
            sink: .stream({ event in
                switch event {
                case .message(let buffer):
                    do {
                        let message = try buffer.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                            try Response(serializedBytes: bytes)
                        }
                        continuation.yield(message)
                    } catch {
                        continuation.finish(throwing: VPCEPError(
                            code: .internalError, reason: .malformedResponse,
                            message: "the server's response is not a valid \(Response.protoMessageName)",
                            requestID: requestID))
                    }
                case .end(nil):
                    continuation.finish()
                case .end(var error?):
                    if error.requestID.isEmpty { error.requestID = requestID }
                    continuation.finish(throwing: error)
                }
            }, flow: flow),
            onStart: { id in startedID.withLock { $0 = id } }
        )
        let channel = self.channel
        let closeReason = self.closeReason
        continuation.onTermination = { _ in
            // Ignored by the handler when the call already ended.
            if let id = startedID.withLock({ $0 }) {
                channel.writeAndFlush(ClientConnectionHandler.Command.cancel(callID: id), promise: nil)
            }
        }
        channel.writeAndFlush(ClientConnectionHandler.Command.start(call)).whenFailure { _ in
            continuation.finish(throwing: Self.closedError(closeReason))
        }
        return source
    }

    /// Sends one unary call and waits for its response message or its error status.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, metadata: CallMetadata
    ) async throws(VPCEPError) -> Response {
        let (headerBytes, requestBytes) = try Self.encode(method.path, request, metadata)

        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let startedID = Mutex<UInt32?>(nil)
        let call = OutboundCall(
            header: headerBytes, request: requestBytes, deadline: deadline(metadata),
            sink: .unary(promise),
            onStart: { id in startedID.withLock { $0 = id } }
        )
        let channel = self.channel
        let closeReason = self.closeReason
        let response: ByteBuffer
        do {
            response = try await withTaskCancellationHandler {
                if channel.eventLoop.inEventLoop && channel.isActive {
                    // On the loop of an open channel the handler is there and takes the call now.
                    channel.writeAndFlush(ClientConnectionHandler.Command.start(call), promise: nil)
                } else {
                    // A write that never reaches the handler (the pipeline is gone) must still end the call.
                    channel.writeAndFlush(ClientConnectionHandler.Command.start(call)).whenFailure { _ in
                        promise.fail(Self.closedError(closeReason))
                    }
                }
                return try await promise.futureResult.get()
            } onCancel: {
                if let id = startedID.withLock({ $0 }) {
                    channel.writeAndFlush(ClientConnectionHandler.Command.cancel(callID: id), promise: nil)
                } else {
                    promise.fail(VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled by the caller"))
                }
            }
        } catch var error as VPCEPError {
            if error.requestID.isEmpty { error.requestID = metadata.requestID }
            throw error
        } catch {
            throw VPCEPError(code: .unknown, reason: .unknown, message: "\(error)", requestID: metadata.requestID)
        }
        do {
            return try response.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try Response(serializedBytes: bytes)
            }
        } catch {
            throw VPCEPError(code: .internalError, reason: .malformedResponse,
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
