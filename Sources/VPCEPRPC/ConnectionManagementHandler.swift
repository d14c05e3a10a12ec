import Logging
import NIOCore
import VPCEPTLS
import VPCEPWire

/// Connection liveness, for the server and the client alike: the TLS handshake timeout, the idle
/// timeout, keepalive PINGs, graceful drain with its grace period, and closing after a GOAWAY
/// (docs/PROTOCOL.md §7, §8.1, §8.3). It sits between the TLS handler and the call handler, which
/// tells it about its calls with `CallEvent`s (outbound user events) and carries out the
/// `Command`s it gets back (inbound user events): what a GOAWAY says and which calls it ends is
/// the call handler's business, when it happens is this one's.
///
/// The rules live in `StateMachine`; this class keeps its one timer on the event loop's clock,
/// which tests move with an embedded event loop's `advanceTime`.
final class ConnectionManagementHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the call handler above reports.
    enum CallEvent: Sendable {
        case callOpened
        case callClosed
        /// Its reads are held or the peer is not taking what it writes: probing is suspended.
        case backpressure(Bool)
        /// It has sent a final GOAWAY (a protocol violation): close after flushing.
        case closeAfterFlush
    }

    /// What the call handler above is told to do.
    enum Command: Sendable {
        /// Take no new calls and send GOAWAY with this status, for a graceful shutdown (`draining`:
        /// open calls may finish) or because the connection is closed now for this reason (idle).
        case goAway(VPCEPError, draining: Bool)
        /// The grace period is over: end every call still open with `SHUTDOWN_GRACE_EXPIRED`.
        case graceExpired
        /// The connection closes now: write what is buffered, start nothing new.
        case closing
    }

    private var machine: StateMachine
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var started = false
    /// Server only: its counters and handshake admission.
    private let statistics: ServerStatistics?
    private let onHandshakeCompleted: (@Sendable () -> Void)?
    private let serverLogger: Logger?

    /// `statistics`, `onHandshakeCompleted` and `logger` are the server's; the client passes none.
    init(configuration: StateMachine.Configuration, statistics: ServerStatistics? = nil,
         onHandshakeCompleted: (@Sendable () -> Void)? = nil, logger: Logger? = nil) {
        self.machine = StateMachine(configuration: configuration, now: .uptimeNanoseconds(0))
        self.statistics = statistics
        self.onHandshakeCompleted = onHandshakeCompleted
        self.serverLogger = logger
    }

    /// How long a connection the server has finished with keeps reading (and discarding) what the
    /// peer still sends, waiting for it to close.
    static let closeLinger: TimeAmount = .seconds(2)

    // MARK: Events

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { connectionStarted(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionStarted(context: context)
        context.fireChannelActive()
    }

    private func connectionStarted(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        machine.connectionStarted(now: context.eventLoop.now)
        armTimer(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        machine.bytesReceived(now: context.eventLoop.now)
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            machine.handshakeCompleted()
            onHandshakeCompleted?()
            if let statistics {
                statistics.recordHandshake(resumed: completed.resumed)
                RPCMetrics.recordHandshake(result: "ok")
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if statistics != nil, !machine.handshakeDone, let tls = error as? TLSError {
            RPCMetrics.recordHandshake(result: "\(tls.code)")
        }
        context.fireErrorCaught(error)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        let now = context.eventLoop.now
        switch event {
        case let event as CallEvent:
            switch event {
            case .callOpened:
                machine.callOpened(now: now)
                // The client's keepalive starts with its first call; the server's timer always runs.
                if timer == nil { armTimer(context: context) }
            case .callClosed:
                perform(machine.callClosed(now: now), context: context)
            case .backpressure(let held):
                machine.backpressureChanged(held)
            case .closeAfterFlush:
                if machine.closeRequested() { closeAfterFlush(context: context) }
            }
            promise?.succeed()
        case let shutdown as GracefulShutdown:
            switch machine.beginGracefulShutdown(now: now, gracePeriod: shutdown.gracePeriod) {
            case .goAway:
                context.fireUserInboundEventTriggered(Command.goAway(shutdown.status, draining: true))
                armTimer(context: context)
            case .goAwayAndClose:
                context.fireUserInboundEventTriggered(Command.goAway(shutdown.status, draining: true))
                closeAfterFlush(context: context)
            default:
                break
            }
            promise?.succeed()
        default:
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        _ = machine.closeRequested()
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    // MARK: Timer

    /// Keeps the one timer at the state machine's next deadline. Activity moves deadlines later
    /// without moving the timer: it fires early, finds nothing due, and is armed again.
    private func armTimer(context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        guard let due = machine.nextDeadline(now: now) else {
            timer?.cancel()
            timer = nil
            return
        }
        if timer != nil, let timerDeadline, timerDeadline <= due { return }
        timer?.cancel()
        timerDeadline = due
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: max(due - now, .milliseconds(10))) {
            let (handler, context) = bound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        guard context.channel.isActive else { return }
        perform(machine.timerFired(now: context.eventLoop.now), context: context)
        armTimer(context: context)
    }

    private func perform(_ action: StateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none, .goAway, .goAwayAndClose:
            break
        case .sendPing:
            var buffer = context.channel.allocator.buffer(capacity: FrameHeader.size + 8)
            buffer.writeKeepalivePing(at: context.eventLoop.now)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .handshakeTimedOut:
            logger(context)?.info("connection closed: TLS handshake timed out")
            statistics?.recordHandshakeTimeout()
            if statistics != nil { RPCMetrics.recordHandshake(result: "timeout") }
            context.close(promise: nil)
        case .keepaliveTimedOut:
            statistics?.recordKeepaliveTimeout()
            let seconds = Double(machine.configuration.keepaliveTimeout.nanoseconds) / 1e9
            // The call handler above fails its calls with this and logs it.
            context.fireErrorCaught(VPCEPError(code: .unavailable, reason: .keepaliveTimeout,
                                               message: "no answer to a keepalive PING within \(seconds) s"))
            context.close(promise: nil)
        case .idleTimedOut:
            statistics?.recordIdleClose()
            let milliseconds = (machine.configuration.idleTimeout ?? .zero).nanoseconds / 1_000_000
            context.fireUserInboundEventTriggered(Command.goAway(
                VPCEPError(code: .unavailable, reason: .idleTimeout, message: "no calls for \(milliseconds) ms"),
                draining: false))
            closeAfterFlush(context: context)
        case .graceExpired:
            context.fireUserInboundEventTriggered(Command.graceExpired)
            closeAfterFlush(context: context)
        case .close:
            closeAfterFlush(context: context)
        }
    }

    // MARK: Closing

    /// Has the call handler send what it buffered, then closes our side only (TLS close_notify,
    /// TCP FIN) and keeps reading until the peer closes or `closeLinger` passes (§7). Closing
    /// outright while the peer may still be sending would make the kernel answer with a reset,
    /// which can destroy the GOAWAY before the peer has read it.
    private func closeAfterFlush(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireUserInboundEventTriggered(Command.closing)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        halfClosed.futureResult.whenFailure { _ in bound.value.close(promise: nil) }
        context.close(mode: .output, promise: halfClosed)
        let linger = context.eventLoop.scheduleTask(in: Self.closeLinger) { bound.value.close(promise: nil) }
        context.channel.closeFuture.whenComplete { _ in linger.cancel() }
    }

    private func logger(_ context: ChannelHandlerContext) -> Logger? {
        guard var logger = serverLogger else { return nil }
        if let address = context.channel.remoteAddress { logger[metadataKey: "peer_address"] = "\(address)" }
        return logger
    }
}

@available(*, unavailable)
extension ConnectionManagementHandler: Sendable {}

/// Asks a connection to drain: GOAWAY now, close when its calls are done or the grace period ends.
struct GracefulShutdown: Sendable {
    var gracePeriod: TimeAmount
    var status = VPCEPError(code: .unavailable, reason: .serverShuttingDown,
                            message: "the server is shutting down; retry on a new connection")
}
