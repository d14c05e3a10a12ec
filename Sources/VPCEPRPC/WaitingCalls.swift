import NIOCore

/// The calls of one connection accepted beyond `maxRunningCallsPerConnection` or the outbound
/// budgets, oldest first (docs/PROTOCOL.md §8.2). Their bytes are counted, since they bound how
/// much a connection may pipeline before its reads are held.
struct WaitingCalls {
    typealias Call = AdmittedCall

    private var queue = CircularBuffer<Call>()
    private(set) var bytes = 0
    private let statistics: ServerStatistics

    init(statistics: ServerStatistics) {
        self.statistics = statistics
    }

    var count: Int { queue.count }
    var isEmpty: Bool { queue.isEmpty }

    /// Queues a copy of the call's message: a slice would keep the whole read buffer alive.
    mutating func append(_ call: Call, allocator: ByteBufferAllocator) {
        var call = call
        var copy = allocator.buffer(capacity: call.message.readableBytes)
        copy.writeImmutableBuffer(call.message)
        call.message = copy
        queue.append(call)
        bytes += call.bytes
        statistics.adjustWaitingCalls(1)
    }

    mutating func popFirst() -> Call? {
        guard let call = queue.popFirst() else { return nil }
        forget(call)
        return call
    }

    mutating func remove(_ callID: UInt32) -> Call? {
        guard let index = queue.firstIndex(where: { $0.callID == callID }) else { return nil }
        let call = queue.remove(at: index)
        forget(call)
        return call
    }

    /// The waiting calls' ids and deadlines, for the connection's deadline timer.
    var deadlines: some Sequence<(UInt32, NIODeadline?)> { queue.lazy.map { ($0.callID, $0.deadline) } }

    private mutating func forget(_ call: Call) {
        bytes -= call.bytes
        statistics.adjustWaitingCalls(-1)
    }
}
