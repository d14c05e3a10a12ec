import NIOCore
import VPCEPProto
import VPCEPWire

/// Backpressure (docs/PROTOCOL.md §8.2): when the connection stops reading, when waiting calls and
/// parked stream senders may go on, and how a stream sender leaves its event loop room to read.
extension ServerConnectionHandler {
    /// Holds the pipeline's `read` while the connection's load says so (§8.2).
    func read(context: ChannelHandlerContext) {
        let load = load(context)
        if !closeStarted, load.holdsReads(configuration) {
            if !readHeld { statistics.recordReadPause() }
            readHeld = true
            reportBackpressure(context: context)
            if load.isHeldByOverallBudget { scheduleOverallBudgetRetry(context: context) }
        } else {
            context.read()
        }
    }

    func load(_ context: ChannelHandlerContext) -> ConnectionLoad {
        ConnectionLoad(
            bufferedOutboundBytes: outbound.bufferedBytes, isWritable: context.channel.isWritable,
            runningCalls: calls.count, waitingCalls: waiting.count, waitingBytes: waiting.bytes,
            isOverOverallBudget: statistics.bufferedBytesExceed(configuration.maxBufferedOutboundBytesOverall))
    }

    /// Reads held, or the client not taking its responses: the connection is slowed down, not
    /// dead, and a keepalive PING could not get through (§8.3).
    private func reportBackpressure(context: ChannelHandlerContext) {
        let underBackpressure = readHeld || !context.channel.isWritable
        guard underBackpressure != reportedBackpressure else { return }
        reportedBackpressure = underBackpressure
        report(.backpressure(underBackpressure), context: context)
    }

    /// Lets waiting calls, held reads and parked stream sends go once the pressure is off.
    func relievePressure(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if load(context).canSend(configuration) {
            parkedSends.resumeAll(failing: false) { calls.contains($0) }
        }
        startWaitingCalls(context: context)
        if readHeld, !load(context).holdsReads(configuration) {
            readHeld = false
            context.read()
        }
        reportBackpressure(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relievePressure(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// Other connections' drains free the server-wide budget without telling this one: look again
    /// shortly.
    func scheduleOverallBudgetRetry(context: ChannelHandlerContext) {
        guard overallBudgetRetry == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        overallBudgetRetry = context.eventLoop.scheduleTask(in: Self.overallBudgetRetryInterval) {
            let (handler, context) = bound.value
            handler.overallBudgetRetry = nil
            handler.relievePressure(context: context)
        }
    }

    static let overallBudgetRetryInterval: TimeAmount = .milliseconds(20)

    /// NIO runs queued tasks until none is left before it looks at its sockets again, and a stream
    /// sender on the event loop whose sends never wait queues the next one at once: its connection
    /// (and every other on the loop) would never read again, not even the client's CANCEL or PING.
    /// So after 256 sends (a KiB of message counts as one more) a sender waits for a timer a little
    /// in the future, which ends the run of tasks; the loop reads, then the timer lets it go on.
    static let streamSendsPerYield = 256
    static let ioYieldDelay: TimeAmount = .microseconds(50)

    func yieldToIO(context: ChannelHandlerContext) {
        guard ioYield == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ioYield = context.eventLoop.scheduleTask(in: Self.ioYieldDelay) {
            let (handler, context) = bound.value
            handler.ioYield = nil
            handler.streamSendsSinceYield = 0
            // Senders that yielded while there was room but find none now wait for the drain.
            if !handler.parkedSends.isEmpty, !handler.load(context).canSend(handler.configuration) {
                handler.statistics.recordParkedSend()
            }
            handler.relievePressure(context: context)
        }
    }
}
