import NIOCore
import Synchronization
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// A call handed to the client connection: the encoded call header and request, and where the
/// outcome goes. Written into the pipeline; the handler gives it a call id.
struct OutboundCall: Sendable {
    enum Sink: Sendable {
        /// The one response message, or the error status.
        case unary(EventLoopPromise<ByteBuffer>)
        /// Each message as `.message`, then `.end(nil)` for OK or `.end(error)`; `flow` counts the
        /// messages the consumer has not taken yet.
        case stream(@Sendable (StreamEvent) -> Void, flow: StreamFlowControl)
    }

    enum StreamEvent: Sendable {
        case message(ByteBuffer)
        case end(VPCEPError?)
    }

    var header: [UInt8]
    var request: [UInt8]
    var timeout: TimeAmount?
    var sink: Sink
    /// Receives the call id once assigned, so the caller can cancel it.
    var onStart: @Sendable (UInt32) -> Void

    func fail(_ error: VPCEPError) {
        switch sink {
        case .unary(let promise): promise.fail(error)
        case .stream(let deliver, _): deliver(.end(error))
        }
    }
}

/// Cancels a call the caller gave up on.
struct CancelCall: Sendable {
    var callID: UInt32
}

/// The client side of one connection: assigns increasing call ids, matches responses to callers,
/// applies deadlines, and fails every pending call clearly when the connection goes.
final class ClientConnectionHandler: ChannelDuplexHandler, CallDeadlineOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = ByteBuffer

    private struct PendingCall {
        var sink: OutboundCall.Sink
        var deadline: NIODeadline?

        func fail(_ error: VPCEPError) {
            switch sink {
            case .unary(let promise): promise.fail(error)
            case .stream(let deliver, _): deliver(.end(error))
            }
        }
    }

    private var decoder: FrameDecoder
    private var nextCallID: UInt32 = 1
    private var pending: [UInt32: PendingCall] = [:]
    private var outbound: ByteBuffer?
    /// Set when the connection cannot take calls any more, with the error new calls get.
    private var unusable: VPCEPError? {
        didSet { if let unusable { closeReason.record(unusable) } }
    }
    private let handshake: EventLoopPromise<TLSHandshakeCompleted>
    private let closeReason: CloseReason
    /// Watches the server while calls are pending; nil: never.
    private var keepalive: Keepalive?
    private var keepaliveTimer: Scheduled<Void>?
    var deadlineTimer = EarliestDeadlineTimer()

    init(maxFrameSize: Int, handshake: EventLoopPromise<TLSHandshakeCompleted>, closeReason: CloseReason,
         keepaliveInterval: TimeAmount? = nil, keepaliveTimeout: TimeAmount = .seconds(20)) {
        self.keepalive = keepaliveInterval.map {
            Keepalive(interval: $0, timeout: keepaliveTimeout, now: .uptimeNanoseconds(0))
        }
        self.decoder = FrameDecoder(maxFrameSize: maxFrameSize)
        self.handshake = handshake
        self.closeReason = closeReason
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let item = unwrapOutboundIn(data)
        if let call = item as? OutboundCall {
            start(call, context: context)
        } else if let cancel = item as? CancelCall {
            cancelCall(cancel.callID, context: context)
        }
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {
        guard let buffer = outbound, buffer.readableBytes > 0 else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func start(_ call: OutboundCall, context: ChannelHandlerContext) {
        if let unusable {
            call.fail(unusable)
            return
        }
        guard nextCallID < UInt32.max else {
            // Call ids are spent: this connection cannot take more; a new one starts from 1.
            unusable = VPCEPError(code: .unavailable, reason: .callIDsExhausted,
                                  message: "this connection has used every call id; retry on a new connection")
            call.fail(unusable!)
            return
        }
        let callID = nextCallID
        nextCallID += 1
        var entry = PendingCall(sink: call.sink)
        if let timeout = call.timeout {
            let deadline = context.eventLoop.now + timeout
            entry.deadline = deadline
            pending[callID] = entry
            armDeadlineTimer(at: deadline, context: context)
        } else {
            pending[callID] = entry
        }
        startKeepalive(context: context)
        if case .stream(_, let flow) = call.sink {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            flow.setOnDrained { [weak flow] in
                guard let drained = flow else { return }
                eventLoop.execute {
                    let flow = drained
                    let (handler, context) = bound.value
                    handler.streamDrained(callID, flow: flow, context: context)
                }
            }
        }
        call.onStart(callID)
        append(context: context) { buffer in
            buffer.writeFrame(type: .call, callID: callID) { payload in
                payload.writeInteger(UInt32(call.header.count))
                payload.writeBytes(call.header)
                payload.writeBytes(call.request)
            }
        }
    }

    func callsDue(at now: NIODeadline) -> (due: [UInt32], next: NIODeadline?) {
        EarliestDeadlineTimer.due(pending.lazy.map { ($0.key, $0.value.deadline) }, now: now)
    }

    func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let call = pending.removeValue(forKey: callID) else { return }
        streamEnded(callID, context: context)
        call.fail(VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                             message: "no answer from the server before the deadline"))
        append(context: context) { $0.writeFrame(type: .cancel, callID: callID, payload: ByteBuffer()) }
        flush(context: context)
    }

    private func cancelCall(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let call = pending.removeValue(forKey: callID) else { return }
        streamEnded(callID, context: context)
        call.fail(VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled by the caller"))
        append(context: context) { $0.writeFrame(type: .cancel, callID: callID, payload: ByteBuffer()) }
        flush(context: context)
    }

    private func append(context: ChannelHandlerContext, _ write: (inout ByteBuffer) -> Void) {
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 256) }
        write(&outbound!)
    }

    // MARK: Stream flow control

    /// Streams whose consumers are more than `StreamFlowControl.highWatermark` messages behind.
    private var slowStreams: Set<UInt32> = []
    /// A `read` held back while a stream consumer catches up.
    private var readHeld = false

    func read(context: ChannelHandlerContext) {
        if slowStreams.isEmpty {
            context.read()
        } else {
            readHeld = true
        }
    }

    private func streamEnded(_ callID: UInt32, context: ChannelHandlerContext) {
        guard slowStreams.remove(callID) != nil else { return }
        resumeReadingIfPossible(context: context)
    }

    /// A consumer caught up (called on the event loop).
    private func streamDrained(_ callID: UInt32, flow: StreamFlowControl, context: ChannelHandlerContext) {
        guard !flow.isOverHighWatermark else { return }
        streamEnded(callID, context: context)
    }

    private func resumeReadingIfPossible(context: ChannelHandlerContext) {
        guard readHeld, slowStreams.isEmpty else { return }
        readHeld = false
        context.read()
    }

    // MARK: Keepalive

    /// Watches the server while calls are pending: PING after the keepalive interval of silence,
    /// and give up on the connection when nothing arrives within the keepalive timeout after it.
    private func startKeepalive(context: ChannelHandlerContext) {
        guard keepalive != nil, keepaliveTimer == nil else { return }
        keepalive?.reset(at: context.eventLoop.now)
        armKeepalive(context: context)
    }

    private func armKeepalive(context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        // Our own consumer being behind suspends probing: the answer could not be read anyway.
        guard let due = keepalive?.nextCheck(now: now, suspended: readHeld) else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        keepaliveTimer = context.eventLoop.scheduleTask(in: max(due - now, .milliseconds(10))) {
            let (handler, context) = bound.value
            handler.checkKeepalive(context: context)
        }
    }

    private func checkKeepalive(context: ChannelHandlerContext) {
        keepaliveTimer = nil
        guard context.channel.isActive, let timeout = keepalive?.timeout, !pending.isEmpty else { return }
        let now = context.eventLoop.now
        switch keepalive?.check(now: now, suspended: readHeld) {
        case .timedOut?:
            let seconds = Double(timeout.nanoseconds) / 1e9
            failAll(VPCEPError(code: .unavailable, reason: .keepaliveTimeout,
                               message: "the server did not answer a keepalive PING within \(seconds) s"))
            context.close(promise: nil)
            return
        case .sendPing?:
            append(context: context) { $0.writeKeepalivePing(at: now) }
            flush(context: context)
        case .wait?, nil:
            break
        }
        armKeepalive(context: context)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        keepalive?.reset(at: context.eventLoop.now)
        decoder.append(unwrapInboundIn(data))
        guard !violated else { return }
        do {
            while let frame = try decoder.next() {
                if let violation = handle(frame, context: context) {
                    protocolViolation(violation, context: context)
                    return
                }
            }
        } catch {
            protocolViolation("the server sent a malformed frame: \(error.message)", context: context)
        }
    }

    private var violated = false

    private func protocolViolation(_ message: String, context: ChannelHandlerContext) {
        violated = true
        failAll(VPCEPError(code: .internalError, reason: .protocolViolation, message: message))
        context.close(promise: nil)
    }

    /// Handles one frame; returns why the frame breaks the protocol, if it does.
    private func handle(_ frame: Frame, context: ChannelHandlerContext) -> String? {
        switch frame.type {
        case .message, .status:
            guard frame.callID != 0, frame.callID < nextCallID else {
                return "\(frame.type) for call \(frame.callID), which was never made"
            }
            // A call that ended here already (deadline, cancel) may still be answered: ignored.
            guard let call = pending[frame.callID] else { return nil }
            if frame.type == .message {
                switch call.sink {
                case .unary(let promise):
                    // A unary call's one message always carries END_OK.
                    pending[frame.callID] = nil
                    promise.succeed(frame.payload)
                case .stream(let deliver, let flow):
                    deliver(.message(frame.payload))
                    if frame.flags.contains(.endOK) {
                        streamEnded(frame.callID, context: context)
                        pending[frame.callID] = nil
                        deliver(.end(nil))
                    } else if flow.delivered() {
                        slowStreams.insert(frame.callID)
                    }
                }
            } else {
                pending[frame.callID] = nil
                let failure = Self.decodeStatus(frame.payload)
                switch call.sink {
                case .unary(let promise):
                    promise.fail(failure ?? VPCEPError(code: .internalError, reason: .missingResponse,
                                                       message: "the server ended a unary call with OK but no response"))
                case .stream(let deliver, _):
                    streamEnded(frame.callID, context: context)
                    deliver(.end(failure))
                }
            }
        case .ping:
            guard frame.callID == 0, frame.payload.readableBytes == 8 else {
                return "a PING must have call id 0 and an 8-byte payload"
            }
            guard !frame.flags.contains(.ack) else { return nil }
            append(context: context) { $0.writeFrame(type: .ping, flags: .ack, callID: 0, payload: frame.payload) }
            flush(context: context)
        case .goAway:
            guard frame.callID == 0 else { return "GOAWAY on call id \(frame.callID)" }
            goAway(frame.payload, context: context)
        default:
            return "a server may not send \(frame.type) frames"
        }
        return nil
    }

    private func goAway(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard let goAway = try? GoAwayPayload(parsing: payload) else { return }
        // An OK or UNKNOWN status says nothing more than that the server is going away.
        let error = Self.decodeStatus(goAway.status).flatMap { $0.code == .unknown ? nil : $0 }
            ?? VPCEPError(code: .unavailable, reason: .serverGoingAway, message: "the server is closing this connection")
        unusable = error
        // Calls the server never accepted can safely go elsewhere: make them retryable.
        for (callID, call) in pending where callID > goAway.lastCallID {
            pending[callID] = nil
            streamEnded(callID, context: context)
            call.fail(VPCEPError(code: .unavailable, reason: .serverGoingAway,
                                 message: "the server stopped accepting calls on this connection: \(error.message)"))
        }
    }

    /// The failure a STATUS payload reports; nil for OK.
    private static func decodeStatus(_ payload: ByteBuffer) -> VPCEPError? {
        do {
            let status = try payload.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try Status(serializedBytes: bytes)
            }
            return VPCEPError(status)
        } catch {
            return VPCEPError(code: .internalError, reason: .malformedStatus, message: "the server sent an unreadable status")
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted { handshake.succeed(completed) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: VPCEPError
        if let tls = error as? TLSError, tls.code == .certificateRejected {
            failure = VPCEPError(code: .unauthenticated, reason: .clientCertificateRejected, message: tls.message)
        } else if let tls = error as? TLSError, tls.code == .peerCertificateInvalid {
            failure = VPCEPError(code: .unavailable, reason: .serverCertificateInvalid, message: tls.message)
        } else if let tls = error as? TLSError {
            failure = VPCEPError(code: .unavailable, reason: .tlsHandshakeFailed, message: tls.message)
        } else {
            failure = VPCEPError(code: .unavailable, reason: .connectionFailed, message: "\(error)")
        }
        handshake.fail(failure)
        failAll(failure)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
        deadlineTimer.cancel()
        let error = VPCEPError(code: .unavailable, reason: .connectionClosed, message: "the connection to the server closed")
        handshake.fail(error)
        failAll(unusable ?? error)
        context.fireChannelInactive()
    }

    private func failAll(_ error: VPCEPError) {
        if unusable == nil || unusable?.reason == .serverGoingAway { unusable = error }
        closeReason.record(error)
        let calls = pending
        pending.removeAll()
        slowStreams.removeAll()
        for (_, call) in calls {
            call.fail(error)
        }
    }
}

/// Why a connection stopped taking calls, readable from any thread: a call written after the
/// pipeline is gone fails with this rather than a bare "closed".
final class CloseReason: Sendable {
    private let reason = Mutex<VPCEPError?>(nil)

    /// Keeps the first reason: later ones are consequences of it.
    func record(_ error: VPCEPError) {
        reason.withLock { if $0 == nil { $0 = error } }
    }

    var error: VPCEPError? { reason.withLock { $0 } }
}
