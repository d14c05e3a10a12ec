import NIOCore
import Synchronization
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// A call handed to the client connection: the encoded call header and request, and where the
/// outcome goes. Written into the pipeline; the handler gives it a call id.
struct OutboundCall: Sendable {
    var header: [UInt8]
    var request: [UInt8]
    var timeout: TimeAmount?
    var promise: EventLoopPromise<ByteBuffer>
    /// Receives the call id once assigned, so the caller can cancel it.
    var onStart: @Sendable (UInt32) -> Void
}

/// Cancels a call the caller gave up on.
struct CancelCall: Sendable {
    var callID: UInt32
}

/// The client side of one connection: assigns increasing call ids, matches responses to callers,
/// applies deadlines, and fails every pending call clearly when the connection goes.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = ByteBuffer

    private struct PendingCall {
        var promise: EventLoopPromise<ByteBuffer>
        var timer: Scheduled<Void>?
    }

    private var decoder: FrameDecoder
    private var nextCallID: UInt32 = 1
    private var pending: [UInt32: PendingCall] = [:]
    private var outbound: ByteBuffer?
    /// Set when the connection cannot take calls any more, with the error new calls get.
    private var unusable: VPCEPError? {
        didSet { if let unusable { closeReason.record(unusable) } }
    }
    private let handshake: EventLoopPromise<Void>
    private let closeReason: CloseReason

    init(maxFrameSize: Int, handshake: EventLoopPromise<Void>, closeReason: CloseReason) {
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
            call.promise.fail(unusable)
            return
        }
        let callID = nextCallID
        nextCallID += 1
        var entry = PendingCall(promise: call.promise)
        if let timeout = call.timeout {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            entry.timer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = bound.value
                handler.expire(callID, context: context)
            }
        }
        pending[callID] = entry
        call.onStart(callID)
        append(context: context) { buffer in
            buffer.writeFrame(type: .call, callID: callID) { payload in
                payload.writeInteger(UInt32(call.header.count))
                payload.writeBytes(call.header)
                payload.writeBytes(call.request)
            }
        }
    }

    private func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let call = pending.removeValue(forKey: callID) else { return }
        call.promise.fail(VPCEPError(code: .deadlineExceeded, reason: "DEADLINE_EXCEEDED",
                                     message: "no answer from the server before the deadline"))
        append(context: context) { $0.writeFrame(type: .cancel, callID: callID, payload: ByteBuffer()) }
        flush(context: context)
    }

    private func cancelCall(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let call = pending.removeValue(forKey: callID) else { return }
        call.timer?.cancel()
        call.promise.fail(VPCEPError(code: .cancelled, reason: "CANCELLED", message: "the call was cancelled by the caller"))
        append(context: context) { $0.writeFrame(type: .cancel, callID: callID, payload: ByteBuffer()) }
        flush(context: context)
    }

    private func append(context: ChannelHandlerContext, _ write: (inout ByteBuffer) -> Void) {
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 256) }
        write(&outbound!)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decoder.append(unwrapInboundIn(data))
        do {
            while let frame = try decoder.next() {
                handle(frame, context: context)
            }
        } catch {
            failAll(VPCEPError(code: .internalError, reason: "PROTOCOL_VIOLATION",
                               message: "the server sent a malformed frame: \(error.message)"))
            context.close(promise: nil)
        }
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        switch frame.type {
        case .message:
            // Unary calls only for now: one MESSAGE frame carrying .endOK ends the call.
            guard let call = pending.removeValue(forKey: frame.callID) else { return }
            call.timer?.cancel()
            call.promise.succeed(frame.payload)
        case .status:
            guard let call = pending.removeValue(forKey: frame.callID) else { return }
            call.timer?.cancel()
            call.promise.fail(Self.decodeStatus(frame.payload))
        case .ping:
            guard !frame.flags.contains(.ack) else { return }
            append(context: context) { $0.writeFrame(type: .ping, flags: .ack, callID: 0, payload: frame.payload) }
            flush(context: context)
        case .goAway:
            goAway(frame.payload)
        default:
            break
        }
    }

    private func goAway(_ payload: ByteBuffer) {
        guard let goAway = try? GoAwayPayload(parsing: payload) else { return }
        var error = Self.decodeStatus(goAway.status)
        if error.code == .ok || error.code == .unknown {
            error = VPCEPError(code: .unavailable, reason: "SERVER_GOING_AWAY", message: "the server is closing this connection")
        }
        unusable = error
        // Calls the server never accepted can safely go elsewhere: make them retryable.
        for (callID, call) in pending where callID > goAway.lastCallID {
            pending[callID] = nil
            call.timer?.cancel()
            call.promise.fail(VPCEPError(code: .unavailable, reason: "SERVER_GOING_AWAY",
                                         message: "the server stopped accepting calls on this connection: \(error.message)"))
        }
    }

    private static func decodeStatus(_ payload: ByteBuffer) -> VPCEPError {
        do {
            let status = try payload.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try Status(serializedBytes: bytes)
            }
            return VPCEPError(status)
        } catch {
            return VPCEPError(code: .internalError, reason: "MALFORMED_STATUS", message: "the server sent an unreadable status")
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { handshake.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: VPCEPError
        if let tls = error as? TLSError, tls.code == .certificateRejected {
            failure = VPCEPError(code: .unauthenticated, reason: "CLIENT_CERTIFICATE_REJECTED", message: tls.message)
        } else if let tls = error as? TLSError, tls.code == .peerCertificateInvalid {
            failure = VPCEPError(code: .unavailable, reason: "SERVER_CERTIFICATE_INVALID", message: tls.message)
        } else if let tls = error as? TLSError {
            failure = VPCEPError(code: .unavailable, reason: "TLS_HANDSHAKE_FAILED", message: tls.message)
        } else {
            failure = VPCEPError(code: .unavailable, reason: "CONNECTION_FAILED", message: "\(error)")
        }
        handshake.fail(failure)
        failAll(failure)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error = VPCEPError(code: .unavailable, reason: "CONNECTION_CLOSED", message: "the connection to the server closed")
        handshake.fail(error)
        failAll(unusable ?? error)
        context.fireChannelInactive()
    }

    private func failAll(_ error: VPCEPError) {
        if unusable == nil || unusable?.reason == "SERVER_GOING_AWAY" { unusable = error }
        closeReason.record(error)
        let calls = pending
        pending.removeAll()
        for (_, call) in calls {
            call.timer?.cancel()
            call.promise.fail(error)
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
