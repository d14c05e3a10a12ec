/// What one server connection holds, and the backpressure rules over it (docs/PROTOCOL.md §8.2):
/// when its reads are held, when a waiting call may start, when stream senders may go on.
struct ConnectionLoad {
    /// Encoded frames not yet written to the socket.
    var bufferedOutboundBytes: Int
    var isWritable: Bool
    var runningCalls: Int
    var waitingCalls: Int
    /// The waiting calls' CALL frames.
    var waitingBytes: Int
    /// All connections together hold more than `maxBufferedOutboundBytesOverall`.
    var isOverOverallBudget: Bool

    /// Over the server-wide budget, a connection that holds unsent bytes or waiting calls is not
    /// read; one that holds nothing is, so that its calls are refused at once, not left unread.
    var isHeldByOverallBudget: Bool {
        (bufferedOutboundBytes > 0 || waitingCalls > 0) && isOverOverallBudget
    }

    /// Reads are held while the connection is over its outbound bound, the channel is not
    /// writable, every call slot is taken, its waiting calls hold more than the outbound bound, or
    /// the server is over its overall budget and this connection adds to it: the client's further
    /// frames wait in its own socket buffers instead of ours.
    func holdsReads(_ limits: RPCServerConfiguration) -> Bool {
        !canSend(limits)
            || runningCalls + waitingCalls >= limits.maxConcurrentCallsPerConnection
            || waitingBytes > limits.maxBufferedOutboundBytes
            || isHeldByOverallBudget
    }

    /// Whether one more call may run now.
    func hasRoomToRun(_ limits: RPCServerConfiguration) -> Bool {
        runningCalls < limits.maxRunningCallsPerConnection
            && bufferedOutboundBytes <= limits.maxBufferedOutboundBytes
            && !isOverOverallBudget
    }

    /// Within the outbound bound and writable: stream senders need not wait.
    func canSend(_ limits: RPCServerConfiguration) -> Bool {
        bufferedOutboundBytes <= limits.maxBufferedOutboundBytes && isWritable
    }
}
