import NIOCore
import VPCEPProto
import VPCEPWire

/// What the connection management handler tells this one to do when the connection goes away
/// (docs/PROTOCOL.md §7, §8.1): GOAWAY, the end of the grace period, and the close.
extension ServerConnectionHandler {
    /// Shutting down or idle (§7, §8.1): GOAWAY naming the last call read; later calls are refused.
    func goAway(_ error: VPCEPError, draining: Bool, context: ChannelHandlerContext) {
        guard let lastCallID = machine.beginDraining() else { return }
        if draining {
            logger.info("draining connection", metadata: ["last_call_id": "\(lastCallID)", "in_flight": "\(calls.count)"])
        }
        writeGoAway(error, lastCallID: lastCallID, closing: !draining, context: context)
        flushIfNeeded(context: context)
    }

    func writeGoAway(_ error: VPCEPError, lastCallID: UInt32, closing: Bool, context: ChannelHandlerContext) {
        if closing {
            logger.info("connection closed by the server", metadata: ["reason": "\(error.reason)", "detail": "\(error.message)"])
            RPCMetrics.recordConnectionFailure(reason: error.reason.rawValue.lowercased())
        }
        enqueue(context: context) { $0.writeGoAwayFrame(lastCallID: lastCallID, error.status) }
    }

    /// The grace period is over (§7): every call still open ends `SHUTDOWN_GRACE_EXPIRED`.
    func graceExpired(context: ChannelHandlerContext) {
        for (callID, call) in calls.removeAll() {
            parkedSends.fail(callID)
            call.cancel()
            let error = VPCEPError(code: .unavailable, reason: .shutdownGraceExpired,
                                   message: "the server shut down before the call finished", requestID: call.requestID)
            writeStatus(error, callID: callID, context: context)
            log(call, status: error.code, reason: error.reason)
        }
        while let call = waiting.popFirst() {
            writeStatus(VPCEPError(code: .unavailable, reason: .shutdownGraceExpired,
                                   message: "the server shut down before the call ran"), callID: call.callID, context: context)
        }
    }

    /// The connection closes after this: send what is buffered, start nothing more, and let
    /// reads through so that the client's close gets in.
    func closing(context: ChannelHandlerContext) {
        guard !closeStarted else { return }
        closeStarted = true
        machine.close()
        flushIfNeeded(context: context)
        if readHeld {
            readHeld = false
            context.read()
        }
    }
}
