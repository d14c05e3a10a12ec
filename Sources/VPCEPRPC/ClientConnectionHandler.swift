import NIOCore
import Synchronization
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// A call handed to the client connection: the encoded call header and request, and where the
/// outcome goes. Written into the pipeline as `ClientConnectionHandler.Command.start`; the handler
/// gives it a call id.
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
    /// When the client stops waiting (docs/PROTOCOL.md §4.5), on the connection's event loop's
    /// clock: computed once, when the call is made, and armed as is; nil: never.
    var deadline: NIODeadline?
    var sink: Sink
    /// Receives the call id once assigned, so the caller can cancel it.
    var onStart: @Sendable (UInt32) -> Void

    func fail(_ error: VPCEPError) {
        sink.fail(error)
    }
}

extension OutboundCall.Sink {
    func fail(_ error: VPCEPError) {
        switch self {
        case .unary(let promise): promise.fail(error)
        case .stream(let deliver, _): deliver(.end(error))
        }
    }
}

/// The client side of one connection: carries out its `StateMachine`'s protocol rules (call ids,
/// matching responses to callers, GOAWAY), applies deadlines, and fails every pending call
/// clearly when the connection goes. Keepalive is the `ConnectionManagementHandler` below's, told
/// whether calls are pending.
final class ClientConnectionHandler: ChannelDuplexHandler, CallDeadlineOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Command
    typealias OutboundOut = ByteBuffer

    /// What a caller writes into the pipeline.
    enum Command: Sendable {
        case start(OutboundCall)
        /// The caller gave up on the call (docs/PROTOCOL.md §4.6); ignored when it has ended.
        case cancel(callID: UInt32)
    }

    private var decoder: FrameDecoder
    private var machine = StateMachine<OutboundCall.Sink>()
    private var outbound: ByteBuffer?
    private let handshake: EventLoopPromise<TLSHandshakeCompleted>
    private let closeReason: CloseReason
    var deadlineTimer = EarliestDeadlineTimer()
    /// What the connection management handler was last told: calls pending, reads held.
    private var reported = (pending: false, readHeld: false)

    init(maxFrameSize: Int, handshake: EventLoopPromise<TLSHandshakeCompleted>, closeReason: CloseReason) {
        self.decoder = FrameDecoder(maxFrameSize: maxFrameSize)
        self.handshake = handshake
        self.closeReason = closeReason
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .start(let call): start(call, context: context)
        case .cancel(let callID): cancelCall(callID, context: context)
        }
        promise?.succeed()
        reportToConnectionManagement(context: context)
    }

    func flush(context: ChannelHandlerContext) {
        guard let buffer = outbound, buffer.readableBytes > 0 else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func start(_ call: OutboundCall, context: ChannelHandlerContext) {
        let kind: StateMachine<OutboundCall.Sink>.CallKind
        switch call.sink {
        case .unary: kind = .unary
        case .stream: kind = .serverStreaming
        }
        let callID: UInt32
        switch machine.startCall(call.sink, kind: kind, deadline: call.deadline) {
        case .refuse(let error):
            closeReason.record(error)
            call.fail(error)
            return
        case .send(let id):
            callID = id
        }
        // The call took the last id: the connection now refuses new calls (docs/PROTOCOL.md §4.1).
        if let refusal = machine.refusal { closeReason.record(refusal) }
        if let deadline = call.deadline { armDeadlineTimer(at: deadline, context: context) }
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
        machine.callsDue(at: now)
    }

    func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let (sink, error) = machine.deadlinePassed(callID) else { return }
        endWithCancel(callID, sink, error, context: context)
        reportToConnectionManagement(context: context)
    }

    private func cancelCall(_ callID: UInt32, context: ChannelHandlerContext) {
        guard let (sink, error) = machine.cancel(callID) else { return }
        endWithCancel(callID, sink, error, context: context)
    }

    private func endWithCancel(_ callID: UInt32, _ sink: OutboundCall.Sink, _ error: VPCEPError, context: ChannelHandlerContext) {
        streamEnded(callID, context: context)
        sink.fail(error)
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
            reportToConnectionManagement(context: context)
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
        reportToConnectionManagement(context: context)
    }

    // MARK: Keepalive

    /// The server is watched while calls are pending; our own consumer being behind suspends
    /// probing, as the answer could not be read anyway (docs/PROTOCOL.md §8.3).
    private func reportToConnectionManagement(context: ChannelHandlerContext) {
        let now = (pending: machine.hasPendingCalls, readHeld: readHeld)
        if now.pending != reported.pending {
            context.triggerUserOutboundEvent(
                now.pending ? ConnectionManagementHandler.CallEvent.callOpened : .callClosed, promise: nil)
        }
        if now.readHeld != reported.readHeld {
            context.triggerUserOutboundEvent(ConnectionManagementHandler.CallEvent.backpressure(now.readHeld), promise: nil)
        }
        reported = now
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decoder.append(unwrapInboundIn(data))
        do {
            while let frame = try decoder.next() {
                guard perform(machine.frameReceived(frame), context: context) else { return }
            }
        } catch {
            perform(machine.decodingFailed(error), context: context)
        }
        reportToConnectionManagement(context: context)
    }

    /// Carries out what a server frame means; false once the connection is closing.
    @discardableResult
    private func perform(_ action: StateMachine<OutboundCall.Sink>.FrameAction, context: ChannelHandlerContext) -> Bool {
        switch action {
        case .none:
            break
        case .deliver(let callID, let sink, let message):
            guard case .stream(let deliver, let flow) = sink else { break }
            deliver(.message(message))
            if flow.delivered() { slowStreams.insert(callID) }
        case .finish(let callID, let sink, let outcome):
            streamEnded(callID, context: context)
            switch (sink, outcome) {
            case (.unary(let promise), .response(let response)):
                promise.succeed(response)
            case (.stream(let deliver, _), .streamEnded(let lastMessage)):
                if let lastMessage { deliver(.message(lastMessage)) }
                deliver(.end(nil))
            case (_, .failed(let error)):
                sink.fail(error)
            case (.unary, .streamEnded), (.stream, .response):
                // The machine matches outcomes to the kind each call started with.
                assertionFailure("\(outcome) for a call of another kind")
            }
        case .pong(let payload):
            append(context: context) { $0.writeFrame(type: .ping, flags: .ack, callID: 0, payload: payload) }
            flush(context: context)
        case .goAway(let calls, let error):
            // No new calls here from now on: the connection's users open another one (§7).
            if let refusal = machine.refusal { closeReason.record(refusal) }
            for (callID, sink) in calls {
                streamEnded(callID, context: context)
                sink.fail(error)
            }
        case .closeConnection(let calls, let error):
            fail(calls, with: error)
            context.close(promise: nil)
            return false
        }
        return true
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted { handshake.succeed(completed) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: VPCEPError
        if let error = error as? VPCEPError {
            // From the connection management handler: the server did not answer a keepalive PING.
            failure = error
        } else if let tls = error as? TLSError, tls.code == .certificateRejected {
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
        deadlineTimer.cancel()
        let (calls, error) = machine.closed()
        handshake.fail(error)
        fail(calls, with: error)
        context.fireChannelInactive()
    }

    /// Ends the connection's calls: it is going away with `error`.
    private func failAll(_ error: VPCEPError) {
        fail(machine.fail(error), with: error)
    }

    private func fail(_ calls: [(callID: UInt32, call: OutboundCall.Sink)], with error: VPCEPError) {
        closeReason.record(machine.refusal ?? error)
        slowStreams.removeAll()
        for (_, sink) in calls {
            sink.fail(error)
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
