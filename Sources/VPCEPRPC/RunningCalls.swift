import NIOCore

/// The calls of one server connection whose handlers run, by call id; each counts in the
/// server's calls in flight while it is here. Used on the connection's event loop only.
struct RunningCalls {
    struct Call {
        /// Nil once a detached stream's handler returned: the stream lives on without it.
        var task: Task<Void, Never>?
        /// A detached stream's: tells its owner when the call ends without the owner's `finish`.
        var stream: StreamCancellation?
        var deadline: NIODeadline?
        let method: String
        let region: String
        let requestID: String
        let started: NIODeadline
    }

    private var calls: [UInt32: Call] = [:]
    private let statistics: ServerStatistics

    init(statistics: ServerStatistics) {
        self.statistics = statistics
    }

    var count: Int { calls.count }

    func contains(_ callID: UInt32) -> Bool { calls[callID] != nil }

    func requestID(_ callID: UInt32) -> String? { calls[callID]?.requestID }

    mutating func insert(_ call: Call, callID: UInt32) {
        // One insertion of the whole record: mutating a stored dictionary value in place goes
        // through a coroutine whose frame is heap-allocated for a value this size.
        calls.updateValue(call, forKey: callID)
        statistics.adjustCallsInFlight(1)
    }

    /// A detached stream's handler returned: its task is over, the call goes on.
    mutating func detach(_ callID: UInt32) {
        calls[callID]?.task = nil
    }

    mutating func remove(_ callID: UInt32) -> Call? {
        guard let call = calls.removeValue(forKey: callID) else { return nil }
        statistics.adjustCallsInFlight(-1)
        return call
    }

    /// Removes every call, in call id order.
    mutating func removeAll() -> [(callID: UInt32, call: Call)] {
        let all = calls.sorted { $0.key < $1.key }.map { (callID: $0.key, call: $0.value) }
        statistics.adjustCallsInFlight(-calls.count)
        calls.removeAll()
        return all
    }

    /// The running calls' ids and deadlines, for the connection's deadline timer.
    var deadlines: some Sequence<(UInt32, NIODeadline?)> { calls.lazy.map { ($0.key, $0.value.deadline) } }
}

extension RunningCalls.Call {
    /// Stops the call's work: its task, and a detached stream's owner.
    func cancel() {
        task?.cancel()
        stream?.cancel()
    }
}
