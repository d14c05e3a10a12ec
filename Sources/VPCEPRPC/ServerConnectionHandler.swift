import Logging
import NIOCore
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// Serves the calls of one connection: sits above the connection management handler, cuts frames
/// from the plaintext, runs each call as a task, and writes the outcomes back in whatever order
/// they finish.
///
/// The protocol rules live in `StateMachine`; this class owns the NIO side: tasks, call deadlines,
/// coalesced writes and backpressure (docs/PROTOCOL.md §8.2). When a connection is probed, drained
/// or closed is `ConnectionManagementHandler`'s business: this one reports its calls to it and
/// does what it is told (`+GoingAway`). Backpressure is in `+Backpressure`, stream messages in
/// `+Streams`; this file reads frames, admits, runs and ends calls, and writes.
final class ServerConnectionHandler: ChannelDuplexHandler, CallDeadlineOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    private let router: RPCRouter
    let configuration: RPCServerConfiguration
    let statistics: ServerStatistics
    /// The server's logger, without this connection's metadata: an idle connection keeps no
    /// rendered metadata (see `logger`).
    private let serverLogger: Logger
    private var remoteAddress: SocketAddress?
    private var decoder: FrameDecoder
    var machine: StateMachine
    private var peer: PeerIdentity?
    var calls: RunningCalls
    var waiting: WaitingCalls
    private var startingWaitingCalls = false
    /// Set while something here waits for the server-wide budget, which no event of this
    /// connection would announce: held reads, waiting calls.
    var overallBudgetRetry: Scheduled<Void>?
    var outbound: OutboundBuffer
    /// A `read` the pipeline asked for while backpressure held it back.
    var readHeld = false
    /// What the connection management handler was last told about backpressure.
    var reportedBackpressure = false
    var parkedSends = ParkedSends()
    /// Stream sends accepted since this connection last let its event loop look at its sockets,
    /// weighed by size (see `streamSendsPerYield`).
    var streamSendsSinceYield = 0
    var ioYield: Scheduled<Void>?
    var closeStarted = false
    private let runsCallsOnEventLoop: Bool
    var deadlineTimer = EarliestDeadlineTimer()
    /// Made at the first call, so that an idle connection does not pay for it.
    private var executor: EventLoopTaskExecutor?
    private var callLog = CallLog()

    /// Calls run on the connection's event loop unless `runsCallsOnEventLoop` is false, which is for
    /// NIO's testing event loops: they run submitted work only when a test drives them.
    init(router: RPCRouter, configuration: RPCServerConfiguration, statistics: ServerStatistics, logger: Logger,
         peerForTesting: PeerIdentity? = nil, runsCallsOnEventLoop: Bool = true) {
        self.runsCallsOnEventLoop = runsCallsOnEventLoop
        self.router = router
        self.configuration = configuration
        self.statistics = statistics
        self.serverLogger = logger
        self.decoder = FrameDecoder(maxFrameSize: configuration.maxFrameSize)
        self.machine = StateMachine(maxConcurrentCalls: configuration.maxConcurrentCallsPerConnection)
        self.calls = RunningCalls(statistics: statistics)
        self.waiting = WaitingCalls(statistics: statistics)
        self.outbound = OutboundBuffer(statistics: statistics)
        self.peer = peerForTesting
    }

    /// The server's logger with this connection's peer address and identity, made when something
    /// is logged: rendered metadata would otherwise be kept by every idle connection.
    var logger: Logger {
        var logger = serverLogger
        if let remoteAddress { logger[metadataKey: "peer_address"] = "\(remoteAddress)" }
        if let peer { logger[metadataKey: "peer"] = "\(peer)" }
        return logger
    }

    // MARK: Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let completed as TLSHandshakeCompleted:
            peer = completed.peer.flatMap { PeerIdentity(uriSANs: $0.uriSANs) }
            if peer == nil {
                logger.info("client certificate carries no vpcep:// identity; its calls will be refused",
                            metadata: ["subject": "\(completed.peer?.subject ?? "")"])
            }
        case let command as ConnectionManagementHandler.Command:
            switch command {
            case .goAway(let error, let draining):
                goAway(error, draining: draining, context: context)
            case .graceExpired:
                graceExpired(context: context)
            case .closing:
                closing(context: context)
            }
            return
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("connection closed on error", metadata: ["error": "\(error)"])
        // The TLS handler closes on its own failures, after its alert has had a chance to arrive.
        if error is TLSError { return }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.close()
        deadlineTimer.cancel()
        // Their tasks will find no record when they finish.
        for (_, call) in calls.removeAll() { call.cancel() }
        while waiting.popFirst() != nil {}
        overallBudgetRetry?.cancel()
        overallBudgetRetry = nil
        ioYield?.cancel()
        ioYield = nil
        parkedSends.resumeAll(failing: true) { _ in false }
        outbound.discard()
        context.fireChannelInactive()
    }

    /// Tells the connection management handler below about the calls it counts.
    func report(_ event: ConnectionManagementHandler.CallEvent, context: ChannelHandlerContext) {
        context.triggerUserOutboundEvent(event, promise: nil)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.state != .closed else { return }
        decoder.append(unwrapInboundIn(data))
        while machine.state != .closed {
            let action: StateMachine.FrameAction
            do {
                guard let frame = try decoder.next() else { break }
                action = machine.frameReceived(frame)
            } catch {
                action = machine.decodingFailed(error)
            }
            perform(action, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    private func perform(_ action: StateMachine.FrameAction, context: ChannelHandlerContext) {
        switch action {
        case .startCall(let callID, let payload):
            admitCall(callID, payload: payload, context: context)
        case .refuse(let callID, let error):
            refuse(callID, error, context: context)
        case .cancel(let callID):
            cancelCall(callID, context: context)
        case .pong(let payload):
            enqueue(context: context) { $0.writeFrame(type: .ping, flags: .ack, callID: 0, payload: payload) }
        case .pingAcknowledged, .ignore:
            break
        case .goAwayAndClose(let lastCallID, let error):
            writeGoAway(error, lastCallID: lastCallID, closing: true, context: context)
            report(.closeAfterFlush, context: context)
        }
    }

    // MARK: Admitting calls

    /// A call the state machine accepted, read here once: refused when the server is over its
    /// overall budget or its header cannot be read, run when there is room and nothing waits
    /// before it, queued otherwise. Its deadline counts from now, whether it runs or waits (§4.5).
    private func admitCall(_ callID: UInt32, payload framePayload: ByteBuffer, context: ChannelHandlerContext) {
        report(.callOpened, context: context)
        if load(context).isOverOverallBudget {
            statistics.recordOverloadRefusal()
            endRefused(callID, VPCEPError(
                code: .unavailable, reason: .serverOverloaded,
                message: "the server holds too many unsent responses; the call was not processed, retry later",
                retryAfter: .milliseconds(100)), context: context)
            return
        }
        let call: AdmittedCall
        do {
            call = try AdmittedCall(callID: callID, framePayload: framePayload, now: context.eventLoop.now)
        } catch {
            endRefused(callID, error, context: context)
            return
        }
        if waiting.isEmpty, !closeStarted, load(context).hasRoomToRun(configuration) {
            startCall(call, context: context)
            return
        }
        waiting.append(call, allocator: context.channel.allocator)
        if let deadline = call.deadline { armDeadlineTimer(at: deadline, context: context) }
        startWaitingCalls(context: context)
    }

    func startWaitingCalls(context: ChannelHandlerContext) {
        // A call started here may end at once (refused) and come back through relievePressure.
        guard !startingWaitingCalls else { return }
        startingWaitingCalls = true
        defer { startingWaitingCalls = false }
        while !waiting.isEmpty, !closeStarted, context.channel.isActive, load(context).hasRoomToRun(configuration),
              let call = waiting.popFirst() {
            startCall(call, context: context)
        }
        if !waiting.isEmpty, load(context).isOverOverallBudget { scheduleOverallBudgetRetry(context: context) }
    }

    /// Runs a call, or refuses it when its caller or method is not known.
    private func startCall(_ call: AdmittedCall, context: ChannelHandlerContext) {
        let (callID, header) = (call.callID, call.header)
        let (requestID, peer, route): (String, PeerIdentity, Route)
        do { (requestID, peer, route) = try call.resolve(peer: self.peer, router: router) } catch {
            endRefused(callID, error, context: context)
            return
        }

        // The same deadline as the expiry timer's: work the handler hands on past it is dropped.
        let callContext = ServerCallContext(
            peer: peer, region: header.region, requestID: requestID, idempotencyKey: header.idempotencyKey,
            deadline: call.deadline, logger: serverLogger, peerAddress: remoteAddress
        )
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        var message = call.message
        if route.isStreaming {
            // The request is a slice of the connection's read buffer, which the call's task would keep
            // alive for the stream's whole life (a 2 KiB TLS read buffer under every idle Watch).
            var copy = context.channel.allocator.buffer(capacity: message.readableBytes)
            copy.writeImmutableBuffer(message)
            message = copy
        }
        let eventLoop = context.eventLoop
        let executor = taskExecutor(for: eventLoop)
        var sink = StreamSink(callID: callID, eventLoop: eventLoop, handler: bound)
        if route.detaches {
            sink.cancellation = StreamCancellation()
            sink.taskExecutor = executor
        }
        // Started before the call is recorded, but its first step runs only after this read
        // (on this loop) or finishes through this loop: either way after the record is there.
        let task = Task(executorPreference: executor) { [sink] in
            let outcome = await route.handle(message, callContext, sink)
            if eventLoop.inEventLoop {
                let (handler, context) = bound.value
                handler.finish(callID, outcome, context: context)
            } else {
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.finish(callID, outcome, context: context)
                }
            }
        }
        calls.insert(RunningCalls.Call(task: task, stream: sink.cancellation, deadline: call.deadline, method: header.method,
                                       region: header.region, requestID: requestID, started: .now()), callID: callID)
        if let deadline = call.deadline { armDeadlineTimer(at: deadline, context: context) }
    }

    func callsDue(at now: NIODeadline) -> (due: [UInt32], next: NIODeadline?) {
        EarliestDeadlineTimer.due(Array(calls.deadlines) + waiting.deadlines, now: now)
    }

    private func taskExecutor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor? {
        guard runsCallsOnEventLoop else { return nil }
        if let executor { return executor }
        let made = EventLoopTaskExecutor(eventLoop: eventLoop)
        executor = made
        return made
    }

    // MARK: Ending calls

    private func removeCall(_ callID: UInt32) -> RunningCalls.Call? {
        guard let call = calls.remove(callID) else { return nil }
        parkedSends.fail(callID)
        return call
    }

    /// After a call is gone: the connection management handler counts it out (and closes a
    /// drained connection), and reads may resume.
    private func callGone(_ callID: UInt32, context: ChannelHandlerContext) {
        machine.callEnded(callID)
        report(.callClosed, context: context)
        relievePressure(context: context)
    }

    /// A call's handler ended (or a detached stream's owner finished it); nothing when the call is
    /// already over.
    func finish(_ callID: UInt32, _ outcome: CallOutcome, context: ChannelHandlerContext) {
        if case .detached = outcome {
            calls.detach(callID)
            return
        }
        guard let call = removeCall(callID) else { return }
        call.stream?.finished()
        switch outcome {
        case .response(let bytes):
            enqueue(context: context) { buffer in
                buffer.writeFrame(type: .message, flags: .endOK, callID: callID) { $0.writeBytes(bytes) }
            }
            log(call, status: .ok, reason: .ok)
        case .ended, .detached:
            writeStatus(Status(code: StatusCode.ok.rawValue, requestId: call.requestID), callID: callID, context: context)
            log(call, status: .ok, reason: .ok)
        case .failed(let error):
            writeStatus(error, callID: callID, context: context)
            log(call, status: error.code, reason: error.reason)
        }
        callGone(callID, context: context)
    }

    /// A detached stream's owner ended it: with OK when `error` is nil, else with the status it maps to.
    func finishDetached(_ callID: UInt32, throwing error: (any Error)?, context: ChannelHandlerContext) {
        guard let requestID = calls.requestID(callID) else { return }
        let outcome: CallOutcome = error.map { .failed(RPCRouter.status(of: $0, requestID: requestID, logger: logger)) } ?? .ended
        finish(callID, outcome, context: context)
    }

    func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        if waiting.remove(callID) != nil {
            refuse(callID, VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                                      message: "the call's deadline passed while it waited to run"), context: context)
            callGone(callID, context: context)
            return
        }
        guard let call = removeCall(callID) else { return }
        call.cancel()
        let error = VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                               message: "the call did not finish before its deadline", requestID: call.requestID)
        writeStatus(error, callID: callID, context: context)
        log(call, status: error.code, reason: error.reason)
        callGone(callID, context: context)
    }

    /// A CANCEL: the state machine has already forgotten the call; nothing is sent for it.
    private func cancelCall(_ callID: UInt32, context: ChannelHandlerContext) {
        if waiting.remove(callID) == nil {
            guard let call = removeCall(callID) else { return }
            call.cancel()
            log(call, status: .cancelled, reason: .cancelled)
        }
        callGone(callID, context: context)
    }

    /// A call the state machine had opened but that is refused after reading its header.
    private func endRefused(_ callID: UInt32, _ error: VPCEPError, context: ChannelHandlerContext) {
        refuse(callID, error, context: context)
        callGone(callID, context: context)
    }

    private func refuse(_ callID: UInt32, _ error: VPCEPError, context: ChannelHandlerContext) {
        writeStatus(error, callID: callID, context: context)
        RPCMetrics.recordRefusal(status: error.code, reason: error.reason.rawValue)
        logger.info("call refused", metadata: [
            "call_id": "\(callID)", "status": "\(error.code.name)", "reason": "\(error.reason)",
        ])
    }

    func log(_ call: RunningCalls.Call, status: StatusCode, reason: Reason) {
        callLog.record(method: call.method, region: call.region, requestID: call.requestID, started: call.started,
                       status: status, reason: reason, logLevel: serverLogger.logLevel) { logger }
    }

    // MARK: Writing

    func writeStatus(_ error: VPCEPError, callID: UInt32, context: ChannelHandlerContext) {
        writeStatus(error.status, callID: callID, context: context)
    }

    func writeStatus(_ status: Status, callID: UInt32, context: ChannelHandlerContext) {
        enqueue(context: context) { $0.writeStatusFrame(status, callID: callID) }
    }

    /// Queues frames; a flush at the end of this event-loop tick writes them with the others.
    func enqueue(context: ChannelHandlerContext, _ write: (inout ByteBuffer) -> Void) {
        guard outbound.append(allocator: context.channel.allocator, write) else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.flushIfNeeded(context: context)
        }
    }

    func flushIfNeeded(context: ChannelHandlerContext) {
        guard let buffer = outbound.take() else { return }
        let count = buffer.readableBytes
        let promise = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let (handler, context) = bound.value
            handler.outbound.written(count)
            handler.relievePressure(context: context)
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension ServerConnectionHandler: Sendable {}
