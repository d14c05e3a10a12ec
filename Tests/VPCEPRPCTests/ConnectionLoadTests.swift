import Testing
@testable import VPCEPRPC

/// The server's backpressure rules (docs/PROTOCOL.md §8.2) over one connection's load.
@Suite("Connection load")
struct ConnectionLoadTests {
    private let limits = RPCServerConfiguration.defaults {
        $0.maxBufferedOutboundBytes = 100; $0.maxConcurrentCallsPerConnection = 10; $0.maxRunningCallsPerConnection = 4
    }
    private let idle = ConnectionLoad(bufferedOutboundBytes: 0, isWritable: true, runningCalls: 0, waitingCalls: 0,
                                      waitingBytes: 0, isOverOverallBudget: false)

    private func with(_ change: (inout ConnectionLoad) -> Void) -> ConnectionLoad {
        var load = idle
        change(&load)
        return load
    }

    @Test("§8.2 reads are held over the outbound bound, when not writable, at the call limit, or with too many waiting bytes")
    func holdsReads() {
        #expect(!idle.holdsReads(limits))
        #expect(!with { $0.bufferedOutboundBytes = 100 }.holdsReads(limits))
        #expect(with { $0.bufferedOutboundBytes = 101 }.holdsReads(limits))
        #expect(with { $0.isWritable = false }.holdsReads(limits))
        #expect(with { $0.runningCalls = 4; $0.waitingCalls = 6 }.holdsReads(limits))
        #expect(with { $0.waitingBytes = 101 }.holdsReads(limits))
    }

    @Test("§8.2 over the overall budget only a connection holding something is not read, and no call starts")
    func overallBudget() {
        #expect(!with { $0.isOverOverallBudget = true }.holdsReads(limits))
        #expect(with { $0.isOverOverallBudget = true; $0.bufferedOutboundBytes = 1 }.holdsReads(limits))
        #expect(with { $0.isOverOverallBudget = true; $0.waitingCalls = 1 }.holdsReads(limits))
        #expect(!with { $0.isOverOverallBudget = true }.hasRoomToRun(limits))
    }

    @Test("§8.2 a waiting call starts only below the running limit and within the outbound bound")
    func roomToRun() {
        #expect(idle.hasRoomToRun(limits))
        #expect(!with { $0.runningCalls = 4 }.hasRoomToRun(limits))
        #expect(!with { $0.bufferedOutboundBytes = 101 }.hasRoomToRun(limits))
        #expect(with { $0.isWritable = false }.hasRoomToRun(limits))
        #expect(!with { $0.isWritable = false }.canSend(limits))
    }
}
