import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The plain-HTTP admin listener, meant for localhost: `/metrics` in Prometheus text format,
/// `/healthz` (the process answers) and `/readyz` (it should get traffic).
public final class AdminServer: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let readiness: Readiness
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)

    public init(registry: PrometheusCollectorRegistry, readiness: Readiness, group: any EventLoopGroup) {
        self.registry = registry
        self.readiness = readiness
        self.group = group
    }

    /// Binds and starts answering; returns the bound address.
    public func start(host: String, port: Int) async throws -> SocketAddress {
        let routes = AdminRoutes(registry: registry, readiness: readiness)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(routes: routes))
                }
            }
            .bind(host: host, port: port)
            .get()
        self.channel.withLock { $0 = channel }
        guard let address = channel.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    public func stop() async {
        let channel = self.channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }
}

/// Whether the server should receive traffic, and why not when it should not: the lifecycle's
/// state (starting, shutting down) and then each dependency's own check (the store's health).
public final class Readiness: Sendable {
    private let state = Mutex<String?>("starting")
    private let checks = Mutex<[@Sendable () -> String?]>([])

    public init() {}

    /// nil when ready; otherwise the reason, e.g. "draining".
    public var notReadyReason: String? {
        if let reason = state.withLock({ $0 }) { return reason }
        for check in checks.withLock({ $0 }) {
            if let reason = check() { return reason }
        }
        return nil
    }

    /// Adds a check asked at every probe: it returns why the server is not ready, or nil.
    public func addCheck(_ check: @escaping @Sendable () -> String?) {
        checks.withLock { $0.append(check) }
    }

    public func markReady() { state.withLock { $0 = nil } }

    public func markNotReady(_ reason: String) { state.withLock { $0 = reason } }
}

/// What each admin path answers.
struct AdminRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let readiness: Readiness

    struct Response {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }

    func respond(method: HTTPMethod, path: String) -> Response {
        let path = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard method == .GET || method == .HEAD else {
            return text(.methodNotAllowed, "only GET is supported\n")
        }
        switch path {
        case "/metrics":
            return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                            body: registry.emitToBuffer())
        case "/healthz":
            return text(.ok, "ok\n")
        case "/readyz":
            if let reason = readiness.notReadyReason { return text(.serviceUnavailable, "not ready: \(reason)\n") }
            return text(.ok, "ready\n")
        default:
            return text(.notFound, "not found; try /metrics, /healthz or /readyz\n")
        }
    }

    private func text(_ status: HTTPResponseStatus, _ body: String) -> Response {
        Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(body.utf8))
    }
}

final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: AdminRoutes
    private var request: HTTPRequestHead?

    init(routes: AdminRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let response = routes.respond(method: head.method, path: head.uri)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: "\(response.body.count)")
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
                          promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                              promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
