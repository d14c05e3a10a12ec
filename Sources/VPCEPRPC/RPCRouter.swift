import Logging
import NIOCore
import VPCEPProto

/// Maps method paths ("/vpcep.v1.Inventory/CreateVpc") to handlers. Built once at start-up, then
/// read concurrently by every connection.
public struct RPCRouter: Sendable {
    public typealias UnaryHandler<Request: ProtoMessage, Response: ProtoMessage> =
        @Sendable (Request, ServerCallContext) async throws -> Response

    /// A server-streaming handler: sends any number of messages with `writer`, then returns (the
    /// stream ends with OK) or throws (it ends with that status).
    public typealias ServerStreamingHandler<Request: ProtoMessage, Response: ProtoMessage> =
        @Sendable (Request, ServerCallContext, ServerStreamWriter<Response>) async throws -> Void

    /// A server-streaming handler that hands its stream on (`registerDetachedStreaming`).
    public typealias DetachedStreamingHandler<Request: ProtoMessage, Response: ProtoMessage> =
        @Sendable (Request, ServerCallContext, DetachedServerStream<Response>) async throws -> Void

    private var routes: [String: Route] = [:]

    public init() {}

    /// Registers the handler of a unary method; a second registration of the same path replaces
    /// the first.
    public mutating func register<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, handler: @escaping UnaryHandler<Request, Response>
    ) {
        precondition(method.kind == .unary, "\(method.path) is not unary")
        routes[method.path] = Route(path: method.path) { requestBytes, context, _ in
            let request: Request
            switch Self.decode(Request.self, requestBytes, context) {
            case .success(let decoded): request = decoded
            case .failure(let error): return .failed(error)
            }
            do {
                let response = try await handler(request, context)
                try Task.checkCancellation()
                return .response(try response.serializedBytes())
            } catch {
                return .failed(Self.status(of: error, context))
            }
        }
    }

    /// Registers the handler of a server-streaming method (docs/PROTOCOL.md §4.4).
    public mutating func registerServerStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, handler: @escaping ServerStreamingHandler<Request, Response>
    ) {
        precondition(method.kind == .serverStreaming, "\(method.path) is not server streaming")
        routes[method.path] = Route(path: method.path, isStreaming: true) { requestBytes, context, sink in
            let request: Request
            switch Self.decode(Request.self, requestBytes, context) {
            case .success(let decoded): request = decoded
            case .failure(let error): return .failed(error)
            }
            do {
                try await handler(request, context, ServerStreamWriter(sink: sink))
                try Task.checkCancellation()
                return .ended
            } catch {
                return .failed(Self.status(of: error, context))
            }
        }
    }

    /// Registers a server-streaming method whose stream outlives its handler (`DetachedServerStream`):
    /// the handler sets the stream up and returns; the stream stays open until its owner finishes it
    /// or the call ends otherwise. A handler that throws ends the stream with that status.
    public mutating func registerDetachedStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, handler: @escaping DetachedStreamingHandler<Request, Response>
    ) {
        precondition(method.kind == .serverStreaming, "\(method.path) is not server streaming")
        routes[method.path] = Route(path: method.path, isStreaming: true, detaches: true) { requestBytes, context, sink in
            let request: Request
            switch Self.decode(Request.self, requestBytes, context) {
            case .success(let decoded): request = decoded
            case .failure(let error): return .failed(error)
            }
            precondition(sink.cancellation != nil, "a detached stream's sink has no cancellation")
            do {
                try await handler(request, context, DetachedServerStream(sink: sink))
                return .detached
            } catch {
                return .failed(Self.status(of: error, context))
            }
        }
    }

    private static func decode<Request: ProtoMessage>(
        _ type: Request.Type, _ bytes: ByteBuffer, _ context: ServerCallContext
    ) -> Result<Request, VPCEPError> {
        do {
            return .success(try bytes.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try Request(serializedBytes: bytes)
            })
        } catch {
            return .failure(VPCEPError(code: .invalidArgument, reason: .malformedRequest,
                                       message: "the request is not a valid \(Request.protoMessageName): \(error)",
                                       requestID: context.requestID))
        }
    }

    private static func status(of error: any Error, _ context: ServerCallContext) -> VPCEPError {
        status(of: error, requestID: context.requestID, logger: context.logger)
    }

    /// The status a handler's error ends its call with; `logger` logs an error no status describes.
    static func status(of error: any Error, requestID: String, logger: @autoclosure () -> Logger) -> VPCEPError {
        switch error {
        case let error as any VPCEPErrorConvertible:
            var status = error.vpcepError
            status.requestID = requestID
            return status
        case is CancellationError:
            return VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled", requestID: requestID)
        default:
            logger().error("handler failed", metadata: ["error": "\(String(reflecting: error))", "request_id": "\(requestID)"])
            return .internalError(requestID)
        }
    }

    public var paths: [String] { routes.keys.sorted() }

    func route(for path: String) -> Route? { routes[path] }
}

/// One registered method, with request decoding and response encoding folded in so that the
/// connection handler deals in bytes only.
struct Route: Sendable {
    let path: String
    /// A stream may live for hours (a Watch): what its task holds, it holds as long.
    var isStreaming = false
    /// The stream outlives the handler's task (`DetachedServerStream`).
    var detaches = false
    let handle: @Sendable (ByteBuffer, ServerCallContext, StreamSink) async -> CallOutcome
}

/// How a call's handler ended.
enum CallOutcome: Sendable {
    /// A unary call's response.
    case response([UInt8])
    /// A stream ended with OK.
    case ended
    case failed(VPCEPError)
    /// The stream lives on without the handler's task; its owner finishes it.
    case detached
}

/// Sends the messages of one server-streaming call.
public struct ServerStreamWriter<Message: ProtoMessage>: Sendable {
    let sink: StreamSink

    /// Queues one message. Suspends while the connection's outbound buffer is over its bound or
    /// the channel is not writable (a slow reader slows the stream down instead of growing the
    /// server's memory). Throws `CancellationError` once the call is over (cancelled by the
    /// client, past its deadline, connection closed), or the message's encoding error.
    public func send(_ message: Message) async throws {
        try Task.checkCancellation()
        let bytes = try message.serializedBytes()
        try await sink.send(bytes)
    }

    /// `send`, for a message already encoded (one encoding shared by several streams).
    public func send(serialized bytes: [UInt8]) async throws {
        try Task.checkCancellation()
        try await sink.send(bytes)
    }
}
