import Logging
import NIOCore
import VPCEPProto
import VPCEPTLS
import VPCEPWire

/// Serves the calls of one connection: sits above the TLS handler, cuts frames from the plaintext,
/// runs each call as a task, and writes the outcomes back in whatever order they finish.
///
/// The protocol rules live in `StateMachine`; this class owns the NIO side: tasks, timers,
/// coalesced writes, backpressure (docs/PROTOCOL.md §8) and graceful shutdown (§7).
final class ServerConnectionHandler: ChannelDuplexHandler, CallDeadlineOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    private struct ActiveCall {
        var task: Task<Void, Never>?
        var deadline: NIODeadline?
        let method: String
        let region: String
        let requestID: String
        let started: NIODeadline
    }

    /// A call the state machine accepted that waits for room to run: its CALL frame (copied out
    /// of the read buffer, which it would otherwise keep alive), when it came, and its deadline.
    private struct WaitingCall {
        let callID: UInt32
        let payload: ByteBuffer
        let received: NIODeadline
        let deadline: NIODeadline?
    }

    /// A stream message waiting for the outbound buffer to drain.
    private struct ParkedSend {
        let callID: UInt32
        let continuation: CheckedContinuation<Void, any Error>
    }

    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let statistics: ServerStatistics
    /// The server's logger, without this connection's metadata: an idle connection keeps no
    /// rendered metadata (see `logger`).
    private let serverLogger: Logger
    private var remoteAddress: SocketAddress?
    private var decoder: FrameDecoder
    private var machine: StateMachine
    private var peer: PeerIdentity?
    private var handshakeCompleted = false
    private var handshakeTimer: Scheduled<Void>?
    private var calls: [UInt32: ActiveCall] = [:]
    /// Accepted calls beyond `maxRunningCallsPerConnection` or the outbound budgets, oldest first.
    private var waiting = CircularBuffer<WaitingCall>()
    private var waitingBytes = 0
    private var startingWaitingCalls = false
    /// Set while something here waits for the server-wide budget, which no event of this
    /// connection would announce: held reads, waiting calls.
    private var overallBudgetRetry: Scheduled<Void>?
    private var outbound: ByteBuffer?
    private var flushPending = false
    /// Bytes handed to the channel whose writes have not completed yet.
    private var bytesInChannel = 0
    /// A `read` the pipeline asked for while backpressure held it back.
    private var readHeld = false
    private var parkedSends: [ParkedSend] = []
    private var graceTimer: Scheduled<Void>?
    private var livenessTimer: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    /// Nil when the configuration turns keepalive off.
    private var keepalive: Keepalive?
    private var closeStarted = false
    private let runsCallsOnEventLoop: Bool
    private let handshakeTimeout: TimeAmount
    /// Tells the server's handshake admission that this connection no longer waits for its handshake.
    private let onHandshakeCompleted: (@Sendable () -> Void)?
    var deadlineTimer = EarliestDeadlineTimer()
    /// Made at the first call, so that an idle connection does not pay for it.
    private var executor: EventLoopTaskExecutor?
    /// Metric handles by method, made once per connection instead of once per call.
    private var methodMetrics: [String: RPCMetrics.Method] = [:]

    /// Calls run on the connection's event loop unless `runsCallsOnEventLoop` is false, which is for
    /// NIO's testing event loops: they run submitted work only when a test drives them.
    init(router: RPCRouter, configuration: RPCServerConfiguration, statistics: ServerStatistics, logger: Logger,
         handshakeTimeout: TimeAmount? = nil, onHandshakeCompleted: (@Sendable () -> Void)? = nil,
         peerForTesting: PeerIdentity? = nil, runsCallsOnEventLoop: Bool = true) {
        self.runsCallsOnEventLoop = runsCallsOnEventLoop
        self.handshakeTimeout = handshakeTimeout ?? configuration.handshakeTimeout
        self.onHandshakeCompleted = onHandshakeCompleted
        self.router = router
        self.configuration = configuration
        self.statistics = statistics
        self.serverLogger = logger
        self.decoder = FrameDecoder(maxFrameSize: configuration.maxFrameSize)
        self.machine = StateMachine(maxConcurrentCalls: configuration.maxConcurrentCallsPerConnection)
        self.keepalive = configuration.keepaliveInterval.map {
            Keepalive(interval: $0, timeout: configuration.keepaliveTimeout, now: .now())
        }
        if let peerForTesting {
            self.peer = peerForTesting
            self.handshakeCompleted = true
        }
    }

    /// Bytes this connection holds for sending: the coalescing buffer plus writes the channel has
    /// not completed (which includes what TLS and the socket have not sent yet).
    var bufferedOutboundBytes: Int { (outbound?.readableBytes ?? 0) + bytesInChannel }

    /// The server's logger with this connection's peer address and identity, made when something
    /// is logged: rendered metadata would otherwise be kept by every idle connection.
    private var logger: Logger {
        var logger = serverLogger
        if let remoteAddress { logger[metadataKey: "peer_address"] = "\(remoteAddress)" }
        if let peer { logger[metadataKey: "peer"] = "\(peer)" }
        return logger
    }

    // MARK: Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress
        if context.channel.isActive { connectionStarted(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionStarted(context: context)
        context.fireChannelActive()
    }

    private func connectionStarted(context: ChannelHandlerContext) {
        guard handshakeTimer == nil, livenessTimer == nil else { return }
        let now = context.eventLoop.now
        keepalive?.reset(at: now)
        lastActivity = now
        if !handshakeCompleted {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            handshakeTimer = context.eventLoop.scheduleTask(in: handshakeTimeout) {
                let (handler, context) = bound.value
                guard !handler.handshakeCompleted else { return }
                handler.logger.info("connection closed: TLS handshake timed out")
                handler.statistics.recordHandshakeTimeout()
                RPCMetrics.recordHandshake(result: "timeout")
                context.close(promise: nil)
            }
        }
        armLivenessTimer(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            handshakeCompleted = true
            handshakeTimer?.cancel()
            handshakeTimer = nil
            onHandshakeCompleted?()
            statistics.recordHandshake(resumed: completed.resumed)
            RPCMetrics.recordHandshake(result: "ok")
            peer = completed.peer.flatMap { PeerIdentity(uriSANs: $0.uriSANs) }
            if peer == nil {
                logger.info("client certificate carries no vpcep:// identity; its calls will be refused",
                            metadata: ["subject": "\(completed.peer?.subject ?? "")"])
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let shutdown = event as? GracefulShutdown else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        beginGracefulShutdown(shutdown, context: context)
        promise?.succeed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeCompleted, let tls = error as? TLSError {
            RPCMetrics.recordHandshake(result: "\(tls.code)")
        }
        logger.info("connection closed on error", metadata: ["error": "\(error)"])
        // The TLS handler closes on its own failures, after its alert has had a chance to arrive.
        if error is TLSError { return }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        graceTimer?.cancel()
        livenessTimer?.cancel()
        machine.close()
        deadlineTimer.cancel()
        for (_, call) in calls {
            call.task?.cancel()
        }
        // These calls never reach `removeCall` (their tasks find no record): count them out here.
        statistics.adjustCallsInFlight(-calls.count)
        calls.removeAll()
        statistics.adjustWaitingCalls(-waiting.count)
        waiting.removeAll()
        waitingBytes = 0
        overallBudgetRetry?.cancel()
        overallBudgetRetry = nil
        resumeParkedSends(failing: true)
        statistics.adjustBufferedBytes(-(outbound?.readableBytes ?? 0))
        outbound = nil
        context.fireChannelInactive()
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.state != .closed else { return }
        let now = context.eventLoop.now
        keepalive?.reset(at: now)
        decoder.append(unwrapInboundIn(data))
        while machine.state != .closed {
            let action: StateMachine.FrameAction
            do {
                guard let frame = try decoder.next() else { break }
                // Idle means no calls (§8.1): PINGs and their answers prove liveness, not use.
                if frame.type == .call { lastActivity = now }
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

    /// Holds the pipeline's `read` while the connection is over its outbound bound, the channel
    /// is not writable, every call slot is taken, its waiting calls hold more than the outbound
    /// bound, or the server is over its overall budget and this connection adds to it: the
    /// client's further frames wait in its own socket buffers instead of ours.
    func read(context: ChannelHandlerContext) {
        if !closeStarted, shouldHoldReads(context: context) {
            if !readHeld { statistics.recordReadPause() }
            readHeld = true
            if isHeldByOverallBudget { scheduleOverallBudgetRetry(context: context) }
        } else {
            context.read()
        }
    }

    private func shouldHoldReads(context: ChannelHandlerContext) -> Bool {
        bufferedOutboundBytes > configuration.maxBufferedOutboundBytes
            || !context.channel.isWritable
            || calls.count + waiting.count >= configuration.maxConcurrentCallsPerConnection
            || waitingBytes > configuration.maxBufferedOutboundBytes
            || isHeldByOverallBudget
    }

    /// Over the server-wide budget, a connection that holds unsent bytes or waiting calls is not
    /// read; one that holds nothing is, so that its calls are refused at once, not left unread.
    private var isHeldByOverallBudget: Bool {
        (bufferedOutboundBytes > 0 || !waiting.isEmpty) && isOverOverallBudget
    }

    private var isOverOverallBudget: Bool {
        statistics.bufferedBytesExceed(configuration.maxBufferedOutboundBytesOverall)
    }

    /// Lets waiting calls, held reads and parked stream sends go once the pressure is off.
    private func relievePressure(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if bufferedOutboundBytes <= configuration.maxBufferedOutboundBytes, context.channel.isWritable {
            resumeParkedSends(failing: false)
        }
        startWaitingCalls(context: context)
        if readHeld, !shouldHoldReads(context: context) {
            readHeld = false
            context.read()
        }
    }

    /// Other connections' drains free the server-wide budget without telling this one: look again
    /// shortly.
    private func scheduleOverallBudgetRetry(context: ChannelHandlerContext) {
        guard overallBudgetRetry == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        overallBudgetRetry = context.eventLoop.scheduleTask(in: Self.overallBudgetRetryInterval) {
            let (handler, context) = bound.value
            handler.overallBudgetRetry = nil
            handler.relievePressure(context: context)
        }
    }

    static let overallBudgetRetryInterval: TimeAmount = .milliseconds(20)

    // MARK: Waiting calls

    /// Whether one more call may run now (docs/PROTOCOL.md §8.2).
    private func hasRoomToRun(context: ChannelHandlerContext) -> Bool {
        calls.count < configuration.maxRunningCallsPerConnection
            && bufferedOutboundBytes <= configuration.maxBufferedOutboundBytes
            && !isOverOverallBudget
    }

    /// A call the state machine accepted: refused when the server is over its overall budget, run
    /// when there is room and nothing waits before it, queued otherwise.
    private func admitCall(_ callID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        if isOverOverallBudget {
            statistics.recordOverloadRefusal()
            endRefused(callID, VPCEPError(
                code: .unavailable, reason: .serverOverloaded,
                message: "the server holds too many unsent responses; the call was not processed, retry later",
                retryAfter: .milliseconds(100)), context: context)
            return
        }
        if waiting.isEmpty, !closeStarted, hasRoomToRun(context: context) {
            startCall(callID, payload: payload, context: context)
            return
        }
        let now = context.eventLoop.now
        let deadline = Self.timeout(of: payload, callID: callID).map { now + $0 }
        var copy = context.channel.allocator.buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        waiting.append(WaitingCall(callID: callID, payload: copy, received: now, deadline: deadline))
        waitingBytes += copy.readableBytes
        statistics.adjustWaitingCalls(1)
        if let deadline { armDeadlineTimer(at: deadline, context: context) }
        startWaitingCalls(context: context)
    }

    /// A waiting call's timeout, read from its header now so that it runs out while it waits.
    /// Nil when there is none or the header cannot be read (`startCall` refuses those).
    private static func timeout(of framePayload: ByteBuffer, callID: UInt32) -> TimeAmount? {
        guard let payload = try? CallFramePayload(parsing: framePayload, callID: callID),
              let header = try? payload.header.withUnsafeReadableBytes({ bytes throws(ProtoDecodingError) in
                  try CallHeader(serializedBytes: bytes)
              }),
              header.timeoutMs != 0
        else { return nil }
        return .milliseconds(Int64(clamping: header.timeoutMs))
    }

    private func startWaitingCalls(context: ChannelHandlerContext) {
        // A call started here may end at once (refused) and come back through relievePressure.
        guard !startingWaitingCalls else { return }
        startingWaitingCalls = true
        defer { startingWaitingCalls = false }
        while !waiting.isEmpty, !closeStarted, context.channel.isActive, hasRoomToRun(context: context) {
            let call = waiting.removeFirst()
            waitingBytes -= call.payload.readableBytes
            statistics.adjustWaitingCalls(-1)
            startCall(call.callID, payload: call.payload, received: call.received, context: context)
        }
        if !waiting.isEmpty, isOverOverallBudget { scheduleOverallBudgetRetry(context: context) }
    }

    private func removeWaiting(_ callID: UInt32) -> WaitingCall? {
        guard let index = waiting.firstIndex(where: { $0.callID == callID }) else { return nil }
        let call = waiting.remove(at: index)
        waitingBytes -= call.payload.readableBytes
        statistics.adjustWaitingCalls(-1)
        return call
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relievePressure(context: context)
        context.fireChannelWritabilityChanged()
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
            goAwayAndClose(error, lastCallID: lastCallID, context: context)
        }
    }

    /// Runs a call; `received` is when it arrived, for one that waited (its deadline counts from then).
    private func startCall(_ callID: UInt32, payload framePayload: ByteBuffer, received: NIODeadline? = nil,
                           context: ChannelHandlerContext) {
        let payload: CallFramePayload
        let header: CallHeader
        do {
            payload = try CallFramePayload(parsing: framePayload, callID: callID)
            header = try payload.header.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try CallHeader(serializedBytes: bytes)
            }
        } catch {
            endRefused(callID, VPCEPError(code: .invalidArgument, reason: .malformedCallHeader,
                                          message: "the call header could not be read: \(error)"), context: context)
            return
        }
        let requestID: String
        do { requestID = try RequestID.resolve(header.requestId, callID: callID) } catch {
            endRefused(callID, error, context: context)
            return
        }

        guard let peer else {
            endRefused(callID, VPCEPError(code: .unauthenticated, reason: .certificateIdentityMissing,
                                          message: "the client certificate has no vpcep://tenant/<id> or vpcep://operator/<name> URI SAN",
                                          requestID: requestID), context: context)
            return
        }
        guard let route = router.route(for: header.method) else {
            endRefused(callID, VPCEPError(code: .unimplemented, reason: .methodNotFound,
                                          message: "no method \(header.method.prefix(200))", requestID: requestID),
                       context: context)
            return
        }

        let waited = received.map { context.eventLoop.now - $0 } ?? .zero
        let deadline: ContinuousClock.Instant? = header.timeoutMs == 0
            ? nil : .now.advanced(by: .milliseconds(Int64(clamping: header.timeoutMs)) - .nanoseconds(waited.nanoseconds))
        let callContext = ServerCallContext(
            peer: peer, region: header.region, requestID: requestID, idempotencyKey: header.idempotencyKey,
            deadline: deadline, logger: serverLogger, peerAddress: remoteAddress
        )
        statistics.adjustCallsInFlight(1)

        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let callDeadline = header.timeoutMs == 0
            ? nil : (received ?? context.eventLoop.now) + .milliseconds(Int64(clamping: header.timeoutMs))
        let message = payload.message
        let eventLoop = context.eventLoop
        let sink = StreamSink(callID: callID, eventLoop: eventLoop, handler: bound)
        // Started before the call is recorded, but its first step runs only after this read
        // (on this loop) or finishes through this loop: either way after the record is there.
        let task = Task(executorPreference: taskExecutor(for: eventLoop)) {
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
        // One insertion of the whole record: mutating a stored dictionary value in place goes
        // through a coroutine whose frame is heap-allocated for a value this size.
        calls.updateValue(
            ActiveCall(task: task, deadline: callDeadline, method: header.method, region: header.region,
                       requestID: requestID, started: .now()),
            forKey: callID)
        if let callDeadline { armDeadlineTimer(at: callDeadline, context: context) }
    }

    func callsDue(at now: NIODeadline) -> (due: [UInt32], next: NIODeadline?) {
        EarliestDeadlineTimer.due(
            calls.lazy.map { ($0.key, $0.value.deadline) } + waiting.lazy.map { ($0.callID, $0.deadline) }, now: now)
    }

    private func taskExecutor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor? {
        guard runsCallsOnEventLoop else { return nil }
        if let executor { return executor }
        let made = EventLoopTaskExecutor(eventLoop: eventLoop)
        executor = made
        return made
    }

    // MARK: Streams

    /// Called on the event loop by `ServerStreamWriter.send`: queues one MESSAGE frame of the
    /// call, then resumes the sender at once, or once the outbound buffer has drained.
    func sendStreamMessage(_ callID: UInt32, _ bytes: [UInt8], context: ChannelHandlerContext,
                           continuation: CheckedContinuation<Void, any Error>) {
        guard calls[callID] != nil, context.channel.isActive else {
            continuation.resume(throwing: CancellationError())
            return
        }
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .message, callID: callID) { $0.writeBytes(bytes) }
        }
        if bufferedOutboundBytes > configuration.maxBufferedOutboundBytes || !context.channel.isWritable {
            // Send what we have so that the buffer can drain, and wait for it.
            flushIfNeeded(context: context)
            if bufferedOutboundBytes > configuration.maxBufferedOutboundBytes || !context.channel.isWritable {
                statistics.recordParkedSend()
                parkedSends.append(ParkedSend(callID: callID, continuation: continuation))
                return
            }
        }
        continuation.resume()
    }

    private func resumeParkedSends(failing: Bool) {
        guard !parkedSends.isEmpty else { return }
        let parked = parkedSends
        parkedSends = []
        for send in parked {
            if failing || calls[send.callID] == nil {
                send.continuation.resume(throwing: CancellationError())
            } else {
                send.continuation.resume()
            }
        }
    }

    private func failParkedSends(of callID: UInt32) {
        guard parkedSends.contains(where: { $0.callID == callID }) else { return }
        var kept: [ParkedSend] = []
        for send in parkedSends {
            if send.callID == callID {
                send.continuation.resume(throwing: CancellationError())
            } else {
                kept.append(send)
            }
        }
        parkedSends = kept
    }

    // MARK: Ending calls

    private func removeCall(_ callID: UInt32, context: ChannelHandlerContext) -> ActiveCall? {
        guard let call = calls.removeValue(forKey: callID) else { return nil }
        statistics.adjustCallsInFlight(-1)
        failParkedSends(of: callID)
        lastActivity = context.eventLoop.now
        return call
    }

    /// After a call is gone: close a drained connection, or let reads resume.
    private func callGone(_ callID: UInt32, context: ChannelHandlerContext) {
        if machine.callEnded(callID) {
            closeAfterFlush(context: context)
        } else {
            relievePressure(context: context)
        }
    }

    private func finish(_ callID: UInt32, _ outcome: Result<[UInt8]?, VPCEPError>, context: ChannelHandlerContext) {
        guard let call = removeCall(callID, context: context) else { return }
        switch outcome {
        case .success(let bytes?):
            enqueue(context: context) { buffer in
                buffer.writeFrame(type: .message, flags: .endOK, callID: callID) { $0.writeBytes(bytes) }
            }
            log(call, status: .ok, reason: .ok)
        case .success(nil):
            writeStatus(Status(code: StatusCode.ok.rawValue, requestId: call.requestID), callID: callID, context: context)
            log(call, status: .ok, reason: .ok)
        case .failure(let error):
            writeStatus(error, callID: callID, context: context)
            log(call, status: error.code, reason: error.reason)
        }
        callGone(callID, context: context)
    }

    func expire(_ callID: UInt32, context: ChannelHandlerContext) {
        if removeWaiting(callID) != nil {
            refuse(callID, VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                                      message: "the call's deadline passed while it waited to run"), context: context)
            callGone(callID, context: context)
            return
        }
        guard let call = removeCall(callID, context: context) else { return }
        call.task?.cancel()
        let error = VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                               message: "the call did not finish before its deadline", requestID: call.requestID)
        writeStatus(error, callID: callID, context: context)
        log(call, status: error.code, reason: error.reason)
        callGone(callID, context: context)
    }

    private func cancelCall(_ callID: UInt32, context: ChannelHandlerContext) {
        // The state machine has already forgotten the call.
        if removeWaiting(callID) != nil {
            if machine.isDraining, machine.openCalls.isEmpty {
                closeAfterFlush(context: context)
            } else {
                relievePressure(context: context)
            }
            return
        }
        guard let call = removeCall(callID, context: context) else { return }
        call.task?.cancel()
        log(call, status: .cancelled, reason: .cancelled)
        if machine.isDraining, machine.openCalls.isEmpty {
            closeAfterFlush(context: context)
        } else {
            relievePressure(context: context)
        }
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

    private func writeStatus(_ error: VPCEPError, callID: UInt32, context: ChannelHandlerContext) {
        writeStatus(error.status, callID: callID, context: context)
    }

    private func writeStatus(_ status: Status, callID: UInt32, context: ChannelHandlerContext) {
        let bytes = (try? status.serializedBytes()) ?? []
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .status, callID: callID) { $0.writeBytes(bytes) }
        }
    }

    private func writeGoAway(_ error: VPCEPError, lastCallID: UInt32, context: ChannelHandlerContext) {
        let bytes = (try? error.status.serializedBytes()) ?? []
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .goAway, callID: 0) {
                $0.writeInteger(lastCallID)
                $0.writeBytes(bytes)
            }
        }
    }

    private func goAwayAndClose(_ error: VPCEPError, lastCallID: UInt32, context: ChannelHandlerContext) {
        logger.info("connection closed by the server", metadata: ["reason": "\(error.reason)", "detail": "\(error.message)"])
        RPCMetrics.recordConnectionFailure(reason: error.reason.rawValue.lowercased())
        writeGoAway(error, lastCallID: lastCallID, context: context)
        closeAfterFlush(context: context)
    }

    /// How long a connection the server has finished with keeps reading (and discarding) what the
    /// client still sends, waiting for it to close.
    static let closeLinger: TimeAmount = .seconds(2)

    /// Sends what is buffered, then closes our side only (TLS close_notify, TCP FIN) and keeps
    /// reading until the client closes or `closeLinger` passes. Closing outright while the client
    /// may still be sending would make the kernel answer with a reset, which can destroy the
    /// GOAWAY before the client has read it.
    private func closeAfterFlush(context: ChannelHandlerContext) {
        guard !closeStarted else { return }
        closeStarted = true
        machine.close()
        flushIfNeeded(context: context)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        halfClosed.futureResult.whenFailure { _ in bound.value.close(promise: nil) }
        context.close(mode: .output, promise: halfClosed)
        let linger = context.eventLoop.scheduleTask(in: Self.closeLinger) { bound.value.close(promise: nil) }
        context.channel.closeFuture.whenComplete { _ in linger.cancel() }
        // Reads may be held by backpressure; the client's close must get through.
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    // MARK: Graceful shutdown

    private func beginGracefulShutdown(_ shutdown: GracefulShutdown, context: ChannelHandlerContext) {
        guard case .goAway(let lastCallID, let closeNow) = machine.beginDraining() else { return }
        logger.info("draining connection", metadata: ["last_call_id": "\(lastCallID)", "in_flight": "\(calls.count)"])
        writeGoAway(shutdown.status, lastCallID: lastCallID, context: context)
        if closeNow {
            closeAfterFlush(context: context)
            return
        }
        flushIfNeeded(context: context)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        graceTimer = context.eventLoop.scheduleTask(in: shutdown.gracePeriod) {
            let (handler, context) = bound.value
            handler.graceExpired(context: context)
        }
    }

    private func graceExpired(context: ChannelHandlerContext) {
        for callID in calls.keys.sorted() {
            guard let call = removeCall(callID, context: context) else { continue }
            call.task?.cancel()
            let error = VPCEPError(code: .unavailable, reason: .shutdownGraceExpired,
                                   message: "the server shut down before the call finished", requestID: call.requestID)
            writeStatus(error, callID: callID, context: context)
            log(call, status: error.code, reason: error.reason)
        }
        while let call = waiting.popFirst() {
            statistics.adjustWaitingCalls(-1)
            writeStatus(VPCEPError(code: .unavailable, reason: .shutdownGraceExpired,
                                   message: "the server shut down before the call ran"), callID: call.callID, context: context)
        }
        waitingBytes = 0
        closeAfterFlush(context: context)
    }

    // MARK: Idle timeout and keepalive

    private func armLivenessTimer(context: ChannelHandlerContext) {
        livenessTimer?.cancel()
        let now = context.eventLoop.now
        // Each check is due when its condition could first hold; conditions that cannot hold now
        // (calls in flight, reads held) are looked at again one period later.
        var due = calls.isEmpty && waiting.isEmpty && handshakeCompleted
            ? lastActivity + configuration.idleTimeout : now + configuration.idleTimeout
        if let keepaliveDue = keepalive?.nextCheck(
            now: now, suspended: !handshakeCompleted || isUnderBackpressure(context: context)) {
            due = min(due, keepaliveDue)
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        livenessTimer = context.eventLoop.scheduleTask(in: max(due - now, .milliseconds(10))) {
            let (handler, context) = bound.value
            handler.checkLiveness(context: context)
        }
    }

    /// Reads held, or the client not taking its responses: the connection is slowed down, not
    /// dead, and a keepalive PING could not get through. It is not probed meanwhile.
    private func isUnderBackpressure(context: ChannelHandlerContext) -> Bool {
        readHeld || !context.channel.isWritable
    }

    private func checkLiveness(context: ChannelHandlerContext) {
        guard context.channel.isActive, !closeStarted else { return }
        let now = context.eventLoop.now
        if calls.isEmpty, waiting.isEmpty, now - lastActivity >= configuration.idleTimeout, handshakeCompleted {
            statistics.recordIdleClose()
            goAwayAndClose(VPCEPError(code: .unavailable, reason: .idleTimeout,
                                      message: "no calls for \(configuration.idleTimeout.nanoseconds / 1_000_000) ms"),
                           lastCallID: machine.acceptedCallID, context: context)
            return
        }
        // Before the handshake no PING has gone out; the handshake timeout bounds that phase.
        if handshakeCompleted {
            switch keepalive?.check(now: now, suspended: isUnderBackpressure(context: context)) {
            case .timedOut?:
                logger.info("connection closed: no answer to keepalive PING")
                statistics.recordKeepaliveTimeout()
                context.close(promise: nil)
                return
            case .sendPing?:
                enqueue(context: context) { $0.writeKeepalivePing(at: now) }
            case .wait?, nil:
                break
            }
        }
        armLivenessTimer(context: context)
    }

    private func log(_ call: ActiveCall, status: StatusCode, reason: Reason) {
        let elapsed = (NIODeadline.now() - call.started).nanoseconds
        let metrics = methodMetrics[call.method] ?? {
            let made = RPCMetrics.Method(call.method)
            methodMetrics[call.method] = made
            return made
        }()
        metrics.record(status: status, nanoseconds: elapsed)
        guard serverLogger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": "\(call.method)", "region": "\(call.region)", "status": "\(status.name)",
            "latency_us": "\(elapsed / 1000)", "request_id": "\(call.requestID)",
        ]
        if reason != .ok { metadata["reason"] = "\(reason)" }
        logger.info("call", metadata: metadata)
    }

    // MARK: Writing

    /// Appends to the outbound buffer; everything that becomes ready in one event-loop tick goes
    /// out as one write (one TLS record, one syscall).
    private func enqueue(context: ChannelHandlerContext, _ write: (inout ByteBuffer) -> Void) {
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 512) }
        let before = outbound!.readableBytes
        write(&outbound!)
        statistics.adjustBufferedBytes(outbound!.readableBytes - before)
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
        let count = buffer.readableBytes
        bytesInChannel += count
        let promise = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let (handler, context) = bound.value
            handler.bytesInChannel -= count
            handler.statistics.adjustBufferedBytes(-count)
            handler.relievePressure(context: context)
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension ServerConnectionHandler: Sendable {}

/// Asks a connection to drain: GOAWAY now, close when its calls are done or the grace period ends.
struct GracefulShutdown: Sendable {
    var gracePeriod: TimeAmount
    var status = VPCEPError(code: .unavailable, reason: .serverShuttingDown,
                            message: "the server is shutting down; retry on a new connection")
}

/// Where a streaming handler's messages go: the event loop and handler of its connection.
struct StreamSink: Sendable {
    let callID: UInt32
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<(ServerConnectionHandler, ChannelHandlerContext)>

    func send(_ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            eventLoop.execute {
                let (handler, context) = self.handler.value
                handler.sendStreamMessage(callID, bytes, context: context, continuation: continuation)
            }
        }
    }
}
