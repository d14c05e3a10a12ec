import NIOCore
import VPCEPProto

/// Maps method paths ("/vpcep.v1.Inventory/CreateVpc") to handlers. Built once at start-up, then
/// read concurrently by every connection.
public struct RPCRouter: Sendable {
    public typealias UnaryHandler<Request: ProtoMessage, Response: ProtoMessage> =
        @Sendable (Request, ServerCallContext) async throws -> Response

    private var routes: [String: Route] = [:]

    public init() {}

    /// Registers the handler of a unary method; a second registration of the same path replaces
    /// the first.
    public mutating func register<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, handler: @escaping UnaryHandler<Request, Response>
    ) {
        precondition(method.kind == .unary, "\(method.path) is not unary")
        routes[method.path] = Route(path: method.path) { requestBytes, context in
            let request: Request
            do {
                request = try requestBytes.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                    try Request(serializedBytes: bytes)
                }
            } catch {
                return .failure(VPCEPError(code: .invalidArgument, reason: "MALFORMED_REQUEST",
                                           message: "the request is not a valid \(Request.protoMessageName): \(error)",
                                           requestID: context.requestID))
            }
            do {
                let response = try await handler(request, context)
                try Task.checkCancellation()
                return .success(try response.serializedBytes())
            } catch let error as any VPCEPErrorConvertible {
                var status = error.vpcepError
                status.requestID = context.requestID
                return .failure(status)
            } catch is CancellationError {
                return .failure(VPCEPError(code: .cancelled, reason: "CANCELLED", message: "the call was cancelled",
                                           requestID: context.requestID))
            } catch {
                context.logger.error("handler failed", metadata: ["error": "\(String(reflecting: error))"])
                return .failure(.internalError(context.requestID))
            }
        }
    }

    public var paths: [String] { routes.keys.sorted() }

    func route(for path: String) -> Route? { routes[path] }
}

/// One registered method, with request decoding and response encoding folded in so that the
/// connection handler deals in bytes only.
struct Route: Sendable {
    let path: String
    let handle: @Sendable (ByteBuffer, ServerCallContext) async -> Result<[UInt8], VPCEPError>
}
