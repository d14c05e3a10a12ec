import Logging
import NIOCore
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// Serves the calls of one connection: sits above the TLS handler, cuts frames from the plaintext,
/// runs each call as a task, and writes the outcomes back in whatever order they finish.
final class ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    private struct ActiveCall {
        var task: Task<Void, Never>?
        var deadlineTimer: Scheduled<Void>?
        let method: String
        let region: String
        let requestID: String
        let started: NIODeadline
    }

    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private var logger: Logger
    private var decoder: FrameDecoder
    private var peer: PeerIdentity?
    private var handshakeCompleted = false
    private var handshakeTimer: Scheduled<Void>?
    private var calls: [UInt32: ActiveCall] = [:]
    private var lastCallID: UInt32 = 0
    private var outbound: ByteBuffer?
    private var flushPending = false
    private var closing = false

    init(router: RPCRouter, configuration: RPCServerConfiguration, logger: Logger) {
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.decoder = FrameDecoder(maxFrameSize: configuration.maxFrameSize)
    }

    // MARK: Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if let remote = context.channel.remoteAddress { logger[metadataKey: "peer_address"] = "\(remote)" }
        if context.channel.isActive { startHandshakeTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startHandshakeTimer(context: context)
        context.fireChannelActive()
    }

    private func startHandshakeTimer(context: ChannelHandlerContext) {
        guard handshakeTimer == nil, !handshakeCompleted else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: configuration.handshakeTimeout) {
            let (handler, context) = bound.value
            guard !handler.handshakeCompleted else { return }
            handler.logger.info("connection closed: TLS handshake timed out")
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            handshakeCompleted = true
            handshakeTimer?.cancel()
            peer = completed.peer.flatMap { PeerIdentity(uriSANs: $0.uriSANs) }
            if let peer {
                logger[metadataKey: "peer"] = "\(peer)"
            } else {
                logger.info("client certificate carries no vpcep:// identity; its calls will be refused",
                            metadata: ["subject": "\(completed.peer?.subject ?? "")"])
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("connection closed on error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        for (_, call) in calls {
            call.deadlineTimer?.cancel()
            call.task?.cancel()
        }
        calls.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        decoder.append(unwrapInboundIn(data))
        do {
            while let frame = try decoder.next() {
                handle(frame, context: context)
                if closing { return }
            }
        } catch {
            let status: VPCEPError
            if error.code == .frameTooLarge {
                status = VPCEPError(code: .resourceExhausted, reason: "FRAME_TOO_LARGE", message: error.message)
            } else {
                status = VPCEPError(code: .invalidArgument, reason: "PROTOCOL_VIOLATION", message: error.message)
            }
            goAwayAndClose(status, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        switch frame.type {
        case .call:
            startCall(frame, context: context)
        case .cancel:
            cancelCall(frame.callID)
        case .ping:
            guard !frame.flags.contains(.ack) else { return }
            enqueue(context: context) { $0.writeFrame(type: .ping, flags: .ack, callID: 0, payload: frame.payload) }
        default:
            goAwayAndClose(VPCEPError(code: .invalidArgument, reason: "PROTOCOL_VIOLATION",
                                      message: "a client may not send \(frame.type) frames"), context: context)
        }
    }

    private func startCall(_ frame: Frame, context: ChannelHandlerContext) {
        let callID = frame.callID
        guard callID > lastCallID else {
            goAwayAndClose(VPCEPError(code: .invalidArgument, reason: "PROTOCOL_VIOLATION",
                                      message: "call id \(callID) is not above the last call id \(lastCallID)"),
                           context: context)
            return
        }
        lastCallID = callID

        let payload: CallFramePayload
        let header: CallHeader
        do {
            payload = try CallFramePayload(parsing: frame.payload, callID: callID)
            header = try payload.header.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try CallHeader(serializedBytes: bytes)
            }
        } catch {
            refuse(callID, VPCEPError(code: .invalidArgument, reason: "MALFORMED_CALL_HEADER",
                                      message: "the call header could not be read: \(error)"), context: context)
            return
        }
        let requestID = header.requestId.isEmpty ? "srv-\(callID)" : String(header.requestId.prefix(128))

        guard let peer else {
            refuse(callID, VPCEPError(code: .unauthenticated, reason: "CERTIFICATE_IDENTITY_MISSING",
                                      message: "the client certificate has no vpcep://tenant/<id> or vpcep://operator/<name> URI SAN",
                                      requestID: requestID), context: context)
            return
        }
        guard calls.count < configuration.maxConcurrentCallsPerConnection else {
            refuse(callID, VPCEPError(code: .resourceExhausted, reason: "TOO_MANY_CONCURRENT_CALLS",
                                      message: "more than \(configuration.maxConcurrentCallsPerConnection) calls in flight on one connection",
                                      retryAfter: .milliseconds(100), requestID: requestID), context: context)
            return
        }
        guard let route = router.route(for: header.method) else {
            refuse(callID, VPCEPError(code: .unimplemented, reason: "METHOD_NOT_FOUND",
                                      message: "no method \(header.method.prefix(200))", requestID: requestID),
                   context: context)
            return
        }

        var callLogger = logger
        callLogger[metadataKey: "request_id"] = "\(requestID)"
        let now = NIODeadline.now()
        let deadline: ContinuousClock.Instant? = header.timeoutMs == 0
            ? nil : .now.advanced(by: .milliseconds(Int64(clamping: header.timeoutMs)))
        let callContext = ServerCallContext(
            peer: peer, region: header.region, requestID: requestID, idempotencyKey: header.idempotencyKey,
            deadline: deadline, logger: callLogger
        )
        calls[callID] = ActiveCall(method: header.method, region: header.region, requestID: requestID, started: now)

        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if header.timeoutMs > 0 {
            calls[callID]?.deadlineTimer = context.eventLoop.scheduleTask(
                in: .milliseconds(Int64(clamping: header.timeoutMs))
            ) {
                let (handler, context) = bound.value
                handler.expire(callID, context: context)
            }
        }
        let message = payload.message
        let eventLoop = context.eventLoop
        calls[callID]?.task = Task {
            let outcome = await route.handle(message, callContext)
            eventLoop.execute {
                let (handler, context) = bound.value
                handler.finish(callID, outcome, context: context)
            }
        }
    }

    // MARK: Ending calls

    private func finish(_ callID: UInt32, _ outcome: Result<[UInt8], VPCEPError>, context: ChannelHandlerContext) {
        guard let call = calls.removeValue(forKey: callID) else { return }
        call.deadlineTimer?.cancel()
        switch outcome {
        case .success(let bytes):
            enqueue(context: context) { buffer in
                buffer.writeFrame(type: .message, flags: .endOK, callID: callID) { $0.writeBytes(bytes) }
            }
            log(call, status: .ok, reason: "")
        case .failure(let error):
            writeStatus(error, callID: callID, context: context)
            log(call, status: error.code, reason: error.reason)
        }
    }

    private func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let call = calls.removeValue(forKey: callID) else { return }
        call.task?.cancel()
        let error = VPCEPError(code: .deadlineExceeded, reason: "DEADLINE_EXCEEDED",
                               message: "the call did not finish before its deadline", requestID: call.requestID)
        writeStatus(error, callID: callID, context: context)
        log(call, status: error.code, reason: error.reason)
    }

    private func cancelCall(_ callID: UInt32) {
        guard let call = calls.removeValue(forKey: callID) else { return }
        call.deadlineTimer?.cancel()
        call.task?.cancel()
        log(call, status: .cancelled, reason: "CANCELLED")
    }

    private func refuse(_ callID: UInt32, _ error: VPCEPError, context: ChannelHandlerContext) {
        writeStatus(error, callID: callID, context: context)
        logger.info("call refused", metadata: [
            "call_id": "\(callID)", "status": "\(error.code.name)", "reason": "\(error.reason)",
        ])
    }

    private func writeStatus(_ error: VPCEPError, callID: UInt32, context: ChannelHandlerContext) {
        let bytes = (try? error.status.serializedBytes()) ?? []
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .status, callID: callID) { $0.writeBytes(bytes) }
        }
    }

    private func goAwayAndClose(_ error: VPCEPError, context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        logger.info("connection closed by the server", metadata: ["reason": "\(error.reason)", "detail": "\(error.message)"])
        let bytes = (try? error.status.serializedBytes()) ?? []
        let lastCallID = lastCallID
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .goAway, callID: 0) {
                $0.writeInteger(lastCallID)
                $0.writeBytes(bytes)
            }
        }
        flushIfNeeded(context: context)
        context.close(promise: nil)
    }

    private func log(_ call: ActiveCall, status: StatusCode, reason: String) {
        let micros = (NIODeadline.now() - call.started).nanoseconds / 1000
        var metadata: Logger.Metadata = [
            "method": "\(call.method)", "region": "\(call.region)", "status": "\(status.name)",
            "latency_us": "\(micros)", "request_id": "\(call.requestID)",
        ]
        if !reason.isEmpty { metadata["reason"] = "\(reason)" }
        logger.info("call", metadata: metadata)
    }

    // MARK: Writing

    /// Appends to the outbound buffer; everything that becomes ready in one event-loop tick goes
    /// out as one write (one TLS record, one syscall).
    private func enqueue(context: ChannelHandlerContext, _ write: (inout ByteBuffer) -> Void) {
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 512) }
        write(&outbound!)
        guard !flushPending else { return }
        flushPending = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.flushIfNeeded(context: context)
        }
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        flushPending = false
        guard let buffer = outbound, buffer.readableBytes > 0 else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}
