import NIOCore
import VPCEPProto
import VPCEPWire

/// The server side of a stream's messages (docs/PROTOCOL.md §4.4): queued with the other frames, their
/// senders paced and parked by the rules of `ServerConnectionHandler+Backpressure.swift`.
extension ServerConnectionHandler {
    /// Called on the event loop by `ServerStreamWriter.send`: queues one MESSAGE frame of the
    /// call, then resumes the sender at once, or once the outbound buffer has drained.
    func sendStreamMessage(_ callID: UInt32, _ bytes: [UInt8], context: ChannelHandlerContext,
                           continuation: CheckedContinuation<Void, any Error>) {
        guard calls.contains(callID), context.channel.isActive else {
            continuation.resume(throwing: CancellationError())
            return
        }
        enqueue(context: context) { buffer in
            buffer.writeFrame(type: .message, callID: callID) { $0.writeBytes(bytes) }
        }
        streamSendsSinceYield += 1 + bytes.count / 1024
        if streamSendsSinceYield >= Self.streamSendsPerYield {
            flushIfNeeded(context: context)
            parkedSends.park(callID, continuation)
            yieldToIO(context: context)
            return
        }
        if !load(context).canSend(configuration) {
            // Send what we have so that the buffer can drain, and wait for it.
            flushIfNeeded(context: context)
            if !load(context).canSend(configuration) {
                statistics.recordParkedSend()
                parkedSends.park(callID, continuation)
                return
            }
        }
        continuation.resume()
    }

    /// The sender of a stream message gave up waiting (its task was cancelled); the call goes on.
    func unparkSends(_ callID: UInt32) {
        parkedSends.fail(callID)
    }
}
