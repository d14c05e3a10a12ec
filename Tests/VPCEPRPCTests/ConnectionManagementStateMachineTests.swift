import NIOCore
import Testing
@testable import VPCEPRPC

/// When a connection is probed, drained and closed (docs/PROTOCOL.md §7, §8.1, §8.3), on a clock
/// the test moves by hand.
@Suite("Connection management state machine")
struct ConnectionManagementStateMachineTests {
    typealias Machine = ConnectionManagementHandler.StateMachine
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    private func server(handshakeTimeout: TimeAmount? = nil, idle: TimeAmount? = nil,
                        keepalive: TimeAmount? = nil) -> Machine {
        var machine = Machine(configuration: .init(
            handshakeTimeout: handshakeTimeout, idleTimeout: idle, keepaliveInterval: keepalive,
            keepaliveTimeout: .seconds(5)), now: start)
        machine.connectionStarted(now: start)
        return machine
    }

    @Test("§8.1 idle: no call open and none opened for the idle timeout, counted from the last call's end")
    func idle() {
        var machine = server(idle: .seconds(60))
        #expect(machine.nextDeadline(now: at(0)) == at(60))
        #expect(machine.timerFired(now: at(59)) == .none)
        machine.callOpened(now: at(30))
        // A call open is never idle; it is looked at again a period later.
        #expect(machine.timerFired(now: at(90)) == .none)
        #expect(machine.nextDeadline(now: at(90)) == at(150))
        #expect(machine.callClosed(now: at(100)) == .none)
        #expect(machine.timerFired(now: at(159)) == .none)
        #expect(machine.nextDeadline(now: at(159)) == at(160))
        #expect(machine.timerFired(now: at(160)) == .idleTimedOut)
        #expect(machine.isClosing && machine.nextDeadline(now: at(160)) == nil)
    }

    @Test("§8.3 keepalive: PING after the interval of silence; anything received answers it; silence times out")
    func keepalive() {
        var machine = server(keepalive: .seconds(10))
        #expect(machine.nextDeadline(now: at(0)) == at(10))
        #expect(machine.timerFired(now: at(10)) == .sendPing)
        machine.bytesReceived(now: at(12))
        #expect(machine.timerFired(now: at(15)) == .none)
        #expect(machine.nextDeadline(now: at(15)) == at(22))
        #expect(machine.timerFired(now: at(22)) == .sendPing)
        #expect(machine.timerFired(now: at(26)) == .none)
        #expect(machine.timerFired(now: at(27)) == .keepaliveTimedOut)
        #expect(machine.isClosing)
    }

    @Test("§8.3 under backpressure nothing is probed, nothing times out, and an outstanding PING is forgotten")
    func keepaliveSuspended() {
        var machine = server(keepalive: .seconds(10))
        #expect(machine.timerFired(now: at(10)) == .sendPing)
        machine.backpressureChanged(true)
        #expect(machine.timerFired(now: at(15)) == .none)
        #expect(machine.timerFired(now: at(100)) == .none)
        #expect(machine.nextDeadline(now: at(100)) == at(110))
        machine.backpressureChanged(false)
        // The old PING's answer may have been stuck: a new one goes out instead of a timeout.
        #expect(machine.timerFired(now: at(110)) == .sendPing)
    }

    @Test("§8.1 the TLS handshake must finish in time; until it does, nothing is probed or idle")
    func handshakeTimeout() {
        var machine = server(handshakeTimeout: .seconds(10), idle: .seconds(5), keepalive: .seconds(5))
        #expect(machine.nextDeadline(now: at(0)) == at(5))
        #expect(machine.timerFired(now: at(5)) == .none)
        #expect(machine.timerFired(now: at(10)) == .handshakeTimedOut)
        #expect(machine.isClosing)

        var done = server(handshakeTimeout: .seconds(10), keepalive: .seconds(5))
        done.handshakeCompleted()
        #expect(done.timerFired(now: at(5)) == .sendPing)
        #expect(done.timerFired(now: at(9)) == .none)
    }

    @Test("§7 drain: GOAWAY, then close when the last open call ends")
    func drain() {
        var machine = server(idle: .seconds(60))
        machine.callOpened(now: at(1))
        machine.callOpened(now: at(2))
        #expect(machine.beginGracefulShutdown(now: at(3), gracePeriod: .seconds(30)) == .goAway)
        #expect(machine.beginGracefulShutdown(now: at(4), gracePeriod: .seconds(30)) == .none)
        #expect(machine.callClosed(now: at(5)) == .none)
        #expect(machine.callClosed(now: at(6)) == .close)
        #expect(machine.isClosing)
    }

    @Test("§7 drain with no call open closes at once")
    func drainIdle() {
        var machine = server()
        #expect(machine.beginGracefulShutdown(now: at(1), gracePeriod: .seconds(30)) == .goAwayAndClose)
        #expect(machine.isClosing)
    }

    @Test("§7 when the grace period ends with calls still open, they are ended and the connection closes")
    func graceExpires() {
        var machine = server(idle: .seconds(10))
        machine.callOpened(now: at(0))
        #expect(machine.beginGracefulShutdown(now: at(1), gracePeriod: .seconds(5)) == .goAway)
        #expect(machine.nextDeadline(now: at(1)) == at(6))
        #expect(machine.timerFired(now: at(5)) == .none)
        #expect(machine.timerFired(now: at(6)) == .graceExpired)
        #expect(machine.isClosing)
        // Calls that end after that change nothing.
        #expect(machine.callClosed(now: at(7)) == .none)
    }

    @Test("§8.3 the client watches its server only while calls are open, from the first call on")
    func clientKeepalive() {
        var machine = Machine(configuration: .init(keepaliveInterval: .seconds(10), keepaliveTimeout: .seconds(5),
                                                   keepaliveOnlyWithOpenCalls: true), now: start)
        machine.connectionStarted(now: start)
        #expect(machine.nextDeadline(now: at(0)) == nil)
        #expect(machine.timerFired(now: at(100)) == .none)
        machine.callOpened(now: at(100))
        #expect(machine.nextDeadline(now: at(100)) == at(110))
        #expect(machine.timerFired(now: at(110)) == .sendPing)
        #expect(machine.callClosed(now: at(111)) == .none)
        #expect(machine.timerFired(now: at(115)) == .none)
        #expect(machine.nextDeadline(now: at(115)) == nil)
    }

    @Test("a connection closing for its own reasons is no longer checked")
    func closeRequested() {
        var machine = server(idle: .seconds(10), keepalive: .seconds(5))
        let first = machine.closeRequested()
        let second = machine.closeRequested()
        #expect(first && !second)
        #expect(machine.nextDeadline(now: at(0)) == nil)
        #expect(machine.timerFired(now: at(100)) == .none)
    }
}
